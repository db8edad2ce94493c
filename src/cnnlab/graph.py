"""The traced forward graph: every computing operation once per call, with its true shape.

One forward pass (batch 1, all-zeros input, ``torch.no_grad``, eval mode unless asked) under a
``TorchDispatchMode`` that sees every ATen operator, with forward hooks that say which module
call is running. The operators are grouped into **nodes**:

* a call of a module that calls no other module (``nn.Conv2d``, ``nn.ReLU``, a custom layer
  that computes with ``F.*``) is one node, with every operator it ran: a module called three
  times (ResNet's one ``relu`` per bottleneck) gives three nodes, each with its own input,
  output shape and place;
* an operator that a container runs in its own ``forward`` (``F.relu``, ``F.max_pool2d``,
  ``x + identity``, ``torch.cat``, ``x * gate``, ``x @ w``) is a node of its own, named after
  the container (``layer1.0.add``); views, reshapes and copies are not nodes (they pass their
  producers through).

Each node records its input nodes (``-1`` is the model's input), output shape, parameters
(a module's parameters count at its first call; a container's own parameter at the operator
that reads it), MACs and other operations (the convention of :mod:`cnnlab.analysis.macs`),
the number of weighted layers on the longest path that produced it (``depth``), its receptive
field, and a **label** a student can find on the slides (depthwise, pointwise, expansion,
squeeze-excite, bottleneck, transition, residual add, ...), derived from the module's
configuration and its neighbours, not declared by the models.

Container calls are **groups** (the module tree, one per call), each with its children (groups
and nodes) in execution order, inclusive MACs, output shape and a label that sums up its
structure ("expansion 1x1 x6 -> depthwise 3x3 -> pointwise 1x1, + identity").

The summary, the MAC attribution, the receptive fields, the depth and the explorer all read
this one graph. Tracing never changes the model (modes, buffers and the caller's random state
are restored; hooks removed even on failure), and on the ``meta`` device allocates nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

from .analysis.ops import (
    _CONV_OPS,
    _MM_OPS,
    RF,
    _conv_macs,
    _mm_macs,
    _other_ops,
    _rf_update,
    check_input_size,
)
from .errors import NotAModelError

aten = torch.ops.aten
INPUT = -1  # the id of the model's input in ``Node.inputs``

# Operators that are nodes although they count no operations: they join branches.
_JOIN_OPS = {aten.cat, aten.stack}
_OP_NAMES = {
    "max_pool2d_with_indices": "max_pool2d", "_adaptive_avg_pool2d": "adaptive_avg_pool2d",
    "_native_batch_norm_legit_no_training": "batch_norm", "_native_batch_norm_legit":
    "batch_norm", "native_batch_norm": "batch_norm", "native_layer_norm": "layer_norm",
    "native_group_norm": "group_norm", "addmm": "linear", "_softmax": "softmax",
    "_log_softmax": "log_softmax", "convolution": "conv", "_convolution": "conv",
    "hardtanh": "relu6",
}
ACTIVATION_OPS = {"relu", "relu6", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid",
                  "gelu", "elu", "leaky_relu", "mish"}
ACTIVATION_TYPES = {"ReLU", "ReLU6", "Sigmoid", "Tanh", "SiLU", "Hardswish", "Hardsigmoid",
                    "GELU", "ELU", "LeakyReLU", "Mish", "Swish"}


def op_name(func) -> str:
    name = func._overloadpacket.__name__
    name = name[:-1] if name.endswith("_") and not name.startswith("_") else name
    return _OP_NAMES.get(name, name)


# --- the data ------------------------------------------------------------------------------

@dataclass
class Node:
    """One computing call: a leaf module's call or one operator of a container's forward."""

    id: int
    name: str                 # module path, or container path + "." + operator ("layer1.0.add")
    kind: str                 # "module" or "function"
    op: str                   # module class name ("Conv2d") or operator name ("add")
    module: str               # the module's path; for a function, the container it ran in
    call: int                 # 0-based: which call of this module (of this operator in it)
    calls: int                # how many calls in the whole pass
    inputs: tuple[int, ...]   # producing node ids, INPUT (-1) for the model's input
    shape: tuple              # output shape with the batch dimension; a tuple of them if several
    params: int = 0
    trainable: int = 0
    macs: int = 0
    other_ops: int = 0
    depth: int = 0
    rf: RF | None = None
    label: str = ""
    parent: int = 0           # the id of the group it ran in
    info: dict = field(default_factory=dict)  # configuration the labels read (kernel, groups...)

    @property
    def key(self) -> str:
        """A unique name: ``name`` for the first call, ``name#k`` for the k-th (k >= 2)."""
        return self.name if self.call == 0 else f"{self.name}#{self.call + 1}"

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "key": self.key, "kind": self.kind,
                "op": self.op, "module": self.module, "call": self.call, "calls": self.calls,
                "inputs": list(self.inputs), "shape": _jsonable(self.shape),
                "params": self.params, "macs": self.macs, "other_ops": self.other_ops,
                "depth": self.depth, "rf": rf_dict(self.rf), "label": self.label,
                "parent": self.parent}


