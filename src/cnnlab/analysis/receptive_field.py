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
really run (see :mod:`cnnlab.analysis.macs`), so functional calls count too.

The recurrence is exact for sequential paths. Where branches meet (a residual addition, a
concatenation) the row gives the largest field among the inputs, which is the field of the
union when the branches are centred alike, as in every model here. Operators the recurrence
does not model (transposed convolution, interpolation) leave the field unknown (``None``).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .macs import trace


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


def receptive_field(model: nn.Module, input_size, *, leaves_only: bool = True
                    ) -> dict[str, FieldRow]:
    """Receptive field (size, jump, start) of every module's output, in execution order.

    ``leaves_only`` keeps modules without children (the layers); pass ``False`` to get the
    containers (blocks, stages) too. The model is traced once on a zeros input of batch 1 and
    left unchanged; on the ``meta`` device nothing is allocated.
    """
    t = trace(model, input_size)
    recs = sorted((r for r in t.modules.values() if r.calls), key=lambda r: r.order)
    parents = {r.name.rsplit(".", 1)[0] for r in recs if "." in r.name}
    if any(r.name != "(model)" and "." not in r.name for r in recs):
        parents.add("(model)")
    rows = {}
    for r in recs:
        if r.name == "(model)" or (leaves_only and r.name in parents):
            continue
        shape = r.output_shapes[-1]
        shape = tuple(shape[1:]) if shape and isinstance(shape[0], int) else tuple(shape)
        rf = r.rf
        if rf is None:
            rows[r.name] = FieldRow(r.name, r.type, shape, None, None, None)
        else:
            rows[r.name] = FieldRow(r.name, r.type, shape, tuple(rf.size), tuple(rf.jump),
                                    tuple(rf.start), rf.global_)
    return rows


def format_fields(rows: dict[str, FieldRow]) -> str:
    """A table of receptive fields: name, type, output shape, size, jump, start."""
    header = ("Layer", "Type", "Output shape", "RF size", "Jump", "Start")
    lines = []
    for r in rows.values():
        shape = "x".join(str(s) for s in r.output_shape)
        if r.size is None:
            lines.append((r.name, r.type, shape, "?", "?", "?"))
            continue
        size = f"{r.size[0]}x{r.size[1]}" + (" (whole map)" if r.whole_map else "")
        jump = f"{r.jump[0]}x{r.jump[1]}"
        start = f"{r.start[0]:g},{r.start[1]:g}"
        lines.append((r.name, r.type, shape, size, jump, start))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=False)]
    out = ["  ".join(str(x).ljust(w) for x, w in zip(header, widths, strict=False))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=False))
            for line in lines]
    return "\n".join(out)
