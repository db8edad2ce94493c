"""Reading image files: one function for training, ``predict``, ``filter`` and ``visualize``.

Every mode Pillow opens becomes float intensities in [0, 1], scaled by the range of the mode's
own storage (never clipped to 8 bits):

=========================  ==============================================================
mode                       rule
=========================  ==============================================================
``1``                      black 0, white 1
``L``, ``P``, ``RGB``,     8-bit: value / 255. A palette image (``P``, ``PA``) is looked up
``CMYK``, ``YCbCr`` ...    in its palette; CMYK and the other colour spaces are converted to
                           RGB by Pillow first.
``LA``, ``RGBA``, ``PA``   the alpha channel is dropped: the colour channels are used as they
                           are stored, not composited over a background.
``I;16``, ``I;16B`` ...    16-bit: value / 65535 (so a 16-bit twin of an 8-bit image, value *
                           257, gives exactly the same floats).
``I`` (32-bit signed)      Pillow opens 16-bit PGM/PPM files (and some TIFFs) as ``I``: when
                           every value is in 0..65535 the image is taken as 16-bit data,
                           value / 65535; otherwise it is scaled by the whole int32 range,
                           (value + 2^31) / (2^32 - 1).
``F`` (32-bit float)       taken as intensities already: used as they are, not rescaled and
                           not clipped (values outside [0, 1] stay outside); NaN or infinity
                           is refused.
=========================  ==============================================================

Channels: ``channels=1`` turns colour into gray with Pillow's luma (ITU-R 601-2, 0.299 R +
0.587 G + 0.114 B, exactly as ``Image.convert("L")`` for 8-bit images); ``channels=3``
repeats a gray image three times; ``None`` keeps gray images gray and colour images RGB. A
multi-frame file (GIF, TIFF) gives its first frame.

Size limit: an image of more pixels than the limit is refused before it is decoded (Pillow's
decompression-bomb protection: a small file can declare a huge image). The limit is Pillow's,
``2 * PIL.Image.MAX_IMAGE_PIXELS`` (178,956,970 pixels, e.g. 13,377 x 13,377), unless the
environment variable ``CNNLAB_MAX_IMAGE_PIXELS`` sets another (a number of pixels, or ``0`` /
``none`` for no limit). Images of more than half the limit are read with one warning line.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import DataError, ImageTooLargeError, UsageError

MAX_PIXELS_ENV = "CNNLAB_MAX_IMAGE_PIXELS"
#: Modes that hold one intensity channel (plus maybe alpha): read as grayscale.
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def max_image_pixels() -> int | None:
    """The largest image (in pixels) that is read; None: no limit (see the module doc)."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "").replace(",", "")
    if text:
        if text.lower() in ("0", "none"):
            return None
        try:
            value = int(float(text))
        except (ValueError, OverflowError):  # inf is not a number of pixels either
            raise DataError(f"{MAX_PIXELS_ENV}={os.environ[MAX_PIXELS_ENV]!r} is not a number of "
                            "pixels; set it to e.g. 400000000, or 0 for no limit") from None
        if value < 0:
            raise DataError(f"{MAX_PIXELS_ENV}={os.environ[MAX_PIXELS_ENV]!r} is not a number of "
                            "pixels; set it to a positive number, e.g. 400000000, or 0 for no "
                            "limit")
        return value if value > 0 else None
    from PIL import Image

    return None if Image.MAX_IMAGE_PIXELS is None else 2 * int(Image.MAX_IMAGE_PIXELS)


def _warn(message: str) -> None:
    print(f"cnnlab: warning: {message}", file=sys.stderr)


_FROM_ENV = object()  # check_size's default limit: max_image_pixels()


def check_size(path: str | Path, size: tuple[int, int], warn: bool = True,
               limit=_FROM_ENV) -> None:
    """Refuse (ImageTooLargeError) an image over ``limit`` pixels (default:
    :func:`max_image_pixels`; None: no limit); print a warning line above half of it."""
    if limit is _FROM_ENV:
        limit = max_image_pixels()
    if limit is None:
        return
    w, h = size
    if w * h > limit:
        err = ImageTooLargeError(
            f"{path}: {w}x{h} = {w * h:,} pixels is over the limit of {limit:,} pixels that "
            "guards against decompression bombs; if you trust the file, raise the limit: "
            f"{MAX_PIXELS_ENV}={w * h} (or 0 for none)")
        err.reason = f"{w}x{h} = {w * h:,} pixels, over the limit of {limit:,}"
        raise err
    if warn and w * h > limit // 2:
        _warn(f"{path} is {w}x{h} = {w * h:,} pixels, more than half the limit of {limit:,}; "
              f"reading it needs about {w * h * 4 * 3 / 2**20:,.0f} MiB")


