"""im2col and col2im: turn a convolution into one matrix product.

``im2col(x, kh, kw, stride)`` takes a batch ``x`` of shape (N, C, H, W) (already padded) and
returns a matrix with one row per kernel entry (c, p, q) and one column per output position
(n, i, j)::

    cols[(c, p, q), (n, i, j)] = x[n, c, i*s + p, j*s + q]

so that a correlation with a kernel ``K`` of shape (O, C, kh, kw) is the single product
``K.reshape(O, -1) @ cols`` (shape (O, N*Ho*Wo)). ``col2im`` is its adjoint (the transpose
of the linear map): it scatters the rows back and *adds* where windows overlap, so
``<im2col(x), c> == <x, col2im(c)>`` for any ``x`` and ``c``.

The windows are read with ``numpy.lib.stride_tricks.sliding_window_view`` (a view, no copy);
the single copy is the reshape to a 2-D matrix. This row/column order (CS231n's) makes that
copy run along contiguous image rows; the transposed layout copies 4-8x slower.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import InputShapeError


def out_size(size: int, k: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution or pooling: ``floor((size + 2 padding - k) / stride) + 1``."""
    return (size + 2 * padding - k) // stride + 1


def windows(x: np.ndarray, kh: int, kw: int, stride: int = 1) -> np.ndarray:
    """View (N, C, Ho, Wo, kh, kw) of the kh x kw windows of ``x`` taken every ``stride``."""
    if x.ndim != 4:
        raise InputShapeError(f"expected a batch N x C x H x W, got shape {x.shape}")
    h, w = x.shape[2:]
    if kh > h or kw > w:
        raise InputShapeError(f"kernel {kh}x{kw} is larger than the (padded) input {h}x{w}")
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]


def im2col(x: np.ndarray, kh: int, kw: int, stride: int = 1) -> np.ndarray:
    """(N, C, H, W) -> (C*kh*kw, N*Ho*Wo), rows ordered (c, p, q), columns (n, i, j)."""
    v = windows(x, kh, kw, stride)  # N, C, Ho, Wo, kh, kw
    n, c, ho, wo = v.shape[:4]
    return v.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * ho * wo)


def col2im(cols: np.ndarray, x_shape: tuple[int, int, int, int], kh: int, kw: int,
           stride: int = 1) -> np.ndarray:
    """Adjoint of :func:`im2col`: add every row back onto the window it came from."""
    n, c, h, w = x_shape
    ho, wo = out_size(h, kh, stride), out_size(w, kw, stride)
    if cols.shape != (c * kh * kw, n * ho * wo):
        raise InputShapeError(f"cols of shape {cols.shape} do not fit x of shape {x_shape} "
                              f"with a {kh}x{kw} kernel and stride {stride}")
    # Accumulate in cols' own order (C, N, H, W), with C and N merged into one axis, so that
    # every add below is a plain 3-D slice; one transpose to (N, C, H, W) at the end.
    c6 = cols.reshape(c, kh, kw, n, ho, wo)
    x = np.zeros((c * n, h, w), dtype=cols.dtype)
    # Vectorised adds instead of np.add.at per element: one per kernel offset (p, q), each
    # adding that entry of every window at once, or, when there are fewer windows than
    # kernel entries (C5 of LeNet-5: one window of 5x5), one per window (i, j).
    if kh * kw <= ho * wo:
        for p in range(kh):
            for q in range(kw):
                x[:, p:p + stride * ho:stride, q:q + stride * wo:stride] += (
                    c6[:, p, q].reshape(c * n, ho, wo))
    else:
        for i in range(ho):
            for j in range(wo):
                x[:, i * stride:i * stride + kh, j * stride:j * stride + kw] += (
                    c6[:, :, :, :, i, j].transpose(0, 3, 1, 2).reshape(c * n, kh, kw))
    x = x.reshape(c, n, h, w).transpose(1, 0, 2, 3)
    return x
