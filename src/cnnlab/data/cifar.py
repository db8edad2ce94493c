"""CIFAR-10 and CIFAR-100 from the binary version or the python version.

Binary version (``cifar-10-batches-bin``): ``data_batch_1.bin`` .. ``data_batch_5.bin`` and
``test_batch.bin``, records of 1 label byte + 3,072 pixel bytes (R, G, B planes of 32x32);
CIFAR-100 (``cifar-100-binary``): ``train.bin`` and ``test.bin``, records of a coarse and a fine
label byte + 3,072 bytes. Class names come from ``batches.meta.txt`` / ``fine_label_names.txt``
(``batches.meta`` / ``meta`` in the python version); the format fixes the record layout, not
the number of classes, so a names file of N names gives an N-class data set (every label must
be below N). Without a names file: 10 or 100 classes.

Python version (``cifar-10-batches-py``, ``cifar-100-python``): pickled dicts. They are read
with :class:`RestrictedUnpickler`, never with ``pickle.load``: it builds only dicts, lists,
tuples, strings, bytes, numbers and NumPy arrays, and refuses every other global a file asks
for. A NumPy array in a pickle needs exactly these globals (checked with ``pickletools`` on
the real files, written by Python 2 with protocol 2, and on NumPy 1.x/2.x pickles of
protocols 2-5):

* ``numpy.core.multiarray._reconstruct`` (``numpy._core.multiarray`` in NumPy 2) and
  ``numpy.ndarray``, ``numpy.dtype``: the ``ndarray.__reduce__`` route (protocols 2-4);
* ``numpy.core.numeric._frombuffer`` (``numpy._core.numeric``): protocol 5's route;
* ``_codecs.encode``: how Python 3 writes ``bytes`` in protocol 2; allowed only with the
  ``latin1`` codec (any other codec is refused when the pickle calls it).

The validation split is a fixed seeded 10 % of the training batches.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .base import DataSplits, TensorImages, split_indices

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]
STATS = {"cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
         "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))}
PIXELS = 3 * 32 * 32
SPLIT_SEED, VAL_FRACTION = 0, 0.10


def _latin1_encode(text, encoding="utf-8", errors="strict"):
    if str(encoding).lower().replace("-", "") not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"refused _codecs.encode with codec {encoding!r}")
    return text.encode("latin1", errors)


def _allowed_globals() -> dict[tuple[str, str], object]:
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # NumPy 1.x
        from numpy.core import multiarray, numeric
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
               ("_codecs", "encode"): _latin1_encode}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        if hasattr(numeric, "_frombuffer"):
            allowed[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only plain containers, strings, numbers and NumPy arrays (see module doc)."""

    ALLOWED = _allowed_globals()

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: a CIFAR file holds only arrays, lists, "
                "dicts and strings") from None


def restricted_load(path: str | Path):
    """Unpickle ``path`` with :class:`RestrictedUnpickler` (bytes keys become str)."""
    path = Path(path)
    try:
        obj = RestrictedUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except pickle.UnpicklingError as err:
        if str(err).startswith("refused"):
            raise DataError(f"{path}: {err}") from None
        raise DataError(f"{path}: not a readable CIFAR python batch ({err}); the file is "
                        "corrupt or truncated") from None
    except Exception as err:  # truncated or garbage: EOFError, ValueError, struct.error, ...
        raise DataError(f"{path}: not a readable CIFAR python batch "
                        f"({type(err).__name__}: {err}); the file is corrupt or truncated"
                        ) from None
    return _decode(obj)


def _decode(obj):
    if isinstance(obj, dict):
        return {(k.decode("latin1") if isinstance(k, bytes) else k): _decode(v)
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


def _names(values) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _check_labels(path: Path, labels: np.ndarray, num_classes: int, note: str = "") -> None:
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise DataError(f"{path}: label {int(labels[bad[0]])} of record {int(bad[0])} is outside "
                        f"0..{num_classes - 1} for {num_classes} classes{note}; mislabelled or "
                        "foreign file, or a class-name file that lacks names")


def read_binary_batch(path: Path, label_bytes: int, num_classes: int, note: str = ""
                      ) -> tuple[np.ndarray, np.ndarray]:
    raw = np.frombuffer(Path(path).read_bytes(), dtype=np.uint8)
    record = label_bytes + PIXELS
    if raw.size == 0 or raw.size % record:
        raise DataError(f"{path}: {raw.size} bytes is not a whole number of {record}-byte "
                        "records; the file is truncated or not a CIFAR binary batch")
    raw = raw.reshape(-1, record)
    labels = raw[:, label_bytes - 1].astype(np.int64)  # CIFAR-100: the fine label (2nd byte)
    _check_labels(path, labels, num_classes, note)
    return raw[:, label_bytes:].reshape(-1, 3, 32, 32), labels


def read_python_batch(path: Path, label_key: str, num_classes: int, note: str = ""
                      ) -> tuple[np.ndarray, np.ndarray]:
    batch = restricted_load(path)
    if not isinstance(batch, dict) or "data" not in batch or label_key not in batch:
        raise DataError(f"{path}: not a CIFAR python batch (expected a dict with 'data' and "
                        f"{label_key!r})")
    data, labels = batch["data"], batch[label_key]
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
            or data.shape[1] != PIXELS):
        shape = getattr(data, "shape", None)
        raise DataError(f"{path}: 'data' must be N x {PIXELS} unsigned bytes, got "
                        f"{type(data).__name__} {shape}")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(data),):
        raise DataError(f"{path}: {labels.size} labels for {len(data)} images")
    _check_labels(path, labels, num_classes, note)
    return data.reshape(-1, 3, 32, 32), labels


