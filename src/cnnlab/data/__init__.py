"""Data sets: the bundled digits, MNIST/Fashion-MNIST (IDX; MNIST also as mnist.pkl.gz),
CIFAR-10/100 (binary and python), image folders and a synthetic set; see :func:`load_data`.

The classes (which need torch) are loaded on first use (PEP 562), so that ``FORMATS`` can be
read by ``cnnlab ... --help`` without importing torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from ..errors import DataError, user_files

if TYPE_CHECKING:
    from .base import DataSplits

_LAZY = {"DataSplits": ".base", "Prepared": ".base", "TensorImages": ".base",
         "labels_of": ".base", "Augment": ".transforms", "Preprocess": ".transforms"}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


FORMATS = ("auto", "digits", "synthetic", "mnist", "mnist-pickle", "fashion-mnist", "cifar10",
           "cifar100", "folder")


def detect_format(path: Path) -> str:
    from .cifar import detect_cifar
    from .folder import is_image_folder
    from .idx import find_idx_files

    if not path.exists():
        raise DataError(f"data path {path} does not exist; give a folder of MNIST, CIFAR or "
                        "class sub-folders, or use --data digits")
    if not path.is_dir():
        from .mnist_pickle import is_mnist_pickle
        if is_mnist_pickle(path):
            return "mnist-pickle"
        raise DataError(f"data path {path} is a file; give the folder that holds the data set "
                        "(the one file cnnlab reads is MNIST's mnist.pkl.gz)")
    if find_idx_files(path) is not None:
        return "fashion-mnist" if "fashion" in str(path).lower() else "mnist"
    found = detect_cifar(path)
    if found is not None:
        return found[0]
    if is_image_folder(path):
        return "folder"
    raise DataError(f"{path}: data format not recognised: expected MNIST IDX files, CIFAR "
                    "batches or one sub-folder of images per class")


@user_files()  # an OSError here is about the user's files: one line naming the file, exit 2
def load_data(spec: str = "digits", fmt: str = "auto", skip_bad: bool = False) -> DataSplits:
    """Load a data set: ``"digits"``, ``"synthetic[:opts]"`` or a folder (format detected or
    given as ``fmt``). ``skip_bad``: leave out the unreadable files of an image folder (with a
    warning counting them) instead of refusing it."""
    if fmt not in FORMATS:
        raise DataError(f"unknown data format {fmt!r}; choose one of {', '.join(FORMATS)}")
    spec = str(spec)
    if fmt == "digits" or (fmt == "auto" and spec == "digits"):
        from .digits import load_digits
        return load_digits()
    if fmt == "synthetic" or (fmt == "auto" and spec.split(":")[0] == "synthetic"):
        from .synthetic import load_synthetic
        return load_synthetic(spec if spec.startswith("synthetic") else "synthetic")
    if spec.split(":")[0] in ("digits", "synthetic") and not Path(spec).exists():
        raise DataError(f"--format {fmt} reads files from a folder, but the data is {spec!r}; "
                        f"give the folder with --data PATH")
    path = Path(spec).expanduser()
    kind = detect_format(path) if fmt == "auto" else fmt
    if not path.exists():
        raise DataError(f"data path {path} does not exist")
    if kind == "mnist-pickle":
        from .mnist_pickle import load_mnist_pickle
        return load_mnist_pickle(path)
    if kind in ("mnist", "fashion-mnist"):
        from .idx import load_idx
        return load_idx(path, kind)
    if kind in ("cifar10", "cifar100"):
        from .cifar import load_cifar
        return load_cifar(path, kind)
    from .folder import load_folder
    return load_folder(path, skip_bad=skip_bad)


__all__ = ["FORMATS", "Augment", "DataSplits", "Prepared", "Preprocess", "TensorImages",
           "detect_format", "labels_of", "load_data"]
