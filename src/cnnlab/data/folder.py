"""An image folder: one sub-folder per class.

Two layouts: ``ROOT/train/<class>/*.png`` with optional ``ROOT/val/`` and ``ROOT/test/`` (the
classes are those of ``train``; the other splits may not name classes it lacks), or
``ROOT/<class>/*.png`` alone, split by a fixed seeded 70 / 10 / 20 %. Hidden files and folders
are ignored. Images are read lazily with Pillow and converted to RGB (or kept grayscale when
every sampled image is grayscale); a file Pillow cannot read raises DataError naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .base import DataSplits, split_indices

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
# ImageNet statistics: the usual choice for photographs when the folder's own are unknown.
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
SPLIT_SEED = 0


def load_image(path: str | Path, channels: int) -> torch.Tensor:
    """A C x H x W float tensor in [0, 1] from an image file (``channels`` 1 or 3)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read this image ({err})") from None
    t = torch.from_numpy(arr.copy())
    t = t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1)
    return t.float() / 255.0


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def scan_classes(root: Path) -> dict[str, list[Path]]:
    classes = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir() and _visible(p)):
        files = sorted(f for f in d.rglob("*") if f.is_file() and f.suffix.lower() in EXTENSIONS
                       and all(_visible(part) for part in f.relative_to(root).parents
                               if part != Path(".")) and _visible(f))
        if files:
            classes[d.name] = files
    return classes


class ImageFiles(Dataset):
    def __init__(self, files: list[Path], labels: list[int], channels: int):
        self.files, self.labels, self.channels = files, torch.tensor(labels).long(), channels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        return load_image(self.files[i], self.channels), int(self.labels[i])


def _is_gray(path: Path) -> bool:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.mode in ("1", "L", "I", "I;16", "F")
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{path}: cannot read this image ({err})") from None


def is_image_folder(root: Path) -> bool:
    return root.is_dir() and bool(scan_classes(root / "train" if (root / "train").is_dir()
                                               else root))


def load_folder(root: str | Path) -> DataSplits:
    root = Path(root)
    has_train = (root / "train").is_dir()
    classes_map = scan_classes(root / "train" if has_train else root)
    if not classes_map:
        raise DataError(f"{root}: no class sub-folders with images "
                        f"({', '.join(sorted(EXTENSIONS))})")
    if len(classes_map) < 2:
        raise DataError(f"{root}: only one class ({next(iter(classes_map))}); "
                        "need a sub-folder per class")
    classes = list(classes_map)
    index = {c: i for i, c in enumerate(classes)}
    sample = [fs[0] for fs in classes_map.values()]
    channels = 1 if all(_is_gray(p) for p in sample) else 3

    def from_map(m: dict[str, list[Path]], where: Path) -> ImageFiles:
        unknown = sorted(set(m) - set(index))
        if unknown:
            raise DataError(f"{where}: classes {', '.join(unknown)} are not in the training "
                            "folder; the splits must share their classes")
        files = [f for c in m for f in m[c]]
        return ImageFiles(files, [index[c] for c in m for _ in m[c]], channels)

    if has_train:
        train = from_map(classes_map, root / "train")
        val_dir = root / "val"
        val = from_map(scan_classes(val_dir), val_dir) if val_dir.is_dir() else None
        test_dir = root / "test" if (root / "test").is_dir() else root / "val"
        if not test_dir.is_dir():
            raise DataError(f"{root}: has train/ but neither val/ nor test/ to evaluate on")
        test = from_map(scan_classes(test_dir), test_dir)
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
                      source=str(root), hflip=channels == 3)