@dataclass
class Group:
    """One call of a container module: its children (groups and nodes) in execution order."""

    id: int
    name: str
    type: str
    call: int
    calls: int
    children: list = field(default_factory=list)  # Group | Node
    inputs: tuple[int, ...] = ()
    shape: tuple = ()
    in_shape: tuple = ()
    params: int = 0           # its parameters and its children's (at its first call)
    trainable: int = 0
    own_params: int = 0       # parameters it holds itself that no operator claimed
    own_trainable: int = 0
    macs: int = 0             # inclusive: every operator run during the call
    other_ops: int = 0
    depth: int = 0
    rf: RF | None = None
    label: str = ""
    parent: int | None = None

    @property
    def key(self) -> str:
        return self.name if self.call == 0 else f"{self.name}#{self.call + 1}"

    def nodes(self):
        """Every node under this group, in execution order."""
        for c in self.children:
            if isinstance(c, Group):
                yield from c.nodes()
            else:
                yield c

    def groups(self):
        yield self
        for c in self.children:
            if isinstance(c, Group):
                yield from c.groups()

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "key": self.key, "type": self.type,
                "call": self.call, "calls": self.calls, "inputs": list(self.inputs),
                "shape": _jsonable(self.shape), "params": self.params, "macs": self.macs,
                "other_ops": self.other_ops, "depth": self.depth, "rf": rf_dict(self.rf),
                "label": self.label, "parent": self.parent,
                "children": [("group" if isinstance(c, Group) else "node", c.id)
                             for c in self.children]}


