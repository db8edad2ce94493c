"""An image folder: one sub-folder per class.

Two layouts: ``ROOT/train/<class>/*.png`` with optional ``ROOT/val/`` and ``ROOT/test/`` (the
classes are those of ``train``; the other splits may not name classes it lacks), or
``ROOT/<class>/*.png`` alone, split by a fixed seeded 70 / 10 / 20 %. Hidden files and folders
are ignored; a class folder holds its images at any depth.

The folder is listed once (``os.scandir``, one pass per split) and every file is checked
before training starts (Pillow reads its header and verifies it; a progress bar shows on
folders of :data:`PROGRESS_FROM` files or more when stderr is a terminal): the unreadable files
of all splits are reported together in one error, or left out with ``skip_bad=True``
(``cnnlab train --skip-bad``) and counted. A
class folder without images is left out with a warning line naming it. Images are read
lazily with :func:`cnnlab.data.images.load_image` (every bit depth scaled to [0, 1]); they are
kept grayscale when every image is grayscale, else converted to RGB.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..errors import DataError, ImageTooLargeError
from .base import DataSplits, split_indices
from .images import (
    GRAY_MODES,
    MAX_PIXELS_ENV,
    load_image,
    max_image_pixels,
    open_image,
    verify_image,
)

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
# ImageNet statistics: the usual choice for photographs when the folder's own are unknown.
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
SPLIT_SEED = 0
PROGRESS_FROM = 2000  # files; smaller folders are checked without a progress bar
SHOW_BAD = 5          # unreadable files named in the error; the others are counted

__all__ = ["EXTENSIONS", "ImageFiles", "is_image_folder", "load_folder", "load_image",
           "scan_classes"]


def _warn(message: str) -> None:
    print(f"cnnlab: warning: {message}", file=sys.stderr)


def _walk_images(folder: str):
    """Yield every visible image file under ``folder`` (any depth, hidden names skipped), in
    ``os.scandir`` order: one pass, no ``stat`` per file beyond what the directory holds."""
    stack = [folder]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                if e.name.startswith("."):
                    continue
                if e.is_dir():
                    stack.append(e.path)
                elif os.path.splitext(e.name)[1].lower() in EXTENSIONS and e.is_file():
                    yield e.path


def _image_files(folder: str) -> list[str]:
    """Every visible image file under ``folder``, sorted."""
    return sorted(_walk_images(folder))


def _class_dirs(root: Path) -> list[os.DirEntry]:
    with os.scandir(root) as it:
        return sorted((e for e in it if not e.name.startswith(".") and e.is_dir()),
                      key=lambda e: e.name)


def scan_classes(root: Path, empty: list[str] | None = None) -> dict[str, list[Path]]:
    """``{class: [files]}`` of the class sub-folders of ``root`` that hold images; the names
    of those that hold none are appended to ``empty``."""
    classes = {}
    for d in _class_dirs(root):
        files = _image_files(d.path)
        if files:
            classes[d.name] = [Path(f) for f in files]
        elif empty is not None:
            empty.append(d.name)
    return classes


def is_image_folder(root: Path) -> bool:
    """Whether ``root`` (or ``root/train``) has a class sub-folder with an image in it; stops
    at the first image found (the full listing is :func:`load_folder`'s)."""
    base = root / "train" if (root / "train").is_dir() else root
    if not base.is_dir():
        return False
    return any(next(_walk_images(d.path), None) is not None for d in _class_dirs(base))


class UnreadableFilesError(DataError):
    """Image files of a folder that cannot be read; ``listing`` names them (the message adds
    what to do, which depends on who asks: a resumed run cannot take --skip-bad)."""

    def __init__(self, message: str, listing: str):
        super().__init__(message)
        self.listing = listing


def check_files(files: list[Path], root: Path, skip_bad: bool = False
                ) -> tuple[list[Path], list[str], list[tuple[int, int]]]:
    """Verify every file (see :func:`~cnnlab.data.images.verify_image`); returns the good
    files, their modes and their (width, height). Unreadable files raise one DataError listing
    them, or are left out (with a warning line counting them) when ``skip_bad``."""
    from tqdm import tqdm

    good, modes, bad, large = [], [], [], []
    sizes: list[tuple[int, int]] = []  # (width, height) of the good files
    too_large = False
    limit = max_image_pixels()
    bar = tqdm(files, desc=f"checking {len(files)} images", unit="file", leave=False,
               disable=len(files) < PROGRESS_FROM or not sys.stderr.isatty(), file=sys.stderr)
    for f in bar:
        try:
            mode, (w, h) = verify_image(f)
            modes.append(mode)
            sizes.append((w, h))
            good.append(f)
            if limit is not None and w * h > limit // 2:
                large.append(f"{_rel(f, root)} ({w}x{h})")
        except ImageTooLargeError as err:
            too_large = True
            bad.append(f"{_rel(f, root)} ({err.reason})")
        except DataError as err:
            bad.append(f"{_rel(f, root)} ({getattr(err, 'reason', err)})")
    if bad:
        shown = "; ".join(bad[:SHOW_BAD]) + (f"; and {len(bad) - SHOW_BAD} more"
                                             if len(bad) > SHOW_BAD else "")
        if not skip_bad:
            hint = (f" (to accept larger images set {MAX_PIXELS_ENV}, e.g. "
                    f"{MAX_PIXELS_ENV}=0 for no limit)" if too_large else "")
            listing = f"{root}: {len(bad)} of {len(files)} image files cannot be read: {shown}"
            raise UnreadableFilesError(
                f"{listing}; fix or remove them, or leave them out with --skip-bad{hint}",
                listing)
        _warn(f"{root}: left out {len(bad)} of {len(files)} image files that cannot be "
              f"read: {shown}")
    if large:
        _warn(f"{root}: {len(large)} images have more than half the limit of {limit:,} pixels "
              f"(slow to read, much memory): {', '.join(large[:SHOW_BAD])}"
              + (f" and {len(large) - SHOW_BAD} more" if len(large) > SHOW_BAD else ""))
    return good, modes, sizes


def _rel(f: Path, root: Path) -> str:
    try:
        return str(Path(f).relative_to(root))
    except ValueError:
        return str(f)


class ImageFiles(Dataset):
    def __init__(self, files: list[Path], labels: list[int], channels: int):
        self.files, self.labels, self.channels = files, torch.tensor(labels).long(), channels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        # large images were reported once when the folder was checked, not at every read
        return load_image(self.files[i], self.channels, warn=False), int(self.labels[i])

    def stored(self, i: int) -> torch.Tensor:
        """Image ``i`` as stored, for the photo recipes (:mod:`cnnlab.data.augment`), which crop
        before they convert: 8-bit images as uint8 C x H x W (no float copy of the whole
        image), other bit depths as :meth:`__getitem__` gives them."""
        return read_stored(self.files[i], self.channels)


def read_stored(path: Path, channels: int) -> torch.Tensor:
    """An 8-bit image file (L, RGB, P, CMYK ...) as uint8 ``channels`` x H x W, decoded once by
    Pillow; any other mode as the float tensor of :func:`load_image`."""
    import warnings

    import numpy as np

    with open_image(path, warn=False) as im:
        if im.mode not in GRAY_MODES or im.mode == "L":
            try:
                im.seek(0)
                target = "L" if channels == 1 else "RGB"
                a = np.asarray(im if im.mode == target else im.convert(target))
            except Exception as err:  # truncated data ...
                raise DataError(f"{path}: cannot read this image ({err})") from None
            with warnings.catch_warnings():  # Pillow's array is read-only; it is never written
                warnings.simplefilter("ignore", UserWarning)
                t = torch.from_numpy(a)
            return t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1)
    return load_image(path, channels, warn=False)


