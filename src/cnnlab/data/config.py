"""Evaluation data configurations: how images are prepared for a model's published weights.

Each family file declares, beside a model's registration, the evaluation transform its
published weights were measured with (as timm keeps a pretrained cfg next to each model and
torchvision a ``transforms`` preset on each weights enum): the input (crop) size, the size the
shorter side is resized to first, the interpolation, the normalisation and the number of classes
of the weights. The values are torchvision's first (V1) weights where torchvision publishes the
architecture, else timm's default pretrained cfg (``resize = floor(crop / crop_pct)``, as timm's
``transforms_imagenet_eval`` computes it). :func:`data_config` reads a model's; models without
published weights get :func:`default_config`.

The rule, applied by :class:`cnnlab.data.transforms.Preprocess`: resize the shorter side to
``resize`` (antialiased), crop the centre ``input_size``, normalise. ``resize=None`` resizes
straight to the input size (digits, MNIST and CIFAR images, already about the model's size).

Nothing here imports torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from ..errors import DataError
from ..registry import get_entry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
DEFAULT_CROP_PCT = 0.875   # timm's default, and torchvision's 224/256
SMALL_INPUT = 64           # at or below this native size no resize-then-crop (digits, CIFAR)


class DataConfigError(DataError):
    """A data configuration (or an override of it) that cannot be applied."""


@dataclass(frozen=True)
class DataConfig:
    """The evaluation transform and class count of a model's published weights.

    ``input_size`` is (C, H, W) of the crop the model sees; ``resize`` the length the shorter
    side is resized to before the centre crop (``None``: resize straight to ``input_size``);
    ``num_classes`` the classes of the published weights (``None``: no weights published);
    ``source`` says where the values come from.
    """

    input_size: tuple[int, int, int]
    resize: int | None = None
    interpolation: str = "bilinear"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    num_classes: int | None = 1000
    source: str = ""

    def __post_init__(self):
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        check_transform(self.resize, self.input_size[1:], self.interpolation)

    @property
    def crop(self) -> tuple[int, int]:
        return self.input_size[1], self.input_size[2]

    @property
    def crop_pct(self) -> float | None:
        """Crop over resize (timm's ``crop_pct``); ``None`` without a resize."""
        return None if self.resize is None else min(self.crop) / self.resize

    def override(self, resize: int | None = None, crop: int | None = None,
                 interpolation: str | None = None, mean=None, std=None,
                 input_size: tuple[int, int, int] | None = None) -> DataConfig:
        """This configuration with the given values replaced (``--resize``, ``--crop``,
        ``--interpolation``, ``--mean``, ``--std``, ``--input-size``). A new crop without a new
        resize keeps the crop fraction: ``--crop 288`` on 256/224 resizes to 329."""
        c, h, w = input_size or self.input_size
        if crop is not None:
            if crop < 1:
                raise DataConfigError(f"--crop must be at least 1, got {crop}")
            h = w = int(crop)
        new_resize = self.resize
        if resize is not None:
            if resize < 1:
                raise DataConfigError(f"--resize must be at least 1, got {resize}")
            new_resize = int(resize)
        elif self.resize is not None and (h, w) != self.crop:
            new_resize = math.floor(min(h, w) / self.crop_pct)
        return replace(self, input_size=(c, h, w), resize=new_resize,
                       interpolation=interpolation or self.interpolation,
                       mean=tuple(mean) if mean else self.mean,
                       std=tuple(std) if std else self.std)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_size"], d["mean"], d["std"] = (list(self.input_size), list(self.mean),
                                                list(self.std))
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DataConfig:
        keys = ("input_size", "resize", "interpolation", "mean", "std", "num_classes", "source")
        return cls(**{k: d[k] for k in keys if k in d})

    def describe(self) -> str:
        """One line: ``resize 256 (shorter side, bilinear, antialiased), centre crop 224x224,
        mean ..., std ...``."""
        h, w = self.crop
        if self.resize is None:
            how = f"resize to {h}x{w} ({self.interpolation})"
        else:
            how = (f"resize {self.resize} (shorter side, {self.interpolation}, antialiased), "
                   f"centre crop {h}x{w}")
        return f"{how}, mean {_fmt(self.mean)}, std {_fmt(self.std)}"


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def check_transform(resize: int | None, crop: tuple[int, int], interpolation: str) -> None:
    """Refuse a crop larger than the resize and an unknown interpolation, one line each."""
    if interpolation not in INTERPOLATIONS:
        raise DataConfigError(f"unknown interpolation {interpolation!r}; choose one of "
                              f"{', '.join(INTERPOLATIONS)}")
    if resize is not None and max(crop) > resize:
        raise DataConfigError(
            f"the crop {crop[0]}x{crop[1]} is larger than the resize {resize} (the shorter side "
            f"after resizing): give --resize {max(crop)} or more, or a smaller --crop")