@dataclass
class Graph:
    """The traced forward pass; see the module docstring."""

    input_size: tuple[int, int, int]
    root: Group
    nodes: list[Node]                    # execution order
    output_shapes: list[tuple[int, ...]]
    outputs: tuple[int, ...]             # node ids of the model's outputs
    macs: int
    other_ops: int
    depth: int
    macs_by_op: dict[str, int]
    other_by_op: dict[str, int]
    training: bool
    not_run: list[str]                   # modules that neither ran nor had a child run

    def node(self, nid: int) -> Node:
        return self._by_id[nid]

    def __post_init__(self):
        self._by_id = {n.id: n for n in self.nodes}

    def groups(self) -> list[Group]:
        return list(self.root.groups())

    def find(self, name: str) -> list[Node]:
        """Every call of the node named ``name`` (a module path or ``container.op``)."""
        return [n for n in self.nodes if n.name == name]

    def consumers(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for n in self.nodes:
            for i in n.inputs:
                out.setdefault(i, []).append(n.id)
        return out

    def to_dict(self) -> dict:
        return {"input_size": list(self.input_size), "training": self.training,
                "macs": self.macs, "other_ops": self.other_ops, "depth": self.depth,
                "outputs": list(self.outputs),
                "output_shapes": [list(s) for s in self.output_shapes],
                "nodes": [n.to_dict() for n in self.nodes],
                "groups": [g.to_dict() for g in self.groups()], "not_run": self.not_run}


def rf_dict(rf: RF | None) -> dict | None:
    if rf is None:
        return None
    return {"size": list(rf.size), "jump": list(rf.jump), "start": list(rf.start),
            "whole_map": rf.global_}


def _jsonable(shape):
    if shape and isinstance(shape[0], tuple):
        return [list(s) for s in shape]
    return list(shape)


def _spatial(shape) -> bool:
    return bool(shape) and isinstance(shape[0], int) and len(shape) >= 4


# --- the tracer ----------------------------------------------------------------------------

class _Call:
    __slots__ = ("module", "name", "type", "call", "children", "had_child", "in_prod",
                 "in_shape", "macs", "other", "own_ids", "claimed", "tick", "node",
                 "out_shape", "out_state")

    def __init__(self, module, name, call, tick):
        self.module, self.name, self.type, self.call = module, name, type(module).__name__, call
        self.children: list = []        # ("call", _Call) | ("event", Node)
        self.had_child = False
        self.in_prod: set[int] = set()
        self.in_shape: tuple = ()
        self.macs = self.other = 0
        self.own_ids = {id(p): p for p in module.parameters(recurse=False)}
        self.claimed: set[int] = set()
        self.tick = tick


class _Tracer(TorchDispatchMode):
    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # TorchDispatchMode wraps __torch_dispatch__ in torch._disable_dynamo, whose first call
        # imports torch._dynamo (about 1 s); the tracer only runs eager forwards.
        return False

    def __init__(self):
        super().__init__()
        self.stack: list[_Call] = []
        self.state = WeakIdKeyDictionary()  # tensor -> (producers, depth, RF | None)
        self.next_id = 0
        self.macs = self.other = 0
        self.macs_by_op: dict[str, int] = {}
        self.other_by_op: dict[str, int] = {}
        self.alias: dict[int, int] = {}  # an operator inside a leaf call -> that call's node

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        flat = tree_flatten((args, kwargs))[0]
        flat_in = [a for a in flat if isinstance(a, torch.Tensor)]
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
            self.macs_by_op[str(packet)] = self.macs_by_op.get(str(packet), 0) + macs
        if other:
            self.other += other
            self.other_by_op[str(packet)] = self.other_by_op.get(str(packet), 0) + other
        for c in self.stack:
            c.macs += macs
            c.other += other
        states = [self.state[t] for t in flat_in if t in self.state]
        prod: set[int] = set().union(*(s[0] for s in states)) if states else set()
        if not outs:
            return out
        depth = max([s[1] for s in states] or [0]) + int(weighted)
        rf = (_rf_update(packet, args, [s[2] for s in states if s[2] is not None], outs[0])
              if states else None)
        cur = self.stack[-1] if self.stack else None
        if cur is not None and (macs or other or (packet in _JOIN_OPS and prod)):
            node = Node(self.new_id(), "", "function", op_name(func), cur.name, 0, 1,
                        tuple(sorted(prod)), tuple(outs[0].shape), macs=macs, other_ops=other,
                        depth=depth, rf=rf, info=_op_info(packet, args, flat_in))
            for t in flat_in:  # a container's own parameter counts where it is used
                p = cur.own_ids.get(id(t))
                if p is not None and id(t) not in cur.claimed:
                    cur.claimed.add(id(t))
                    node.params += p.numel()
                    node.trainable += p.numel() if p.requires_grad else 0
            cur.children.append(("event", node))
            prod = {node.id}
        for o in outs:
            self.state[o] = (frozenset(prod), depth, rf)
        return out


def _op_info(packet, args, tensors) -> dict:
    info: dict = {}
    if packet in _CONV_OPS:
        w = args[1]
        info.update(kernel=tuple(int(k) for k in w.shape[2:]), stride=tuple(args[3]),
                    groups=int(args[8]) if len(args) > 8 else 1,
                    in_channels=int(args[0].shape[1]), out_channels=int(w.shape[0]))
    elif packet in (aten.max_pool2d_with_indices, aten.max_pool2d, aten.avg_pool2d):
        k = args[1]
        k = (k, k) if isinstance(k, int) else tuple(k) * (2 if len(k) == 1 else 1)
        s = args[2] if len(args) > 2 and args[2] else k
        s = (s, s) if isinstance(s, int) else tuple(s) * (2 if len(s) == 1 else 1)
        info.update(kernel=k, stride=s)
    elif packet in _JOIN_OPS:
        info["n"] = len([t for t in tree_flatten(args[0])[0] if isinstance(t, torch.Tensor)])
    elif packet in (aten.add, aten.mul, aten.sub, aten.div):
        info["tensors"] = len([t for t in tensors if t.dim() >= 2])
    return info


def _tensors(obj) -> list[torch.Tensor]:
    return [t for t in tree_flatten(obj)[0] if isinstance(t, torch.Tensor)]


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t.device, t.dtype
    return torch.device("cpu"), torch.float32


def trace_graph(model: nn.Module, input_size, *, training: bool = False) -> Graph:
    """Trace one forward pass of ``model`` on a zeros input ``(1, *input_size)``: the graph.

    The model keeps its mode, buffers and ``requires_grad`` flags, and the caller's random
    state is untouched. ``training=True`` traces the training-mode graph (auxiliary heads
    active); the buffers it would update are restored afterwards.
    """
    NotAModelError.check(model, "trace_graph")
    size = check_input_size(input_size)
    device, dtype = _model_device_dtype(model)
    modes = {m: m.training for m in model.modules()}
    buffers = ({k: b.detach().clone() for k, b in model.named_buffers()} if training else {})
    tracer = _Tracer()
    names: dict[nn.Module, str] = {}
    for name, m in model.named_modules():
        names.setdefault(m, name)
    calls: dict[str, int] = {}
    ticks = [0]
    leaves: list[tuple[_Call, Node]] = []
    root_holder: list[_Call] = []

    def pre(mod, inputs):
        name = names[mod]
        k = calls.get(name, 0)
        calls[name] = k + 1
        ticks[0] += 1
        call = _Call(mod, name, k, ticks[0])
        ts = _tensors(inputs)
        for t in ts:
            s = tracer.state.get(t)
            if s is not None:
                call.in_prod |= s[0]
        call.in_shape = tuple(ts[0].shape) if ts else ()
        if tracer.stack:
            parent = tracer.stack[-1]
            parent.children.append(("call", call))
            parent.had_child = True
        else:
            root_holder.append(call)
        tracer.stack.append(call)

    def post(mod, inputs, output):
        call = tracer.stack.pop()
        outs = _tensors(output)
        shape = _out_shape(outs)
        if call.had_child:
            call.out_shape = shape  # type: ignore[attr-defined]
            s = tracer.state.get(outs[0]) if outs else None
            call.out_state = s  # type: ignore[attr-defined]
            return
        # a leaf call: one node with every operator it ran
        inside = {n.id for kind, n in call.children if kind == "event"}
        ext = set(call.in_prod)
        for _, n in call.children:
            ext |= {i for i in n.inputs if i not in inside}
        s = tracer.state.get(outs[0]) if outs else None
        depth, rf = (s[1], s[2]) if s is not None else (0, None)
        node = Node(tracer.new_id(), call.name, "module", call.type, call.name, call.call, 0,
                    tuple(sorted(ext)), shape, macs=call.macs, other_ops=call.other,
                    depth=depth, rf=rf, info=_module_info(mod, call))
        node.info["events"] = [n.op for _, n in call.children]
        for i in inside:
            tracer.alias[i] = node.id
        call.children = []
        call.node = node  # type: ignore[attr-defined]
        leaves.append((call, node))
        for o in outs:
            st = tracer.state.get(o)
            tracer.state[o] = (frozenset({node.id}), st[1] if st else depth,
                               st[2] if st else rf)

    handles = []
    try:
        for m in names:
            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(post))
        model.train(training)
        x = torch.zeros(1, *size, device=device, dtype=dtype)
        tracer.state[x] = (frozenset({INPUT}), 0,
                           RF((1, 1), (1, 1), (0.0, 0.0), (size[1], size[2])))
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
    out_ids = tuple(sorted(set().union(*(tracer.state[o][0] for o in outs
                                          if o in tracer.state)))) if outs else ()
    depth = max((tracer.state[o][1] for o in outs if o in tracer.state), default=0)
    root_call = root_holder[0]
    graph = _assemble(model, names, root_call, calls, size, outs, out_ids, depth, tracer,
                      training)
    label_graph(graph, model)
    return graph


