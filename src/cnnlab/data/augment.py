"""Photo training recipes: random-resized crop, TrivialAugment Wide, RandAugment, random
erasing, mixup and cutmix, written with torch ops (no torchvision).

The definitions are torchvision's (``transforms.RandomResizedCrop``, ``RandomErasing``,
``autoaugment.TrivialAugmentWide`` / ``RandAugment`` and their tensor functions) and timm's
(``data/mixup.py``: mixup / cutmix with the cutmix lambda corrected for the clipped box,
``data/random_erasing.py``: per-pixel normal noise). Every random draw comes from a
``torch.Generator`` the caller seeds (an image: from the run's seed, the epoch and the image's
index; a batch: from the run's seed and the optimizer step), never from the global RNG, so
an epoch is the same whatever the worker count and after ``--resume``.

One training image goes through :class:`PhotoRecipe`, in torchvision's order:

1. random-resized crop of the stored image (any size) to the model's input size (bilinear,
   antialiased; an 8-bit image is cropped and resized as uint8, with torch's vectorised
   kernel, and converted to float only at the model's size), then a horizontal flip with
   probability 1/2;
2. the policy (``trivial`` or ``randaugment``) on the 8-bit image, as torchvision applies it
   to a PIL/uint8 image (nearest-neighbour geometry, black fill);
3. scaling to [0, 1] and normalisation;
4. random erasing (on the normalised image, as timm and torchvision place it).

Mixup / cutmix (:class:`MixCut`) act on a whole batch in the training step: the batch is mixed
with its reverse (timm's ``mode='batch'``) and the targets become the same mix of one-hot
labels (each row sums to 1); the loss is cross-entropy against those soft targets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UsageError
from .base import Prepared, TensorImages, _item_seed
from .transforms import convert_channels

POLICIES = ("rrc", "trivial", "randaugment")
CROP_SCALE = (0.08, 1.0)                 # torchvision / timm RandomResizedCrop defaults
CROP_RATIO = (3 / 4, 4 / 3)
ERASE_SCALE = (0.02, 1 / 3)              # timm RandomErasing (torchvision: 0.02-0.33)
ERASE_RATIO = (0.3, 1 / 0.3)
NUM_BINS = 31                            # magnitude bins of TrivialAugmentWide / RandAugment


def _uniform(lo: float, hi: float, g: torch.Generator | None) -> float:
    return float(torch.empty(1).uniform_(lo, hi, generator=g))


def _randint(lo: int, hi: int, g: torch.Generator | None) -> int:
    """An integer in [lo, hi) (torch.randint)."""
    return int(torch.randint(lo, hi, (1,), generator=g))


# --------------------------------------------------------------------------- random-resized crop

def rrc_params(height: int, width: int, scale: Sequence[float] = CROP_SCALE,
               ratio: Sequence[float] = CROP_RATIO, g: torch.Generator | None = None
               ) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a random-resized crop, torchvision's algorithm: up to ten draws
    of an area fraction (uniform in ``scale``) and an aspect ratio w/h (log-uniform in
    ``ratio``), the first box that fits placed uniformly; else a centre crop of the whole image
    clamped to the ratio range."""
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * _uniform(scale[0], scale[1], g)
        aspect = math.exp(_uniform(log_lo, log_hi, g))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = _randint(0, height - h + 1, g)
            left = _randint(0, width - w + 1, g)
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def resized_crop(x: torch.Tensor, box: tuple[int, int, int, int], size: tuple[int, int]
                 ) -> torch.Tensor:
    """Crop ``box`` = (top, left, h, w) of a C x H x W image (float or uint8) and resize it to
    ``size`` (bilinear, antialiased when shrinking)."""
    top, left, h, w = box
    crop = x[..., top:top + h, left:left + w]
    if (h, w) == tuple(size):
        return crop.contiguous()
    shrink = size[0] < h or size[1] < w
    return F.interpolate(crop.unsqueeze(0), size=tuple(size), mode="bilinear",
                         align_corners=False, antialias=shrink).squeeze(0)


