"""A Keras-style summary of a model: one row per call, totals in the footer.

Rows are read off the traced forward graph (:mod:`cnnlab.graph`): every block (container
call), every call of a layer (a module called three times: three rows, its parameters counted
at the first) and every operator a block runs in its own ``forward`` (``layer1.0.add``,
``inception3a.cat``), nested rows indented down to the depth the caller picks (the depth changes
only what is shown, never the totals). An activation applied to the output of the layer right
before it is shown in that layer's row (``BatchNorm2d+ReLU``). Columns: name, type, output
shape (batch dimension left out), parameters (the module's own and its children's), MACs
(every operator that ran inside it, see :mod:`cnnlab.analysis.macs`) and the role a student
finds on the slides (depthwise, pointwise, expansion, squeeze-excite, bottleneck, transition,
residual add ..., derived in :mod:`cnnlab.graph`). Modules that the traced pass did not run
(auxiliary classifiers in eval mode) are listed with their parameters and ``(not run)``.

Footer: total, trainable and non-trainable parameters (shared parameters counted once),
buffer elements (BN running statistics: state, not parameters), parameter size in MB
(float32, 1 MB = 2^20 bytes as in the Keras Applications table), MACs and FLOPs (= 2 x MACs)
with the counting convention, other operations in their own line, and the depth: the number
of weighted layers (convolutions and linear layers) on the longest path from input to output.
Every convolution counts once: a depthwise-separable convolution counts 2 (depthwise +
pointwise), an SE block's two 1x1 convolutions count, a projection shortcut does not lengthen
the path. That equals the papers' figure for LeNet-5 (5), AlexNet (8), VGG (11-19) and
ResNet (18-152), but not where a paper counts otherwise: Xception gives 71 here (the paper
counts 36 convolutional layers, a separable convolution as one and without the 1x1
shortcuts), Inception v3 48 (the paper's 42), EfficientNet-B0 82 (the "18" of its Table 1
counts stages' layers: the stem, 16 MBConv blocks and the head convolution). Keras's Depth
column is a third convention: see :mod:`cnnlab.analysis.keras`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from ..errors import NotAModelError, UsageError
from ..graph import ACTIVATION_OPS, ACTIVATION_TYPES, Graph, Group, Node, trace_graph

MAC_CONVENTION = ("MACs = multiply-accumulates of convolutions (incl. grouped/depthwise) and "
                  "linear layers/matmul, batch 1, biases not counted; FLOPs = 2 x MACs")
OTHER_CONVENTION = ("other ops = normalisation, activations, pooling, element-wise add/mul: one "
                    "per output element (k*k per pooled element), not included in MACs")
DEPTH_CONVENTION = ("depth = weighted layers (conv + linear) on the longest input-to-output "
                    "path, every convolution once (a depthwise-separable conv counts 2, SE "
                    "convs count): the papers' figure for LeNet/AlexNet/VGG/ResNet, not for "
                    "Xception, Inception v3 or EfficientNet, whose papers count otherwise")
ROW_CONVENTION = ("rows = every call in the traced graph (a module called 3 times: 3 rows, its "
                  "parameters counted at the first); lower-case types are functions run in a "
                  "block's forward (add, cat, max_pool2d); 'Conv2d+ReLU' = the activation applied "
                  "to that layer's output")
MB = 2**20


@dataclass
class SummaryRow:
    name: str
    type: str
    level: int
    output_shape: str
    params: int
    trainable: int
    macs: int
    other_ops: int
    calls: int
    changes_shape: bool
    always_shown: bool = False
    call: int = 1            # which call of the module (of the operator in its container)
    kind: str = "module"     # module | function | group | own | not run
    label: str = ""          # the slides' word for it: depthwise, pointwise, expansion ...
    key: str = ""            # unique: name, or name#k for the k-th call
    node: int | None = None  # the graph node (kind module/function) or group id (group)
    rf: list | None = None   # receptive field (H, W) of the output, input pixels
    rf_whole_map: bool = False
    folded_into: str = ""    # an activation shown in the row of the layer it follows
    noop: bool = False       # changes nothing here (a global pool of a 1x1 map)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @property
    def role(self) -> str:
        """The label column: the label, and which call this row is when there are several."""
        call = f"call {self.call} of {self.calls}" if self.calls > 1 else ""
        return "; ".join(x for x in (self.label, call) if x)


@dataclass
class ModelSummary:
    """Everything :func:`summary` found; ``str()`` gives the table, ``to_dict()`` the data."""

    model_name: str
    input_size: tuple[int, int, int]
    rows: list[SummaryRow]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    buffer_elements: int
    param_bytes: int
    macs: int
    other_ops: int
    depth: int
    output_shapes: list[tuple[int, ...]]
    training: bool
    max_depth: int = 3
    graph: Graph | None = field(default=None, repr=False, compare=False)
    conventions: dict = field(default_factory=lambda: {
        "macs": MAC_CONVENTION, "other_ops": OTHER_CONVENTION, "depth": DEPTH_CONVENTION,
        "rows": ROW_CONVENTION, "size": "parameter size = float32 bytes / 2^20 (MB)"})

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def size_mb(self) -> float:
        return self.param_bytes / MB

    def visible_rows(self, max_depth: int | None = None) -> list[SummaryRow]:
        depth = self.max_depth if max_depth is None else max_depth
        if depth < 1:
            raise UsageError(f"depth must be at least 1, got {depth}")
        return [r for r in self.rows if r.level <= depth and not r.folded_into
                and (r.params or r.changes_shape or r.macs or r.always_shown
                     or r.kind == "function" or ((r.other_ops or r.label) and not r.noop))]

    def to_dict(self, max_depth: int | None = None) -> dict:
        c, h, w = self.input_size
        return {
            "model": self.model_name, "input_size": [c, h, w], "batch": 1,
            "mode": "train" if self.training else "eval",
            "layers": [r.to_dict() for r in self.visible_rows(max_depth)],
            "total_params": self.total_params, "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "buffer_elements": self.buffer_elements,
            "param_size_mb": round(self.size_mb, 4), "macs": self.macs, "flops": self.flops,
            "other_ops": self.other_ops, "depth": self.depth,
            "output_shapes": [list(s) for s in self.output_shapes],
            "conventions": self.conventions,
        }

    def table(self, max_depth: int | None = None) -> str:
        rows = self.visible_rows(max_depth)
        header = ("Layer", "Type", "Output shape", "Params", "MACs", "Role")
        body = [("  " * (r.level - 1) + r.name, r.type, r.output_shape, f"{r.params:,}",
                 f"{r.macs:,}", r.role) for r in rows]
        widths = [max(len(x[i]) for x in [header, *body]) for i in range(6)]

        def fmt(cells):
            return "  ".join(c.rjust(w) if i in (3, 4) else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths, strict=False))).rstrip()

        line = "=" * len(fmt(["x" * w for w in widths[:5]]))
        c, h, w = self.input_size
        outs = ", ".join("x".join(str(d) for d in s[1:]) for s in self.output_shapes)
        out = [f"{self.model_name}: input {c}x{h}x{w}, batch 1, "
               f"{'train' if self.training else 'eval'} mode", line, fmt(header),
               "-" * len(line)]
        out += [fmt(b) for b in body]
        out += [line,
                f"Output: {outs}",
                f"Total params: {self.total_params:,}",
                f"Trainable params: {self.trainable_params:,}",
                f"Non-trainable params: {self.non_trainable_params:,}",
                f"Buffers: {self.buffer_elements:,} elements (BN running statistics etc.; "
                "not parameters)",
                f"Params size (float32): {self.size_mb:.2f} MB (1 MB = 2^20 bytes)",
                f"MACs: {self.macs:,} ({human(self.macs)})",
                f"FLOPs: {self.flops:,} ({human(self.flops)}) = 2 x MACs",
                f"Other ops: {self.other_ops:,} (not in MACs/FLOPs)",
                f"Depth: {self.depth} weighted layers",
                line,
                f"Counting: {MAC_CONVENTION}.",
                f"          {OTHER_CONVENTION}.",
                f"          {DEPTH_CONVENTION}; row params include the children's.",
                f"          {ROW_CONVENTION}."]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


def human(n: float) -> str:
    """1234567 -> '1.235 M'; for readable MAC and parameter counts."""
    for div, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3f} {unit}"
    return f"{n:g}"


def _shape_str(shape) -> str:
    if not shape:
        return "-"
    if isinstance(shape[0], tuple):  # several outputs (AuxOutput, tuples)
        return ", ".join(_shape_str(s) for s in shape)
    return "x".join(str(d) for d in shape[1:]) or "scalar"


def _always_shown(module: nn.Module) -> bool:
    """Normalisation layers (LRN, BN, ...) get a row even without parameters: a reader looks
    for them (VGG A-LRN's one LRN layer is the point of that configuration)."""
    return isinstance(module, (nn.LocalResponseNorm, nn.modules.batchnorm._NormBase,
                               nn.GroupNorm, nn.LayerNorm)) or type(module).__name__.endswith(
        ("ResponseNorm", "Norm", "Norm2d"))


def _unique_params(module: nn.Module) -> list[nn.Parameter]:
    return list({id(p): p for p in module.parameters()}.values())


def _is_activation(row: SummaryRow) -> bool:
    t = row.type
    return t in ACTIVATION_TYPES or t in ACTIVATION_OPS


def rows_from_graph(graph: Graph, model: nn.Module) -> list[SummaryRow]:
    """The summary's rows, in execution order: one per group (container call), per node
    (leaf module call or operator of a container), then modules that did not run."""
    modules = dict(model.named_modules())
    rows: list[SummaryRow] = []

    def level(name: str) -> int:
        return name.count(".") + 1

    def rf_of(x):
        return (list(x.rf.size), x.rf.global_) if x.rf is not None else (None, False)

    def in_shape(n: Node):
        ins = [graph.node(i).shape for i in n.inputs if i != -1]
        if -1 in n.inputs or not ins:
            ins.append((1, *graph.input_size))
        return ins[0]

    def walk(g: Group) -> None:
        for c in g.children:
            if isinstance(c, Group):
                rf, whole = rf_of(c)
                rows.append(SummaryRow(
                    c.name, c.type, level(c.name), _shape_str(c.shape), c.params, c.trainable,
                    c.macs, c.other_ops, c.calls, c.in_shape != c.shape,
                    _always_shown(modules.get(c.name)), c.call + 1, "group", c.label, c.key,
                    c.id, rf, whole))
                walk(c)
                if c.own_params:
                    name = f"{c.name}.(own)"
                    rows.append(SummaryRow(name, "(own)", level(name), "-", c.own_params,
                                           c.own_trainable, 0, 0, c.calls, False, True,
                                           c.call + 1, "own", "parameters the block holds "
                                           "itself", name))
            else:
                rf, whole = rf_of(c)
                rows.append(SummaryRow(
                    c.name, c.op, level(c.name), _shape_str(c.shape), c.params, c.trainable,
                    c.macs, c.other_ops, c.calls, tuple(in_shape(c)) != tuple(c.shape),
                    _always_shown(modules.get(c.name)) if c.kind == "module" else False,
                    c.call + 1, c.kind, c.label, c.key, c.id, rf, whole,
                    noop=bool(c.info.get("noop"))))

    walk(graph.root)
    if graph.root.own_params:
        rows.append(SummaryRow("(own)", "(own)", 1, "-", graph.root.own_params,
                               graph.root.own_trainable, 0, 0, 1, False, True, 1, "own",
                               "parameters the model holds itself", "(own)"))
    _fold_activations(rows, graph)
    _add_uncalled(rows, graph, model)
    return rows


def _fold_activations(rows: list[SummaryRow], graph: Graph) -> None:
    """An activation applied to the output of the layer right before it (its only input,
    same shape, same block) is shown in that layer's row: ``BatchNorm2d + ReLU``."""
    def parent(r: SummaryRow) -> str:
        return r.name.rsplit(".", 1)[0] if "." in r.name else ""

    prev = None
    for r in rows:
        if (prev is not None and _is_activation(r) and r.kind in ("module", "function")
                and prev.kind in ("module", "function") and prev.level == r.level
                and parent(prev) == parent(r) and prev.output_shape == r.output_shape
                and graph.node(r.node).inputs == (prev.node,)):
            r.folded_into = prev.key
            prev.type = f"{prev.type}+{r.type}"
            continue
        prev = r


def _add_uncalled(rows: list[SummaryRow], graph: Graph, model: nn.Module) -> None:
    """Modules the pass never called: a container whose children ran (``classifier[:-1]``
    slices a Sequential into a new one whose hooks never fire) gets a row before them with
    their sums; a module that did not run at all (an auxiliary head in eval mode) is listed
    with its parameters and the shape ``(not run)``, after the module registered before it."""
    names = [n for n, _ in model.named_modules() if n]
    mods = dict(model.named_modules())
    have = {r.name for r in rows}
    leaf_calls = {r.name for r in rows if r.kind == "module"}
    not_run = set(graph.not_run)
    for n in names:
        if n in have or n in not_run:
            continue
        prefix = n + "."
        idx = [i for i, r in enumerate(rows) if r.name.startswith(prefix)]
        if not idx:
            continue
        under = [rows[i] for i in idx if rows[i].kind in ("module", "function")]
        params = _unique_params(mods[n])
        last = rows[idx[-1]]
        rows.insert(idx[0], SummaryRow(
            n, type(mods[n]).__name__, n.count(".") + 1, last.output_shape,
            sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad),
            sum(r.macs for r in under), sum(r.other_ops for r in under), 0, True,
            _always_shown(mods[n]), 1, "group", "", n))
        have.add(n)
    previous = ""
    for n in names:
        if n not in not_run:
            if n in have:
                previous = n
            continue
        if any(n.startswith(a + ".") for a in leaf_calls):
            continue  # part of a layer that computes with its children's weights itself
        at = len(rows)
        if previous:  # after the whole block (and its operators) registered before it
            previous = ".".join(previous.split(".")[:n.count(".") + 1])
            pre = previous + "."
            hits = [i for i, r in enumerate(rows) if r.name == previous or r.name.startswith(pre)]
            at = (hits[-1] + 1) if hits else at
        params = _unique_params(mods[n])
        rows.insert(at, SummaryRow(
            n, type(mods[n]).__name__, n.count(".") + 1, "(not run)",
            sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad),
            0, 0, 0, False, _always_shown(mods[n]), 1, "not run", "", n))
        have.add(n)
        previous = n