def _out_shape(outs: list[torch.Tensor]) -> tuple:
    if not outs:
        return ()
    if len(outs) > 1:
        return tuple(tuple(o.shape) for o in outs)
    return tuple(outs[0].shape)


def _module_info(mod: nn.Module, call: _Call) -> dict:
    info: dict = {}
    if isinstance(mod, nn.modules.conv._ConvNd):
        info.update(kernel=tuple(mod.kernel_size), stride=tuple(mod.stride), groups=mod.groups,
                    in_channels=mod.in_channels, out_channels=mod.out_channels)
    elif isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
        k = mod.kernel_size
        s = mod.stride if mod.stride else k
        info.update(kernel=(k, k) if isinstance(k, int) else tuple(k),
                    stride=(s, s) if isinstance(s, int) else tuple(s))
    elif isinstance(mod, nn.Linear):
        info.update(in_features=mod.in_features, out_features=mod.out_features)
    elif hasattr(mod, "dense_weight"):  # LeNet-5's sparse C3: a convolution
        w = mod.dense_weight()
        info.update(kernel=tuple(w.shape[2:]), stride=(1, 1), groups=1,
                    in_channels=int(w.shape[1]), out_channels=int(w.shape[0]))
    return info


def _assemble(model, names, root_call, calls, size, outs, out_ids, depth, tracer, training
              ) -> Graph:
    modules = dict(model.named_modules())
    seen_params: set[int] = set()
    nodes: list[Node] = []
    op_calls: dict[tuple[str, str], int] = {}

    def params_of(mod: nn.Module, own_only: bool = False):
        ps = [p for p in (mod.parameters(recurse=not own_only)) if id(p) not in seen_params]
        ps = list({id(p): p for p in ps}.values())
        seen_params.update(id(p) for p in ps)
        return sum(p.numel() for p in ps), sum(p.numel() for p in ps if p.requires_grad)

    def build(call: _Call, parent: int | None) -> Group | Node:
        if not call.had_child:
            node = call.node  # type: ignore[attr-defined]
            node.calls = calls[call.name]
            if call.call == 0:
                node.params, node.trainable = params_of(call.module)
            node.parent = parent if parent is not None else 0
            nodes.append(node)
            return node
        gid = tracer.new_id()
        g = Group(gid, call.name, call.type, call.call, calls[call.name], parent=parent,
                  inputs=tuple(sorted(call.in_prod)), shape=call.out_shape,  # type: ignore
                  in_shape=call.in_shape, macs=call.macs, other_ops=call.other)
        st = call.out_state  # type: ignore[attr-defined]
        if st is not None:
            g.depth, g.rf = st[1], st[2]
        first = call.call == 0
        if first:  # every parameter under it, counted here once
            ps = list({id(p): p for p in call.module.parameters()}.values())
            g.params = sum(p.numel() for p in ps)
            g.trainable = sum(p.numel() for p in ps if p.requires_grad)
        for kind, item in call.children:
            if kind == "call":
                g.children.append(build(item, gid))
            else:
                k = (call.name, item.op)
                item.call = op_calls.get(k, 0)
                op_calls[k] = item.call + 1
                item.name = f"{call.name}.{item.op}" if call.name else item.op
                if item.name in modules and modules[item.name] is not call.module:
                    item.name += "()"  # a child module has the operator's name
                seen_params.update(id(p) for p in call.own_ids.values()
                                   if id(p) in call.claimed)
                item.parent = gid
                nodes.append(item)
                g.children.append(item)
        if first:
            g.own_params, g.own_trainable = params_of(call.module, own_only=True)
        return g

    root = build(root_call, None)
    if isinstance(root, Node):  # the model is a single layer: a root group around it
        root = Group(0, "", type(model).__name__, 0, 1, [root], shape=root.shape,
                     macs=root.macs, other_ops=root.other_ops, depth=root.depth, rf=root.rf)
        root.children[0].parent = 0
        root.params, root.trainable = root.children[0].params, root.children[0].trainable
    for n in nodes:
        if n.kind == "function":
            n.calls = op_calls[(n.module, n.op)]
    mapping = _renumber(root, nodes, tracer.alias)
    out_ids = tuple(sorted({_resolve(i, tracer.alias, mapping) for i in out_ids}))
    ran = set(calls)
    not_run = [n for n in modules if n and n not in ran
               and not any(k.startswith(n + ".") for k in ran)]
    graph = Graph(size, root, nodes, [tuple(o.shape) for o in outs], out_ids, tracer.macs,
                  tracer.other, depth, dict(tracer.macs_by_op), dict(tracer.other_by_op),
                  training, not_run)
    return graph


