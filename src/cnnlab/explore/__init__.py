"""``cnnlab explore``: one offline HTML page that shows how a model turns an image into a
prediction: the architecture as it is built, every layer's feature maps and kernels, and the
arithmetic of a convolution, a pooling, a batch norm and the softmax, recomputed (and checked
against PyTorch) by the page's own script. See docs/explore.md."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from .build import Limits
from .page import explore_data, render_html


def write_page(target, out, *, image=None, depth: int = 3, input_size=None,
               limits: Limits | None = None, weights=None, progress=None) -> dict:
    """Explore ``target`` (a registered model name, a run folder or checkpoint, or a
    ``cnnlab scratch train --out`` folder) and write the page to ``out``; returns the data.

    ``weights`` (a model name only): a weights file in torchvision's, timm's or cnnlab's
    layout, a cnnlab run folder, or a bundled name (``"digits"`` for ``lenet5``), as
    ``create_model(name, weights=...)``; without it a model with bundled weights uses them
    (``lenet5``) and any other shows its random initial weights, and says so.
    ``progress(done, total, name)`` is called as each layer of the forward pass is recorded."""
    if not isinstance(depth, int) or depth < 1:
        raise UsageError(f"depth must be a positive integer, got {depth!r}")
    import torch

    # One image, batch 1: a single thread is as fast on an idle machine and many times faster
    # on a busy one (spinning thread pools); the caller's setting comes back afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _write_page(target, out, image, depth, input_size, limits, weights, progress)
    finally:
        torch.set_num_threads(threads)


def _write_page(target, out, image, depth, input_size, limits, weights=None,
                progress=None) -> dict:
    from ..errors import ExploreError
    from ..resolve import classify
    from ..weights import atomic_write_bytes
    from . import source

    path = Path(str(target))
    if weights is not None and path.exists():
        raise ExploreError(f"--weights is for a registered model name; {target} is a run, "
                           "which brings its own weights: leave out --weights")
    kind, _ = classify(target)  # the one opener's errors (cnnlab.resolve)
    if kind == "scratch":
        model, x, shown, classes, src = source.from_scratch(path, image)
        name = "lenet5 (NumPy engine)"
    elif kind != "name":
        model, x, shown, classes, src = source.from_run(path, image)
        name = src["what"].split(" ")[0]
    else:
        model, x, shown, classes, src = source.from_model(str(target), image, input_size,
                                                          weights=weights)
        name = str(target)
    data = explore_data(model, x, depth=depth, model_name=name, classes=classes, image=shown,
                        source=src, limits=limits, analysis_model=_on_meta(src),
                        progress=progress)
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
