"""The explorer's teaching views (``teach.js``): their data, computed here with PyTorch.

:func:`teach_data` gives ``data["teach"]`` of the page:

- ``layers``: every convolution and pooling module (any model): one input channel of its real
  input on a cropped region (top-left corner, so that the padding shows), the kernel slice
  that slides over it, stride, padding, dilation, and PyTorch's output on that region, so the
  page animates the kernel and fills the output map in with values it computes itself (and
  checks against these);
- receptive-field geometry per layer (size, jump, start: :mod:`cnnlab.graph`'s), to outline a
  hovered unit's field in the input image;
- ``small``: for a small model (up to :data:`SMALL_PARAMS` parameters, every operator one of
  :data:`SMALL_OPS`) its whole forward pass as a list of operators with inline float32
  weights, the input and PyTorch's logits: the page recomputes the forward pass of a digit
  the student draws or an image dropped on it, and its self-check compares its own forward
  pass of the default input with these logits.
"""

from __future__ import annotations

import base64
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: models up to this many parameters carry their weights (float32, base64: 5.3 bytes each)
#: for the page's own forward pass by default: LeNet-5 (61,706) and other digit-size CNNs,
#: a page of at most ~0.8 MB more. ``teach_data(small_params=...)`` raises it (the CIFAR
#: ResNet-20, 269,722 parameters, adds 1.4 MB).
SMALL_PARAMS = 150_000


def b64_f32(a) -> str:
    a = np.ascontiguousarray(np.asarray(a, dtype="<f4"))
    return base64.b64encode(a.tobytes()).decode("ascii")


def b64_u8(a) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).decode("ascii")


ACT_MODULES = {"ReLU": "relu", "ReLU6": "relu6", "Sigmoid": "sigmoid", "Tanh": "tanh",
               "SiLU": "silu", "Hardswish": "hardswish", "Hardsigmoid": "hardsigmoid",
               "LeakyReLU": "leaky_relu", "ELU": "elu"}