# --------------------------------------------------------------------------- policy operations
# On uint8 C x H x W images (C = 1 or 3), with torchvision's tensor definitions.

def _blend(a: torch.Tensor, b: torch.Tensor, ratio: float) -> torch.Tensor:
    return (ratio * a.float() + (1.0 - ratio) * b.float()).clamp(0, 255).to(torch.uint8)


def _gray(img: torch.Tensor) -> torch.Tensor:
    """torchvision's rgb_to_grayscale of a uint8 image (0.2989 R + 0.587 G + 0.114 B, cut to
    uint8); a one-channel image as it is."""
    if img.shape[-3] == 1:
        return img.clone()
    r, g, b = img.float().unbind(-3)
    return (0.2989 * r + 0.587 * g + 0.114 * b).to(torch.uint8).unsqueeze(-3)


def _inverse_affine(center, angle, translate, shear) -> list[float]:
    """torchvision's ``_get_inverse_affine_matrix`` with scale 1: the output-to-input map of
    T * C * R(angle) * SHy * SHx * C^-1 (angles in degrees)."""
    rot, sx, sy = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
    cx, cy = center
    tx, ty = translate
    a = math.cos(rot - sy) / math.cos(sy)
    b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
    c = math.sin(rot - sy) / math.cos(sy)
    d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
    m = [d, -b, 0.0, -c, a, 0.0]
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty) + cx
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty) + cy
    return m


def _warp(img: torch.Tensor, matrix: list[float]) -> torch.Tensor:
    """Nearest-neighbour warp by an inverse affine ``matrix`` in centred pixel coordinates,
    black outside (torchvision's ``_gen_affine_grid`` + ``grid_sample``)."""
    h, w = img.shape[-2:]
    theta = torch.tensor(matrix, dtype=torch.float32).reshape(1, 2, 3)
    base = torch.empty(1, h, w, 3)
    base[..., 0].copy_(torch.linspace(-w * 0.5 + 0.5, w * 0.5 - 0.5, steps=w))
    base[..., 1].copy_(torch.linspace(-h * 0.5 + 0.5, h * 0.5 - 0.5, steps=h).unsqueeze(-1))
    base[..., 2].fill_(1)
    grid = base.view(1, h * w, 3).bmm(theta.transpose(1, 2) / torch.tensor([0.5 * w, 0.5 * h]))
    out = F.grid_sample(img.float().unsqueeze(0), grid.view(1, h, w, 2), mode="nearest",
                        padding_mode="zeros", align_corners=False)
    return out.squeeze(0).round().to(torch.uint8)


def shear_x(img, m):
    h, w = img.shape[-2:]  # torchvision shears about the top-left corner (center=[0, 0])
    return _warp(img, _inverse_affine((-w * 0.5, -h * 0.5), 0.0, (0.0, 0.0),
                                      (math.degrees(math.atan(m)), 0.0)))


def shear_y(img, m):
    h, w = img.shape[-2:]
    return _warp(img, _inverse_affine((-w * 0.5, -h * 0.5), 0.0, (0.0, 0.0),
                                      (0.0, math.degrees(math.atan(m)))))


def translate_x(img, m):
    return _warp(img, _inverse_affine((0.0, 0.0), 0.0, (float(int(m)), 0.0), (0.0, 0.0)))


def translate_y(img, m):
    return _warp(img, _inverse_affine((0.0, 0.0), 0.0, (0.0, float(int(m))), (0.0, 0.0)))


def rotate(img, m):
    """Counter-clockwise by ``m`` degrees about the centre (torchvision's rotate: -angle)."""
    return _warp(img, _inverse_affine((0.0, 0.0), -m, (0.0, 0.0), (0.0, 0.0)))


def brightness(img, m):
    return _blend(img, torch.zeros_like(img), 1.0 + m)