@contextmanager
def open_image(path: str | Path, warn: bool = True):
    """``PIL.Image.open`` that checks the size limit itself and turns every failure into one
    :class:`DataError` naming the file. Pillow's own bomb check (and its warning, printed raw
    with a source line) is switched off while the file is open: :func:`check_size` replaces
    it."""
    import warnings

    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise DataError(f"no image file at {path}" if not path.exists()
                        else f"{path} is not a file; give an image file")
    limit, saved = max_image_pixels(), Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        Image.MAX_IMAGE_PIXELS = None
        try:
            try:
                im = Image.open(path)
            except Exception as err:  # UnidentifiedImageError, OSError, SyntaxError ...
                raise _unreadable(path, err) from None
            with im:
                check_size(path, im.size, warn, limit)
                yield im
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _reason(err: Exception) -> str:
    from PIL import UnidentifiedImageError

    if isinstance(err, UnidentifiedImageError):
        return "not an image format Pillow recognises"
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _unreadable(path, err: Exception) -> DataError:
    """DataError "PATH: cannot read this image (REASON)" with ``.reason`` set."""
    reason = _reason(err)
    out = DataError(f"{path}: cannot read this image ({reason})")
    out.reason = reason
    return out


def verify_image(path: str | Path) -> tuple[str, tuple[int, int]]:
    """Check that ``path`` is an image Pillow can read (its header, its size against the
    limit, and Pillow's ``verify`` of the data where the format has one); returns its mode and
    (width, height). Raises DataError (ImageTooLargeError for the size) naming the file."""
    with open_image(path, warn=False) as im:
        mode, size, fmt = im.mode, im.size, im.format
        try:
            im.verify()
        except Exception as err:
            raise _unreadable(path, err) from None
    if fmt == "JPEG":  # Pillow's verify checks nothing of a JPEG: a truncated one passed
        with open_image(path, warn=False) as im:
            try:
                im.draft(im.mode, (max(1, size[0] // 8), max(1, size[1] // 8)))  # 1/8 scale
                im.load()  # reads the whole entropy-coded data: truncation shows here
            except Exception as err:
                raise _unreadable(path, err) from None
    return mode, size


def to_array(im, channels: int | None = None, dtype=np.float32) -> np.ndarray:
    """A Pillow image as a float array in [0, 1] (``F``: as stored), H x W x C (C = 1 or 3).

    ``channels``: 1 (gray), 3 (RGB) or None (gray for :data:`GRAY_MODES`, else RGB).
    ``dtype``: float32 (default) or float64.
    """
    if channels not in (None, 1, 3):
        raise UsageError(f"channels must be 1, 3 or None, got {channels}")
    dtype = np.dtype(dtype)
    mode = im.mode
    if mode in ("LA", "La"):
        im, mode = im.getchannel(0), "L"
    if mode in _SIXTEEN_BIT:
        a = np.asarray(im).astype(dtype) / dtype.type(65535)
    elif mode == "I":
        raw = np.asarray(im, dtype=np.int64)
        if raw.size == 0 or (raw.min() >= 0 and raw.max() <= 65535):
            a = (raw / 65535.0).astype(dtype)
        else:
            a = ((raw + 2**31) / (2**32 - 1)).astype(dtype)
    elif mode == "F":
        a = np.asarray(im).astype(dtype)
        if not np.isfinite(a).all():
            raise UsageError("a float image with NaN or infinite values")  # read_image: its file
    elif mode == "1":
        a = np.asarray(im).astype(dtype)  # bool -> 0.0 / 1.0
    else:  # 8-bit modes: Pillow converts (palette lookup, CMYK -> RGB, luma for "L")
        target = "L" if channels == 1 or (channels is None and mode == "L") else "RGB"
        if im.mode != target:
            im = im.convert(target)
        a = np.asarray(im).astype(dtype) / dtype.type(255)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] == 1 and channels == 3:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a)


def resize_array(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an H x W x C float array to ``size`` = (H, W), channel by channel
    with Pillow's float mode (antialiased when shrinking, as Pillow resizes 8-bit images)."""
    from PIL import Image

    h, w = size
    if a.shape[:2] == (h, w):
        return a
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(a[:, :, c]), "F")
                         .resize((w, h), Image.BILINEAR), dtype=np.float32)
              for c in range(a.shape[2])]
    return np.stack(planes, axis=2)


def read_image(path: str | Path, channels: int | None = None,
               size: tuple[int, int] | None = None, dtype=np.float32,
               warn: bool = True) -> np.ndarray:
    """The image at ``path`` as a float array C x H x W in [0, 1] (see the module doc for
    every mode), optionally resized (bilinear) to ``size`` = (H, W). A file that is missing,
    not an image, corrupt or too large raises DataError naming it; ``warn``: print a warning
    line for an image over half the pixel limit."""
    with open_image(path, warn) as im:
        try:
            im.seek(0)
            a = to_array(im, channels, dtype)
        except DataError:
            raise
        except Exception as err:  # truncated data, unsupported conversions ...
            raise _unreadable(path, err) from None
    if size is not None:
        a = resize_array(a, size).astype(dtype)
    return a.transpose(2, 0, 1).copy()


def load_image(path: str | Path, channels: int | None = None, warn: bool = True):
    """:func:`read_image` as a torch tensor C x H x W (the training and ``predict`` loader)."""
    import torch

    return torch.from_numpy(read_image(path, channels, warn=warn))
