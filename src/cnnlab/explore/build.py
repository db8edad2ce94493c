"""Build the data of the explorer page: the model's tree, its numbers and one image's maps.

Everything the page shows about the architecture comes from cnnlab's own analysis code
(:func:`cnnlab.analysis.summary` for the rows, shapes, parameters and MACs;
:func:`cnnlab.analysis.receptive_field` for the fields); this module adds only what one real
forward pass of the image gives: every module's output (thumbnails, feature maps), the
inputs of convolutions, poolings and batch norms (the arithmetic), the order in which modules
ran and which tensors they shared (to draw branches side by side), and the operators a
container runs itself (``add`` for a residual shortcut, ``cat`` for a concatenation, ``mul``
for a gate). Arrays travel as base64: maps quantised to 8 bits with their range, the
numbers of the arithmetic as float32, so the page can redo PyTorch's sums exactly.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import math
import zlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

ACTIVATIONS = {"ReLU": "relu", "ReLU6": "relu6", "Sigmoid": "sigmoid", "Tanh": "tanh",
               "SiLU": "silu", "Hardswish": "hardswish", "LeakyReLU": "leaky_relu",
               "Hardsigmoid": "hardsigmoid"}
POOLS = (nn.MaxPool2d, nn.AvgPool2d)


@dataclass(frozen=True)
class Limits:
    """How much of each layer goes into the page (small inputs: nearly all of it)."""

    map_channels: int     # feature maps embedded per layer (the first ones)
    map_side: int         # maps larger than this are averaged down in blocks
    kernel_floats: int    # kernel numbers per convolution (whole output channels, >= 1)
    full_input: int       # whole inputs and outputs (float32) of the first layers, in all
    probes: int           # output pixels per convolution with their exact window
    input_values: int = 0  # 8-bit values of whole layer inputs (any pixel clickable), in all

    @staticmethod
    def for_input(size) -> Limits:
        if size[1] * size[2] <= 64 * 64:
            return Limits(map_channels=32, map_side=32, kernel_floats=4096, full_input=60000,
                          probes=4, input_values=4_000_000)
        # up to 299x299: every pixel at full resolution; larger inputs are averaged down and
        # their layer inputs stop at the budget (memory and page size stay bounded)
        return Limits(map_channels=8, map_side=160, kernel_floats=8192, full_input=0,
                      probes=3, input_values=24_000_000 if size[1] * size[2] <= 299 * 299
                      else 4_000_000)


def b64_f32(a) -> str:
    a = np.ascontiguousarray(np.asarray(a, dtype="<f4"))
    return base64.b64encode(a.tobytes()).decode("ascii")


def b64_u8(a) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).decode("ascii")


def _first_tensor(obj):
    for t in tree_flatten(obj)[0]:
        if isinstance(t, torch.Tensor):
            return t
    return None


class _Functions(TorchDispatchMode):
    """The operators a container runs in its own ``forward`` (``x + identity``, ``torch.cat``,
    ``F.relu``, ``F.avg_pool2d``), named as the traced graph names them: the k-th operator
    ``op`` run directly in container ``C`` (any call of it) is node ``C.op`` with ``call`` k."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:  # as graph._Tracer: eager forwards only
        return False

    def __init__(self, stack: list[str], containers: set[str], wanted: dict, record):
        super().__init__()
        self.stack, self.containers, self.wanted, self.record = stack, containers, wanted, record
        self.counts: dict[tuple[str, str], int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.stack and self.stack[-1] in self.containers:
            from ..graph import op_name

            key = (self.stack[-1], op_name(func))
            k = self.counts.get(key, 0)
            self.counts[key] = k + 1
            name = self.wanted.get((*key, k))
            t = _first_tensor(out)
            if name is not None and t is not None:
                self.record(name, t)
        return out


def capture(model: nn.Module, x: torch.Tensor, wanted, record, functions=None,
            record_function=None) -> torch.Tensor:
    """One eval-mode forward pass of ``x`` (1 x C x H x W); returns the logits.

    For every module name in ``wanted`` (its first call only), ``record(name, module, input,
    output)`` runs as soon as the module returns; for every ``(container, op, k)`` of
    ``functions`` (the traced graph's function nodes), ``record_function(key, output)`` as
    soon as the operator has run. Only what they keep stays in memory: no layer's output is
    held after it has been recorded (EfficientNet-B7 at 600x600 would need gigabytes)."""
    names = {}
    for n, m in model.named_modules():
        names.setdefault(m, n)
    done: set[str] = set()
    pending: dict[str, torch.Tensor | None] = {}
    stack: list[str] = []
    containers = {names[m] for m in names if any(True for _ in m.children())}

    def pre(mod, args):
        name = names[mod]
        stack.append(name)
        if name in wanted and name not in done and name not in pending:
            pending[name] = _first_tensor(args)

    def post(mod, args, out):
        name = names[mod]
        if stack and stack[-1] == name:
            stack.pop()
        if name in pending:
            inp = pending.pop(name)
            done.add(name)
            t = _first_tensor(out)
            if t is not None:
                record(name, mod, inp, t)

    handles = [h for m in names
               for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    mode = (_Functions(stack, containers, functions, record_function) if functions
            else contextlib.nullcontext())
    was = model.training
    try:
        model.eval()
        with torch.no_grad(), mode:
            logits = model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return _first_tensor(logits).detach()


# --- arrays for the page -----------------------------------------------------------------

def _block(h: int, w: int, side: int) -> int:
    return max(1, math.ceil(max(h, w) / side))


def b64_z(a: np.ndarray) -> str:
    """uint8 values, zlib-compressed (the page inflates them with DecompressionStream)."""
    raw = np.ascontiguousarray(a, dtype=np.uint8).tobytes()
    return base64.b64encode(zlib.compress(raw, 6)).decode("ascii")


def map_record(t: torch.Tensor, lim: Limits, channels: int | None = None,
               side: int | None = None) -> dict | None:
    """A tensor (1 x C x H x W, or 1 x N) for the page: its first ``channels`` channels (the
    limits' by default), block-averaged above ``side``, 8-bit with one range per channel (a
    channel of values near 1e-6 keeps its own scale: nothing fades to blank), compressed.
    ``lo[c] + q * (hi[c] - lo[c]) / 255`` gives the value back to half a step."""
    t = t[0].float()
    if t.dim() == 1:
        v = t[:1024].numpy()
        lo, hi = _range(v)
        return {"kind": "vec", "n": int(t.numel()), "s": int(v.size), "lo": [lo], "hi": [hi],
                "z": b64_z(_quant(v, lo, hi))}
    if t.dim() != 3:
        return None
    c, h, w = t.shape
    keep = t[:lim.map_channels if channels is None else channels]
    f = _block(h, w, lim.map_side if side is None else side)
    if f > 1:
        keep = F.avg_pool2d(keep[None], f, f, ceil_mode=True)[0]
    keep = keep.numpy()
    los, his, q = [], [], np.empty(keep.shape, dtype=np.uint8)
    for i in range(keep.shape[0]):
        lo, hi = _range(keep[i])
        los.append(lo)
        his.append(hi)
        q[i] = _quant(keep[i], lo, hi)
    return {"kind": "map", "c": int(c), "h0": int(h), "w0": int(w), "s": int(keep.shape[0]),
            "h": int(keep.shape[1]), "w": int(keep.shape[2]), "f": f, "lo": los, "hi": his,
            "z": b64_z(q)}


def record_key(rec: dict) -> str:
    """Two records of the same numbers (a block's output is its last child's) share a key."""
    parts = (rec["z"], rec["lo"], rec["hi"], rec.get("h"), rec.get("s"), rec.get("c"))
    return hashlib.sha1(repr(parts).encode()).hexdigest()


def _range(a: np.ndarray) -> tuple[float, float]:
    big = 1e38  # an untrained deep network can overflow float32; its colours stay finite
    lo, hi = float(np.clip(np.nanmin(a), -big, big)), float(np.clip(np.nanmax(a), -big, big))
    if lo < 0 < hi:  # signed values: a diverging scale centred on zero
        m = max(-lo, hi)
        lo, hi = -m, m
    if hi == lo:
        hi = lo + 1.0
    # float32 numbers: the page computes lo + q * (hi - lo) / 255 with the same values
    return float(np.float32(lo)), float(np.float32(hi))


def _quant(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    a = np.nan_to_num(np.asarray(a, dtype=np.float64), nan=lo, posinf=hi, neginf=lo)
    if not hi - lo > 0:  # a constant channel near float32's limit: lo + 1 rounds back to lo
        return np.zeros(a.shape, dtype=np.uint8)
    return np.clip(np.rint((a - lo) / (hi - lo) * 255.0), 0, 255).astype(np.uint8)


def _probe_points(out: torch.Tensor, channels: int, n: int) -> list[tuple[int, int, int]]:
    """``n`` output pixels whose exact numbers go in, over the first ``channels`` channels in
    turn: the strongest pixel of the channel, the centre, the corners (padding shows there)."""
    _, c, h, w = out.shape
    channels = max(1, min(channels, c))
    pts: list[tuple[int, int, int]] = []
    for i in range(4 * n):
        co = i % channels
        j = int(out[0, co].abs().flatten().argmax())
        spots = ((j // w, j % w), (h // 2, w // 2), (0, 0), (h - 1, w - 1))
        p = (co, *spots[(i // channels) % 4])
        if p not in pts:
            pts.append(p)
        if len(pts) == n:
            break
    return pts


def _window(inp: torch.Tensor, y0: int, x0: int, kh: int, kw: int, dh: int, dw: int,
            fill: float) -> torch.Tensor:
    """(C, kh, kw) of ``inp`` (C, H, W) from (y0, x0) with dilation, ``fill`` outside."""
    c, h, w = inp.shape
    out = torch.full((c, kh, kw), fill, dtype=inp.dtype)
    for i in range(kh):
        for j in range(kw):
            y, x = y0 + i * dh, x0 + j * dw
            if 0 <= y < h and 0 <= x < w:
                out[:, i, j] = inp[:, y, x]
    return out


def conv_record(mod: nn.Module, inp: torch.Tensor, out: torch.Tensor, lim: Limits,
                first: bool, budget: list[int]) -> dict:
    """A convolution's numbers: kernels of the first output channels, bias, and either its
    whole input and output (while ``budget[0]`` floats last) or a few probe pixels' windows."""
    weight = mod.dense_weight() if hasattr(mod, "dense_weight") else mod.weight
    weight = weight.detach().float()
    bias = mod.bias.detach().float() if getattr(mod, "bias", None) is not None else None
    cout, cin_g, kh, kw = weight.shape
    stride = tuple(getattr(mod, "stride", (1, 1)))
    pad = getattr(mod, "padding", (0, 0))
    if isinstance(pad, str):  # "same" / "valid": the offsets torch uses
        pad = (0, 0) if pad == "valid" else ((kh - 1) // 2, (kw - 1) // 2)
    pad = tuple(pad)
    dil = tuple(getattr(mod, "dilation", (1, 1)))
    groups = int(getattr(mod, "groups", 1))
    zeros = getattr(mod, "padding_mode", "zeros") == "zeros"
    per = cin_g * kh * kw
    kc = min(cout, 64 if first else max(1, min(lim.map_channels, lim.kernel_floats // per)))
    inp0, out0 = inp[0].float(), out[0].float()
    rec = {"kind": "conv", "cin": int(inp0.shape[0]), "cout": int(cout), "cin_g": int(cin_g),
           "k": [int(kh), int(kw)], "stride": list(stride), "pad": list(pad),
           "dil": list(dil), "groups": groups, "kc": int(kc),
           "W": b64_f32(weight[:kc]), "b": b64_f32(bias[:kc]) if bias is not None else None,
           "H": int(inp0.shape[1]), "Wd": int(inp0.shape[2]),
           "Ho": int(out0.shape[1]), "Wo": int(out0.shape[2])}
    need = inp0.numel() + out0[:kc].numel()
    if zeros and need <= budget[0]:
        budget[0] -= need
        rec["x"] = b64_f32(inp0)
        rec["y"] = b64_f32(out0[:kc])
    probes = []
    per_g = cout // groups
    for co, y, x in _probe_points(out, kc, lim.probes):
        g = co // per_g
        win = _window(inp0[g * cin_g:(g + 1) * cin_g], y * stride[0] - pad[0],
                      x * stride[1] - pad[1], kh, kw, dil[0], dil[1], 0.0)
        probes.append({"co": co, "y": y, "x": x, "v": float(out0[co, y, x]),
                       "win": b64_f32(win)})
    rec["probes"] = probes
    return rec


def pool_record(mod: nn.Module, inp: torch.Tensor, out: torch.Tensor, lim: Limits,
                budget: list[int]) -> dict:
    k = _pair(mod.kernel_size)
    s = _pair(mod.stride if mod.stride is not None else mod.kernel_size)
    p = _pair(mod.padding)
    is_max = isinstance(mod, nn.MaxPool2d)
    d = _pair(mod.dilation) if is_max else (1, 1)
    inp0, out0 = inp[0].float(), out[0].float()
    kc = min(inp0.shape[0], lim.map_channels)
    rec = {"kind": "pool", "op": "max" if is_max else "avg", "k": list(k), "stride": list(s),
           "pad": list(p), "dil": list(d), "ceil": bool(mod.ceil_mode),
           "include_pad": bool(getattr(mod, "count_include_pad", True)),
           "H": int(inp0.shape[1]), "Wd": int(inp0.shape[2]),
           "Ho": int(out0.shape[1]), "Wo": int(out0.shape[2]), "kc": int(kc)}
    need = inp0[:kc].numel() + out0[:kc].numel()
    if need <= budget[0]:
        budget[0] -= need
        rec["x"] = b64_f32(inp0[:kc])
        rec["y"] = b64_f32(out0[:kc])
    probes = []
    for co, y, x in _probe_points(out, min(kc, 2), 4):
        fill = -math.inf if is_max else 0.0
        win = _window(inp0[co:co + 1], y * s[0] - p[0], x * s[1] - p[1], k[0], k[1], d[0], d[1],
                      fill)
        probes.append({"co": co, "y": y, "x": x, "v": float(out0[co, y, x]),
                       "win": b64_f32(win.clamp_min(-3.0e38))})
    rec["probes"] = probes
    return rec


def bn_record(mod: nn.BatchNorm2d, inp: torch.Tensor, out: torch.Tensor, lim: Limits) -> dict:
    c = inp.shape[1]
    kc = min(c, lim.map_channels)
    mean = mod.running_mean if mod.running_mean is not None else inp[0].mean((1, 2))
    var = mod.running_var if mod.running_var is not None else inp[0].var((1, 2), unbiased=False)
    gamma = mod.weight if mod.weight is not None else torch.ones(c)
    beta = mod.bias if mod.bias is not None else torch.zeros(c)
    probes = []
    for co, y, x in _probe_points(out, min(kc, 4), 4):
        probes.append({"co": co, "y": y, "x": x, "in": float(inp[0, co, y, x]),
                       "v": float(out[0, co, y, x])})
    return {"kind": "bn", "kc": int(kc), "eps": float(mod.eps),
            "mean": b64_f32(mean.detach()[:kc].float()), "var": b64_f32(var.detach()[:kc].float()),
            "gamma": b64_f32(gamma.detach()[:kc].float()),
            "beta": b64_f32(beta.detach()[:kc].float()), "probes": probes}


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))
