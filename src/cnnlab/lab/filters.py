"""Classical image filters: 2-D convolution and correlation in NumPy, the masks of the slides,
pooling, and the conversion of float responses to an 8-bit image.

Correlation slides the kernel as it is; convolution flips it first::

    correlate2d(x, W)[i, j] = sum_{p,q} x[i + p, j + q] * W[p, q]
    convolve2d(x, W)        = correlate2d(x, rot90(W, 2))        # W[::-1, ::-1]

Both agree for symmetric kernels (box, Gaussian, Laplacian); for the derivative masks the
convolution response has the opposite sign. The masks below are written as the slides print
them; ``cnnlab filter`` convolves by default (``--correlate`` for the other).

Borders (``boundary``): ``"zero"`` (pad with 0, scipy's ``"fill"``), ``"reflect"``
(``d c b | a b c d | c b a``), ``"symmetric"`` (``b a | a b c d | d c``, scipy's ``"symm"``),
``"replicate"`` (``a a | a b c d | d d``), ``"wrap"`` (periodic, scipy's ``"wrap"``).
Output size (``mode``), as in ``scipy.signal``: ``"full"`` (H + kh - 1), ``"valid"``
(H - kh + 1, no border needed), ``"same"`` (H, centred: needs a kernel with a centre, i.e. odd
sizes). ``stride`` keeps every stride-th output of those.

Outputs are float64: nothing wraps around as it would in uint8 (a Sobel response goes from
-4*255 to 4*255). :func:`to_uint8` maps a response to 0..255 for saving; see its modes.
"""

from __future__ import annotations

import difflib

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import CnnlabError, InputShapeError, UsageError

BOUNDARIES = {"zero": "constant", "reflect": "reflect", "symmetric": "symmetric",
              "replicate": "edge", "wrap": "wrap"}
MODES = ("full", "valid", "same")


class UnknownKernelError(CnnlabError, ValueError):
    """A kernel name that is not in :data:`KERNELS`."""


class KernelShapeError(CnnlabError, ValueError):
    """A kernel that does not fit the operation (even size where a centre is needed...)."""


