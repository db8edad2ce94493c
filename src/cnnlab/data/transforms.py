"""Image transforms written with torch tensor ops (no torchvision).

Images are float tensors in [0, 1], ``C x H x W`` (or a batch ``N x C x H x W``). Two stages:

* :class:`Preprocess` is deterministic and turns any data set's images into what a model
  takes: channel conversion (grayscale <-> RGB), resizing, normalisation. It is the same in
  training, evaluation and prediction, and the run's ``config.json`` records it
  (``input_size``, ``mean``, ``std``, ``resize``, ``data_config``), so that any tool can
  rebuild it. With ``resize=N`` it is the evaluation transform of published ImageNet weights
  (:mod:`cnnlab.data.config`): the shorter side resized to N (antialiased), the centre cropped
  to the input size, then normalised, equal to torchvision's ``ImageClassification`` preset
  (tensor path) to within 1/255 per pixel before normalisation
  (``tests/test_eval_transform.py``). Without it (digits, MNIST, CIFAR: images already about
  the model's size) the image is resized straight to the input size.
* :class:`Augment` is random (training only): a random crop with zero padding (the padding is
  black in the original image, so it is ``-mean/std`` after normalisation) and a horizontal
  flip. Its randomness comes from a generator the caller seeds, never from the global RNG.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..errors import DataError, UsageError

# ITU-R BT.601 luma weights, as PIL's convert("L") uses.
LUMA = (0.299, 0.587, 0.114)


def convert_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Grayscale -> RGB (repeat) or RGB -> grayscale (luma); other conversions are refused."""
    c = x.shape[-3]
    if c == channels:
        return x
    if c == 1:
        return x.expand(*x.shape[:-3], channels, *x.shape[-2:]).contiguous()
    if c == 3 and channels == 1:
        w = x.new_tensor(LUMA).view(3, 1, 1)
        return (x * w).sum(dim=-3, keepdim=True)
    raise DataError(f"cannot convert {c}-channel images to {channels} channels "
                    "(only grayscale <-> RGB); build the model with in_chans={c}")


