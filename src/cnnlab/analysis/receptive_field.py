"""Receptive field of every layer: size, jump and start, per spatial axis.

For a chain of convolutions and poolings with kernel k, stride s, padding p and dilation d,
the field of one output unit follows the recurrence (Araujo et al., "Computing receptive
fields of convolutional neural networks", Distill 2019)::

    size_out  = size_in + (k - 1) * d * jump_in
    jump_out  = jump_in * s
    start_out = start_in + ((k - 1) * d / 2 - p) * jump_in

starting from the input pixels (size 1, jump 1, start 0: pixel centres at 0, 1, 2 ...).
``start`` is the input coordinate of the centre of the first unit's field; padding makes it
negative. Global pooling, flattening and linear layers see the whole map:
``size + (n - 1) * jump`` for an ``n``-unit map. The values are read off the operators that
really run, from the traced forward graph (:mod:`cnnlab.graph`), so functional calls count too
and a module called several times has one row per call (``relu``, ``relu#2``, ``relu#3``).

The recurrence is exact for sequential paths. Where branches meet (a residual addition, a
concatenation) the row gives the largest field among the inputs, which is the field of the
union when the branches are centred alike, as in every model here. Operators the recurrence
does not model (transposed convolution, interpolation) leave the field unknown (``None``).

A field can exceed the input: the recurrence counts padded positions too, so from some layer
on every output unit sees the whole image (and zero padding beyond it); a squeeze-excite gate
(a global pooling multiplied back into the map) makes every unit depend on the whole image at
once. :func:`whole_input_note` says from which layer on, and why; the table prints it.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import NotAModelError
from ..graph import Graph, trace_graph


@dataclass(frozen=True)
class FieldRow:
    """Receptive field of one module's output, per axis (H, W)."""

    name: str
    type: str
    output_shape: tuple[int, ...]
    size: tuple[int, int] | None
    jump: tuple[int, int] | None
    start: tuple[float, float] | None
    whole_map: bool = False  # a pooled / flattened output: the field of the whole map

    def to_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "output_shape": list(self.output_shape),
                "size": list(self.size) if self.size else None,
                "jump": list(self.jump) if self.jump else None,
                "start": list(self.start) if self.start else None, "whole_map": self.whole_map}


def receptive_field(model: nn.Module, input_size, *, leaves_only: bool = True,
                    graph: Graph | None = None) -> dict[str, FieldRow]:
    """Receptive field (size, jump, start) of every call's output, in execution order.

    Keys are the graph's node keys (``layer1.0.conv1``, ``layer1.0.add``, ``layer1.0.relu#2``
    for the second call). ``leaves_only`` keeps the layers and the operators blocks run;
    pass ``False`` to get the blocks and stages too. The model is traced once on a zeros
    input of batch 1 (or ``graph``, already traced, is read) and left unchanged; on the
    ``meta`` device nothing is allocated.
    """
    if graph is None:
        NotAModelError.check(model, "receptive_field")
    g = graph if graph is not None else trace_graph(model, input_size)
    items: list = []
    if leaves_only:
        items = list(g.nodes)
    else:
        def walk(grp):
            for c in grp.children:
                items.append(c)
                if not hasattr(c, "op"):
                    walk(c)
        walk(g.root)
    rows = {}
    for x in items:
        shape = x.shape
        shape = tuple(shape[1:]) if shape and isinstance(shape[0], int) else tuple(shape)
        kind = getattr(x, "op", None) or x.type
        rf = x.rf
        if rf is None:
            rows[x.key] = FieldRow(x.key, kind, shape, None, None, None)
        else:
            rows[x.key] = FieldRow(x.key, kind, shape, tuple(rf.size), tuple(rf.jump),
                                   tuple(rf.start), rf.global_)
    return rows


def whole_input_note(rows: dict[str, FieldRow], input_size) -> tuple[str, str] | None:
    """``(name, sentence)``: the first row whose field covers the whole input, and why;
    ``None`` when no spatial map's field does."""
    _, h, w = input_size
    for r in rows.values():
        if r.size is None or len(r.output_shape) < 3:
            continue
        if r.whole_map:
            return r.name, (f"from {r.name} on, every unit depends on the whole {h}x{w} "
                            "input: a squeeze-excite gate (a global average pool multiplied "
                            "back into the map) or another global pooling mixes in every "
                            "pixel")
        if r.size[0] >= h and r.size[1] >= w:
            return r.name, (f"from {r.name} on, the receptive field ({r.size[0]}x{r.size[1]}) "
                            f"exceeds the {h}x{w} input: padding makes every output unit see "
                            "the whole image (the rest of its field is zero padding)")
    return None


def format_fields(rows: dict[str, FieldRow], input_size=None) -> str:
    """A table of receptive fields: name, type, output shape, size, jump, start; with
    ``input_size``, a marked row and a footnote where the field first covers the whole
    input."""
    note = whole_input_note(rows, input_size) if input_size is not None else None
    mark = False
    header = ("Layer", "Type", "Output shape", "RF size", "Jump", "Start")
    lines = []
    for r in rows.values():
        shape = "x".join(str(s) for s in r.output_shape)
        if r.size is None:
            lines.append((r.name, r.type, shape, "?", "?", "?"))
            continue
        mark = mark or (note is not None and r.name == note[0])
        size = f"{r.size[0]}x{r.size[1]}" + (" (whole map)" if r.whole_map else "")
        jump = f"{r.jump[0]}x{r.jump[1]}"
        start = f"{r.start[0]:g},{r.start[1]:g}"
        lines.append((r.name, r.type, shape, size, jump,
                      start + (" *" if mark and len(r.output_shape) >= 3 else "")))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=False)]
    out = ["  ".join(str(x).ljust(w) for x, w in zip(header, widths, strict=False))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=False)).rstrip()
            for line in lines]
    if note is not None:
        out.append(f"* {note[1]}.")
    return "\n".join(out)
