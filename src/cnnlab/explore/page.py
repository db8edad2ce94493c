"""Assemble the explorer's data (tree, numbers, maps) and write the one-file HTML page."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import torch
from torch import nn

from ..analysis.receptive_field import receptive_field
from ..analysis.summary import summary
from .build import (
    ACTIVATIONS,
    POOLS,
    Limits,
    b64_f32,
    b64_u8,
    bn_record,
    capture,
    conv_record,
    map_record,
    pool_record,
)


def _parent(name: str, visible: set[str]) -> str:
    while "." in name:
        name = name.rsplit(".", 1)[0]
        if name in visible:
            return name
    return ""


def _columns(name: str, cap, children: list[str]) -> list[list[str]]:
    """Split a container's direct children (in execution order) into parallel columns: a child
    that takes the container's own input while another column already exists opens a new
    column (an Inception branch, a projection shortcut), and so does one that takes the output
    of a module in the middle of a column (a branch that forks, Inception v3's 7b/7c); a child
    that takes the output of a column's last module continues that column."""
    prefix = name + "." if name else ""
    ran = [c for c in cap.order if c.startswith(prefix) and "." not in c[len(prefix):] and c]
    ran = [c for c in ran if c in children]
    cin = cap.in_token.get(name, -2)
    cols: list[list[str]] = []
    for c in ran:
        t = cap.in_token.get(c)
        target, fork = None, False
        for col in cols:
            for i, m in enumerate(col):
                if cap.out_token.get(m) == t:
                    target, fork = col, i < len(col) - 1
        if target is not None and not fork:
            target.append(c)
        elif fork or not cols or t == cin:
            cols.append([c])  # a new branch: from the block input, or forking a branch
        else:
            cols[-1].append(c)
    return cols


def _rf_text(rf) -> str | None:
    if rf is None or rf.size is None:
        return None
    s = f"{rf.size[0]}x{rf.size[1]}"
    return s + " (whole map)" if rf.whole_map else s


def _next_activation(name: str, cap, model_modules: dict) -> dict | None:
    """The activation that runs right after ``name`` on its output, if any."""
    try:
        i = cap.order.index(name)
    except ValueError:
        return None
    tok = cap.out_token.get(name)
    for nxt in cap.order[i + 1:i + 4]:
        m = model_modules.get(nxt)
        if m is None or cap.in_token.get(nxt) != tok:
            continue
        kind = ACTIVATIONS.get(type(m).__name__)
        if kind:
            slope = float(getattr(m, "negative_slope", 0.01))
            return {"name": nxt, "fn": kind, "slope": slope}
        return {"name": nxt, "type": type(m).__name__}
    return None


def explore_data(model: nn.Module, x: torch.Tensor, *, depth: int = 3, model_name: str = "",
                 classes: list[str] | None = None, image: torch.Tensor | None = None,
                 source: dict | None = None, limits: Limits | None = None,
                 analysis_model: nn.Module | None = None) -> dict:
    """Everything the page draws, as JSON-ready data.

    ``x`` is the network input (1 x C x H x W, normalised); ``image`` the same picture in
    0..1 for display (C x H x W). Rows, shapes, parameters and MACs are
    :func:`cnnlab.analysis.summary`'s; receptive fields :func:`receptive_field`'s, run on
    ``analysis_model`` when given (the same architecture built on the ``meta`` device: no
    arithmetic, so only the image's own forward pass costs time).
    """
    size = tuple(int(v) for v in x.shape[1:])
    lim = limits or Limits.for_input(size)
    model = model.eval()
    amodel = analysis_model if analysis_model is not None else model
    summ = summary(amodel, size, depth=depth)
    if model_name:
        summ.model_name = model_name
    fields = receptive_field(amodel, size, leaves_only=False)
    cap = capture(model, x)
    mods = dict(model.named_modules())
    rows = summ.visible_rows(depth)
    visible = {r.name for r in rows}
    first_conv = next((n for n, m in mods.items()
                       if isinstance(m, nn.Conv2d) or hasattr(m, "dense_weight")), None)

    nodes = []
    budget = [lim.full_input]
    maps: list[dict] = []
    seen: dict[str, int] = {}

    def add_map(rec):  # a container's output is often its last child's: store it once
        if rec is None:
            return None
        key = rec["q"] + repr((rec.get("lo"), rec.get("hi"), rec.get("h"), rec.get("s")))
        if key not in seen:
            seen[key] = len(maps)
            maps.append(rec)
        return seen[key]

    for r in rows:
        m = mods[r.name]
        node = {"name": r.name, "type": r.type, "level": r.level, "shape": r.output_shape,
                "params": r.params, "macs": r.macs, "calls": r.calls,
                "parent": _parent(r.name, visible),
                "rf": _rf_text(fields.get(r.name)),
                "aux": "aux" in r.name.rsplit(".", 1)[-1].lower(),
                "notrun": r.calls == 0}
        own = cap.own_ops.get(r.name, set())
        node["merge"] = ("cat" if "cat" in own else "add" if "add" in own
                         else "mul" if "mul" in own else None)
        kids = [n for n, _ in m.named_children()]
        if kids and r.calls:
            full = [f"{r.name}.{k}" if r.name else k for k in kids]
            node["cols"] = _columns(r.name, cap, full)
        out = cap.outputs.get(r.name)
        if out is not None:
            node["map"] = add_map(map_record(out, lim))
            inp = cap.in_token.get(r.name)
            prod = [n for n in cap.order[:cap.order.index(r.name)] if cap.out_token.get(n) == inp
                    and n in visible and not r.name.startswith(n + ".")]
            node["input_from"] = prod[-1] if prod else ("(input)" if inp == 0 else None)
            if r.name in cap.inputs:  # what the layer really received (after hidden ops)
                node["in_map"] = add_map(map_record(cap.inputs[r.name], lim))
            if isinstance(m, nn.Conv2d) or hasattr(m, "dense_weight"):
                node["op"] = conv_record(m, cap.inputs[r.name], out, lim, r.name == first_conv,
                                         budget)
                node["op"]["next"] = _next_activation(r.name, cap, mods)
            elif isinstance(m, POOLS):
                node["op"] = pool_record(m, cap.inputs[r.name], out, lim, budget)
            elif isinstance(m, nn.BatchNorm2d):
                node["op"] = bn_record(m, cap.inputs[r.name], out, lim)
                node["op"]["next"] = _next_activation(r.name, cap, mods)
        nodes.append(node)

    logits = cap.logits[0].float()
    probs = torch.softmax(logits, 0)
    names = list(classes) if classes else [str(i) for i in range(logits.numel())]
    img = image if image is not None else x[0]
    img = torch.from_numpy(np.clip(np.rint(img.float().numpy() * 255), 0, 255).astype(np.uint8))
    return {
        "model": summ.model_name, "input": list(size), "depth": depth,
        "total_params": summ.total_params, "macs": summ.macs, "weighted_depth": summ.depth,
        "rows": len(rows), "nodes": nodes, "maps": maps,
        "image": {"c": int(img.shape[0]), "h": int(img.shape[1]), "w": int(img.shape[2]),
                  "q": b64_u8(img.numpy())},
        "input_map": map_record(x, lim),
        "logits": b64_f32(logits), "probs": b64_f32(probs), "classes": names,
        "source": source or {}, "limits": lim.__dict__,
        "conventions": summ.conventions,
    }


def render_html(data: dict) -> str:
    """The page: template + inline CSS + inline JS + the data as JSON, in one string."""
    pkg = resources.files("cnnlab.explore")
    html = (pkg / "page.html").read_text(encoding="utf-8")
    css = (pkg / "page.css").read_text(encoding="utf-8")
    js = (pkg / "page.js").read_text(encoding="utf-8")
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    title = f"{data['model']}: cnnlab explore"
    return (html.replace("{{TITLE}}", title).replace("/*{{CSS}}*/", css)
            .replace("/*{{DATA}}*/", payload).replace("/*{{JS}}*/", js))


__all__ = ["explore_data", "render_html", "b64_f32"]
