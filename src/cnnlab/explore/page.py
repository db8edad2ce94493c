"""Assemble the explorer's data (tree, numbers, maps) and write the one-file HTML page."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import torch
from torch import nn

from ..analysis.receptive_field import receptive_field, whole_input_note
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
    record_key,
)

try:
    from .teach import teach_data
except ImportError:  # the page works without its teaching layer
    teach_data = None


def _parent(name: str, visible: set[str]) -> str:
    while "." in name:
        name = name.rsplit(".", 1)[0]
        if name in visible:
            return name
    return ""


def _columns(group) -> list[list[str]]:
    """Split a group's direct children (in execution order, from the traced graph) into
    parallel columns: a child that takes the group's own input while another column already
    exists opens a new column (an Inception branch, a projection shortcut), and so does one
    that takes the output of a child in the middle of a column (a branch that forks,
    Inception v3's 7b/7c); a child that takes the output of a column's last child continues
    that column. Operators that join columns (``cat``, a residual ``add``) and what follows
    them stay out of the columns: the page draws them below."""
    from ..graph import Group

    cin = set(group.inputs)
    cols: list[list] = []
    out_of: dict[str, set[int]] = {}
    joined: set[int] = set()
    for c in group.children:
        ids = [n.id for n in c.nodes()] if isinstance(c, Group) else [c.id]
        t = set(c.inputs)
        if not isinstance(c, Group) and (c.op in ("cat", "stack") or (
                c.op == "add" and c.info.get("tensors", 0) >= 2)) or t & joined:
            joined.update(ids)
            continue
        out_of[c.key] = {ids[-1]} if ids else set()
        target, fork = None, False
        for col in cols:
            for i, m in enumerate(col):
                if out_of[m] & t:
                    target, fork = col, i < len(col) - 1
        if target is not None and not fork:
            target.append(c.key)
        elif fork or not cols or (t and t <= cin):
            cols.append([c.key])
        else:
            cols[-1].append(c.key)
    return cols


def _merge(group) -> str | None:
    from ..graph import Node

    ops = {c.op for c in group.children if isinstance(c, Node)
           and (c.op == "cat" or c.info.get("tensors", 0) >= 2)}
    return next((m for m in ("cat", "add", "mul") if m in ops), None)


def _rf_text(row) -> str | None:
    if row.rf is None:
        return None
    s = f"{row.rf[0]}x{row.rf[1]}"
    return s + " (whole map)" if row.rf_whole_map else s


_FUNCTION_ACTIVATIONS = {"relu": "relu", "relu6": "relu6", "sigmoid": "sigmoid",
                         "tanh": "tanh", "silu": "silu", "hardswish": "hardswish",
                         "leaky_relu": "leaky_relu", "hardsigmoid": "hardsigmoid"}


def _next_activation(nid, graph, consumers: dict, model_modules: dict) -> dict | None:
    """The layer that takes node ``nid``'s output next (in the traced graph), as the page's
    arithmetic continues it: an activation with its function, or another layer's name."""
    if nid is None or not consumers.get(nid):
        return None
    c = graph.node(consumers[nid][0])
    if c.kind == "module":
        kind = ACTIVATIONS.get(c.op)
        if kind:
            m = model_modules.get(c.name)
            return {"name": c.key, "fn": kind,
                    "slope": float(getattr(m, "negative_slope", 0.01))}
        return {"name": c.key, "type": c.op}
    if c.op in _FUNCTION_ACTIVATIONS:
        return {"name": c.key, "fn": _FUNCTION_ACTIVATIONS[c.op], "slope": 0.01}
    return {"name": c.key, "type": c.op}


def _is_conv(m) -> bool:
    return isinstance(m, nn.Conv2d) or hasattr(m, "dense_weight")  # the sparse C3 too


def _box_of(summ, visible: set[str]) -> dict[int, str]:
    """Where each graph node is drawn: its own box, the box it is folded into, or the nearest
    visible block around it ('' when none is)."""
    box_of: dict[int, str] = {}
    for r in summ.rows:
        if r.node is None or r.kind not in ("module", "function"):
            continue
        key = name = r.folded_into or r.key
        while key not in visible and "." in name:
            name = name.rsplit(".", 1)[0]
            key = name
        box_of[r.node] = key if key in visible else ""
    return box_of


class _Recorder:
    """What the forward pass leaves for the page: each wanted layer's output map (stored once:
    a container's output is often its last child's), and for convolutions, pools and batch
    norms their input map and their arithmetic, within the page's ``Limits`` and its budget
    of full-size values."""

    def __init__(self, model, rows, graph, lim: Limits, progress=None):
        self.lim, self.graph, self.progress = lim, graph, progress
        self.mods = dict(model.named_modules())
        self.consumers = graph.consumers()
        self.first_conv = next((n for n, m in self.mods.items() if _is_conv(m)), None)
        self.budget = [lim.full_input, lim.input_values]
        self.maps: list[dict] = []
        self.seen: dict[str, int] = {}
        self.recs: dict[str, dict] = {}
        self.row_of = {r.name: r for r in rows if r.kind in ("module", "group") and r.call == 1}
        # the operators a container runs itself (a residual add, a concatenation, F.relu, a
        # functional pooling): boxes of the traced graph, with their maps too
        self.functions = {}
        for r in rows:
            if r.kind == "function" and r.node is not None:
                gn = graph.node(r.node)
                self.functions[(gn.module, gn.op, gn.call)] = r.key

    def run(self, model, x):
        """The forward pass with the recording hooks; returns the logits."""
        return capture(model, x, set(self.row_of) & set(self.mods), self.record,
                       self.functions, self.record_function)

    def add_map(self, rec) -> int | None:
        if rec is None:
            return None
        key = record_key(rec)
        if key not in self.seen:
            self.seen[key] = len(self.maps)
            self.maps.append(rec)
        return self.seen[key]

    def _tick(self, name) -> None:
        if self.progress is not None:
            self.progress(len(self.recs), len(self.row_of) + len(self.functions), name)

    def record(self, name, m, inp, out) -> None:
        """Called during the forward pass, as each wanted module returns."""
        lim = self.lim
        rec = self.recs[name] = {"map": self.add_map(map_record(out, lim))}
        self._tick(name)
        is_conv = _is_conv(m)
        if inp is None or not (is_conv or isinstance(m, (*POOLS, nn.BatchNorm2d))):
            return
        # what the layer really received (after hidden ops), full size: any output pixel's
        # window can be read from it (all channels for a convolution, within the budget)
        chans = int(inp.shape[1]) if is_conv else min(lim.map_channels, int(inp.shape[1]))
        full = inp.dim() == 4 and max(inp.shape[-2:]) <= 299
        n = chans * (inp[0, 0].numel() if inp.dim() == 4 else 1)
        if full and n <= self.budget[1]:
            self.budget[1] -= n
            in_rec = map_record(inp, lim, channels=chans, side=max(inp.shape[-2:]))
        else:
            in_rec = map_record(inp, lim)
        rec["in_map"] = self.add_map(in_rec)
        node = self.row_of[name].node
        if is_conv:
            op = conv_record(m, inp, out, lim, name == self.first_conv, self.budget)
            op["next"] = _next_activation(node, self.graph, self.consumers, self.mods)
        elif isinstance(m, POOLS):
            op = pool_record(m, inp, out, lim, self.budget)
        else:
            op = bn_record(m, inp, out, lim)
            op["next"] = _next_activation(node, self.graph, self.consumers, self.mods)
        if in_rec is not None and in_rec.get("f") == 1 and in_rec["s"] >= chans:
            op["xin"] = rec["in_map"]  # the 8-bit input any clicked pixel is recomputed from
        rec["op"] = op

    def record_function(self, key, out) -> None:
        self.recs[key] = {"map": self.add_map(map_record(out, self.lim))}
        self._tick(key)

    def record_of(self, r) -> dict | None:
        """What was recorded for summary row ``r`` (its first call, or its operator)."""
        if self.row_of.get(r.name) is r:
            return self.recs.get(r.name)
        return self.recs.get(r.key) if r.kind == "function" else None


def _node(r, visible, groups, graph, box_of, note) -> dict:
    """One box of the page: a summary row, its place in the tree, where its input comes from."""
    node = {"name": r.key, "type": r.type, "level": r.level, "shape": r.output_shape,
            "params": r.params, "macs": r.macs, "calls": r.calls,
            "parent": _parent(r.key, visible), "label": r.role,
            "rf": _rf_text(r), "rf_note": note[1] if note and note[0] == r.key else None,
            "aux": "aux" in r.name.rsplit(".", 1)[-1].lower(),
            "notrun": r.calls == 0 and r.kind == "not run"}
    grp = groups.get(r.node) if r.kind == "group" else None
    node["merge"] = _merge(grp) if grp is not None else None
    if grp is not None:
        node["cols"] = _columns(grp)
    if r.kind in ("module", "function") and r.node is not None:
        ins = graph.node(r.node).inputs
        src = [box_of.get(i, "") for i in ins if i >= 0]
        node["input_from"] = ("(input)" if -1 in ins else
                              next((k for k in src if k and k != r.key), None))
    return node


def explore_data(model: nn.Module, x: torch.Tensor, *, depth: int = 3, model_name: str = "",
                 classes: list[str] | None = None, image: torch.Tensor | None = None,
                 source: dict | None = None, limits: Limits | None = None,
                 analysis_model: nn.Module | None = None, progress=None) -> dict:
    """Everything the page draws, as JSON-ready data.

    ``x`` is the network input (1 x C x H x W, normalised); ``image`` the same picture in
    0..1 for display (C x H x W). Rows, shapes, parameters and MACs are
    :func:`cnnlab.analysis.summary`'s; receptive fields :func:`receptive_field`'s, run on
    ``analysis_model`` when given (the same architecture built on the ``meta`` device: no
    arithmetic, so only the image's own forward pass costs time). ``progress(done, total,
    name)``, if given, is called as each layer of the pass is recorded.
    """
    size = tuple(int(v) for v in x.shape[1:])
    lim = limits or Limits.for_input(size)
    model = model.eval()
    amodel = analysis_model if analysis_model is not None else model
    summ = summary(amodel, size, depth=depth)
    if model_name:
        summ.model_name = model_name
    graph = summ.graph
    note = whole_input_note(receptive_field(amodel, size, graph=graph), size)
    rows = summ.visible_rows(depth)
    visible = {r.key for r in rows}
    groups = {g.id: g for g in graph.groups()}
    box_of = _box_of(summ, visible)

    rec = _Recorder(model, rows, graph, lim, progress)
    logits = rec.run(model, x)

    nodes, shown_maps = [], set()
    for r in rows:
        node = _node(r, visible, groups, graph, box_of, note)
        got = rec.record_of(r)
        if got is not None:
            node.update({k: v for k, v in got.items() if v is not None})
            if got.get("map") is not None:
                shown_maps.add(got["map"])
        nodes.append(node)
    for i, m in enumerate(rec.maps):  # inputs only: inflated when their layer is opened
        if i not in shown_maps:
            m["lazy"] = True

    logits = logits[0].float()
    probs = torch.softmax(logits, 0)
    names = list(classes) if classes else [str(i) for i in range(logits.numel())]
    img = image if image is not None else x[0]
    img = torch.from_numpy(np.clip(np.rint(img.float().numpy() * 255), 0, 255).astype(np.uint8))
    data = {
        "model": summ.model_name, "input": list(size), "depth": depth,
        "total_params": summ.total_params, "macs": summ.macs, "weighted_depth": summ.depth,
        "rows": len(rows), "nodes": nodes, "maps": rec.maps,
        "image": {"c": int(img.shape[0]), "h": int(img.shape[1]), "w": int(img.shape[2]),
                  "q": b64_u8(img.numpy())},
        "input_map": map_record(x, lim),
        "logits": b64_f32(logits), "probs": b64_f32(probs), "classes": names,
        "source": source or {}, "limits": lim.__dict__,
        "conventions": summ.conventions,
        "rf_note": note[1] if note else None,
        "trained": bool((source or {}).get("trained", True)),
    }
    if teach_data is not None:  # the teaching layer (explore/teach.py), when installed
        data["teach"] = teach_data(model, x, graph, image=image)
    return data


#: further files of this package inlined into the page: styles after page.css, scripts
#: before page.js (teach.js must exist when page.js calls ``window.cnnlabTeach.init(
#: window.cnnlabPage)`` at its end)
EXTRA_ASSETS = ["i18n.js", "teach.js", "teach.css"]


def render_html(data: dict) -> str:
    """The page: template + inline CSS + inline JS + the data as JSON, in one string."""
    pkg = resources.files("cnnlab.explore")
    html = (pkg / "page.html").read_text(encoding="utf-8")
    css = (pkg / "page.css").read_text(encoding="utf-8")
    js = (pkg / "page.js").read_text(encoding="utf-8")
    extra = {a: (pkg / a).read_text(encoding="utf-8") for a in EXTRA_ASSETS}
    css += "".join("\n" + t for a, t in extra.items() if a.endswith(".css"))
    js = "".join(t + "\n" for a, t in extra.items() if a.endswith(".js")) + js
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    title = f"{data['model']}: cnnlab explore"
    return (html.replace("{{TITLE}}", title).replace("/*{{CSS}}*/", css)
            .replace("/*{{DATA}}*/", payload).replace("/*{{JS}}*/", js))


__all__ = ["EXTRA_ASSETS", "explore_data", "render_html", "b64_f32"]