def color(img, m):
    return img if img.shape[-3] == 1 else _blend(img, _gray(img), 1.0 + m)


def contrast(img, m):
    mean = _gray(img).float().mean()
    return _blend(img, mean.expand_as(img), 1.0 + m)


def sharpness(img, m):
    h, w = img.shape[-2:]
    if h <= 2 or w <= 2:
        return img
    k = torch.ones(3, 3)
    k[1, 1] = 5.0
    k = (k / k.sum()).expand(img.shape[-3], 1, 3, 3)
    blurred = F.conv2d(img.float().unsqueeze(0), k, groups=img.shape[-3]).squeeze(0)
    degenerate = img.clone()
    degenerate[..., 1:-1, 1:-1] = blurred.round().to(torch.uint8)
    return _blend(img, degenerate, 1.0 + m)


def posterize(img, bits):
    mask = (0xFF << (8 - int(bits))) & 0xFF  # keep the top ``bits`` bits
    return img & mask


def solarize(img, threshold):
    return torch.where(img >= threshold, 255 - img, img)


def autocontrast(img, m=0.0):
    lo = img.amin(dim=(-2, -1), keepdim=True).float()
    hi = img.amax(dim=(-2, -1), keepdim=True).float()
    scale = 255.0 / (hi - lo)
    flat = ~torch.isfinite(scale)
    lo[flat], scale[flat] = 0.0, 1.0
    return ((img.float() - lo) * scale).clamp(0, 255).to(torch.uint8)


def _equalize_channel(ch: torch.Tensor) -> torch.Tensor:
    hist = torch.bincount(ch.reshape(-1).long(), minlength=256)
    nonzero = hist[hist != 0]
    step = torch.div(nonzero[:-1].sum(), 255, rounding_mode="floor")
    if step == 0:
        return ch
    lut = torch.div(torch.cumsum(hist, 0) + torch.div(step, 2, rounding_mode="floor"), step,
                    rounding_mode="floor")
    lut = F.pad(lut, [1, 0])[:-1].clamp(0, 255)
    return lut[ch.long()].to(torch.uint8)


def equalize(img, m=0.0):
    return torch.stack([_equalize_channel(c) for c in img])


def identity(img, m=0.0):
    return img


OPS = {"Identity": identity, "ShearX": shear_x, "ShearY": shear_y, "TranslateX": translate_x,
       "TranslateY": translate_y, "Rotate": rotate, "Brightness": brightness, "Color": color,
       "Contrast": contrast, "Sharpness": sharpness, "Posterize": posterize,
       "Solarize": solarize, "AutoContrast": autocontrast, "Equalize": equalize}


def trivial_wide_space(num_bins: int = NUM_BINS) -> dict[str, tuple[torch.Tensor, bool]]:
    """TrivialAugment Wide's operations: name -> (magnitude bins, signed), in torchvision's
    order (the op index drawn is a position in this order)."""
    lin = torch.linspace
    return {
        "Identity": (torch.tensor(0.0), False),
        "ShearX": (lin(0.0, 0.99, num_bins), True),
        "ShearY": (lin(0.0, 0.99, num_bins), True),
        "TranslateX": (lin(0.0, 32.0, num_bins), True),
        "TranslateY": (lin(0.0, 32.0, num_bins), True),
        "Rotate": (lin(0.0, 135.0, num_bins), True),
        "Brightness": (lin(0.0, 0.99, num_bins), True),
        "Color": (lin(0.0, 0.99, num_bins), True),
        "Contrast": (lin(0.0, 0.99, num_bins), True),
        "Sharpness": (lin(0.0, 0.99, num_bins), True),
        "Posterize": (8 - (torch.arange(num_bins) / ((num_bins - 1) / 6)).round().int(), False),
        "Solarize": (lin(255.0, 0.0, num_bins), False),
        "AutoContrast": (torch.tensor(0.0), False),
        "Equalize": (torch.tensor(0.0), False),
    }


