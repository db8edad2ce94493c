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

from dataclasses import dataclass, field

from torch import nn

from ..errors import NotAModelError
from ..graph import trace_graph
from .ops import RF  # the operator rules live in ops.py, shared with graph.py

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


def trace(model: nn.Module, input_size, *, training: bool = False) -> Trace:
    """Run one forward pass of ``model`` on a zeros input of ``(1, *input_size)`` and record
    MACs, other ops, depth, receptive fields and output shapes per module.

    A per-module view of the traced graph (:func:`cnnlab.graph.trace_graph`): a module's
    record sums its calls (MACs inclusive of its children), its depth and field are those of
    its last call's output. The model keeps its mode, buffers, ``requires_grad`` flags, and
    the caller's RNG state is untouched.
    """
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