def detect_cifar(folder: Path) -> tuple[str, str, Path] | None:
    """``(kind, version, folder)`` for a CIFAR folder (or its usual sub-folder), else None."""
    candidates = [folder] + [folder / s for s in ("cifar-10-batches-bin", "cifar-100-binary",
                                                  "cifar-10-batches-py", "cifar-100-python")]
    for base in candidates:
        if (base / "test_batch.bin").is_file() or (base / "data_batch_1.bin").is_file():
            return "cifar10", "binary", base
        if (base / "train.bin").is_file() and (base / "test.bin").is_file():
            return "cifar100", "binary", base
        if (base / "test_batch").is_file() or (base / "data_batch_1").is_file():
            return "cifar10", "python", base
        if (base / "train").is_file() and (base / "test").is_file():
            return "cifar100", "python", base
    return None


def _stack(parts: list[tuple[np.ndarray, np.ndarray]]) -> TensorImages:
    images = torch.from_numpy(np.concatenate([p[0] for p in parts]).copy())
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    return TensorImages(images, labels)


def load_cifar(folder: str | Path, kind: str | None = None) -> DataSplits:
    """CIFAR-10 or CIFAR-100 from ``folder``, binary or python version (detected)."""
    folder = Path(folder)
    found = detect_cifar(folder)
    if found is None:
        raise DataError(f"{folder}: no CIFAR files (expected data_batch_1.bin/test_batch.bin, "
                        "train.bin/test.bin, data_batch_1/test_batch or train/test)")
    detected, version, base = found
    if kind is not None and kind != detected:
        raise DataError(f"{base}: looks like {detected}, not {kind}")
    kind = detected
    if kind == "cifar10":
        ext = ".bin" if version == "binary" else ""
        train_files = [base / f"data_batch_{i}{ext}" for i in range(1, 6)]
        train_files = [p for p in train_files if p.is_file()]
        test_file = base / f"test_batch{ext}"
    else:
        ext = ".bin" if version == "binary" else ""
        train_files, test_file = [base / f"train{ext}"], base / f"test{ext}"
    if not train_files or not test_file.is_file():
        raise DataError(f"{base}: incomplete CIFAR folder: need training batches and "
                        f"{test_file.name}")
    # The binary and python formats fix the record layout, not the number of classes: a
    # class-name file of N names makes an N-class data set (labels must be < N).
    names = _class_names(base, kind, version)
    if names is not None and not names:
        raise DataError(f"{_names_file(base, kind, version)}: the class-name file lists no "
                        "names; write one class name per line (or remove the file)")
    classes = names or (CIFAR10_CLASSES if kind == "cifar10" else [str(i) for i in range(100)])
    n = len(classes)
    if version == "binary" and n > 256:
        raise DataError(f"{_names_file(base, kind, version)}: {n} class names, but a label byte "
                        "holds at most 256 classes")
    names_note = f" (the class names in {_names_file(base, kind, version).name})" if names else ""
    if version == "binary":
        def read(p):
            return read_binary_batch(p, 1 if kind == "cifar10" else 2, n, names_note)
    else:
        def read(p):
            return read_python_batch(p, "labels" if kind == "cifar10" else "fine_labels", n,
                                     names_note)
    full, test = _stack([read(p) for p in train_files]), _stack([read(test_file)])
    val_idx, train_idx = split_indices(len(full), (VAL_FRACTION,), SPLIT_SEED)
    mean, std = STATS[kind]
    return DataSplits(
        name=kind, train=full.subset(train_idx), val=full.subset(val_idx) if len(val_idx) else None,
        test=test, classes=classes, channels=3, image_size=(32, 32), mean=mean, std=std,
        source=str(folder), crop_padding=4, hflip=True)


def _names_file(base: Path, kind: str, version: str) -> Path:
    if version == "binary":
        return base / ("batches.meta.txt" if kind == "cifar10" else "fine_label_names.txt")
    return base / ("batches.meta" if kind == "cifar10" else "meta")


def _class_names(base: Path, kind: str, version: str) -> list[str] | None:
    """The class names of the folder's names file, or None when it has none."""
    f = _names_file(base, kind, version)
    if version == "binary":
        if f.is_file():
            return [s.strip() for s in f.read_text().splitlines() if s.strip()]
        return None
    if not f.is_file():
        return None
    meta = restricted_load(f)
    key = "label_names" if kind == "cifar10" else "fine_label_names"
    if not isinstance(meta, dict) or not isinstance(meta.get(key), list):
        raise DataError(f"{f}: expected a dict with a {key!r} list")
    return _names(meta[key])