def randaugment_space(num_bins: int, height: int, width: int
                      ) -> dict[str, tuple[torch.Tensor, bool]]:
    """RandAugment's operations (torchvision): as TrivialAugment Wide's names, narrower ranges,
    translations a fraction 150/331 of the image side."""
    lin = torch.linspace
    return {
        "Identity": (torch.tensor(0.0), False),
        "ShearX": (lin(0.0, 0.3, num_bins), True),
        "ShearY": (lin(0.0, 0.3, num_bins), True),
        "TranslateX": (lin(0.0, 150.0 / 331.0 * width, num_bins), True),
        "TranslateY": (lin(0.0, 150.0 / 331.0 * height, num_bins), True),
        "Rotate": (lin(0.0, 30.0, num_bins), True),
        "Brightness": (lin(0.0, 0.9, num_bins), True),
        "Color": (lin(0.0, 0.9, num_bins), True),
        "Contrast": (lin(0.0, 0.9, num_bins), True),
        "Sharpness": (lin(0.0, 0.9, num_bins), True),
        "Posterize": (8 - (torch.arange(num_bins) / ((num_bins - 1) / 4)).round().int(), False),
        "Solarize": (lin(255.0, 0.0, num_bins), False),
        "AutoContrast": (torch.tensor(0.0), False),
        "Equalize": (torch.tensor(0.0), False),
    }


class TrivialAugmentWide:
    """One operation drawn uniformly, a magnitude bin drawn uniformly, a random sign (uint8
    images; torchvision's draws in torchvision's order)."""

    def __init__(self, num_bins: int = NUM_BINS):
        self.num_bins = int(num_bins)
        self.space = trivial_wide_space(self.num_bins)
        self.names = list(self.space)

    def draw(self, img: torch.Tensor, g=None) -> tuple[str, float]:
        name = self.names[_randint(0, len(self.names), g)]
        mags, signed = self.space[name]
        m = float(mags[_randint(0, len(mags), g)]) if mags.ndim > 0 else 0.0
        if signed and _randint(0, 2, g):
            m = -m
        return name, m

    def __call__(self, img: torch.Tensor, g=None) -> torch.Tensor:
        name, m = self.draw(img, g)
        return OPS[name](img, m)

    def __repr__(self) -> str:
        return f"TrivialAugmentWide(num_bins={self.num_bins})"


class RandAugment:
    """``num_ops`` operations drawn uniformly (with repeats), each at bin ``magnitude`` of
    ``num_bins`` with a random sign (torchvision's defaults N=2, M=9, 31 bins)."""

    def __init__(self, num_ops: int = 2, magnitude: int = 9, num_bins: int = NUM_BINS):
        if num_ops < 0 or not 0 <= magnitude < num_bins:
            raise UsageError(f"RandAugment needs num_ops >= 0 and 0 <= magnitude < {num_bins}, "
                             f"got {num_ops} and {magnitude}")
        self.num_ops, self.magnitude, self.num_bins = int(num_ops), int(magnitude), int(num_bins)

    def draw(self, img: torch.Tensor, g=None) -> tuple[str, float]:
        space = randaugment_space(self.num_bins, *img.shape[-2:])
        names = list(space)
        name = names[_randint(0, len(names), g)]
        mags, signed = space[name]
        m = float(mags[self.magnitude]) if mags.ndim > 0 else 0.0
        if signed and _randint(0, 2, g):
            m = -m
        return name, m

    def __call__(self, img: torch.Tensor, g=None) -> torch.Tensor:
        for _ in range(self.num_ops):
            name, m = self.draw(img, g)
            img = OPS[name](img, m)
        return img

    def __repr__(self) -> str:
        return f"RandAugment(num_ops={self.num_ops}, magnitude={self.magnitude})"


# --------------------------------------------------------------------------- random erasing

