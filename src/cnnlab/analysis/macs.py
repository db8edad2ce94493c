"""Counting multiply-accumulates at operator level, and the tracer the other tools share.

**Convention** (DESIGN.md, REFERENCE_NUMBERS.md §0): *MACs* are the multiply-accumulates of
convolutions (ordinary, grouped, depthwise, transposed) and of matrix products (linear layers,
``matmul``), batch size 1; biases are not counted. *FLOPs = 2 x MACs*. Everything else
(normalisation, activations, pooling, element-wise additions and products) is counted in a
separate *other ops* column and never mixed into MACs: one operation per output element, or
``kh*kw`` per output element of a pooling window, or one per input element of a global
reduction. Pure data movement (views, ``cat``, padding, channel shuffle, indexing) counts zero.

The counts come from the shapes that really flow: a ``TorchDispatchMode`` sees every ATen
operator the forward pass runs (so ``F.conv2d`` and ``x @ w`` inside a ``forward`` are counted
as surely as ``nn.Conv2d``), and forward hooks attribute each operator to the modules that
were running when it executed. The same pass follows every tensor back to the input, which
gives, per module output, the number of weighted layers on the longest path that produced it
(the model's *depth*) and its receptive field (see :mod:`cnnlab.analysis.receptive_field`).

Tracing never changes the model: it runs one forward pass (batch 1, ``torch.no_grad``, eval
mode unless asked otherwise) on an all-zeros input, restores every module's train/eval flag,
the caller's random-number state and, after a training-mode pass, the buffers (BN running
statistics); the hooks are removed even when the forward pass fails. ``count_macs`` works on
the ``meta`` device, which allocates nothing: build the model under ``torch.device("meta")``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import NotAModelError, UsageError

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


# --- the tracer --------------------------------------------------------------------------

@dataclass
class ModuleRecord:
    """What one module did during the traced forward pass (all its calls together)."""

    name: str
    type: str
    calls: int = 0
    order: int = -1
    input_shapes: list[tuple[int, ...]] = field(default_factory=list)
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)
    macs: int = 0        # inclusive: every operator run while this module was running
    other_ops: int = 0
    depth: int | None = None      # weighted layers on the longest path to its output
    rf: RF | None = None


@dataclass
class Trace:
    """The result of one traced forward pass; see :func:`trace`."""

    input_size: tuple[int, int, int]
    macs: int
    other_ops: int
    depth: int
    modules: dict[str, ModuleRecord]
    macs_by_op: dict[str, int]
    other_by_op: dict[str, int]
    output_shapes: list[tuple[int, ...]]
    training: bool


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


def trace(model: nn.Module, input_size, *, training: bool = False) -> Trace:
    """Run one forward pass of ``model`` on a zeros input of ``(1, *input_size)`` and record
    MACs, other ops, depth, receptive fields and output shapes per module.

    A per-module view of the traced graph (:func:`cnnlab.graph.trace_graph`): a module's
    record sums its calls (MACs inclusive of its children), its depth and field are those of
    its last call's output. The model keeps its mode, buffers, ``requires_grad`` flags, and
    the caller's RNG state is untouched.
    """
    from ..graph import trace_graph

    g = trace_graph(model, input_size, training=training)
    records: dict[str, ModuleRecord] = {}
    for name, m in model.named_modules():
        records.setdefault(name, ModuleRecord(name or "(model)", type(m).__name__))
    order = 0

    def rec(name, shape, in_shape, macs, other, depth, rf):
        nonlocal order
        r = records[name]
        if r.order < 0:
            r.order, order = order, order + 1
        r.calls += 1
        r.input_shapes.append(in_shape)
        r.output_shapes.append(shape[0] if shape and isinstance(shape[0], tuple)
                               and len(shape) == 1 else shape)
        r.macs += macs
        r.other_ops += other
        r.depth = depth if r.depth is None else max(r.depth, depth)
        r.rf = rf

    def walk(grp):
        for c in grp.children:
            if hasattr(c, "op"):
                if c.kind == "module":
                    ins = [g.node(i).shape for i in c.inputs if i >= 0]
                    rec(c.name, c.shape, ins[0] if ins and -1 not in c.inputs
                        else (1, *g.input_size), c.macs, c.other_ops, c.depth, c.rf)
            else:
                rec(c.name, c.shape, c.in_shape, c.macs, c.other_ops, c.depth, c.rf)
                walk(c)

    root = g.root
    rec("", root.shape, (1, *g.input_size), g.macs, g.other_ops, g.depth, root.rf)
    walk(root)
    return Trace(g.input_size, g.macs, g.other_ops, g.depth, records, g.macs_by_op,
                 g.other_by_op, g.output_shapes, training)


# --- public API --------------------------------------------------------------------------

@dataclass
class MacCount:
    """MACs of a model at one input size, batch 1. ``flops`` is ``2 * macs``."""

    macs: int
    other_ops: int
    per_layer: dict[str, int]       # leaf modules (and modules with their own operators)
    other_per_layer: dict[str, int]
    by_op: dict[str, int]
    input_size: tuple[int, int, int]

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def __int__(self) -> int:
        return self.macs


def count_macs(model: nn.Module, input_size, *, training: bool = False) -> MacCount:
    """Multiply-accumulates of ``model`` for one ``(C, H, W)`` input (batch 1).

    Conv (grouped, depthwise, transposed) and linear/matmul operators only; FLOPs = 2 x MACs.
    ``per_layer`` gives the MACs of every leaf module (its calls summed) and, under
    ``"<name> (own)"``, of the operators a container runs in its own ``forward``, in execution
    order, read off the traced graph (:mod:`cnnlab.graph`, which has them one by one); other
    operations are in ``other_ops`` / ``other_per_layer``, never mixed in.
    """
    from ..graph import trace_graph

    NotAModelError.check(model, "count_macs")
    g = trace_graph(model, input_size, training=training)
    per_layer: dict[str, int] = {}
    other_per_layer: dict[str, int] = {}
    for n in g.nodes:  # every call of a layer, summed; a block's own operators together
        key = n.name if n.kind == "module" else f"{n.module or '(model)'} (own)"
        if n.macs:
            per_layer[key] = per_layer.get(key, 0) + n.macs
        if n.other_ops:
            other_per_layer[key] = other_per_layer.get(key, 0) + n.other_ops
    return MacCount(g.macs, g.other_ops, per_layer, other_per_layer, g.macs_by_op, g.input_size)