def load_folder(root: str | Path, skip_bad: bool = False) -> DataSplits:
    """The image folder at ``root`` (see the module doc); ``skip_bad`` leaves out unreadable
    files instead of refusing the folder."""
    root = Path(root)
    has_train = (root / "train").is_dir()
    base = root / "train" if has_train else root

    # List every split, then check all their files at once: one error lists every bad file.
    where = {"train": base}
    if has_train:
        where.update({s: root / s for s in ("val", "test") if (root / s).is_dir()})
    found, empty = {}, {}
    for split, folder in where.items():
        empty[split] = []
        found[split] = scan_classes(folder, empty[split])
    good, modes, sizes = check_files([f for m in found.values() for fs in m.values() for f in fs],
                              root, skip_bad)
    keep = set(good)
    for split, m in found.items():
        kept = {c: [f for f in fs if f in keep] for c, fs in m.items()}
        empty[split] += [c for c, fs in kept.items() if not fs]  # every file of it was bad
        found[split] = {c: fs for c, fs in kept.items() if fs}
    classes_map = found.pop("train")
    other = found
    if empty["train"]:
        e = sorted(empty["train"])
        _warn(f"{base}: class folder{'s' if len(e) > 1 else ''} {', '.join(e)} "
              f"{'have' if len(e) > 1 else 'has'} no readable images and "
              f"{'are' if len(e) > 1 else 'is'} left out; {len(classes_map)} classes found: "
              f"{', '.join(classes_map)}")
    if not classes_map:
        raise DataError(f"{root}: no class sub-folders with images "
                        f"({', '.join(sorted(EXTENSIONS))})")
    if len(classes_map) < 2:
        raise DataError(f"{root}: only one class ({next(iter(classes_map))}); "
                        "need a sub-folder per class")
    classes = list(classes_map)
    index = {c: i for i, c in enumerate(classes)}
    channels = 1 if all(m in GRAY_MODES for m in modes) else 3

    def from_map(m: dict[str, list[Path]], where: Path) -> ImageFiles:
        unknown = sorted(set(m) - set(index))
        if unknown:
            raise DataError(f"{where}: classes {', '.join(unknown)} are not in the training "
                            "folder; the splits must share their classes")
        files = [f for c in m for f in m[c]]
        return ImageFiles(files, [index[c] for c in m for _ in m[c]], channels)

    if has_train:
        train = from_map(classes_map, root / "train")
        val = from_map(other["val"], root / "val") if "val" in other else None
        test_name = "test" if "test" in other else "val"
        if test_name not in other:
            raise DataError(f"{root}: has train/ but neither val/ nor test/ to evaluate on")
        test = from_map(other[test_name], root / test_name)
    else:
        full = from_map(classes_map, root)
        test_idx, val_idx, train_idx = split_indices(len(full), (0.2, 0.1), SPLIT_SEED)

        def pick(ix):
            return ImageFiles([full.files[i] for i in ix], full.labels[ix].tolist(), channels)
        train, val, test = pick(train_idx), pick(val_idx) if len(val_idx) else None, pick(test_idx)
        if len(train) == 0 or len(test) == 0:
            raise DataError(f"{root}: too few images to split into train and test")
    mean, std = IMAGENET_STATS
    if channels == 1:
        mean, std = (0.5,), (0.25,)
    return DataSplits(name="folder", train=train, val=val, test=test, classes=classes,
                      channels=channels, image_size=None, mean=mean, std=std,
                      source=str(root), hflip=channels == 3,
                      extra={"sizes": _size_range(sizes)})


def _size_range(sizes: list[tuple[int, int]]) -> str | None:
    """``"64x64"`` or ``"48x64 to 640x480"`` (width x height, smallest and largest area)."""
    if not sizes:
        return None
    lo, hi = min(sizes, key=lambda s: s[0] * s[1]), max(sizes, key=lambda s: s[0] * s[1])
    return f"{lo[0]}x{lo[1]}" if lo == hi and len(set(sizes)) == 1 else (
        f"{lo[0]}x{lo[1]} to {hi[0]}x{hi[1]}")