def _resolve(i: int, alias: dict[int, int], mapping: dict[int, int]) -> int:
    while i in alias:
        i = alias[i]
    return mapping.get(i, i) if i != INPUT else INPUT


def _renumber(root: Group, nodes: list[Node], alias: dict[int, int]) -> dict[int, int]:
    """Node ids 0..n-1 in execution order, group ids 0 (the model) .. in pre-order; every
    input resolved through the operators a leaf call absorbed."""
    mapping = {n.id: i for i, n in enumerate(nodes)}
    gmap = {g.id: i for i, g in enumerate(root.groups())}
    for n in nodes:
        me = mapping[n.id]
        n.inputs = tuple(sorted({_resolve(i, alias, mapping) for i in n.inputs} - {me}))
    for g in root.groups():
        g.inputs = tuple(sorted({_resolve(i, alias, mapping) for i in g.inputs}))
    for n in nodes:
        n.id = mapping[n.id]
        n.parent = gmap.get(n.parent, 0)
    for g in root.groups():
        g.parent = gmap[g.parent] if g.parent is not None else None
    for g in root.groups():
        g.id = gmap[g.id]
    return mapping


# --- labels a student can find on the slides ----------------------------------------------

_PASS_TYPES = {"BatchNorm2d", "BatchNorm1d", "Identity", "Dropout", "StochasticDepth",
               "batch_norm", "dropout", "LocalResponseNorm", "GroupNorm", "LayerNorm"}