def torchvision_weights(resize: int, crop: int, interpolation: str = "bilinear",
                        weights: str = "IMAGENET1K_V1") -> DataConfig:
    """The transform of torchvision weights (``<Model>_Weights.<weights>.transforms()``)."""
    return DataConfig((3, crop, crop), resize, interpolation, IMAGENET_MEAN, IMAGENET_STD,
                      1000, f"torchvision {weights}")


def timm_weights(tag: str, crop: int, crop_pct: float, interpolation: str = "bicubic",
                 mean=IMAGENET_MEAN, std=IMAGENET_STD) -> DataConfig:
    """The transform of timm's pretrained cfg ``tag``: resize ``floor(crop / crop_pct)``."""
    return DataConfig((3, crop, crop), math.floor(crop / crop_pct), interpolation, mean, std,
                      1000, f"timm {tag}")


def default_config(input_size: tuple[int, int, int]) -> DataConfig:
    """A model without published weights: ImageNet statistics at its native size, resized
    first by timm's default crop fraction (0.875) when the input is photo-sized, straight to
    the input size when it is digits/MNIST/CIFAR-sized (64 pixels or less)."""
    c, h, w = input_size
    if min(h, w) <= SMALL_INPUT:
        return DataConfig((c, h, w), None, "bilinear", IMAGENET_MEAN, IMAGENET_STD, None,
                          "default (no published weights; small input: no resize-and-crop)")
    return DataConfig((c, h, w), math.floor(min(h, w) / DEFAULT_CROP_PCT), "bilinear",
                      IMAGENET_MEAN, IMAGENET_STD, None,
                      "default (no published weights; crop fraction 0.875)")


def from_run_config(config: dict) -> DataConfig:
    """The data configuration a cnnlab run's ``config.json`` records: ``input_size``, ``mean``,
    ``std``, and its ``data_config`` (``resize``, ``interpolation``) where it has one (runs on
    digits, MNIST, CIFAR have none: resized straight to the input size)."""
    dc = config.get("data_config") or {}
    return DataConfig(tuple(config["input_size"]), dc.get("resize"),
                      dc.get("interpolation", "bilinear"), tuple(config["mean"]),
                      tuple(config["std"]), len(config.get("classes") or []) or None,
                      "cnnlab run (config.json)")


def photo_transform(name: str, data, size: tuple[int, int]) -> dict:
    """``Preprocess`` arguments for training or fine-tuning model ``name`` on ``data`` at
    ``size``: for a folder of photos (sizes vary) at a photo-sized input, the evaluation
    transform of the model's weights scaled to ``size`` (same crop fraction and
    interpolation); else ``{}`` (resize straight to ``size``)."""
    if getattr(data, "image_size", None) is not None or min(size) <= SMALL_INPUT:
        return {}
    dc = data_config(name)
    pct = dc.crop_pct or DEFAULT_CROP_PCT
    return {"resize": math.floor(min(size) / pct), "interpolation": dc.interpolation}


def data_config(name: str) -> DataConfig:
    """The evaluation data configuration of the registered model ``name``: its published
    weights' (declared in its family file) or :func:`default_config` of its native size."""
    entry = get_entry(name)
    return entry.data_config or default_config(entry.input_size)


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "INTERPOLATIONS", "DataConfig", "DataConfigError",
           "check_transform", "data_config", "default_config", "from_run_config",
           "photo_transform", "timm_weights", "torchvision_weights"]