def summary(model: nn.Module, input_size, *, depth: int = 3, training: bool = False
            ) -> ModelSummary:
    """Summarise ``model`` for one ``(C, H, W)`` input (batch 1).

    Traces the forward graph once (eval mode unless ``training=True``; see
    :mod:`cnnlab.graph`) and leaves the model as it was. On a model built under
    ``torch.device("meta")`` nothing is allocated. ``depth`` is the default display depth of
    ``str()``/``table()``/``to_dict()``; ``.graph`` is the traced graph itself.
    """
    NotAModelError.check(model, "summary")
    if not isinstance(depth, int) or depth < 1:
        raise UsageError(f"depth must be a positive integer, got {depth!r}")
    graph = trace_graph(model, input_size, training=training)
    rows = rows_from_graph(graph, model)
    params = _unique_params(model)
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    buffers = sum(b.numel() for n, b in model.state_dict(keep_vars=True).items()
                  if not isinstance(b, nn.Parameter))
    size = sum(p.numel() for p in params) * 4
    name = getattr(model, "model_name", type(model).__name__)
    result = ModelSummary(name, graph.input_size, rows, total, trainable, total - trainable,
                          buffers, size, graph.macs, graph.other_ops, graph.depth,
                          graph.output_shapes, training, max_depth=depth)
    result.graph = graph
    return result