_GLOBAL_POOL_OPS = {"mean", "adaptive_avg_pool2d", "adaptive_max_pool2d", "amax"}


def _k(kernel) -> str:
    return "x".join(str(int(v)) for v in kernel)


def _stride(info) -> str:
    s = info.get("stride") or (1, 1)
    return f", stride {s[0]}" if max(s) > 1 else ""


def _is_conv(n: Node) -> bool:
    return "kernel" in n.info and "groups" in n.info


def _is_depthwise(n: Node) -> bool:
    i = n.info
    return _is_conv(n) and i["groups"] > 1 and i["groups"] == i["in_channels"]


def _is_pointwise_shape(n: Node) -> bool:
    return _is_conv(n) and tuple(n.info["kernel"]) == (1, 1) and n.info["groups"] == 1


def _passes(n: Node) -> bool:
    return (n.op in _PASS_TYPES or n.op in ACTIVATION_TYPES or n.op in ACTIVATION_OPS
            or n.op == "mul" or (n.kind == "module" and not n.macs and not n.other_ops))


class _Walk:
    def __init__(self, graph: Graph):
        self.g = graph
        self.cons = graph.consumers()

    def back(self, n: Node) -> Node | None:
        """The weighted layer (or pooling, or join) that feeds ``n`` through BN/activations."""
        cur = n
        while True:
            ins = [i for i in cur.inputs if i != INPUT]
            if len(ins) > 1:  # a channel gate (x * s): follow the full-size input
                same = [i for i in ins if self.g.node(i).shape == cur.shape]
                ins = same if len(same) == 1 else ins
            if len(ins) != 1:
                return None
            cur = self.g.node(ins[0])
            if not _passes(cur):
                return cur

    def forward(self, n: Node) -> Node | None:
        cur = n
        while True:
            nxt = self.cons.get(cur.id, [])
            if len(nxt) != 1:
                return None
            cur = self.g.node(nxt[0])
            if not _passes(cur):
                return cur