class RandomErasing:
    """With probability ``p``, one rectangle of area fraction uniform in ``scale`` and aspect
    h/w log-uniform in ``ratio`` (ten tries to fit strictly inside), filled with per-pixel
    normal noise (timm's ``mode='pixel'``; ``value=0.0`` fills with zeros, torchvision's
    default). Works on a normalised C x H x W image."""

    def __init__(self, p: float = 0.5, scale: Sequence[float] = ERASE_SCALE,
                 ratio: Sequence[float] = ERASE_RATIO, value: float | None = None):
        if not 0.0 <= p <= 1.0:
            raise UsageError(f"random erasing probability must be in [0, 1], got {p}")
        self.p, self.scale, self.ratio, self.value = float(p), tuple(scale), tuple(ratio), value

    def params(self, c: int, h: int, w: int, g=None):
        """``(top, left, eh, ew)`` of the box, or None (no erasing this time)."""
        if float(torch.rand((), generator=g)) >= self.p:
            return None
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        for _ in range(10):
            target = h * w * _uniform(self.scale[0], self.scale[1], g)
            aspect = math.exp(_uniform(log_lo, log_hi, g))
            eh = int(round(math.sqrt(target * aspect)))
            ew = int(round(math.sqrt(target / aspect)))
            if eh < h and ew < w:
                return _randint(0, h - eh + 1, g), _randint(0, w - ew + 1, g), eh, ew
        return None

    def __call__(self, x: torch.Tensor, g=None) -> torch.Tensor:
        box = self.params(*x.shape[-3:], g=g)
        if box is None:
            return x
        top, left, eh, ew = box
        x = x.clone()
        if self.value is None:
            fill = torch.empty(x.shape[-3], eh, ew, dtype=x.dtype).normal_(generator=g)
        else:
            fill = torch.full((x.shape[-3], eh, ew), float(self.value), dtype=x.dtype)
        x[..., top:top + eh, left:left + ew] = fill
        return x

    def __repr__(self) -> str:
        return f"RandomErasing(p={self.p}, scale={self.scale}, ratio={self.ratio})"


# --------------------------------------------------------------------------- one image

