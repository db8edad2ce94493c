"""``cnnlab explore``: one offline HTML page that shows how a model turns an image into a
prediction: the architecture as it is built, every layer's feature maps and kernels, and the
arithmetic of a convolution, a pooling, a batch norm and the softmax, recomputed (and checked
against PyTorch) by the page's own script. See docs/explore.md."""

from __future__ import annotations

from pathlib import Path

from ..errors import MissingFileError, UsageError
from .build import Limits
from .page import explore_data, render_html


def write_page(target, out, *, image=None, depth: int = 3, input_size=None,
               limits: Limits | None = None) -> dict:
    """Explore ``target`` (a registered model name, a run folder or checkpoint, or a
    ``cnnlab scratch train --out`` folder) and write the page to ``out``; returns the data."""
    if not isinstance(depth, int) or depth < 1:
        raise UsageError(f"depth must be a positive integer, got {depth!r}")
    import torch

    # One image, batch 1: a single thread is as fast on an idle machine and many times faster
    # on a busy one (spinning thread pools); the caller's setting comes back afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _write_page(target, out, image, depth, input_size, limits)
    finally:
        torch.set_num_threads(threads)


def _write_page(target, out, image, depth, input_size, limits) -> dict:
    from ..scratch.runs import is_run as is_scratch_run
    from ..weights import atomic_write_bytes
    from . import source

    path = Path(str(target))
    if is_scratch_run(path):
        model, x, shown, classes, src = source.from_scratch(path, image)
        name = "lenet5 (NumPy engine)"
    elif path.exists():
        model, x, shown, classes, src = source.from_run(path, image)
        name = src["what"].split(" ")[0]
    elif "/" in str(target) or "\\" in str(target) or path.suffix in (".pt", ".safetensors"):
        raise MissingFileError(f"{target} does not exist; give a run folder, a checkpoint, "
                               "a 'cnnlab scratch train --out' folder or a model name")
    else:
        model, x, shown, classes, src = source.from_model(str(target), image, input_size)
        name = str(target)
    data = explore_data(model, x, depth=depth, model_name=name, classes=classes, image=shown,
                        source=src, limits=limits, analysis_model=_on_meta(src))
    atomic_write_bytes(out, render_html(data).encode("utf-8"))
    return data


def _on_meta(src: dict):
    """The same architecture on the meta device, for the summary and the receptive fields
    (no arithmetic); None when it cannot be built there (then the real model is traced)."""
    import torch

    from ..registry import create_model

    try:
        with torch.device("meta"):
            return create_model(src["arch"], **src.get("arch_kwargs", {}))
    except (NotImplementedError, RuntimeError, KeyError, TypeError, ValueError):
        return None


__all__ = ["Limits", "explore_data", "render_html", "write_page"]
