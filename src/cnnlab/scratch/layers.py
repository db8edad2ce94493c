"""Layers of the NumPy engine, each with ``forward`` and ``backward``.

The contract (CS231n's, in small classes): ``forward(x)`` returns the output and keeps in
``self.cache`` what the backward pass needs; ``backward(delta)`` takes the gradient of the loss
with respect to the output (the course's ``delta``), returns the gradient with respect to the
input and stores the gradients of the parameters in ``self.grads`` (same keys as
``self.params``). Arrays are NCHW, as in PyTorch.

Notation of the docstrings: ``*`` is a true 2-D convolution (the kernel is flipped),
``rot90(W, 2)`` the kernel rotated by 180 degrees (``W[..., ::-1, ::-1]``), so that
``x * W == correlate(x, rot90(W, 2))``; ``delta`` is dL/d(output) of the layer.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputShapeError, UsageError
from .im2col import col2im, im2col, out_size


def _pair(v, name: str) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        v = (int(v), int(v))
    if (not isinstance(v, (tuple, list)) or len(v) != 2
            or not all(isinstance(i, (int, np.integer)) for i in v)):
        raise UsageError(f"{name} must be an int or a pair of ints, got {v!r}")
    return int(v[0]), int(v[1])


class Layer:
    """Base class: a layer without parameters unless ``params`` is filled."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.cache: dict = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, delta: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def _check_delta(self, delta: np.ndarray) -> None:
        if "out_shape" not in self.cache:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        if delta.shape != self.cache["out_shape"]:
            raise InputShapeError(f"{type(self).__name__}.backward: delta has shape {delta.shape}, "
                                  f"the forward output had shape {self.cache['out_shape']}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _check_nchw(layer: Layer, x: np.ndarray, channels: int | None = None) -> None:
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise InputShapeError(f"{type(layer).__name__} expects a batch N x C x H x W, "
                              f"got shape {getattr(x, 'shape', type(x).__name__)}")
    if channels is not None and x.shape[1] != channels:
        raise InputShapeError(f"{type(layer).__name__} was built for {channels} input channels, "
                              f"got {x.shape[1]} (input shape {x.shape})")


class Conv2D(Layer):
    """2-D convolution (a true one: the kernel is flipped) with bias, stride and zero padding.

    Forward, for output map ``o`` (``x`` zero-padded by ``padding``, then every ``stride``-th
    position kept)::

        y[o] = sum_c x[c] * W[o, c] + b[o]  =  sum_c correlate(x[c], rot90(W[o, c], 2)) + b[o]

    computed as one matrix product: ``rot90(W, 2).reshape(O, -1) @ im2col(x)``.

    Backward, with ``delta = dL/dy`` and ``up(delta)`` the delta upsampled by inserting
    ``stride - 1`` zeros between its entries (nothing to do when stride = 1)::

        dL/db[o]    = sum over n, i, j of delta[n, o, i, j]
        dL/dW[o, c] = rot90(correlate(x[c], up(delta[o])), 2)
        dL/dx[c]    = sum_o full_correlate(up(delta[o]), W[o, c])
                    = sum_o full_convolve(up(delta[o]), rot90(W[o, c], 2))

    then the padding is cut off ``dL/dx``. :func:`input_grad_full_convolution` computes that
    last formula literally (im2col of ``up(delta)`` padded by k-1, one matrix product); the
    layer computes the same numbers as ``col2im(rot90(W, 2)^T @ delta)``, the transpose of the
    forward product, which skips the zeros of the padding and of ``up`` (2-5x faster for
    C3/C5 of LeNet-5); a test checks the two agree. PyTorch's ``conv2d`` is a correlation: to
    get the same output give it ``rot90(W, 2)``.

    Set ``need_input_grad = False`` on the first layer of a network to skip ``dL/dx``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride: int = 1,
                 padding=0, rng: np.random.Generator | None = None, dtype=np.float64):
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise UsageError(f"channel counts must be positive, got {in_channels}, {out_channels}")
        self.kh, self.kw = _pair(kernel_size, "kernel_size")
        self.ph, self.pw = _pair(padding, "padding")
        if not isinstance(stride, (int, np.integer)) or stride < 1:
            raise UsageError(f"stride must be a positive int, got {stride!r}")
        if min(self.kh, self.kw) < 1 or min(self.ph, self.pw) < 0:
            raise UsageError(f"bad kernel_size {kernel_size!r} or padding {padding!r}")
        self.stride = int(stride)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.need_input_grad = True
        rng = rng if rng is not None else np.random.default_rng(0)
        # PyTorch's default initialisation: uniform in +-1/sqrt(fan_in).
        bound = 1.0 / np.sqrt(in_channels * self.kh * self.kw)
        self.params["W"] = rng.uniform(-bound, bound, (out_channels, in_channels, self.kh, self.kw)
                                       ).astype(dtype)
        self.params["b"] = rng.uniform(-bound, bound, out_channels).astype(dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        _check_nchw(self, x, self.in_channels)
        n, _, h, w = x.shape
        if h + 2 * self.ph < self.kh or w + 2 * self.pw < self.kw:
            raise InputShapeError(f"Conv2D: input {h}x{w} (padding {self.ph},{self.pw}) is smaller "
                                  f"than the kernel {self.kh}x{self.kw}")
        if self.ph or self.pw:  # zero padding (as np.pad, without its generic machinery)
            xp = np.zeros((n, x.shape[1], h + 2 * self.ph, w + 2 * self.pw), dtype=x.dtype)
            xp[:, :, self.ph:self.ph + h, self.pw:self.pw + w] = x
            x = xp
        ho = out_size(x.shape[2], self.kh, self.stride)
        wo = out_size(x.shape[3], self.kw, self.stride)
        cols = im2col(x, self.kh, self.kw, self.stride)                 # (C*kh*kw, N*Ho*Wo)
        w_flip = self.params["W"][:, :, ::-1, ::-1].reshape(self.out_channels, -1)
        y = w_flip @ cols                                               # (O, N*Ho*Wo)
        y += self.params["b"][:, None]
        y = np.ascontiguousarray(y.reshape(self.out_channels, n, ho, wo).transpose(1, 0, 2, 3))
        self.cache = {"cols": cols, "padded_shape": x.shape, "out_shape": y.shape}
        return y

    def backward(self, delta: np.ndarray) -> np.ndarray | None:
        self._check_delta(delta)
        n, o, ho, wo = delta.shape
        cols = self.cache["cols"]
        d2 = delta.transpose(1, 0, 2, 3).reshape(o, -1)                # (O, N*Ho*Wo)
        self.grads["b"] = d2.sum(axis=1)
        dw_flip = (d2 @ cols.T).reshape(self.params["W"].shape)
        self.grads["W"] = np.ascontiguousarray(dw_flip[:, :, ::-1, ::-1])
        if not self.need_input_grad:
            return None
        hp, wp = self.cache["padded_shape"][2:]
        w_flip = self.params["W"][:, :, ::-1, ::-1].reshape(o, -1)
        dxp = col2im(w_flip.T @ d2, self.cache["padded_shape"], self.kh, self.kw, self.stride)
        return np.ascontiguousarray(dxp[:, :, self.ph:hp - self.ph, self.pw:wp - self.pw])

    def __repr__(self) -> str:
        return (f"Conv2D({self.in_channels}, {self.out_channels}, kernel=({self.kh}, {self.kw}), "
                f"stride={self.stride}, padding=({self.ph}, {self.pw}))")


def input_grad_full_convolution(delta: np.ndarray, W: np.ndarray, stride: int,
                                padded_shape: tuple[int, int, int, int],
                                padding=0) -> np.ndarray:
    """The course's formula for :class:`Conv2D`'s input gradient, literally::

        dL/dx[c] = sum_o full_convolve(up(delta[o]), rot90(W[o, c], 2))
                 = sum_o full_correlate(up(delta[o]), W[o, c])

    ``up`` inserts ``stride - 1`` zeros between the entries of delta; ``padded_shape`` is the
    shape of the zero-padded input of the forward pass; the padding is cut off at the end."""
    n, o, ho, wo = delta.shape
    _, c, hp, wp = padded_shape
    kh, kw = W.shape[2:]
    ph, pw = _pair(padding, "padding")
    s = stride
    up = np.zeros((n, o, (ho - 1) * s + 1, (wo - 1) * s + 1), dtype=delta.dtype)
    up[:, :, ::s, ::s] = delta
    extra_h, extra_w = hp - (ho - 1) * s - kh, wp - (wo - 1) * s - kw  # rows no window read
    up = np.pad(up, ((0, 0), (0, 0), (kh - 1, kh - 1 + extra_h), (kw - 1, kw - 1 + extra_w)))
    w_mat = W.transpose(1, 0, 2, 3).reshape(c, o * kh * kw)
    dxp = (w_mat @ im2col(up, kh, kw, 1)).reshape(c, n, hp, wp).transpose(1, 0, 2, 3)
    return dxp[:, :, ph:hp - ph, pw:wp - pw]


def conv2d_naive(x: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int = 1,
                 padding=0) -> np.ndarray:
    """The convolution of :class:`Conv2D` with plain loops, straight from the formula
    ``y[n, o, i, j] = sum_{c,p,q} xpad[n, c, i*s + p, j*s + q] * rot90(W, 2)[o, c, p, q] + b[o]``.
    Slow; for tests and for reading."""
    ph, pw = _pair(padding, "padding")
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, _, h, w = xp.shape
    o, _, kh, kw = W.shape
    ho, wo = out_size(h, kh, stride), out_size(w, kw, stride)
    y = np.zeros((n, o, ho, wo), dtype=np.result_type(x, W))
    for ni in range(n):
        for oi in range(o):
            k = np.rot90(W[oi], 2, axes=(1, 2))
            for i in range(ho):
                for j in range(wo):
                    patch = xp[ni, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
                    y[ni, oi, i, j] = np.sum(patch * k) + b[oi]
    return y


class _Pool2D(Layer):
    """Non-overlapping pooling (stride = pool size). Rows and columns that do not fill a whole
    window are dropped in the forward pass (as PyTorch does) and get a zero gradient."""

    def __init__(self, size=2):
        super().__init__()
        self.kh, self.kw = _pair(size, "size")
        if min(self.kh, self.kw) < 1:
            raise UsageError(f"pool size must be positive, got {size!r}")

    def _windows(self, x: np.ndarray) -> tuple[int, int]:
        """Check ``x``, start the cache, return the output size (Ho, Wo)."""
        _check_nchw(self, x)
        h, w = x.shape[2:]
        ho, wo = h // self.kh, w // self.kw
        if ho == 0 or wo == 0:
            raise InputShapeError(f"{type(self).__name__}: input {h}x{w} is smaller than the "
                                  f"pool {self.kh}x{self.kw}")
        self.cache = {"in_shape": x.shape, "ho": ho, "wo": wo}
        return ho, wo

    def _blocks(self, x: np.ndarray) -> np.ndarray:
        """(N, C, Ho, kh, Wo, kw): window (i, j) is ``[:, :, i, :, j, :]``."""
        n, c = x.shape[:2]
        ho, wo = self._windows(x)
        return x[:, :, :ho * self.kh, :wo * self.kw].reshape(n, c, ho, self.kh, wo, self.kw)

    def _scatter(self, d_cropped: np.ndarray) -> np.ndarray:
        n, c, h, w = self.cache["in_shape"]
        if d_cropped.shape[2:] == (h, w):
            return d_cropped
        dx = np.zeros((n, c, h, w), dtype=d_cropped.dtype)
        dx[:, :, :d_cropped.shape[2], :d_cropped.shape[3]] = d_cropped
        return dx

    def __repr__(self) -> str:
        return f"{type(self).__name__}(({self.kh}, {self.kw}))"


class AvgPool2D(_Pool2D):
    """Average pooling over k x k windows, stride k.

    Forward: ``y[i, j] = mean of x over the window (i, j)``.
    Backward: every input of a window gets the same share of that window's delta::

        dL/dx = upsample(delta) / (kh * kw),   upsample(delta) = kron(delta, ones(kh, kw))

    :func:`upsample_kron` is that formula literally. The layer computes the same numbers
    faster: the forward adds the kh*kw strided sub-images ``x[p::kh, q::kw]`` (one per
    position in the window) instead of averaging a 6-D view, and the backward repeats every
    delta kh times down and kw times across (``np.repeat``) instead of ``np.kron``'s general
    outer product; a test checks both against the literal versions.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        ho, wo = self._windows(x)
        x = x[:, :, :ho * self.kh, :wo * self.kw]               # whole windows only
        dtype = np.result_type(x.dtype, np.float32)             # a mean is never an integer
        y = x[:, :, 0::self.kh, 0::self.kw].astype(dtype)       # top-left of every window
        for p in range(self.kh):
            for q in range(self.kw):
                if p or q:
                    y += x[:, :, p::self.kh, q::self.kw]
        y *= 1.0 / (self.kh * self.kw)
        self.cache["out_shape"] = y.shape
        return y

    def backward(self, delta: np.ndarray) -> np.ndarray:
        self._check_delta(delta)
        up = delta.repeat(self.kh, axis=2).repeat(self.kw, axis=3)  # = kron(delta, ones)
        up *= 1.0 / (self.kh * self.kw)
        return self._scatter(up)


def upsample_kron(delta: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """The course's upsampling of :class:`AvgPool2D`'s backward, literally:
    ``kron(delta, ones(kh, kw))`` copies every entry of delta into a kh x kw block. The layer
    gets the same array with ``np.repeat``; this version is the reference for tests and
    reading."""
    return np.kron(delta, np.ones((1, 1, kh, kw), dtype=delta.dtype))


class MaxPool2D(_Pool2D):
    """Max pooling over k x k windows, stride k.

    Forward: ``y[i, j] = max of x over the window (i, j)``; a 0/1 ``mask`` marks the maximum.
    Backward: ``dL/dx = upsample(delta) . mask`` (element-wise): only the maximum of each
    window receives that window's delta, the others get 0.

    Ties: when several entries of a window share the maximum, only the *first* one in
    row-major order (top row first, then left to right) gets the gradient, as in PyTorch's CPU
    kernel; the gradient of each window thus sums to its delta.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        b = self._blocks(x)                                     # N, C, Ho, kh, Wo, kw
        n, c, ho, _, wo, _ = b.shape
        flat = b.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ho, wo, self.kh * self.kw)
        idx = flat.argmax(axis=-1)                              # first maximum on ties
        self.cache["mask"] = idx[..., None] == np.arange(self.kh * self.kw)
        y = np.take_along_axis(flat, idx[..., None], axis=-1)[..., 0]
        self.cache["out_shape"] = y.shape
        return y

    def backward(self, delta: np.ndarray) -> np.ndarray:
        self._check_delta(delta)
        n, c, ho, wo = delta.shape
        d = self.cache["mask"] * delta[..., None]              # N, C, Ho, Wo, kh*kw
        d = d.reshape(n, c, ho, wo, self.kh, self.kw).transpose(0, 1, 2, 4, 3, 5)
        return self._scatter(d.reshape(n, c, ho * self.kh, wo * self.kw))


class Sigmoid(Layer):
    """``y = 1 / (1 + exp(-x))``; ``dL/dx = delta . y (1 - y)``.

    Computed as ``(1 + tanh(x / 2)) / 2``, which never overflows."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = 0.5 * (1.0 + np.tanh(0.5 * x))
        self.cache = {"y": y, "out_shape": y.shape}
        return y

    def backward(self, delta: np.ndarray) -> np.ndarray:
        self._check_delta(delta)
        y = self.cache["y"]
        return delta * y * (1.0 - y)


class Tanh(Layer):
    """``y = tanh(x)``; ``dL/dx = delta . (1 - y^2)``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = np.tanh(x)
        self.cache = {"y": y, "out_shape": y.shape}
        return y

    def backward(self, delta: np.ndarray) -> np.ndarray:
        self._check_delta(delta)
        return delta * (1.0 - self.cache["y"] ** 2)


class ReLU(Layer):
    """``y = max(0, x)``; ``dL/dx = delta . [x > 0]`` (0 at x = 0, as PyTorch)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        mask = x > 0
        y = x * mask
        self.cache = {"mask": mask, "out_shape": y.shape}
        return y

    def backward(self, delta: np.ndarray) -> np.ndarray:
        self._check_delta(delta)
        return delta * self.cache["mask"]


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W) in C order (as ``torch.flatten(x, 1)``); backward reshapes."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim < 2:
            raise InputShapeError(f"Flatten expects a batch (N, ...), got shape {x.shape}")
        y = x.reshape(x.shape[0], -1)
        self.cache = {"in_shape": x.shape, "out_shape": y.shape}
        return y

    def backward(self, delta: np.ndarray) -> np.ndarray:
        self._check_delta(delta)
        return delta.reshape(self.cache["in_shape"])


class Dense(Layer):
    """Fully connected layer, ``W`` of shape (out, in) as PyTorch's ``Linear``.

    Forward: ``y = x W^T + b`` (for one sample ``y = W x + b``).
    Backward: ``dL/dW = delta^T x``, ``dL/db = sum_n delta``, ``dL/dx = delta W``.
    """

    def __init__(self, in_features: int, out_features: int,
                 rng: np.random.Generator | None = None, dtype=np.float64):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise UsageError(f"feature counts must be positive, got {in_features}, {out_features}")
        self.in_features, self.out_features = in_features, out_features
        rng = rng if rng is not None else np.random.default_rng(0)
        bound = 1.0 / np.sqrt(in_features)
        self.params["W"] = rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype)
        self.params["b"] = rng.uniform(-bound, bound, out_features).astype(dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != self.in_features:
            raise InputShapeError(f"Dense expects (N, {self.in_features}), "
                                  f"got shape {getattr(x, 'shape', type(x).__name__)}; "
                                  f"put a Flatten before it or fix in_features")
        y = x @ self.params["W"].T + self.params["b"]
        self.cache = {"x": x, "out_shape": y.shape}
        return y

    def backward(self, delta: np.ndarray) -> np.ndarray:
        self._check_delta(delta)
        self.grads["W"] = delta.T @ self.cache["x"]
        self.grads["b"] = delta.sum(axis=0)
        return delta @ self.params["W"]

    def __repr__(self) -> str:
        return f"Dense({self.in_features}, {self.out_features})"