def _node_label(n: Node, walk: _Walk) -> str:
    i = n.info
    if _is_conv(n):
        k, st = _k(i["kernel"]), _stride(i)
        if _is_depthwise(n):
            mult = i["out_channels"] // i["in_channels"]
            return f"depthwise {k}{st}" + (f" (x{mult} per channel)" if mult > 1 else "")
        if i["groups"] > 1:
            return f"grouped {k}{st} ({i['groups']} groups)"
        if _is_pointwise_shape(n):
            prev, nxt = walk.back(n), walk.forward(n)
            if prev is not None and _is_depthwise(prev):
                return "pointwise 1x1" + (" (linear projection)" if i["out_channels"] <
                                          i["in_channels"] and not _activated(n, walk) else "")
            if nxt is not None and _is_depthwise(nxt) and i["out_channels"] > i["in_channels"]:
                ratio = i["out_channels"] / i["in_channels"]
                return f"expansion 1x1 (x{ratio:.3g})"
            return f"1x1{st}"
        return f"{k} conv{st}"
    if "in_features" in i or n.op == "linear":
        return "fully connected"
    if n.op in ("mm", "bmm", "matmul"):
        return "matrix product (fully connected)"
    if n.op in ("max_pool2d", "avg_pool2d") or n.op in ("MaxPool2d", "AvgPool2d"):
        kind = "max" if "max" in n.op.lower() else "average"
        if "kernel" in i:
            return f"{kind}-pool {_k(i['kernel'])}{_stride(i)}"
        return f"{kind}-pool"
    if n.op in _GLOBAL_POOL_OPS or n.op.startswith("AdaptiveAvgPool") or n.op.startswith(
            "AdaptiveMaxPool"):
        src = [walk.g.node(j).shape for j in n.inputs if j != INPUT]
        if src and _spatial(src[0]) and tuple(src[0][2:]) == (1, 1) and src[0] == n.shape:
            n.info["noop"] = True  # pooling a 1x1 map: nothing changes
            return ""
        if _spatial(n.shape) and tuple(n.shape[2:]) != (1, 1):
            return "adaptive pool"
        return "global average pool" if "max" not in n.op.lower() else "global max pool"
    if n.op in ("cat", "stack"):
        return f"concatenate {i.get('n', 2)}"
    if n.op == "add" and i.get("tensors", 0) >= 2:
        return "add"
    return ""


def _activated(n: Node, walk: _Walk) -> bool:
    cur = n
    while True:
        nxt = walk.cons.get(cur.id, [])
        if len(nxt) != 1:
            return False
        cur = walk.g.node(nxt[0])
        if cur.op in ACTIVATION_TYPES or cur.op in ACTIVATION_OPS:
            return True
        if not _passes(cur):
            return False


def _direct_nodes(g: Group) -> list[Node]:
    return [c for c in g.children if isinstance(c, Node)]


def _weighted(g: Group) -> list[Node]:
    return [n for n in g.nodes() if n.macs and (_is_conv(n) or "in_features" in n.info
                                                or n.op in ("linear", "mm", "conv"))]


def _is_se(g: Group) -> bool:
    t = g.type.lower()
    if "squeeze" in t or t in ("se", "semodule", "selayer"):
        return True
    nodes = list(g.nodes())
    return (any(n.op in _GLOBAL_POOL_OPS or n.op.startswith("AdaptiveAvgPool") for n in nodes)
            and any(n.op == "mul" and n.info.get("tensors", 0) >= 2 for n in nodes)
            and len(_weighted(g)) == 2)


def _chain(g: Group, walk: _Walk) -> list[str]:
    """The labels of a group's layers in order, a squeeze-excite sub-block as one item."""
    out: list[str] = []
    for c in g.children:
        if isinstance(c, Group):
            if _is_se(c):
                out.append("squeeze-excite")
            else:
                out += _chain(c, walk)
        elif c.label and (_is_conv(c) or "pool" in c.label or c.label == "fully connected"):
            out.append(c.label)
    return out