def _check_2d(name: str, a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or 0 in a.shape:
        raise InputShapeError(f"{name} must be a non-empty 2-D array (H x W), got shape {a.shape}")
    return a


def _pads(kernel_shape: tuple[int, int], mode: str) -> tuple[tuple[int, int], tuple[int, int]]:
    kh, kw = kernel_shape
    if mode == "valid":
        return (0, 0), (0, 0)
    if mode == "full":
        return (kh - 1, kh - 1), (kw - 1, kw - 1)
    if mode == "same":
        if kh % 2 == 0 or kw % 2 == 0:
            raise KernelShapeError(
                f"a {kh}x{kw} kernel has no centre pixel, so mode 'same' is undefined; "
                "use an odd-sized kernel or mode 'valid' / 'full'")
        return (kh // 2, kh // 2), (kw // 2, kw // 2)
    raise UsageError(f"mode must be one of {MODES}, got {mode!r}")


def _check_size(n_floats: int, what: str) -> None:
    """Refuse an array of ``n_floats`` float64 values that cannot fit in memory (before NumPy
    tries: its "Unable to allocate 74.5 GiB" came as a traceback)."""
    from ..memory import check_fits

    check_fits(n_floats * 8, what, "use a smaller --size or mode 'valid'")


def correlate2d(image, kernel, mode: str = "same", boundary: str = "zero",
                stride: int = 1) -> np.ndarray:
    """``y[i, j] = sum_{p,q} xpad[i*stride + p, j*stride + q] * kernel[p, q]`` (float64)."""
    x, k = _check_2d("image", image), _check_2d("kernel", kernel)
    if boundary not in BOUNDARIES:
        raise UsageError(f"boundary must be one of {sorted(BOUNDARIES)}, got {boundary!r}")
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        raise UsageError(f"stride must be a positive int, got {stride!r}")
    (pt, pb), (pl, pr) = _pads(k.shape, mode)
    if mode == "valid" and (k.shape[0] > x.shape[0] or k.shape[1] > x.shape[1]):
        raise InputShapeError(f"kernel {k.shape} is larger than the image {x.shape} in mode "
                              "'valid'")
    out_h, out_w = x.shape[0] + pt + pb - k.shape[0] + 1, x.shape[1] + pl + pr - k.shape[1] + 1
    _check_size((x.shape[0] + pt + pb) * (x.shape[1] + pl + pr) + out_h * out_w + k.size,
                f"filtering a {x.shape[0]}x{x.shape[1]} image with a {k.shape[0]}x{k.shape[1]} "
                f"kernel (mode {mode!r})")
    if pt or pl:
        if boundary == "reflect" and (max(pt, pb) >= x.shape[0] or max(pl, pr) >= x.shape[1]):
            raise InputShapeError(f"boundary 'reflect' needs an image larger than the padding "
                                  f"({pt}, {pl}), got {x.shape}")
        x = np.pad(x, ((pt, pb), (pl, pr)), mode=BOUNDARIES[boundary])
    win = sliding_window_view(x, k.shape)[::stride, ::stride]
    return np.einsum("ijpq,pq->ij", win, k)


def convolve2d(image, kernel, mode: str = "same", boundary: str = "zero",
               stride: int = 1) -> np.ndarray:
    """True convolution: ``correlate2d(image, rot90(kernel, 2), ...)``."""
    return correlate2d(image, np.rot90(_check_2d("kernel", kernel), 2), mode, boundary, stride)


# ----------------------------------------------------------------------------- the masks
def box_kernel(size: int = 3) -> np.ndarray:
    """``ones(size, size) / size^2``: the mean of the neighbourhood."""
    if size < 1:
        raise UsageError(f"box size must be >= 1, got {size}")
    _check_size(size * size, f"a {size}x{size} box kernel")
    return np.full((size, size), 1.0 / size**2)


def gaussian_kernel(size: int = 5, sigma: float = 1.0) -> np.ndarray:
    """Sampled 2-D Gaussian ``exp(-(u^2 + v^2) / (2 sigma^2))`` on a size x size grid centred
    at 0, normalised to sum 1. ``size`` must be odd (the Gaussian has a centre)."""
    if size < 1 or size % 2 == 0:
        raise KernelShapeError(f"a Gaussian kernel needs an odd size (it has a centre), got {size}")
    if sigma <= 0:
        raise UsageError(f"sigma must be > 0, got {sigma}")
    _check_size(3 * size * size, f"a {size}x{size} Gaussian kernel")
    u = np.arange(size) - size // 2
    g = np.exp(-(u[:, None] ** 2 + u[None, :] ** 2) / (2.0 * sigma**2))
    return g / g.sum()


def _a(rows) -> np.ndarray:
    return np.array(rows, dtype=np.float64)


#: name -> (kernel, one-line description). Written as the slides print them, with one
#: difference of naming that the description states: the slide calls the diagonal from top
#: left to bottom right "+45 degrees" (image axes: x down, y right), which is ``line-45`` here
#: (angles counted from the horizontal with y up, as ``line+45`` rising to the right).
KERNELS: dict[str, tuple[np.ndarray, str]] = {
    "dx": (_a([[-1, 1]]), "horizontal derivative, forward difference [-1 1]"),
    "dy": (_a([[-1], [1]]), "vertical derivative, forward difference [-1 1]^T"),
    "dx-central": (_a([[-1, 0, 1]]) / 2, "horizontal derivative, central difference [-1 0 1]/2"),
    "dy-central": (_a([[-1], [0], [1]]) / 2, "vertical derivative, central difference"),
    "roberts-x": (_a([[-1, 0], [0, 1]]), "Roberts cross, diagonal [-1 0; 0 1] (as the slide)"),
    "roberts-y": (_a([[0, -1], [1, 0]]),
                  "Roberts cross, anti-diagonal [0 -1; 1 0] (as the slide)"),
    "prewitt-x": (_a([[-1, 0, 1]] * 3), "Prewitt, horizontal gradient (vertical edges)"),
    "prewitt-y": (_a([[-1] * 3, [0] * 3, [1] * 3]),
                  "Prewitt, vertical gradient (horizontal edges)"),
    "sobel-x": (_a([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
                "Sobel, horizontal gradient (vertical edges)"),
    "sobel-y": (_a([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),
                "Sobel, vertical gradient (horizontal edges)"),
    "line-h": (_a([[-1, -1, -1], [2, 2, 2], [-1, -1, -1]]), "line detector, horizontal"),
    "line-v": (_a([[-1, 2, -1]] * 3), "line detector, vertical"),
    "line+45": (_a([[-1, -1, 2], [-1, 2, -1], [2, -1, -1]]),
                "line detector, +45 degrees (rising to the right; the slide's '+45' is line-45)"),
    "line-45": (_a([[2, -1, -1], [-1, 2, -1], [-1, -1, 2]]),
                "line detector, -45 degrees (falling to the right); the slide's '+45'"),
    "laplacian": (_a([[0, 1, 0], [1, -4, 1], [0, 1, 0]]), "Laplacian, 4-neighbours"),
    "box": (box_kernel(3), "box blur (mean), size from --size (default 3)"),
    "gaussian": (gaussian_kernel(5, 1.0), "Gaussian blur, --size 5 --sigma 1 by default"),
}
#: name -> the pair of kernels whose responses combine into the gradient magnitude.
MAGNITUDES: dict[str, tuple[str, str]] = {
    "roberts": ("roberts-x", "roberts-y"),
    "prewitt": ("prewitt-x", "prewitt-y"),
    "sobel": ("sobel-x", "sobel-y"),
}


def kernel_names() -> list[str]:
    return list(KERNELS) + list(MAGNITUDES)


def describe_kernels() -> list[tuple[str, str, tuple[int, int]]]:
    """(name, description, shape) for every named kernel, for ``--list``."""
    rows = [(n, d, k.shape) for n, (k, d) in KERNELS.items()]
    rows += [(n, f"gradient magnitude sqrt({a}^2 + {b}^2)", KERNELS[a][0].shape)
             for n, (a, b) in MAGNITUDES.items()]
    return rows


def get_kernel(name: str, size: int | None = None, sigma: float | None = None) -> np.ndarray:
    """The named kernel (a copy). ``size``/``sigma`` set the box and Gaussian kernels."""
    key = name.lower()
    if key == "box":
        return box_kernel(3 if size is None else size)
    if key == "gaussian":
        return gaussian_kernel(5 if size is None else size, 1.0 if sigma is None else sigma)
    if key in KERNELS:
        return KERNELS[key][0].copy()
    close = difflib.get_close_matches(key, kernel_names(), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownKernelError(f"unknown kernel {name!r}{hint} (list them with 'cnnlab filter "
                             f"--list')")


def parse_kernel(text: str) -> np.ndarray:
    """A kernel written inline, rows separated by ';' and entries by ',' or spaces:
    ``"1,0,-1; 2,0,-2; 1,0,-1"``."""
    try:
        rows = [[float(v) for v in r.replace(",", " ").split()] for r in text.split(";")]
    except ValueError:
        raise UsageError(f"cannot read the kernel {text!r}: write numbers, ',' between entries "
                         "and ';' between rows, e.g. '1,0,-1;2,0,-2;1,0,-1'") from None
    if not rows or any(len(r) != len(rows[0]) for r in rows) or not rows[0]:
        raise UsageError(f"kernel {text!r} is not rectangular: every row needs as many entries")
    return np.array(rows)


def apply_filter(image, name: str, *, op: str = "convolve", mode: str = "same",
                 boundary: str = "replicate", stride: int = 1, size: int | None = None,
                 sigma: float | None = None) -> np.ndarray:
    """Filter ``image`` with a named kernel (or a magnitude: ``"sobel"`` gives
    ``sqrt(sobel_x^2 + sobel_y^2)``) or an inline kernel (see :func:`parse_kernel`)."""
    if op not in ("convolve", "correlate"):
        raise UsageError(f"op must be 'convolve' or 'correlate', got {op!r}")
    fn = convolve2d if op == "convolve" else correlate2d
    if name.lower() in MAGNITUDES:
        a, b = MAGNITUDES[name.lower()]
        gx = fn(image, get_kernel(a), mode, boundary, stride)
        gy = fn(image, get_kernel(b), mode, boundary, stride)
        return np.hypot(gx, gy)
    kernel = parse_kernel(name) if any(c in name for c in ",;") else get_kernel(name, size, sigma)
    return fn(image, kernel, mode, boundary, stride)


# ----------------------------------------------------------------------------- pooling
def _pool_windows(image, size: int, stride: int | None) -> np.ndarray:
    x = _check_2d("image", image)
    stride = size if stride is None else stride
    if size < 1 or stride < 1:
        raise UsageError(f"pool size and stride must be >= 1, got {size}, {stride}")
    if size > min(x.shape):
        raise InputShapeError(f"pool size {size} is larger than the image {x.shape}")
    return sliding_window_view(x, (size, size))[::stride, ::stride]


def max_pool2d(image, size: int = 2, stride: int | None = None) -> np.ndarray:
    """Maximum over size x size windows every ``stride`` (default: ``size``); leftover rows
    and columns that do not fill a window are dropped. Output floor((H - size)/stride) + 1."""
    return _pool_windows(image, size, stride).max(axis=(2, 3))


def avg_pool2d(image, size: int = 2, stride: int | None = None) -> np.ndarray:
    """Mean over size x size windows every ``stride`` (default: ``size``)."""
    return _pool_windows(image, size, stride).mean(axis=(2, 3))


# ----------------------------------------------------------------------------- saving
NORMALIZE = ("auto", "minmax", "symmetric", "abs", "clip")


def to_uint8(response, how: str = "auto") -> np.ndarray:
    """Map a float response to 0..255 for saving as an image (never wraps around).

    * ``"clip"``: keep the values, clip to [0, 255] (blurs of a 0..255 image);
    * ``"minmax"``: ``(x - min) / (max - min) * 255`` (magnitudes);
    * ``"symmetric"``: 0 -> 128, ``+-max|x|`` -> 255 / 0 (signed derivatives: the sign stays
      visible, dark = negative);
    * ``"abs"``: ``|x| / max|x| * 255``;
    * ``"auto"``: ``symmetric`` when the response has negative values, else ``clip`` when it
      fits in [0, 255], else ``minmax``.
    A constant response maps to 0 (or 128 for ``symmetric``).
    """
    x = _check_2d("response", response)
    if how not in NORMALIZE:
        raise UsageError(f"normalisation must be one of {NORMALIZE}, got {how!r}")
    if how == "auto":
        how = "symmetric" if x.min() < 0 else ("clip" if x.max() <= 255 else "minmax")
    if how == "clip":
        y = np.clip(x, 0, 255)
    elif how == "minmax":
        span = x.max() - x.min()
        y = (x - x.min()) / span * 255 if span > 0 else np.zeros_like(x)
    elif how == "symmetric":
        m = np.abs(x).max()
        y = 127.5 + 127.5 * x / m if m > 0 else np.full_like(x, 128.0)
    else:
        m = np.abs(x).max()
        y = np.abs(x) / m * 255 if m > 0 else np.zeros_like(x)
    return np.round(y).astype(np.uint8)
