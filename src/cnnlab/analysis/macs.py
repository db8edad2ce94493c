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
from collections import defaultdict
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

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


class _Tracer(TorchDispatchMode):
    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # TorchDispatchMode wraps __torch_dispatch__ in torch._disable_dynamo, whose first
        # call imports torch._dynamo (about 1 s). The tracer only runs eager forwards, never
        # under torch.compile, so it opts out of the wrapper (torch's documented switch).
        return False

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.state = WeakIdKeyDictionary()  # tensor -> (depth, RF | None)
        self.macs = 0
        self.other = 0
        self.macs_by_op: dict[str, int] = defaultdict(int)
        self.other_by_op: dict[str, int] = defaultdict(int)
        self.records: dict[str, ModuleRecord] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        flat_in = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)]
        outs = [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]
        if packet in _CONV_OPS:
            macs, weighted = _conv_macs(args, outs[0]), True
        elif packet in _MM_OPS:
            macs, weighted = _mm_macs(packet, args), True
        else:
            macs, weighted = 0, False
        other = 0 if weighted else _other_ops(packet, args, outs)
        if macs:
            self.macs += macs
            self.macs_by_op[str(packet)] += macs
        if other:
            self.other += other
            self.other_by_op[str(packet)] += other
        if macs or other:
            for name in set(self.stack):
                rec = self.records[name]
                rec.macs += macs
                rec.other_ops += other
        states = [self.state[t] for t in flat_in if t in self.state]
        if states and outs:
            depth = max(s[0] for s in states) + int(weighted)
            rf = _rf_update(packet, args, [s[1] for s in states if s[1] is not None], outs[0])
            for o in outs:
                self.state[o] = (depth, rf)
        return out


def _tensors(obj) -> list[torch.Tensor]:
    return [t for t in tree_flatten(obj)[0] if isinstance(t, torch.Tensor)]


def check_input_size(input_size) -> tuple[int, int, int]:
    """Validate a (C, H, W) input size; raises ``ValueError`` naming the bad value."""
    try:
        size = tuple(int(v) for v in input_size)
    except (TypeError, ValueError):
        raise ValueError(f"input size must be (C, H, W), got {input_size!r}") from None
    if len(size) != 3 or any(v != w for v, w in zip(size, input_size, strict=False)):
        raise ValueError(f"input size must be three integers (C, H, W), got {input_size!r}")
    if min(size) <= 0:
        raise ValueError(f"every dimension of the input size must be positive, got "
                         f"{'x'.join(map(str, size))}")
    return size


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t.device, t.dtype
    return torch.device("cpu"), torch.float32


def trace(model: nn.Module, input_size, *, training: bool = False) -> Trace:
    """Run one forward pass of ``model`` on a zeros input of ``(1, *input_size)`` and record
    MACs, other ops, depth, receptive fields and output shapes per module.

    The model keeps its mode, buffers, ``requires_grad`` flags, and the caller's RNG state is
    untouched. ``training=True`` traces the training-mode graph (auxiliary heads active);
    the buffers it would update are restored afterwards.
    """
    size = check_input_size(input_size)
    device, dtype = _model_device_dtype(model)
    modes = {m: m.training for m in model.modules()}
    buffers = ({k: b.detach().clone() for k, b in model.named_buffers()} if training else {})
    tracer = _Tracer()
    names = {}
    for _i, (name, m) in enumerate(model.named_modules()):
        if m not in names:
            names[m] = name
            tracer.records[name] = ModuleRecord(name or "(model)", type(m).__name__)
    order = [0]

    def pre(mod, inputs):
        name = names[mod]
        rec = tracer.records[name]
        if rec.order < 0:
            rec.order = order[0]
            order[0] += 1
        rec.calls += 1
        rec.input_shapes.append(tuple(_tensors(inputs)[0].shape) if _tensors(inputs) else ())
        tracer.stack.append(name)

    def post(mod, inputs, output):
        name = tracer.stack.pop()
        rec = tracer.records[name]
        outs = _tensors(output)
        rec.output_shapes.append(tuple(outs[0].shape) if outs else ())
        if len(outs) > 1:
            rec.output_shapes[-1] = tuple(tuple(o.shape) for o in outs)  # type: ignore[assignment]
        if outs and outs[0] in tracer.state:
            depth, rf = tracer.state[outs[0]]
            rec.depth = depth if rec.depth is None else max(rec.depth, depth)
            rec.rf = rf

    handles = []
    try:
        for m in names:
            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(post))
        model.train(training)
        x = torch.zeros(1, *size, device=device, dtype=dtype)
        tracer.state[x] = (0, RF((1, 1), (1, 1), (0.0, 0.0), (size[1], size[2])))
        fork = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=fork), torch.no_grad(), tracer:
            output = model(x)
    finally:
        for h in handles:
            h.remove()
        for m, was_training in modes.items():
            m.training = was_training
        if buffers:
            with torch.no_grad():
                for k, b in model.named_buffers():
                    b.copy_(buffers[k])
    outs = _tensors(output)
    depth = max((tracer.state[o][0] for o in outs if o in tracer.state), default=0)
    return Trace(size, tracer.macs, tracer.other, depth, tracer.records,
                 dict(tracer.macs_by_op), dict(tracer.other_by_op),
                 [tuple(o.shape) for o in outs], training)


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
    ``per_layer`` gives the MACs of every leaf module (and, under ``"<name> (own)"``, the
    operators a container runs in its own ``forward``), in execution order; other operations
    are in ``other_ops`` / ``other_per_layer``, never mixed in.
    """
    t = trace(model, input_size, training=training)
    per_layer, other_per_layer = _own_counts(t)
    return MacCount(t.macs, t.other_ops, per_layer, other_per_layer, t.macs_by_op, t.input_size)


def _own_counts(t: Trace) -> tuple[dict[str, int], dict[str, int]]:
    """Per module, the operators that ran while it was the innermost running module."""
    recs = sorted((r for r in t.modules.values() if r.calls), key=lambda r: r.order)
    macs, other = {}, {}
    for r in recs:
        prefix = "" if r.name == "(model)" else r.name + "."
        kids = [c for c in recs if c is not r and (r.name == "(model)" or
                                                    c.name.startswith(prefix))
                and "." not in c.name[len(prefix):]]
        own_m = r.macs - sum(c.macs for c in kids)
        own_o = r.other_ops - sum(c.other_ops for c in kids)
        key = r.name if not kids else f"{r.name} (own)"
        if own_m or (not kids and r.macs):
            macs[key] = own_m
        if own_o or (not kids and r.other_ops):
            other[key] = own_o
    return macs, other