class PhotoRecipe:
    """The training transform of a photo recipe (see the module doc): stored image (uint8 0..255
    or float 0..1, any size) -> normalised ``channels x size`` tensor."""

    def __init__(self, policy: str, channels: int, size: tuple[int, int],
                 mean: Sequence[float], std: Sequence[float],
                 scale: Sequence[float] = CROP_SCALE, ratio: Sequence[float] = CROP_RATIO,
                 hflip: bool = True, erase: float = 0.0, num_ops: int = 2, magnitude: int = 9):
        if policy not in POLICIES:
            raise UsageError(f"unknown photo recipe {policy!r}; choose one of "
                             f"{', '.join(POLICIES)}")
        check_range("crop scale", scale, upper=None)
        check_range("crop ratio", ratio, upper=None)
        self.policy, self.channels, self.size = policy, int(channels), tuple(size)
        self.mean, self.std = tuple(mean), tuple(std)
        self.scale, self.ratio, self.hflip = tuple(scale), tuple(ratio), bool(hflip)
        self.auto = (TrivialAugmentWide() if policy == "trivial" else
                     RandAugment(num_ops, magnitude) if policy == "randaugment" else None)
        self.erase = RandomErasing(erase) if erase > 0 else None
        self._mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        self._std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)

    active = True  # always random (Prepared keeps only active augmentations)

    def __call__(self, x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        top, left, h, w = rrc_params(x.shape[-2], x.shape[-1], self.scale, self.ratio, g)
        crop = x[..., top:top + h, left:left + w]
        u8 = f = None
        if crop.dtype == torch.uint8 and crop.shape[-3] in (1, self.channels):
            # 8-bit: resized as uint8 (torch's vectorised antialiased kernel, within one level
            # of 255 of the float resize and several times faster), converted once at the end
            u8 = resized_crop(crop, (0, 0, h, w), self.size)
            if u8.shape[-3] != self.channels:
                u8 = u8.expand(self.channels, -1, -1)
        else:
            f = crop.float() / 255.0 if crop.dtype == torch.uint8 else crop.float()
            f = resized_crop(convert_channels(f, self.channels), (0, 0, h, w), self.size)
        if self.hflip and float(torch.rand((), generator=g)) < 0.5:
            u8, f = (u8.flip(-1), None) if u8 is not None else (None, f.flip(-1))
        if self.auto is not None:
            if u8 is None:
                u8 = (f * 255.0).round().clamp(0, 255).to(torch.uint8)
            u8 = self.auto(u8, g)
        x = u8.float() / 255.0 if u8 is not None else f
        x = (x - self._mean) / self._std
        if self.erase is not None:
            x = self.erase(x, g)
        return x

    def describe(self) -> dict:
        """What config.json records of it."""
        d = {"recipe": self.policy, "crop_scale": list(self.scale),
             "crop_ratio": list(self.ratio), "hflip": self.hflip,
             "random_erase": self.erase.p if self.erase else 0.0}
        if isinstance(self.auto, RandAugment):
            d.update(num_ops=self.auto.num_ops, magnitude=self.auto.magnitude)
        return d

    def __repr__(self) -> str:
        return (f"PhotoRecipe({self.policy}, size={self.size}, scale={self.scale}, "
                f"ratio={self.ratio}, hflip={self.hflip}, auto={self.auto}, erase={self.erase})")


def check_range(what: str, r: Sequence[float], upper: float | None = None) -> None:
    """A (low, high) range with 0 < low <= high (<= upper): one line otherwise."""
    if len(r) != 2 or not all(math.isfinite(float(v)) for v in r):
        raise UsageError(f"{what} takes two numbers LOW HIGH, got {list(r)}")
    lo, hi = float(r[0]), float(r[1])
    if not 0 < lo <= hi or (upper is not None and hi > upper):
        bound = f" <= {upper}" if upper is not None else ""
        raise UsageError(f"{what} {lo:g}..{hi:g} is an empty range: give LOW HIGH with "
                         f"0 < LOW <= HIGH{bound}")


# --------------------------------------------------------------------------- one batch

def one_hot_mix(target: torch.Tensor, num_classes: int, lam: float) -> torch.Tensor:
    """``lam * onehot(y) + (1 - lam) * onehot(y reversed)``: each row sums to 1."""
    y1 = F.one_hot(target, num_classes).float()
    return y1 * lam + y1.flip(0) * (1.0 - lam)


def cutmix_box(h: int, w: int, lam: float, rng: np.random.Generator
               ) -> tuple[tuple[int, int, int, int], float]:
    """timm's ``rand_bbox`` + lambda correction: a box of sides ``sqrt(1 - lam)`` of the image
    centred uniformly, clipped to the image; lambda becomes 1 - (box area / image area)."""
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
    yl, yh = min(max(cy - ch // 2, 0), h), min(max(cy + ch // 2, 0), h)
    xl, xh = min(max(cx - cw // 2, 0), w), min(max(cx + cw // 2, 0), w)
    return (yl, yh, xl, xh), 1.0 - (yh - yl) * (xh - xl) / float(h * w)


class MixCut:
    """Mixup (``mixup`` alpha) and/or cutmix (``cutmix`` alpha) of a whole batch with its reverse
    (timm's ``Mixup(mode='batch', prob=1, switch_prob=0.5, correct_lam=True)``): lambda from
    Beta(alpha, alpha); with both on, cutmix is chosen with probability ``switch_prob``."""

    def __init__(self, mixup: float, cutmix: float, num_classes: int, switch_prob: float = 0.5):
        for name, a in (("mixup", mixup), ("cutmix", cutmix)):
            if not (math.isfinite(a) and a >= 0):
                raise UsageError(f"--{name} alpha must be a number >= 0 (0: off), got {a}")
        if mixup == 0 and cutmix == 0:
            raise UsageError("MixCut needs a mixup or cutmix alpha > 0")
        self.mixup, self.cutmix = float(mixup), float(cutmix)
        self.num_classes, self.switch_prob = int(num_classes), float(switch_prob)

    def params(self, rng: np.random.Generator) -> tuple[float, bool]:
        """``(lam, use_cutmix)`` of one batch."""
        if self.mixup > 0 and self.cutmix > 0:
            use_cut = bool(rng.random() < self.switch_prob)
        else:
            use_cut = self.cutmix > 0
        alpha = self.cutmix if use_cut else self.mixup
        return float(rng.beta(alpha, alpha)), use_cut

    def __call__(self, x: torch.Tensor, y: torch.Tensor, seed: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixed batch and its soft targets; ``seed`` fixes this batch's draws."""
        rng = np.random.default_rng(seed)
        lam, use_cut = self.params(rng)
        if use_cut:
            (yl, yh, xl, xh), lam = cutmix_box(x.shape[-2], x.shape[-1], lam, rng)
            x = x.clone()
            x[..., yl:yh, xl:xh] = x.flip(0)[..., yl:yh, xl:xh]
        else:
            x = x * lam + x.flip(0) * (1.0 - lam)
        return x, one_hot_mix(y, self.num_classes, lam).to(x.device)

    def __repr__(self) -> str:
        return f"MixCut(mixup={self.mixup}, cutmix={self.cutmix})"


def batch_seed(seed: int, step: int) -> int:
    """The seed of the mixup/cutmix draws of optimizer step ``step`` of a run."""
    return (seed * 1_000_003 + step * 7_919 + 0x5EED) % (2**63 - 1)


# --------------------------------------------------------------------------- the training split

def _fits_in_memory(nbytes: int) -> bool:
    """Half of the memory the system says is available (``/proc/meminfo``), else 2 GiB."""
    try:
        with open("/proc/meminfo") as f:
            avail = next(int(line.split()[1]) * 1024 for line in f
                         if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        avail = 4 * 2**30
    return nbytes <= avail // 2


class PhotoPrepared(Prepared):
    """The training split through a :class:`PhotoRecipe`: each item is its stored image (8-bit
    images as uint8, decoded once and kept when ``cache`` and they fit in memory), transformed
    with a generator seeded by (seed, epoch, index)."""

    def __init__(self, base, preprocess, recipe: PhotoRecipe, seed: int = 0,
                 cache: bool = False, progress: bool = False):
        self.base, self.preprocess, self.seed, self.epoch = base, preprocess, seed, 0
        self.augment, self._cache = recipe, None  # never the prepared-tensor path
        self.decoded: list[torch.Tensor] | None = None
        self.cache_note = ""
        if cache:
            self._decode_all(progress)

    def _stored(self, i: int) -> torch.Tensor:
        if self.decoded is not None:
            return self.decoded[i]
        if hasattr(self.base, "stored"):
            return self.base.stored(i)
        if isinstance(self.base, TensorImages):
            return self.base.images[i]
        return self.base[i][0]

    def _decode_all(self, progress: bool) -> None:
        import sys

        from tqdm import tqdm

        images, total = [], 0
        for i in tqdm(range(len(self.base)), desc="decoding images into memory", unit="img",
                      leave=False, disable=not progress, file=sys.stderr):
            x = self._stored(i)
            images.append(x)
            total += x.numel() * x.element_size()
            if i % 256 == 0 and not _fits_in_memory(total * len(self.base) // (i + 1)):
                self.cache_note = (f"--cache: the {len(self.base)} decoded training images "
                                   "would not fit in half the available memory; reading them "
                                   "from disk each epoch")
                return
        self.decoded = images
        self.cache_note = (f"--cache: {len(images)} decoded training images kept in memory "
                           f"({total / 2**20:.0f} MiB)")

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(_item_seed(self.seed, self.epoch, i))
        return self.augment(self._stored(i), g), int(self.base.labels[i])
