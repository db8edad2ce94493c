"""Data sets in memory or on disk, and the wrapper that prepares them for a model.

Every loader returns a :class:`DataSplits`: train / validation / test data sets whose items
are ``(image, label)`` with the image a float tensor in [0, 1] of the data set's own channels
and size, plus the class names and the per-channel statistics used for normalisation.
:class:`Prepared` then applies the model's :class:`~cnnlab.data.transforms.Preprocess` (and,
for training, :class:`~cnnlab.data.transforms.Augment`). Its random augmentation is seeded by
(seed, epoch, index), so an epoch looks the same whatever the number of worker processes and
whether or not the run was interrupted and resumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.utils.data import Dataset

from ..errors import DataError, InputShapeError, UsageError
from .transforms import Augment, Preprocess

# Above this many bytes of prepared images, preprocessing runs per item instead of once.
CACHE_LIMIT_BYTES = 256 * 2**20


class TensorImages(Dataset):
    """Images held in one tensor (N x C x H x W, uint8 0..255 or float 0..1) with labels."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        if images.dim() != 4:
            raise InputShapeError(f"images must be N x C x H x W, got shape {tuple(images.shape)}")
        if len(images) != len(labels):
            raise UsageError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels.long()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        x = self.images[i]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return x, int(self.labels[i])

    def subset(self, index: torch.Tensor) -> TensorImages:
        return TensorImages(self.images[index], self.labels[index])

    def batch(self, start: int, stop: int) -> torch.Tensor:
        x = self.images[start:stop]
        return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


@dataclass
class DataSplits:
    """The three splits of a data set and what a trainer needs to know about them."""

    name: str                                # "digits", "mnist", "cifar10", "folder" ...
    train: Dataset
    val: Dataset | None
    test: Dataset
    classes: list[str]
    channels: int                            # channels of the stored images
    image_size: tuple[int, int] | None       # H, W of the stored images (None: they vary)
    mean: tuple[float, ...]                  # per stored channel, of the training images
    std: tuple[float, ...]
    source: str = ""                         # the path (or "digits", "synthetic:...")
    crop_padding: int = 0                    # default augmentation for this data set
    hflip: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str) -> Dataset:
        ds = {"train": self.train, "val": self.val, "test": self.test}.get(name)
        if ds is None:
            raise DataError(f"{self.source or self.name} has no {name!r} split")
        return ds


def split_indices(n: int, fractions: tuple[float, ...], seed: int) -> list[torch.Tensor]:
    """A fixed, seeded partition of ``range(n)``: parts of the given fractions, rest last."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    parts, start = [], 0
    for f in fractions:
        k = int(round(n * f))
        parts.append(perm[start:start + k].sort().values)
        start += k
    parts.append(perm[start:].sort().values)
    return parts


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of an N x C x H x W tensor (uint8 scaled to [0, 1])."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    x = x.transpose(0, 1).reshape(x.shape[1], -1)
    return (tuple(x.mean(1).tolist()), tuple(x.std(1).clamp_min(1e-6).tolist()))


def _item_seed(seed: int, epoch: int, index: int) -> int:
    return ((seed * 1_000_003 + epoch) * 10_000_019 + index) % (2**63 - 1)


class Prepared(Dataset):
    """``base`` with the model's preprocessing and (optionally) seeded augmentation."""

    def __init__(self, base: Dataset, preprocess: Preprocess, augment: Augment | None = None,
                 seed: int = 0):
        self.base, self.preprocess, self.seed, self.epoch = base, preprocess, seed, 0
        self.augment = augment if augment is not None and augment.active else None
        self._cache: torch.Tensor | None = None
        if isinstance(base, TensorImages):
            c = preprocess.channels
            h, w = preprocess.size
            if len(base) * c * h * w * 4 <= CACHE_LIMIT_BYTES:
                chunks = [preprocess(base.batch(i, i + 1024)) for i in range(0, len(base), 1024)]
                self._cache = torch.cat(chunks) if chunks else torch.empty(0, c, h, w)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.base)

    @property
    def in_memory(self) -> bool:
        """Are the prepared images held as one tensor (so :meth:`batch` indexes it)?"""
        return self._cache is not None

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and labels of ``indices``, the same tensors as ``default_collate`` of the
        items. In memory, one indexing of the cached tensor (augmentation, seeded per image,
        still runs per image)."""
        if self._cache is None or self.augment is not None:
            items = [self[i] for i in indices]
            return (torch.stack([x for x, _ in items]),
                    torch.tensor([y for _, y in items], dtype=torch.long))
        idx = torch.tensor(indices, dtype=torch.long)
        return self._cache[idx], torch.as_tensor(self.base.labels)[idx]

    def __getitem__(self, i: int):
        if self._cache is not None:
            x, y = self._cache[i], int(self.base.labels[i])
        else:
            x, y = self.base[i]
            x = self.preprocess(x)
        if self.augment is not None:
            g = torch.Generator().manual_seed(_item_seed(self.seed, self.epoch, i))
            x = self.augment(x, g)
        return x, y


def labels_of(ds: Dataset) -> torch.Tensor:
    """All labels of a data set, without loading its images where possible."""
    if isinstance(ds, Prepared):
        return labels_of(ds.base)
    if hasattr(ds, "labels"):
        return torch.as_tensor(ds.labels).long()
    return torch.tensor([int(ds[i][1]) for i in range(len(ds))])

