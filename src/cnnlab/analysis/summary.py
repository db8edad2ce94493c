"""A Keras-style summary of a model: one row per layer, totals in the footer.

Rows: every module that holds parameters or changes the shape of what flows through it,
nested modules indented, down to the depth the caller picks (the depth changes only what is
shown, never the totals). Columns: name, type, output shape (batch dimension left out),
parameters (the module's own and its children's), MACs (every operator that ran inside the
module, see :mod:`cnnlab.analysis.macs`). Modules that the traced pass did not run (auxiliary
classifiers in eval mode) are listed with their parameters and the shape ``(not run)``.

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

from .macs import trace

MAC_CONVENTION = ("MACs = multiply-accumulates of convolutions (incl. grouped/depthwise) and "
                  "linear layers/matmul, batch 1, biases not counted; FLOPs = 2 x MACs")
OTHER_CONVENTION = ("other ops = normalisation, activations, pooling, element-wise add/mul: one "
                    "per output element (k*k per pooled element), not included in MACs")
DEPTH_CONVENTION = ("depth = weighted layers (conv + linear) on the longest input-to-output "
                    "path, every convolution once (a depthwise-separable conv counts 2, SE "
                    "convs count): the papers' figure for LeNet/AlexNet/VGG/ResNet, not for "
                    "Xception, Inception v3 or EfficientNet, whose papers count otherwise")
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

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


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
    conventions: dict = field(default_factory=lambda: {
        "macs": MAC_CONVENTION, "other_ops": OTHER_CONVENTION, "depth": DEPTH_CONVENTION,
        "size": "parameter size = float32 bytes / 2^20 (MB)"})

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def size_mb(self) -> float:
        return self.param_bytes / MB

    def visible_rows(self, max_depth: int | None = None) -> list[SummaryRow]:
        depth = self.max_depth if max_depth is None else max_depth
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        return [r for r in self.rows if r.level <= depth
                and (r.params or r.changes_shape or r.macs or r.always_shown)]

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
        header = ("Layer", "Type", "Output shape", "Params", "MACs")
        body = [("  " * (r.level - 1) + r.name, r.type, r.output_shape, f"{r.params:,}",
                 f"{r.macs:,}") for r in rows]
        widths = [max(len(x[i]) for x in [header, *body]) for i in range(5)]

        def fmt(cells):
            return "  ".join(c.rjust(w) if i >= 3 else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths, strict=False))).rstrip()

        line = "=" * len(fmt(["x" * w for w in widths]))
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
                f"          {DEPTH_CONVENTION}; row params include the children's."]
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


def summary(model: nn.Module, input_size, *, depth: int = 3, training: bool = False
            ) -> ModelSummary:
    """Summarise ``model`` for one ``(C, H, W)`` input (batch 1).

    Runs one forward pass (eval mode unless ``training=True``) and leaves the model as it
    was. On a model built under ``torch.device("meta")`` nothing is allocated.
    ``depth`` is the default display depth of ``str()``/``table()``/``to_dict()``.
    """
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer, got {depth!r}")
    t = trace(model, input_size, training=training)
    names = {id(m): n for n, m in model.named_modules()}
    recs = t.modules
    modules = [(n, m) for n, m in model.named_modules() if names[id(m)] == n]
    # What each module did. A container that was never called itself but whose children ran
    # (``self.classifier[:-1](x)`` slices a Sequential into a new one, so the original's hooks
    # never fire) ran all the same: its MACs are its children's, its output the last child's.
    eff: dict[str, dict] = {}
    for n, m in sorted(modules, key=lambda nm: -nm[0].count(".") if nm[0] else 1):
        rec = recs[n]
        kids = [f"{n}.{c}" if n else c for c, cm in m.named_children()
                if names[id(cm)] == (f"{n}.{c}" if n else c)]
        if rec.calls:
            eff[n] = {"ran": True, "order": float(rec.order), "macs": rec.macs,
                      "other": rec.other_ops, "shape": _shape_str(rec.output_shapes[-1]),
                      "changes": rec.input_shapes[0] != rec.output_shapes[-1], "kids": kids}
            continue
        ran = [eff[k] for k in kids if eff[k]["ran"]]
        if ran:
            first, last = min(ran, key=lambda e: e["order"]), max(ran, key=lambda e: e["order"])
            eff[n] = {"ran": True, "order": first["order"] - 1e-3,
                      "macs": sum(e["macs"] for e in ran),
                      "other": sum(e["other"] for e in ran), "shape": last["shape"],
                      "changes": True, "kids": kids}
        else:
            eff[n] = {"ran": False, "order": None, "macs": 0, "other": 0,
                      "shape": "(not run)", "changes": False, "kids": kids}
    rows = []
    order = {}
    last = -1.0
    for n, m in modules:
        if not n:
            continue
        e = eff[n]
        if e["ran"]:
            last = e["order"]
        else:
            last += 1e-6  # not run: keep its place after the module registered before it
        order[n] = last
        params = _unique_params(m)
        n_params = sum(p.numel() for p in params)
        trainable = sum(p.numel() for p in params if p.requires_grad)
        rows.append(SummaryRow(n, type(m).__name__, n.count(".") + 1, e["shape"], n_params,
                               trainable, e["macs"], e["other"], recs[n].calls, e["changes"],
                               _always_shown(m)))
    rows.sort(key=lambda r: order[r.name])
    # Parameters a container holds itself, and operators it runs in its own ``forward`` (not
    # inside a child): an "(own)" row after its children, so that the rows add up.
    for n, m in modules:
        if not eff[n]["kids"]:
            continue
        own = [p for p in m.parameters(recurse=False)]
        own_params = sum(p.numel() for p in own)
        total_macs = eff[n]["macs"] if n else t.macs
        total_other = eff[n]["other"] if n else t.other_ops
        own_macs = total_macs - sum(eff[k]["macs"] for k in eff[n]["kids"])
        own_other = total_other - sum(eff[k]["other"] for k in eff[n]["kids"])
        if not (own_params or own_macs):
            continue
        name = f"{n}.(own)" if n else "(own)"
        row = SummaryRow(name, "(own)", name.count(".") + 1, "-", own_params,
                         sum(p.numel() for p in own if p.requires_grad), own_macs, own_other,
                         recs[n].calls, False, True)
        prefix = n + "."
        at = max((i for i, r in enumerate(rows) if not n or r.name.startswith(prefix)),
                 default=-1) + 1
        if n and at == 0:
            at = next(i for i, r in enumerate(rows) if r.name == n) + 1
        rows.insert(at, row)
    params = _unique_params(model)
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    buffers = sum(b.numel() for n, b in model.state_dict(keep_vars=True).items()
                  if not isinstance(b, nn.Parameter))
    size = sum(p.numel() for p in params) * 4
    name = getattr(model, "model_name", type(model).__name__)
    return ModelSummary(name, t.input_size, rows, total, trainable, total - trainable, buffers,
                        size, t.macs, t.other_ops, t.depth, t.output_shapes, training,
                        max_depth=depth)
