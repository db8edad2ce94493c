"""The operator-level rules of the traced graph: which ATen operators are multiply-accumulates
and how many (:data:`_CONV_OPS`, :data:`_MM_OPS`), the *other ops* of the rest, and how each
operator moves a receptive field (:class:`RF`). :mod:`cnnlab.graph` applies them while tracing;
:mod:`cnnlab.analysis.macs` documents the convention and sums them. They live in their own
module so that the imports go one way: ``analysis.macs --> graph --> analysis.ops``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import UsageError

aten = torch.ops.aten

# --- which operators are MACs ------------------------------------------------------------

_CONV_OPS = {aten.convolution, aten._convolution, aten.cudnn_convolution,
             aten.convolution_overrideable, aten._slow_conv2d_forward}
_MM_OPS = {aten.mm, aten.addmm, aten.bmm, aten.baddbmm}


def _prod(xs) -> int:
    return math.prod(int(x) for x in xs)


def _conv_macs(args, out: torch.Tensor) -> int:
    x, w = args[0], args[1]
    transposed = bool(args[6]) if len(args) > 6 else False
    # Weight is (C_out, C_in / groups, *k) for a convolution; every output element is one
    # dot product of C_in/groups * prod(k) terms. A transposed convolution scatters every
    # *input* element into C_out/groups * prod(k) outputs: weight (C_in, C_out / groups, *k).
    if transposed:
        return _prod(x.shape[:1]) * _prod(x.shape[2:]) * _prod(w.shape)
    return _prod(out.shape) * _prod(w.shape[1:])


def _mm_macs(func, args) -> int:
    if func in (aten.mm, aten.bmm):
        a, b = args[0], args[1]
    else:  # addmm / baddbmm: (bias, a, b)
        a, b = args[1], args[2]
    return _prod(a.shape) * int(b.shape[-1])


# --- which operators are "other ops" -----------------------------------------------------

_POOL_OPS = {aten.max_pool2d_with_indices, aten.max_pool2d, aten.avg_pool2d,
             aten.max_pool1d, aten.avg_pool1d, aten.max_pool3d_with_indices, aten.avg_pool3d}
_POOL2D_OPS = {aten.max_pool2d_with_indices, aten.max_pool2d, aten.avg_pool2d}
_GLOBAL_OPS = {aten.mean, aten.sum, aten.amax, aten._adaptive_avg_pool2d,
               aten.adaptive_max_pool2d, aten._adaptive_avg_pool3d}
_NORM_OPS = {aten.native_batch_norm, aten._native_batch_norm_legit,
             aten._native_batch_norm_legit_no_training, aten.native_layer_norm,
             aten.native_group_norm}
_ELEMENTWISE = {
    aten.relu, aten.relu_, aten.sigmoid, aten.sigmoid_, aten.tanh, aten.tanh_, aten.hardtanh,
    aten.hardtanh_, aten.hardswish, aten.hardswish_, aten.hardsigmoid, aten.hardsigmoid_,
    aten.silu, aten.silu_, aten.gelu, aten.elu, aten.elu_, aten.leaky_relu, aten.leaky_relu_,
    aten.clamp, aten.clamp_, aten.clamp_min, aten.clamp_min_, aten.clamp_max, aten.mish,
    aten._softmax, aten._log_softmax, aten.exp, aten.log, aten.sqrt, aten.rsqrt, aten.pow,
    aten.add, aten.add_, aten.sub, aten.sub_, aten.mul, aten.mul_, aten.div, aten.div_,
    aten.addcmul, aten.where, aten.maximum, aten.minimum, aten.neg, aten.reciprocal,
}


def _other_ops(func, args, outs: list[torch.Tensor]) -> int:
    if not outs:
        return 0
    out = outs[0]
    if func in _POOL_OPS:
        k = args[1]
        k = [k] * (out.dim() - 2) if isinstance(k, int) else list(k)
        if len(k) == 1 and out.dim() - 2 > 1:
            k = k * (out.dim() - 2)
        return out.numel() * _prod(k)
    if func in _GLOBAL_OPS:
        return args[0].numel() if isinstance(args[0], torch.Tensor) else 0
    if func in _NORM_OPS or func in _ELEMENTWISE:
        return out.numel()
    return 0


# --- receptive fields --------------------------------------------------------------------

@dataclass(frozen=True)
class RF:
    """Receptive field of one unit of a feature map, per spatial axis (H, W).

    ``size``: how many input pixels one unit sees; ``jump``: the distance in input pixels
    between neighbouring units; ``start``: the input coordinate of the centre of the first
    unit's field (pixel centres at 0, 1, 2, ...; can be negative with padding); ``extent``:
    the map's spatial size. ``global_`` marks a tensor without spatial axes that has pooled or
    flattened a whole map: its ``size`` is then what the whole map saw.
    """

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]
    extent: tuple[int, int]
    global_: bool = False

    def whole(self) -> RF:
        """What one unit sees after pooling or flattening the whole map."""
        axes = list(zip(self.size, self.start, self.extent, self.jump, strict=True))
        size = tuple(s + (n - 1) * j for s, _, n, j in axes)
        start = tuple(st + (n - 1) * j / 2 for _, st, n, j in axes)
        return RF(size, self.jump, start, (1, 1), True)


def _pair(v, n: int = 2, default=None) -> tuple:
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        v = default
    if isinstance(v, int):
        return (v,) * n
    v = tuple(v)
    return v * n if len(v) == 1 else v


def _rf_window(rf: RF, k, s, p, d, extent) -> RF:
    size = tuple(r + (kk - 1) * dd * j
                 for r, kk, dd, j in zip(rf.size, k, d, rf.jump, strict=False))
    jump = tuple(j * ss for j, ss in zip(rf.jump, s, strict=False))
    start = tuple(st + ((kk - 1) * dd / 2 - pp) * j
                  for st, kk, dd, pp, j in zip(rf.start, k, d, p, rf.jump, strict=False))
    return RF(size, jump, start, extent)


def _rf_update(func, args, in_rfs: list[RF], out: torch.Tensor) -> RF | None:
    if not in_rfs:
        return None
    # N x C x H x W maps, and their 5-D views (channel shuffle: N x g x C/g x H x W)
    spatial = out.dim() >= 4
    extent = tuple(int(x) for x in out.shape[-2:]) if spatial else (1, 1)
    first = in_rfs[0]
    if func in _CONV_OPS and spatial and not first.global_:
        if len(args) > 6 and bool(args[6]):
            return None  # transposed convolution: not a sequential-path field
        k = tuple(int(x) for x in args[1].shape[2:])
        return _rf_window(first, k, _pair(args[3]), _pair(args[4]), _pair(args[5]), extent)
    if func is aten.constant_pad_nd and spatial and not first.global_:
        pad = list(args[1]) + [0] * 4  # (left, right, top, bottom, ...) from the last dim
        left, top = pad[0], pad[2]
        start = (first.start[0] - top * first.jump[0], first.start[1] - left * first.jump[1])
        return RF(first.size, first.jump, start, extent)
    if func in _POOL2D_OPS and spatial and not first.global_:
        k = _pair(args[1])
        s = _pair(args[2] if len(args) > 2 else None, default=k)
        p = _pair(args[3] if len(args) > 3 else 0)
        d = _pair(args[4] if len(args) > 4 and func is not aten.avg_pool2d else 1)
        return _rf_window(first, k, s, p, d, extent)
    ins = in_rfs
    if not spatial or extent == (1, 1) and any(r.extent != (1, 1) for r in ins if not r.global_):
        # the whole map collapses into one unit (flatten, global pooling, linear layers)
        ins = [r if r.global_ else r.whole() for r in ins]
        best = max(ins, key=lambda r: r.size)
        return RF(best.size, best.jump, best.start, extent, True) if spatial else best
    same = [r for r in ins if r.extent == extent or r.global_]
    if len(same) != len(ins):
        return None  # an operator that resamples the map in a way we do not model
    best = max(same, key=lambda r: r.size)
    return RF(best.size, best.jump, best.start, extent, best.global_)


def check_input_size(input_size) -> tuple[int, int, int]:
    """Validate a (C, H, W) input size; raises ``ValueError`` naming the bad value."""
    try:
        size = tuple(int(v) for v in input_size)
    except (TypeError, ValueError):
        raise UsageError(f"input size must be (C, H, W), got {input_size!r}") from None
    if len(size) != 3 or any(v != w for v, w in zip(size, input_size, strict=False)):
        raise UsageError(f"input size must be three integers (C, H, W), got {input_size!r}")
    if min(size) <= 0:
        raise UsageError(f"every dimension of the input size must be positive, got "
                         f"{'x'.join(map(str, size))}")
    return size