def label_graph(graph: Graph, model: nn.Module) -> None:
    """Fill ``label`` of every node and group (see the module docstring)."""
    walk = _Walk(graph)
    for n in graph.nodes:
        n.label = _node_label(n, walk)
    groups = graph.groups()
    for g in groups:  # context the blocks give their layers
        t = g.type.lower()
        if _is_se(g):
            w = _weighted(g)
            c, s = w[0].info.get("in_channels"), w[0].info.get("out_channels")
            g.label = f"squeeze-excite ({c} -> {s} -> {c} channels)" if c else "squeeze-excite"
            w[0].label, w[1].label = "squeeze-excite: reduce", "squeeze-excite: expand"
            for n in g.nodes():
                if n.op in _GLOBAL_POOL_OPS or n.op.startswith("AdaptiveAvgPool"):
                    n.label = "squeeze: global average pool"
                elif n.op == "mul":
                    n.label = "excite: scale each channel"
        elif "transition" in t:
            for n in g.nodes():
                if _is_conv(n):
                    i = n.info
                    n.label = f"transition 1x1 ({i['in_channels']} -> {i['out_channels']})"
                elif "pool" in n.label:
                    n.label = "transition " + n.label
            g.label = "transition: BN-ReLU-1x1 conv (compression) + 2x2 average pool"
        elif "denselayer" in t:
            w = _weighted(g)
            if w and _is_pointwise_shape(w[0]):
                w[0].label = f"bottleneck 1x1 (DenseNet-B, {w[0].info['out_channels']} maps)"
            growth = w[-1].info.get("out_channels") if w else "?"
            g.label = f"dense layer: bottleneck 1x1 -> 3x3 ({growth} new maps)"
            for n in _direct_nodes(g):
                if n.op == "cat":
                    n.label = "concatenate every earlier map"
        elif "denseblock" in t:
            layers = [c for c in g.children if isinstance(c, Group)]
            g.label = f"dense block: {len(layers)} layers, every output concatenated"
            for n in _direct_nodes(g):
                if n.op == "cat":
                    n.label = f"concatenate the input and {len(layers)} layers' maps"
    for g in reversed(groups):  # inner groups first: residual adds, branches, chains
        if g.label:
            continue
        _label_block(g, walk)


def _label_block(g: Group, walk: _Walk) -> None:
    ins = set(g.inputs)
    adds = [n for n in _direct_nodes(g) if n.op == "add" and n.info.get("tensors", 0) >= 2]
    shortcut = ""
    for a in adds:
        if ins & set(a.inputs) or (INPUT in ins and INPUT in a.inputs):
            a.label, shortcut = "residual add (identity shortcut)", "identity"
        else:
            a.label, shortcut = "residual add (projection shortcut)", "projection shortcut"
    down = [c for c in g.children if (isinstance(c, Group) or c.kind == "module")
            and any(x in c.name.rsplit(".", 1)[-1] for x in ("down", "shortcut", "proj", "skip"))]
    for d in down:
        chain = _chain(d, walk) if isinstance(d, Group) else [d.label] if d.label else []
        if chain:
            d.label = "projection shortcut: " + " -> ".join(chain)
    cats = [n for n in _direct_nodes(g) if n.op == "cat"]
    starts = [c for c in g.children if c.inputs and set(c.inputs) <= ins and c not in cats]
    t = g.type.lower()
    if cats and len(starts) >= 2:
        branches = []
        for b in starts:
            chain = _chain(b, walk) if isinstance(b, Group) else ([b.label] if b.label else [])
            text = " -> ".join(chain) or (b.label or (b.type if isinstance(b, Group) else b.op))
            branches.append(text)
            if isinstance(b, Group) and not b.label:
                b.label = f"branch {len(branches)}: {text}"
        g.label = (f"{len(branches)} parallel branches, concatenated: " + " | ".join(branches))
        if "inception" in t:
            g.label = "inception module: " + g.label
        return
    main = [c for c in g.children if c not in down]
    chain: list[str] = []
    for c in main:
        if isinstance(c, Group):
            chain += ["squeeze-excite"] if _is_se(c) else _chain(c, walk)
        elif c.label.startswith("matrix product"):
            chain.append(c.label)
        elif c.label and (_is_conv(c) or "pool" in c.label or c.label == "fully connected"):
            chain.append(c.label)
    if len(chain) > 5:
        return  # a stage or a whole network: its blocks say it
    text = " -> ".join(chain)
    if "invertedresidual" in t or "mbconv" in t:
        text = "inverted residual: " + text
    elif "bottleneck" in t and len(chain) == 3:
        text = "bottleneck: " + text
        w = _weighted(g)
        w = [n for n in w if not any(n.module.startswith(d.name + ".") for d in down)]
        if len(w) == 3 and _is_pointwise_shape(w[0]) and _is_pointwise_shape(w[2]):
            w[0].label = w[0].label.replace("1x1", "1x1 reduce", 1)
            w[2].label = w[2].label.replace("1x1", "1x1 expand", 1)
            text = "bottleneck: " + " -> ".join(
                [w[0].label, w[1].label, w[2].label])
    elif any(x in t for x in ("separable",)) and chain:
        text = "depthwise separable: " + text
    if shortcut:
        text += f", + {shortcut}"
    g.label = text