ACT_FUNCS = {"relu", "relu6", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid"}
PASS_MODULES = {"Identity", "Dropout", "Dropout2d", "Flatten"}
#: the operators the page's own forward pass implements (module types and traced functions)
SMALL_OPS = sorted({"Conv2d", "SparseConv2d", "BatchNorm2d", "Linear", "MaxPool2d",
                    "AvgPool2d", "AdaptiveAvgPool2d", "ZeroPadShortcut", "add", "cat",
                    *ACT_MODULES, *ACT_FUNCS, *PASS_MODULES})


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _conv_geometry(mod: nn.Module) -> dict:
    w = mod.dense_weight() if hasattr(mod, "dense_weight") else mod.weight
    kh, kw = (int(v) for v in w.shape[2:])
    pad = getattr(mod, "padding", (0, 0))
    if isinstance(pad, str):
        pad = (0, 0) if pad == "valid" else ((kh - 1) // 2, (kw - 1) // 2)
    return {"k": [kh, kw], "stride": list(_pair(getattr(mod, "stride", 1))),
            "pad": list(_pair(pad)), "dil": list(_pair(getattr(mod, "dilation", 1))),
            "groups": int(getattr(mod, "groups", 1))}


def _pool_geometry(mod: nn.Module) -> dict:
    k = _pair(mod.kernel_size)
    is_max = isinstance(mod, nn.MaxPool2d)
    return {"k": list(k), "stride": list(_pair(mod.stride or mod.kernel_size)),
            "pad": list(_pair(mod.padding)),
            "dil": list(_pair(mod.dilation) if is_max else (1, 1)), "ceil": bool(mod.ceil_mode),
            "include_pad": bool(getattr(mod, "count_include_pad", True))}


def _rf(node) -> dict | None:
    rf = node.rf
    if rf is None:
        return None
    return {"size": [int(v) for v in rf.size], "jump": [float(v) for v in rf.jump],
            "start": [float(v) for v in rf.start]}


def _capture(model: nn.Module, x: torch.Tensor, names: set[str]):
    """Each named module's input and output of its first call (one eval forward pass)."""
    ins: dict[str, torch.Tensor] = {}
    outs: dict[str, torch.Tensor] = {}
    handles = []
    for name, mod in model.named_modules():
        if name not in names:
            continue

        def hook(m, args, out, name=name):
            if name not in ins and args and isinstance(args[0], torch.Tensor):
                ins[name] = args[0].detach().clone()
                outs[name] = out.detach().clone()
        handles.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        for h in handles:
            h.remove()
    if not isinstance(logits, torch.Tensor):
        logits = next((t for t in (logits if isinstance(logits, (tuple, list)) else
                                   logits.values()) if isinstance(t, torch.Tensor)), None)
    return ins, outs, logits


def _crop(ho: int, wo: int, side: int) -> tuple[int, int]:
    return min(ho, side), min(wo, side)


def _layer_record(node, mod, inp: torch.Tensor, out: torch.Tensor, side: int) -> dict | None:
    """One convolution or pooling for the animation: input channel ``ci`` on the region
    that output rows/cols 0..oh-1 / 0..ow-1 see, kernel slice, PyTorch's output there."""
    is_conv = not isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d))
    g = _conv_geometry(mod) if is_conv else _pool_geometry(mod)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = g["k"], g["stride"], g["pad"], g["dil"]
    inp0, out0 = inp[0].float(), out[0].float()
    cin, h, w = (int(v) for v in inp0.shape)
    cout, ho, wo = (int(v) for v in out0.shape)
    oh, ow = _crop(ho, wo, side)
    # the input rows/cols the cropped outputs see, padding included
    y0, x0 = -ph, -pw
    ih, iw = (oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sw + (kw - 1) * dw + 1
    region = torch.zeros(ih, iw)
    inside = torch.zeros(ih, iw, dtype=torch.bool)
    ys, xs = slice(max(0, y0), min(h, y0 + ih)), slice(max(0, x0), min(w, x0 + iw))
    co = 0
    rec = {"name": node.key, "module": node.module, "type": node.op, "H": h, "W": w,
           "Ho": ho, "Wo": wo, "cin": cin, "cout": cout, "oh": oh, "ow": ow,
           "y0": y0, "x0": x0, "ih": ih, "iw": iw, "cropped": (oh, ow) != (ho, wo), **g}
    if is_conv:
        weight = (mod.dense_weight() if hasattr(mod, "dense_weight") else mod.weight)
        weight = weight.detach().float()
        cin_g = int(weight.shape[1])
        grp = co // max(1, cout // g["groups"])
        ci = grp * cin_g  # the first input channel output channel 0 sees
        kern = weight[co, ci - grp * cin_g]
        bias = getattr(mod, "bias", None)
        if not _plain_conv(mod, weight, inp0, out0, co, grp * cin_g, (y0, x0, ih, iw),
                           (sh, sw), (dh, dw), (oh, ow)):
            return None
        full = cin_g == 1  # one input channel makes the whole output: bias and all
        b = float(bias.detach()[co]) if bias is not None and full else 0.0
        part = F.conv2d(inp0[ci:ci + 1][None], kern[None, None], None, (sh, sw), (ph, pw),
                        (dh, dw))[0, 0] + b
        expect = out0[co] if full else part
        rec.update(kind="conv", op="conv", co=co, ci=ci, cin_g=cin_g, full=full, bias=b,
                   kernel=b64_f32(kern),
                   total_bias=float(bias.detach()[co]) if bias is not None else 0.0)
    else:
        ci = 0
        expect = out0[ci]
        rec.update(kind="pool", op="max" if isinstance(mod, nn.MaxPool2d) else "avg", co=0,
                   ci=0, full=True)
    region[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0] = inp0[ci, ys, xs]
    inside[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0] = True
    rec["x"] = b64_f32(region)
    rec["inside"] = b64_u8(inside.numpy().astype(np.uint8))
    rec["y"] = b64_f32(expect[:oh, :ow])
    lo, hi = float(inp0[ci].min()), float(inp0[ci].max())
    rec["in_range"] = [lo, hi]
    return rec


def _plain_conv(mod, weight, inp0, out0, co, c0, box, stride, dil, size) -> bool:
    """Whether output channel ``co`` on the animated region is the plain correlation of the
    zero-padded input with ``weight`` plus the bias (not so for other padding modes,
    asymmetric "same" padding, or layers that transform their weight in ``forward``)."""
    if getattr(mod, "padding_mode", "zeros") != "zeros":
        return False
    y0, x0, ih, iw = box
    _, h, w = inp0.shape
    cin_g = weight.shape[1]
    region = torch.zeros(cin_g, ih, iw)
    ys, xs = slice(max(0, y0), min(h, y0 + ih)), slice(max(0, x0), min(w, x0 + iw))
    region[:, ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0] = \
        inp0[c0:c0 + cin_g, ys, xs]
    bias = getattr(mod, "bias", None)
    got = F.conv2d(region[None], weight[co:co + 1],
                   None if bias is None else bias.detach().float()[co:co + 1], stride, 0,
                   dil)[0, 0]
    want = out0[co, :size[0], :size[1]]
    return got.shape == want.shape and bool(torch.allclose(got, want, rtol=1e-4, atol=1e-5))


def _small_ops(model: nn.Module, graph, modules: dict) -> tuple[list[dict] | None, str, list]:
    """The forward pass as operators the page runs, or None and the reason it cannot."""
    ops: list[dict] = []
    weights: list[np.ndarray] = []
    offset = [0]

    def put(t: torch.Tensor) -> list[int]:
        a = t.detach().float().contiguous().numpy().ravel()
        weights.append(a)
        offset[0] += a.size
        return [offset[0] - a.size, int(a.size)]

    for n in graph.nodes:
        rec = {"id": n.id, "name": n.key, "inputs": [int(i) for i in n.inputs],
               "shape": list(n.shape[1:]) if n.shape and isinstance(n.shape[0], int) else None}
        mod = modules.get(n.module) if n.kind == "module" else None
        t = n.op
        if n.kind == "module" and (t in ("Conv2d", "SparseConv2d") or hasattr(mod, "dense_weight")):
            if getattr(mod, "padding_mode", "zeros") != "zeros":
                return None, f"{n.key}: padding mode {mod.padding_mode}", []
            w = mod.dense_weight() if hasattr(mod, "dense_weight") else mod.weight
            rec.update(op="conv", w=put(w), wshape=list(w.shape), **_conv_geometry(mod))
            if getattr(mod, "bias", None) is not None:
                rec["b"] = put(mod.bias)
        elif n.kind == "module" and t == "BatchNorm2d":
            scale = mod.weight.detach() / torch.sqrt(mod.running_var + mod.eps) \
                if mod.weight is not None else 1 / torch.sqrt(mod.running_var + mod.eps)
            shift = (mod.bias.detach() if mod.bias is not None else 0) - mod.running_mean * scale
            rec.update(op="affine", scale=put(scale), shift=put(shift))
        elif n.kind == "module" and t == "Linear":
            rec.update(op="linear", w=put(mod.weight), wshape=list(mod.weight.shape))
            if mod.bias is not None:
                rec["b"] = put(mod.bias)
        elif n.kind == "module" and t in ("MaxPool2d", "AvgPool2d"):
            rec.update(op="max" if t == "MaxPool2d" else "avg", **_pool_geometry(mod))
        elif n.kind == "module" and t == "AdaptiveAvgPool2d":
            rec.update(op="adaptive_avg", out=list(_pair(mod.output_size)))
        elif n.kind == "module" and t in ACT_MODULES:
            rec.update(op=ACT_MODULES[t], slope=float(getattr(mod, "negative_slope", 0.01)),
                       alpha=float(getattr(mod, "alpha", 1.0)))
        elif n.kind == "function" and t in ACT_FUNCS:
            rec.update(op=t)
        elif n.kind == "module" and t in PASS_MODULES:
            rec.update(op="pass")
        elif n.kind == "module" and t == "ZeroPadShortcut":
            rec.update(op="zeropad", stride=int(mod.stride), cout=int(mod.out_chs))
        elif n.kind == "function" and t == "add" and n.info.get("tensors", 0) == 2:
            rec.update(op="add")
        elif n.kind == "function" and t == "cat":
            rec.update(op="cat")
        else:
            return None, f"{n.key} ({t}) is not one of the operators the page computes", []
        ops.append(rec)
    return ops, "", weights


def _affine(x: torch.Tensor, image: torch.Tensor | None) -> tuple[list[float], list[float], str]:
    """x = a * image + b per channel: the model's normalisation, fitted from the displayed
    image (0..1) and the network input (exact for the affine transforms cnnlab uses)."""
    c = x.shape[1]
    a, b = [], []
    if image is not None and tuple(image.shape[-2:]) == tuple(x.shape[-2:]):
        img = image.reshape(-1, *x.shape[-2:]).float()
        for k in range(c):
            u = img[min(k, img.shape[0] - 1)].double().ravel()
            v = x[0, k].double().ravel()
            du = u - u.mean()
            var = float((du * du).sum())
            ak = float((du * (v - v.mean())).sum()) / var if var > 0 else 1.0
            a.append(ak)
            b.append(float(v.mean() - ak * u.mean()))
        return a, b, "fitted from the displayed image and the network input"
    for k in range(c):
        lo, hi = float(x[0, k].min()), float(x[0, k].max())
        a.append(hi - lo if hi > lo else 1.0)
        b.append(lo)
    return a, b, "assumed: the input's minimum is 0 and its maximum 1"


def _thumb(image: torch.Tensor, side: int = 160) -> dict:
    """The input image, 0..1, as 8-bit, at most ``side`` pixels on its longer edge."""
    img = image.float().clamp(0, 1)
    h, w = img.shape[-2:]
    f = max(1, math.ceil(max(h, w) / side))
    if f > 1:
        img = F.avg_pool2d(img[None], f, f, ceil_mode=True)[0]
    q = np.clip(np.rint(img.numpy() * 255), 0, 255).astype(np.uint8)
    return {"c": int(q.shape[0]), "h": int(q.shape[1]), "w": int(q.shape[2]), "f": f,
            "H": int(h), "W": int(w), "q": b64_u8(q)}


def teach_data(model: nn.Module, x: torch.Tensor, graph, *, image: torch.Tensor | None = None,
               crop: int | None = None, small_params: int = SMALL_PARAMS) -> dict:
    """``data["teach"]``: see the module docstring. ``graph`` is
    :func:`cnnlab.graph.trace_graph`'s for this model and input size; ``image`` the picture
    in 0..1 that ``x`` was made from (C x H x W: the normalisation is fitted from the pair);
    ``crop`` the largest output side animated (default 14 for inputs up to 64x64, else 8);
    ``small_params`` the most parameters whose weights go in for the in-page forward pass."""
    model = model.eval()
    size = tuple(int(v) for v in x.shape[1:])
    side = crop or (14 if size[1] * size[2] <= 64 * 64 else 8)
    modules = dict(model.named_modules())
    wanted = [n for n in graph.nodes if n.kind == "module" and n.call == 0 and (
        isinstance(modules.get(n.module), (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))
        or hasattr(modules.get(n.module), "dense_weight"))]
    ins, outs, logits = _capture(model, x, {n.module for n in wanted})
    layers = []
    for n in wanted:
        if n.module not in ins or ins[n.module].dim() != 4:
            continue
        rec = _layer_record(n, modules[n.module], ins[n.module], outs[n.module], side)
        if rec is None:  # not a plain zero-padded correlation: not animated
            continue
        rec["rf"] = _rf(n)
        src = n.inputs[0] if n.inputs else -1
        rec["input_from"] = graph.node(src).key if src >= 0 else None
        rec["in_rf"] = _rf(graph.node(src)) if src >= 0 else None
        layers.append(rec)

    params = sum(p.numel() for p in model.parameters())
    small: dict = {"ok": False}
    if params > small_params:
        small["why"] = (f"{params:,} parameters (the page computes models of up to "
                        f"{small_params:,}, to stay small)")
    else:
        ops, why, weights = _small_ops(model, graph, modules)
        if ops is None:
            small["why"] = why
        else:
            a, b, how = _affine(x, image)
            flat = np.concatenate(weights) if weights else np.zeros(0, np.float32)
            small = {"ok": True, "ops": ops, "weights": b64_f32(flat), "x": b64_f32(x[0]),
                     "input": list(size), "output": int(graph.outputs[0]),
                     "logits": b64_f32(logits[0].float()), "affine": {"a": a, "b": b,
                                                                       "how": how},
                     "params": int(params)}
    shown = image if image is not None else _minmax(x[0])
    return {"version": 1, "input": list(size), "image": _thumb(shown), "crop": side,
            "layers": layers, "small": small, "units": _units(graph)}


def _units(graph) -> dict:
    """For every node and group with a spatial output: its receptive field, its output size
    and the node its input comes from (``None``: the image), for the hover view."""
    out = {}
    for n in [*graph.nodes, *graph.groups()]:
        shape = n.shape
        if not shape or not isinstance(shape[0], int) or len(shape) != 4 or n.rf is None:
            continue
        ins = [i for i in n.inputs if i >= 0]  # a residual add: the main path, computed last
        src = max(ins) if ins else -1
        out[n.key] = {"rf": _rf(n), "h": int(shape[2]), "w": int(shape[3]),
                      "from": graph.node(src).key if src >= 0 else None}
    return out


def _minmax(t: torch.Tensor) -> torch.Tensor:
    lo, hi = float(t.min()), float(t.max())
    return (t - lo) / (hi - lo if hi > lo else 1.0)


__all__ = ["SMALL_OPS", "SMALL_PARAMS", "teach_data"]
