"""MNIST and Fashion-MNIST from their IDX files, gzipped or not.

The IDX format (LeCun's): 2 zero bytes, a type byte (0x08 unsigned byte ... 0x0E float64), a
byte with the number of dimensions, one big-endian int32 per dimension, then the data in C
order. A folder holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each possibly with ``.gz`` (also
accepted: a dot instead of the last dash, and torchvision's ``<folder>/raw`` or
``<folder>/MNIST/raw`` layout). The validation split is a fixed seeded 10 % of the training
files.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .base import DataSplits, TensorImages, split_indices

IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
STEMS = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
# Statistics of the 60,000 training images (the values used throughout the literature).
STATS = {"mnist": ((0.1307,), (0.3081,)), "fashion-mnist": ((0.2860,), (0.3530,))}
SPLIT_SEED, VAL_FRACTION = 0, 0.10


def read_idx(path: str | Path, ndim: int | None = None, what: str = "") -> np.ndarray:
    """Read one IDX file (``.gz`` or raw); a truncated or corrupt file raises DataError, and so
    does one whose header announces other than ``ndim`` dimensions (before its sizes are read:
    a label file with an image file's magic was reported as truncated)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: cannot read it ({err}); the file is corrupt or truncated"
                        ) from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    if ndim is not None and raw[3] != ndim:
        raise DataError(f"{path}: expected {what or f'a {ndim}-D IDX file'} (magic "
                        f"0000{raw[2]:02x}{ndim:02x}), but its magic number {raw[:4].hex()} "
                        f"announces {raw[3]} dimensions; is it another file of the data set?")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_TYPES[raw[2]])
    need = int(np.prod(dims)) * dtype.itemsize
    have = len(raw) - header
    if have < need:
        raise DataError(f"{path}: truncated: the header announces {'x'.join(map(str, dims))} "
                        f"({need} bytes of data) but the file has {have}")
    if have > need:
        raise DataError(f"{path}: {have - need} unexpected bytes after the data; corrupt file")
    return np.frombuffer(raw, dtype=dtype, count=int(np.prod(dims)), offset=header).reshape(dims)


def find_idx_files(folder: Path) -> dict[str, Path] | None:
    """The four MNIST files in ``folder`` (or its raw/ sub-folders), or None."""
    for base in (folder, folder / "raw", folder / "MNIST" / "raw", folder / "FashionMNIST" / "raw"):
        found = {}
        for key, stem in STEMS.items():
            dotted = stem[::-1].replace("-", ".", 1)[::-1]
            for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
                if (base / name).is_file():
                    found[key] = base / name
                    break
        if len(found) == 4:
            return found
        if found:
            missing = sorted(STEMS[k] for k in STEMS if k not in found)
            raise DataError(f"{base}: IDX data set is incomplete, missing {', '.join(missing)}")
    return None


def _pair(images_path: Path, labels_path: Path, num_classes: int) -> TensorImages:
    images = read_idx(images_path)
    labels = read_idx(labels_path, 1, "a 1-D label file")
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{images_path}: expected N x H x W unsigned bytes, "
                        f"got {images.ndim} dimensions of {images.dtype}")
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: expected a 1-D label file, got {labels.ndim} dimensions")
    if len(labels) != len(images):
        raise DataError(f"{labels_path}: {len(labels)} labels for {len(images)} images in "
                        f"{images_path.name}; the files do not belong together")
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise DataError(f"{labels_path}: label {int(labels[bad[0]])} at index {int(bad[0])} is "
                        f"outside 0..{num_classes - 1}; mislabelled or foreign file")
    return TensorImages(torch.from_numpy(images.copy()).unsqueeze(1),
                        torch.from_numpy(labels.astype(np.int64)))


def load_idx(folder: str | Path, kind: str = "mnist") -> DataSplits:
    """MNIST (``kind="mnist"``) or Fashion-MNIST (``"fashion-mnist"``) from ``folder``."""
    folder = Path(folder)
    files = find_idx_files(folder)
    if files is None:
        raise DataError(f"{folder}: no MNIST IDX files (expected {STEMS['train_images']}[.gz] "
                        "and the three others)")
    classes = FASHION_CLASSES if kind == "fashion-mnist" else MNIST_CLASSES
    full = _pair(files["train_images"], files["train_labels"], len(classes))
    test = _pair(files["test_images"], files["test_labels"], len(classes))
    if full.images.shape[1:] != test.images.shape[1:]:
        raise DataError(f"{files['test_images']}: images of {tuple(test.images.shape[2:])} "
                        f"but the training images are {tuple(full.images.shape[2:])}")
    val_idx, train_idx = split_indices(len(full), (VAL_FRACTION,), SPLIT_SEED)
    mean, std = STATS[kind]
    return DataSplits(
        name=kind, train=full.subset(train_idx), val=full.subset(val_idx) if len(val_idx) else None,
        test=test, classes=list(classes), channels=1, image_size=tuple(full.images.shape[2:]),
        mean=mean, std=std, source=str(folder))