def stats_for_channels(mean: Sequence[float], std: Sequence[float], channels: int
                       ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std after :func:`convert_channels` (RGB -> gray: luma-weighted)."""
    mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    if len(mean) == channels:
        return mean, std
    if len(mean) == 1:
        return mean * channels, std * channels
    if len(mean) == 3 and channels == 1:
        gray_mean = sum(w * m for w, m in zip(LUMA, mean, strict=True))
        gray_std = sum(w * s for w, s in zip(LUMA, std, strict=True))
        return (gray_mean,), (gray_std,)
    raise DataError(f"cannot convert statistics of {len(mean)} channels to {channels}")


def resize(x: torch.Tensor, size: tuple[int, int], interpolation: str = "bilinear",
           antialias: bool | None = None) -> torch.Tensor:
    """Resize to ``size`` (H, W); ``antialias`` (default: when shrinking) filters first, as
    PIL and torchvision's ``antialias=True`` do. Bicubic results are clamped to [0, 1]."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    batched = x.dim() == 4
    xb = x if batched else x.unsqueeze(0)
    if antialias is None:
        antialias = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    if interpolation == "nearest":
        out = F.interpolate(xb, size=tuple(size), mode="nearest")
    else:
        out = F.interpolate(xb, size=tuple(size), mode=interpolation, align_corners=False,
                            antialias=antialias)
        if interpolation == "bicubic":
            out = out.clamp(0.0, 1.0)
    return out if batched else out.squeeze(0)


def shorter_side_size(h: int, w: int, size: int) -> tuple[int, int]:
    """(H, W) with the shorter side ``size`` and the aspect ratio kept: the longer side is
    ``int(size * long / short)`` (truncated, as torchvision's ``Resize(int)`` computes it)."""
    if h <= w:
        return size, int(size * w / h)
    return int(size * h / w), size


def resize_shorter(x: torch.Tensor, size: int, interpolation: str = "bilinear") -> torch.Tensor:
    """Resize so that the shorter side is ``size`` (antialiased), keeping the aspect ratio."""
    return resize(x, shorter_side_size(*x.shape[-2:], size), interpolation, antialias=True)


def pad_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero-pad (black, before normalisation) to ``size``, the image centred: how LeCun et al.
    (1998) fed MNIST's 28x28 field to LeNet-5's 32x32 input (2 pixels each side). The digit
    keeps its size in pixels; an image larger than ``size`` is refused."""
    h, w = x.shape[-2:]
    th, tw = size
    if th < h or tw < w:
        raise UsageError(f"cannot pad a {h}x{w} image to the smaller {th}x{tw}")
    top, left = (th - h) // 2, (tw - w) // 2
    return F.pad(x, (left, tw - w - left, top, th - h - top))


def center_crop(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The centre ``size`` (H, W) of ``x``, with torchvision's offsets
    (``round((h - crop_h) / 2)``, Python's rounding); an image smaller than the crop is first
    padded with zeros (half on each side, the odd pixel after), as torchvision does."""
    h, w = x.shape[-2:]
    th, tw = size
    if th > h or tw > w:
        top, left = max(th - h, 0) // 2, max(tw - w, 0) // 2
        out = x.new_zeros(*x.shape[:-2], max(h, th), max(w, tw))
        out[..., top:top + h, left:left + w] = x
        x, (h, w) = out, out.shape[-2:]
    top, left = int(round((h - th) / 2.0)), int(round((w - tw) / 2.0))
    return x[..., top:top + th, left:left + tw]


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    m = x.new_tensor(mean).view(-1, 1, 1)
    s = x.new_tensor(std).view(-1, 1, 1)
    return (x - m) / s


def pad(x: torch.Tensor, padding: int, fill: Sequence[float] | float = 0.0) -> torch.Tensor:
    """Pad H and W by ``padding`` on each side with a per-channel constant ``fill``."""
    if padding == 0:
        return x
    c, h, w = x.shape[-3:]
    out = x.new_empty(*x.shape[:-2], h + 2 * padding, w + 2 * padding)
    out[...] = torch.as_tensor(fill, dtype=x.dtype).reshape(-1, 1, 1)
    out[..., padding:padding + h, padding:padding + w] = x
    return out


def random_crop(x: torch.Tensor, size: tuple[int, int], padding: int = 0,
                fill: Sequence[float] | float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Pad by ``padding``, then crop ``size`` at a random position (one image, C x H x W)."""
    x = pad(x, padding, fill)
    h, w = x.shape[-2:]
    th, tw = size
    top = int(torch.randint(0, h - th + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - tw + 1, (1,), generator=generator))
    return x[..., top:top + th, left:left + tw]


def hflip(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


# The ranges of the planar affine distortions (LeCun et al. 1998, section III.C, list the kinds
# but not the ranges; these are cnnlab's choice, in the spirit of the paper's Fig. 7).
DISTORT_SHIFT, DISTORT_SCALE, DISTORT_SQUEEZE, DISTORT_SHEAR = 0.1, 0.1, 0.1, 0.2


def random_distortion(x: torch.Tensor, fill: Sequence[float] | float = 0.0,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """The paper's random planar affine distortions of one image (C x H x W): horizontal and
    vertical translation (up to ``DISTORT_SHIFT`` of the size), scaling (x ``1 +- 0.1``),
    squeezing (width x ``q``, height / ``q``, ``q`` in ``1 +- 0.1``) and horizontal shearing
    (``x += 0.2 y`` at most), drawn uniformly from ``generator``; bilinear sampling, the
    uncovered border filled with ``fill`` (the background)."""
    u = torch.rand(5, generator=generator) * 2 - 1  # five draws in [-1, 1]
    scale = 1 + DISTORT_SCALE * float(u[0])
    squeeze = 1 + DISTORT_SQUEEZE * float(u[1])
    shear = DISTORT_SHEAR * float(u[2])
    tx, ty = 2 * DISTORT_SHIFT * float(u[3]), 2 * DISTORT_SHIFT * float(u[4])
    # The output->input map of affine_grid, in [-1, 1] coordinates: the inverse of
    # (scale, squeeze, shear, shift) applied to the digit.
    fwd = torch.tensor([[scale * squeeze, scale * squeeze * shear, tx],
                        [0.0, scale / squeeze, ty], [0.0, 0.0, 1.0]], dtype=torch.float64)
    theta = torch.linalg.inv(fwd)[:2].to(x.dtype).unsqueeze(0)
    grid = F.affine_grid(theta, [1, *x.shape[-3:]], align_corners=False)
    f = torch.as_tensor(fill, dtype=x.dtype).reshape(-1, 1, 1)
    out = F.grid_sample((x - f).unsqueeze(0), grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return out.squeeze(0) + f


class Preprocess:
    """Channels, size and normalisation: what a model needs from any data set's images.

    ``resize=None``: resize straight to ``size`` (bilinear, antialiased when shrinking).
    ``resize=N``: the evaluation transform: shorter side to N with ``interpolation``
    (antialiased), centre crop ``size``; a crop larger than N is refused.
    """

    def __init__(self, channels: int, size: tuple[int, int], mean: Sequence[float],
                 std: Sequence[float], resize: int | None = None,
                 interpolation: str = "bilinear", pad_from: Sequence[int] | None = None):
        from .config import check_transform

        self.channels, self.size = int(channels), (int(size[0]), int(size[1]))
        # Images of exactly this H x W are padded (pad_to), not resized: LeNet-5's 28x28
        # MNIST field in its 32x32 input. Other sizes are resized as usual.
        self.pad_from = (int(pad_from[0]), int(pad_from[1])) if pad_from else None
        if self.pad_from and (self.pad_from[0] > self.size[0] or self.pad_from[1] > self.size[1]):
            raise UsageError(f"cannot pad {self.pad_from} images to the smaller {self.size}")
        self.mean, self.std = stats_for_channels(mean, std, self.channels)
        if any(s <= 0 for s in self.std):
            raise UsageError(f"std must be positive, got {self.std}")
        self.resize = None if resize is None else int(resize)
        self.interpolation = interpolation
        check_transform(self.resize, self.size, interpolation)

    @classmethod
    def from_config(cls, config, channels: int | None = None,
                    pad_from: Sequence[int] | None = None) -> Preprocess:
        """The transform a :class:`~cnnlab.data.config.DataConfig` describes (its channels,
        or ``channels``; ``pad_from`` as in the constructor)."""
        c, h, w = config.input_size
        return cls(channels or c, (h, w), config.mean, config.std, config.resize,
                   config.interpolation, pad_from)

    def geometry(self, x: torch.Tensor) -> torch.Tensor:
        """Channels and size only, values still in [0, 1] (what the model sees, for display)."""
        x = convert_channels(x.float(), self.channels)
        if self.pad_from is not None and tuple(x.shape[-2:]) == self.pad_from:
            return pad_to(x, self.size)
        if self.resize is None:
            return resize(x, self.size, self.interpolation)
        return center_crop(resize_shorter(x, self.resize, self.interpolation), self.size)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return normalize(self.geometry(x), self.mean, self.std)

    def __repr__(self) -> str:
        extra = (f", resize={self.resize}, interpolation={self.interpolation!r}"
                 if self.resize is not None else "")
        pad = f", pad_from={self.pad_from}" if self.pad_from else ""
        return (f"Preprocess(channels={self.channels}, size={self.size}, mean={self.mean}, "
                f"std={self.std}{extra}{pad})")


class Augment:
    """Random crop with padding and horizontal flip, on normalised images (training only)."""

    def __init__(self, crop_padding: int = 0, hflip: bool = False,
                 fill: Sequence[float] | float = 0.0, distort: bool = False):
        if crop_padding < 0:
            raise UsageError(f"crop padding must be >= 0, got {crop_padding}")
        self.crop_padding, self.hflip, self.fill = int(crop_padding), bool(hflip), fill
        self.distort = bool(distort)  # random_distortion: LeCun et al. 1998's affine ones

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.hflip or self.distort

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.distort:
            x = random_distortion(x, self.fill, generator)
        if self.crop_padding:
            x = random_crop(x, tuple(x.shape[-2:]), self.crop_padding, self.fill, generator)
        if self.hflip and bool(torch.rand((), generator=generator) < 0.5):
            x = hflip(x)
        return x

    def __repr__(self) -> str:
        distort = ", distort=True" if self.distort else ""
        return f"Augment(crop_padding={self.crop_padding}, hflip={self.hflip}{distort})"
