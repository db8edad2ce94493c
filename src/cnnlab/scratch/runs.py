"""A run folder of ``cnnlab scratch train --out DIR``: its two files, opening it, its data.

``scratch_lenet5.npz`` holds the NumPy LeNet-5's parameters, ``scratch_config.json`` how it was
built and trained (``input_size``, ``activation``, ``pool``, ``data``, accuracies). Used by
``cnnlab scratch show`` and ``cnnlab explore``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, DataError, MissingFileError, user_files
from .train import load_digits_split, resize_bilinear

WEIGHTS = "scratch_lenet5.npz"
CONFIG = "scratch_config.json"


def is_run(path) -> bool:
    return Path(path).is_dir() and (Path(path) / WEIGHTS).is_file()


def open_run(path, dtype=None):
    """The run's network, weights loaded, and its config: ``(net, config)``."""
    from .model import lenet5

    path = Path(path)
    if not (path / CONFIG).is_file() or not (path / WEIGHTS).is_file():
        raise MissingFileError(f"{path} is not a scratch run: it needs {WEIGHTS} and {CONFIG} "
                               f"(write them with 'cnnlab scratch train --out {path}')")
    with user_files(path / CONFIG):
        text = (path / CONFIG).read_text(errors="replace")
    try:
        cfg = json.loads(text)
        build = dict(input_size=cfg["input_size"], activation=cfg["activation"],
                     pool=cfg["pool"])
    except (ValueError, KeyError, TypeError) as err:  # not JSON, or not a scratch config
        raise CheckpointError(f"{path / CONFIG} is not a scratch run's config ({err}); "
                              f"write it again with 'cnnlab scratch train --out {path}'") from None
    kwargs = {} if dtype is None else {"dtype": dtype}
    net = lenet5(**build, **kwargs)
    net.load(path / WEIGHTS)
    return net, cfg


def run_data(cfg: dict) -> dict:
    """The data the run was trained on, as the engine's arrays (see :func:`load_split`)."""
    spec = cfg.get("data", "digits")
    size = int(cfg["input_size"])
    return load_digits_split(size) if spec == "digits" else load_split(spec, size)


def fit(images: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W) to (N, size, size): MNIST's 28x28 zero-padded by 2 into the 32x32 input (as
    LeCun et al. 1998 and ``cnnlab train lenet5`` do), any other size resized bilinearly."""
    if images.shape[1:] == (28, 28) and size == 32:
        return np.pad(images, ((0, 0), (2, 2), (2, 2)))
    return resize_bilinear(images, size)


def load_split(spec: str, size: int, limit: int | None = None) -> dict:
    """Any data set ``cnnlab.data`` reads, as the NumPy engine's arrays: ``{"train": (x, y),
    "val": ..., "test": ...}`` with x (N, 1, size, size) float32, grey (the mean of the
    colour channels), resized with the engine's bilinear resize (MNIST's 28x28 into 32x32:
    zero-padded, see :func:`fit`) and normalised with the
    training images' mean and standard deviation (as :func:`load_digits_split` does).
    ``limit`` keeps the first N training images."""
    from ..data import load_data

    splits = load_data(spec)
    if splits.num_classes > 10:
        raise DataError(f"{spec}: {splits.num_classes} classes, but the NumPy LeNet-5 has 10 "
                        "outputs; use a data set of at most 10 classes")
    val = splits.val if splits.val is not None else splits.test

    def grey(ds, n=None) -> tuple[np.ndarray, np.ndarray]:
        n = len(ds) if n is None else min(n, len(ds))
        if hasattr(ds, "images") and hasattr(ds, "labels"):
            x = ds.images[:n].double()
            x = x if ds.images.dtype.is_floating_point else x / 255.0
            x = x.mean(1).numpy()
            y = ds.labels[:n].numpy()
            return fit(x, size), y.astype(np.int64)
        xs, ys = [], []
        for i in range(n):
            img, label = ds[i]
            xs.append(fit(img.double().mean(0).numpy()[None], size)[0])
            ys.append(int(label))
        return np.stack(xs), np.array(ys, dtype=np.int64)

    parts = {"train": grey(splits.train, limit), "val": grey(val), "test": grey(splits.test)}
    mean, std = parts["train"][0].mean(), parts["train"][0].std()
    out = {k: (((x - mean) / max(std, 1e-8))[:, None].astype(np.float32), y)
           for k, (x, y) in parts.items()}
    out["mean"], out["std"] = float(mean), float(std)
    n = {k: len(out[k][1]) for k in ("train", "val", "test")}
    out["name"] = (f"{splits.source or splits.name} ({n['train']:,} train / {n['val']:,} "
                   f"validation / {n['test']:,} test images, {splits.num_classes} classes)")
    return out
