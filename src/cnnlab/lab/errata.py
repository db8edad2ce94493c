"""Errata for the course material: every error or ambiguity found in the slides and notebooks.

Each entry says what the slide says (a few words, and ``quotes``: the slide's own words copied
from the course's extracted text, with the file), what is right, why, and the ``cnnlab``
command that shows it. Every figure in an entry is computed here, by the code that the command
runs (models built on the ``meta`` device, :func:`cnnlab.analysis.cost.conv_cost`, the NumPy
engine), never typed by hand; ``shows`` lists the strings the command prints that carry the
corrected figure, and a test runs every command and checks them. Entries whose point no
inspection command prints (the NumPy snippets, the gradient formulas) have a demonstration
that ``cnnlab errata ID`` runs.

``cnnlab errata`` prints the list, ``cnnlab errata ID`` one entry with its demonstration,
``--json`` the data and ``--markdown`` the page ``docs/errata.md`` (generated from the same
data; a test checks that the committed page is the generated one).

Each entry is one small function under "the entries" below, registered with ``@_entry`` in
document order. To add one, write a function ``_erratum_<id>`` that computes its figures and
returns its :class:`Erratum`, decorate it with ``@_entry``, put it where it belongs among the
others, and regenerate the page: ``cnnlab errata --markdown > docs/errata.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import numpy as np


@dataclass
class Erratum:
    id: str
    source: str          # which course document
    kind: str            # "error" or "ambiguity"
    slide: str           # what the slide says, in a few words
    right: str
    why: str
    command: str         # the cnnlab command that shows it
    shows: list[str] = field(default_factory=list)   # strings the command prints
    demo: Callable[[], list[str]] | None = None
    # the slide's own words, verbatim from the extracted course text: (file, excerpt)
    quotes: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"id": self.id, "source": self.source, "kind": self.kind, "slide": self.slide,
                "right": self.right, "why": self.why, "command": self.command,
                "shows": self.shows,
                "quotes": [{"file": f, "text": t} for f, t in self.quotes]}


# The course's slide text, extracted to one file per document (Spanish and Portuguese). The
# quotes below are copied from these files; a test checks each is there, word for word.
COURSE_FILES = {
    "architectures": "000_6dccaf5db48b36f5.txt",     # Arquitecturas Convolucionales (es)
    "andrew-ng": "001_d266a804d6265435.txt",         # Arquitecturas CNNs, Keras table (es)
    "allconv": "002_6e90e5376ad0b5cc.txt",           # Arquitectura AllConvolutional (es)
    "redes": "003_35ce60e4ae78ad9e.txt",             # Redes Convolucionales: LeNet .. (es)
    "ponti": "004_d874597fd791dc3b.txt",             # (4-b) Arquiteturas de CNNs (pt)
}


def _q(doc: str, text: str) -> tuple[str, str]:
    return COURSE_FILES[doc], text


# --- figures, computed -------------------------------------------------------------------

def _meta_summary(name: str, **kwargs):
    import torch

    from ..analysis.summary import summary
    from ..registry import create_model, get_entry

    with torch.device("meta"):
        model = create_model(name, **kwargs)
    return model, summary(model, tuple(get_entry(name).input_size))


def _rows(s) -> dict:
    return {r.name: r for r in s.rows}


def _count(model, cls) -> int:
    return sum(isinstance(m, cls) for m in model.modules())


@cache
def _vgg() -> dict:
    from torch import nn

    out = {}
    for name in ("vgg16", "vgg19"):
        model, s = _meta_summary(name)
        blocks, n = [], 0
        for m in model.features:
            if isinstance(m, nn.Conv2d):
                n += 1
            elif isinstance(m, nn.MaxPool2d):
                blocks.append(n)
                n = 0
        out[name] = {"convs": _count(model, nn.Conv2d), "fcs": _count(model, nn.Linear),
                     "blocks": blocks,
                     "depth": s.depth,
                     "classes": [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
                     .out_features}
    return out


@cache
def _alexnet() -> dict:
    model, s = _meta_summary("alexnet_original")
    rows = _rows(s)
    convs = {n: rows[f"features.{n}"] for n in ("conv1", "conv2", "conv3", "conv4", "conv5")}
    fc7 = rows["classifier.fc7"]
    fc6_in = model.classifier.fc6.in_features
    return {"convs": convs, "fc7": fc7, "fc6_in": fc6_in,
            "pool5": rows["features.pool5"].output_shape}


@cache
def _conv1_fit() -> dict:
    from ..analysis.cost import conv_cost

    c224 = conv_cost(224, 224, 3, 96, 11, 4, 0)
    c227 = conv_cost(227, 227, 3, 96, 11, 4, 0)
    return {"exact224": c224.exact_out[0], "out227": c227.out_height, "w224": c224.warnings}


@cache
def _b0() -> dict:
    """EfficientNet-B0's stage table, read from the built model: operator, kernel, input and
    output resolution, channels, layers."""
    from torch import nn

    model, s = _meta_summary("efficientnet_b0")
    rows = _rows(s)
    feats = model.features
    table = []
    res_in = s.input_size[1]
    for i, stage in enumerate(feats):
        out = rows[f"features.{i}"].output_shape
        ch, h, _ = (int(v) for v in out.split("x"))
        convs = [m for m in stage.modules() if isinstance(m, nn.Conv2d)]
        dw = [m for m in convs if m.groups > 1]
        if dw:
            first = list(stage.children())[0]
            first_convs = [m for m in first.modules() if isinstance(m, nn.Conv2d)]
            cin = first_convs[0].in_channels
            expand = dw[0].in_channels // cin
            k = dw[0].kernel_size[0]
            op, layers = f"MBConv{expand}, k{k}x{k}", len(list(stage.children()))
        else:
            k = convs[0].kernel_size[0]
            op, layers = f"Conv{k}x{k}", 1
        table.append({"stage": i + 1, "operator": op, "res_in": res_in, "res_out": h,
                      "channels": ch, "layers": layers})
        res_in = h
    blocks = sum(r["layers"] for r in table if r["operator"].startswith("MBConv"))
    return {"table": table, "depth": s.depth, "blocks": blocks,
            "n192": next(r["layers"] for r in table if r["channels"] == 192)}


@cache
def _mobilenet() -> dict:
    from torch import nn

    model, s = _meta_summary("mobilenet_v1")
    rows = _rows(s)
    blocks = [n for n in rows if n.count(".") == 1 and n.startswith("features.")]
    last, before = blocks[-1], blocks[-2]
    dw = [m for m in dict(model.named_modules())[last].modules()
          if isinstance(m, nn.Conv2d) and m.groups > 1][0]
    return {"last": last, "in": rows[before].output_shape, "out": rows[last].output_shape,
            "stride": dw.stride[0]}


@cache
def _allconv() -> dict:
    model, s = _meta_summary("allconv_c")
    _, sp = _meta_summary("allconv_c", layout="paper")

    def before_gap(summ):   # the last 10-channel map: what the global average pools
        return [r for r in summ.rows if r.output_shape.startswith("10x")
                and r.output_shape.count("x") == 2 and r.output_shape != "10x1x1"
                ][-1].output_shape

    _, sc = _meta_summary("strided_cnn_c")
    return {"params": s.total_params, "same": before_gap(s), "paper": before_gap(sp),
            "paper_params": sp.total_params, "model_c": sc.total_params}


@cache
def _dwsep() -> dict:
    from ..analysis.cost import SLIDE_EXAMPLE, conv_cost

    c = conv_cost(**SLIDE_EXAMPLE)
    return {"std_w": c.standard_weights, "dw_w": c.depthwise_weights,
            "pw_w": c.pointwise_weights, "sep_mults": c.separable_mults,
            "std_mults": c.standard_mults, "ratio": c.ratio}


def _summ(name: str, input_size: tuple[int, int, int] | None = None, **kwargs):
    """A model built on the meta device and its summary at ``input_size`` (default: native)."""
    import torch

    from ..analysis.summary import summary
    from ..registry import create_model, get_entry

    with torch.device("meta"):
        model = create_model(name, **kwargs)
    return model, summary(model, tuple(input_size or get_entry(name).input_size))


@cache
def _lenet() -> dict:
    from torch import nn

    from ..layers import conv_out_size

    model, s = _meta_summary("lenet5")
    rows = _rows(s)
    f = model.features
    c1, c5 = f.c1, f.c5
    # LeNet-5's valid chain at the lab's 28x28: conv 5 (C1), pool 2 (S2), conv 5 (C3), pool 2
    chain, h = [28], 28
    for k, st in ((c1.kernel_size[0], 1), (f.s2.kernel_size, f.s2.stride),
                  (f.c3.kernel_size[0], 1), (f.s4.kernel_size, f.s4.stride)):
        k, st = (k[0], st[0]) if isinstance(k, tuple) else (k, st)
        h = conv_out_size(h, k, st, 0)
        chain.append(h)
    _, sp = _summ("lenet5", (1, 28, 28), c1_padding=2)
    rp = _rows(sp)
    return {"c1": rows["features.c1"], "c5": rows["features.c5"], "f6": rows["f6"],
            "c1_per_filter": c1.weight[0].numel(), "c1_filters": c1.out_channels,
            "c5_k": c5.kernel_size[0], "c5_in": c5.in_channels * c5.kernel_size[0] ** 2,
            "s4": rows["features.s4"].output_shape, "chain28": chain,
            "pad_c1": rp["features.c1"].output_shape, "pad_c5": rp["features.c5"].output_shape,
            "native": s.input_size, "n_linear": _count(model, nn.Linear)}


@cache
def _densenet() -> dict:
    from torch import nn

    model, s = _meta_summary("densenet121")
    rows = _rows(s)
    blocks = [m for n, m in model.features.named_children() if n.startswith("denseblock")]
    layers = [len(list(b.children())) for b in blocks]
    first = next(iter(blocks[0].children()))
    n_trans = sum(1 for n, _ in model.features.named_children() if n.startswith("transition"))
    return {"layers": layers, "growth": first.conv2.out_channels,
            "bottleneck": first.conv1.out_channels, "k1": first.conv1.kernel_size[0],
            "depth": s.depth, "transitions": n_trans,
            "fcs": _count(model, nn.Linear),
            "row1": rows["features.denseblock1.denselayer1.conv1"],
            "row2": rows["features.denseblock1.denselayer1.conv2"]}


@cache
def _mnv2() -> dict:
    from torch import nn

    model, s = _meta_summary("mobilenet_v2")
    rows = _rows(s)
    # the first block with a shortcut (stride 1, same width in and out)
    i, block = next((i, b) for i, b in enumerate(model.features)
                    if getattr(b, "use_residual", False))
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    expand, dw, project = convs[0], convs[1], convs[-1]
    acts = (nn.ReLU, nn.ReLU6)
    # the projection is linear: no activation after the last convolution of the body
    body = list(block.conv.children())
    linear = not any(isinstance(m, acts) for m in body[body.index(project):])
    return {"name": f"features.{i}", "cls": type(block).__name__, "cin": expand.in_channels,
            "wide": expand.out_channels, "dw_groups": dw.groups, "cout": project.out_channels,
            "expand_row": rows[f"features.{i}.conv.0"], "dw_row": rows[f"features.{i}.conv.1"],
            "project_row": rows[f"features.{i}.conv.2"], "linear": linear}


@cache
def _alexnet_groups() -> dict:
    m1, s1 = _meta_summary("alexnet_original")
    m2, s2 = _meta_summary("alexnet_original", groups=2)
    f1, f2 = m1.features, m2.features
    shape = {n: tuple(getattr(f2, n).weight.shape) for n in ("conv2", "conv3", "conv4", "conv5")}
    params = {n: (sum(p.numel() for p in getattr(f1, n).parameters()),
                  sum(p.numel() for p in getattr(f2, n).parameters()))
              for n in ("conv2", "conv4", "conv5")}
    return {"shape": shape, "params": params, "total": (s1.total_params, s2.total_params)}


@cache
def _keras_depth() -> dict:
    from torch import nn

    from ..analysis.keras import KERAS_PUBLISHED, keras_depth

    out = {}
    for name, kname in (("vgg16", "VGG16"), ("resnet50", "ResNet50")):
        model, s = _meta_summary(name)
        out[name] = {"conv": _count(model, nn.Conv2d), "bn": _count(model, nn.BatchNorm2d),
                     "fc": _count(model, nn.Linear), "keras": keras_depth(model),
                     "published": KERAS_PUBLISHED[kname][4], "depth": s.depth, "kname": kname}
    return out


# --- demonstrations (what `cnnlab errata ID` runs) ---------------------------------------

def _kron_demo() -> list[str]:
    pool = 2
    delta = np.arange(1.0, 5.0).reshape(2, 2)
    wrong = np.kron(delta, np.ones(pool))
    right = np.kron(delta, np.ones((pool, pool))) / pool**2
    # the NumPy engine's average-pooling backward gives the same as the corrected snippet
    from ..scratch.layers import AvgPool2D

    layer = AvgPool2D(pool)
    layer.forward(np.zeros((1, 1, 2 * pool, 2 * pool)))
    engine = layer.backward(delta.reshape(1, 1, 2, 2))[0, 0]
    return [
        f"delta = {delta.tolist()}, poolDim = {pool}",
        f"np.kron(delta, np.ones(poolDim)).shape         = {wrong.shape}  (1-D ones: only the "
        "columns are repeated)",
        f"np.kron(delta, np.ones((poolDim, poolDim))).shape = {right.shape}",
        f"mean-pooling backward = kron(delta, ones((2, 2))) / 4 = {right.tolist()}",
        f"cnnlab's NumPy AvgPool2D.backward gives the same: {np.allclose(engine, right)}",
    ]


M_DEMO = 8   # the batch size of the equation (4) demonstration


def _eq4_demo() -> list[str]:
    from ..scratch.losses import softmax_cross_entropy

    rng = np.random.default_rng(0)
    m, d, k = M_DEMO, 5, 3
    x, w = rng.normal(size=(m, d)), rng.normal(size=(d, k))
    y = rng.integers(0, k, m)

    def loss(w_):
        return softmax_cross_entropy(x @ w_, y)[0]

    num = np.zeros_like(w)
    eps = 1e-6
    for idx in np.ndindex(*w.shape):
        wp, wm = w.copy(), w.copy()
        wp[idx] += eps
        wm[idx] -= eps
        num[idx] = (loss(wp) - loss(wm)) / (2 * eps)
    _, dlogits_mean = softmax_cross_entropy(x @ w, y)      # includes 1/m
    sum_grad = x.T @ (dlogits_mean * m)                    # equation (4) without 1/m
    mean_grad = x.T @ dlogits_mean
    ratio = float(np.median(sum_grad / num))
    return [
        f"a softmax layer, batch m = {m}, J = (1/m) sum_i J_i (equation 3)",
        f"numerical dJ/dW vs the sum of per-example gradients (equation 4 as printed): "
        f"ratio {ratio:.3f} = m",
        f"numerical dJ/dW vs (1/m) x that sum: largest difference "
        f"{float(np.abs(mean_grad - num).max()):.1e}",
    ]


def _conv_grad_demo() -> list[str]:
    from ..scratch.layers import Conv2D
    from .filters import convolve2d, correlate2d

    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(5, 5)), rng.normal(size=(3, 3))
    delta = rng.normal(size=(3, 3))                 # dE/dy for E = sum(delta * y)

    def forward(w_):       # the tip: flip W with rot90(W, 2), then convolve (= correlate with W)
        return convolve2d(x, np.rot90(w_, 2), mode="valid")

    num = np.zeros_like(w)
    eps = 1e-6
    for idx in np.ndindex(*w.shape):
        wp, wm = w.copy(), w.copy()
        wp[idx] += eps
        wm[idx] -= eps
        num[idx] = np.sum(delta * (forward(wp) - forward(wm))) / (2 * eps)
    slide = convolve2d(x, np.rot90(delta, 2), mode="valid")    # a * rot90(delta, 2)
    as_corr = correlate2d(x, np.rot90(delta, 2), mode="valid")  # * read as a library's conv
    layer = Conv2D(1, 1, 3, rng=rng)                 # cnnlab's NumPy Conv2D: no pre-flip
    layer.params["W"][0, 0] = w
    layer.forward(x[None, None])
    layer.backward(delta[None, None])
    engine = layer.grads["W"][0, 0]
    return [
        "forward as the tip says: W = rot90(W,2), then convolve (a correlation with W)",
        f"numerical dE/dW vs the slide's a * rot90(delta, 2), * a convolution: largest "
        f"difference {float(np.abs(slide - num).max()):.1e}",
        f"the same formula with * read as a library's conv2d (a correlation): largest "
        f"difference {float(np.abs(as_corr - num).max()):.3f}",
        f"cnnlab's NumPy Conv2D convolves without the flip: its dE/dW vs rot90(slide's "
        f"formula, 2): largest difference {float(np.abs(engine - np.rot90(slide, 2)).max()):.1e}",
    ]


@cache
def _dy_responses() -> dict:
    """Responses of the slides' derivative masks to an edge from dark (0) to bright (1),
    convolved as the slides define convolution."""
    from .filters import convolve2d, get_kernel

    step_down = np.repeat([[0.0], [0.0], [0.0], [1.0], [1.0], [1.0]], 6, axis=1)  # dark above
    step_right = step_down.T                                                     # dark left

    def response(img, k):  # one value across the edge: the mean over the edge's length
        r = convolve2d(img, k, mode="valid")
        return float(r.sum() / (r.shape[1] if k.shape[0] == 2 else r.shape[0]))

    return {"dx": response(step_right, np.array([[-1.0, 1.0]])),
            "dy1": response(step_down, np.array([[1.0], [-1.0]])),
            "dy2": response(step_down, np.array([[-1.0], [1.0]])),
            "cnnlab_dy": get_kernel("dy").ravel().tolist()}


def _dy_demo() -> list[str]:
    r = _dy_responses()
    return [
        "edges from dark (0) to bright (1), convolved as the slides define convolution:",
        f"  Dx [-1 1] across a dark-left/bright-right edge: {r['dx']:+g}",
        f"  Dy [1; -1] (first slide) across a dark-top/bright-bottom edge: {r['dy1']:+g}",
        f"  Dy [-1; 1] ('Máscaras' slide) across the same edge:     {r['dy2']:+g}",
        f"  cnnlab's dy kernel (cnnlab filter --list): {r['cnnlab_dy']} (the 'Máscaras' sign)",
    ]


@cache
def _line45_responses() -> dict:
    from .filters import convolve2d, get_kernel

    mask = np.array([[2.0, -1, -1], [-1, 2, -1], [-1, -1, 2]])   # the slide's "+45°"
    falling = np.eye(7)                 # top left to bottom right (rows grow downwards)
    rising = np.fliplr(falling)         # bottom left to top right
    name = next(n for n in ("line+45", "line-45") if np.array_equal(get_kernel(n), mask))
    # the response at the line's centre pixel
    return {"falling": float(convolve2d(falling, mask)[3, 3]),
            "rising": float(convolve2d(rising, mask)[3, 3]), "name": name}


def _line45_demo() -> list[str]:
    r = _line45_responses()
    return [
        f"the slide's '+45°' mask on a line falling to the right: {r['falling']:g}; "
        f"on a line rising to the right: {r['rising']:g}",
        f"cnnlab names that mask {r['name']} (angles from the horizontal, y up)",
    ]


def _lenet28_demo() -> list[str]:
    le = _lenet()
    c = le["chain28"]
    return [f"LeNet-5 (valid 5x5 convs, 2x2 pools) on 28x28: C1 {c[1]}x{c[1]}, S2 {c[2]}x{c[2]}, "
            f"C3 {c[3]}x{c[3]}, S4 {c[4]}x{c[4]}: C5's {le['c5_k']}x{le['c5_k']} kernel "
            f"does not fit",
            f"lenet5(c1_padding=2) on 1x28x28: C1 {le['pad_c1']}, C5 {le['pad_c5']} "
            f"(the slide's sizes from C1 on)"]


def _alexnet_groups_demo() -> list[str]:
    a = _alexnet_groups()
    lines = ["alexnet_original(groups=2), the paper's two-GPU split, weight shapes "
             "(out, in, k, k):"]
    for n, sh in a["shape"].items():
        extra = ""
        if n in a["params"]:
            one, two = a["params"][n]
            extra = f"   {two:,} parameters ({one:,} with every input map)"
        lines.append(f"  {n}: {sh}{extra}")
    lines.append(f"whole network: {a['total'][1]:,} parameters with groups=2, "
                 f"{a['total'][0]:,} without")
    return lines


def _keras_depth_demo() -> list[str]:
    k = _keras_depth()
    return [f"{v['kname']}: {v['conv']} conv + {v['bn']} batch norm + {v['fc']} dense = "
            f"{v['keras']} layers with weights (the page: {v['published']}); "
            f"weighted layers on the longest path (cnnlab's depth): {v['depth']}"
            for v in k.values()]


def _b0_demo() -> list[str]:
    b0 = _b0()
    lines = ["stage  operator         input    output   channels  layers"]
    for r in b0["table"]:
        lines.append(f"{r['stage']:>5}  {r['operator']:<15}  {r['res_in']:>3}x{r['res_in']:<3}  "
                     f"{r['res_out']:>3}x{r['res_out']:<3}  {r['channels']:>8}  {r['layers']:>6}")
    lines.append(f"MBConv blocks: {b0['blocks']}; stages of 192 channels: "
                 f"{b0['n192']} layers")
    return lines


def _allconv_demo() -> list[str]:
    a = _allconv()
    return [f"allconv_c (course notebook, 'same' padding): last map {a['same']}, "
            f"{a['params']:,} parameters",
            f"allconv_c layout='paper' (Table 1's valid 3x3 conv): last map {a['paper']}, "
            f"{a['paper_params']:,} parameters"]


def _efficientnet18_demo() -> list[str]:
    b0 = _b0()
    return [f"stem conv 1 + MBConv blocks {b0['blocks']} + head conv 1 = {b0['blocks'] + 2}",
            f"cnnlab's depth (every conv on the longest path): {b0['depth']}"]


# --- the entries -------------------------------------------------------------------------
#
# Each erratum is one function decorated with ``@_entry``: it computes the figures it needs
# (the cached helpers above) and returns its Erratum. The functions are registered in the order
# they appear in this file, which is the order of ``errata()``, the list and docs/errata.md.
# To add an erratum, write one such function, named ``_erratum_`` + its id, and put it where it
# belongs among the others; then regenerate the page with
# ``cnnlab errata --markdown > docs/errata.md`` (a test checks the committed page).

_ENTRIES: list[Callable[[], Erratum]] = []


def _entry(build: Callable[[], Erratum]) -> Callable[[], Erratum]:
    """Register ``build`` (a function returning one Erratum) in document order."""
    _ENTRIES.append(build)
    return build


@_entry
def _erratum_vgg_listing() -> Erratum:
    v = _vgg()
    v16, v19 = v["vgg16"], v["vgg19"]
    return Erratum(
        "vgg-listing", "VGGNet slide (Portuguese listing)", "ambiguity",
        '"conv 13-14-15-16: K = 512 + maxpool", then "densas1, 2: K = 4096"',
        f"The slide names no configuration, but 16 convolutions are VGG-19's "
        f"(configuration E: {' + '.join(map(str, v19['blocks']))} = {v19['convs']} "
        f"convolutions + {v19['fcs']} FC = {v19['depth']} weighted layers); VGG-16 (D) "
        f"has {v16['convs']} convolutions + {v16['fcs']} FC. The listing also stops at the "
        f"two 4096-unit layers: the third FC layer, the {v19['classes']}-way classifier "
        "(FC-1000), is missing.",
        "A VGG network is named by its weighted layers (convolutions + FC): reading "
        "\"conv 1 ... conv 16\" as VGG-16 gives the wrong network.",
        "cnnlab summary vgg19 --depth 1",
        [f"Depth: {v19['depth']} weighted layers"],
        quotes=[_q("ponti", "# VGGNet (Simonyan, 2014)"),
                _q("ponti", r"conv 13-14-15-16:  $K = 512 + \text{maxpool}$"),
                _q("ponti", "densas1, 2:  $K = 4096$")])


@_entry
def _erratum_alexnet_filters() -> Erratum:
    c = _alexnet()["convs"]
    return Erratum(
        "alexnet-filters", "AlexNet slide (simplified architecture)", "error",
        '"CONV2: 266 5x5 filters", "CONV4: 334 3x3 filters"',
        f"conv2 and conv5 have {c['conv2'].output_shape.split('x')[0]} filters, conv3 and "
        f"conv4 {c['conv3'].output_shape.split('x')[0]} (outputs {c['conv2'].output_shape}, "
        f"{c['conv3'].output_shape}, {c['conv4'].output_shape}, {c['conv5'].output_shape}).",
        "Typing slips for the paper's widths 96-256-384-384-256; CONV2's own output on the "
        "slide, [27x27x256], has the 256.",
        "cnnlab summary alexnet_original --depth 2",
        [c["conv2"].output_shape, c["conv3"].output_shape, c["conv5"].output_shape],
        quotes=[_q("redes", "[27x27x256] CONV2: 266 5x5 filters at stride 1, pad 2"),
                _q("redes", "[13x13x334] CONV4: 334 3x3 filters at stride 1, pad 1")])


@_entry
def _erratum_alexnet_fc7() -> Erratum:
    a = _alexnet()
    fc7 = a["fc7"]
    return Erratum(
        "alexnet-fc7", "AlexNet slide (simplified architecture)", "ambiguity",
        '"FC7: 4096 neurons with F=1"',
        f"FC7 is a fully connected layer from FC6's 4,096 outputs to 4,096 units: "
        f"{fc7.params:,} parameters ({fc7.macs:,} weights + {fc7.params - fc7.macs:,} "
        f"biases). \"F=1\" is "
        f"only right in the FC-as-convolution view, where FC6 is a 6x6 convolution (F=6) "
        f"over the {a['pool5']} map ({a['fc6_in']:,} inputs) and FC7 a 1x1 one.",
        "The slide mixes the two views of the same layer; in the network as trained there is "
        "no filter size, and the weights are the same either way.",
        "cnnlab summary alexnet_original --depth 2",
        [f"{fc7.params:,}", a["pool5"]],
        quotes=[_q("redes", "[4096] FC7: 4096 neurons with F=1")])


@_entry
def _erratum_alexnet_224() -> Erratum:
    fit = _conv1_fit()
    return Erratum(
        "alexnet-224", "AlexNet slides (Portuguese listing; simplified architecture)",
        "error",
        '"entrada 224 × 224", conv1 "11 × 11 × 3, stride 4"; the other AlexNet slide: '
        '"[227x227x3] INPUT", "[55x55x96] CONV1 ... pad 0"',
        f"(227 - 11) / 4 + 1 = {fit['out227']}: the 55x55 maps need a 227x227 input; "
        f"224 gives (224 - 11) / 4 + 1 = {fit['exact224']:g}.",
        "The paper says 224 but its layer sizes only work with 227 (or with 2 pixels of "
        "padding); torchvision's AlexNet pads by 2 and takes 224. The two AlexNet slides "
        "follow the two readings.",
        "cnnlab cost --input 224x224x3 --maps 96 --kernel 11 --stride 4 --padding valid",
        [f"{fit['exact224']:g}", "227", f"giving {fit['out227']}"],
        quotes=[_q("ponti", r"entrada  $224 \times 224$"),
                _q("ponti", r"conv1:  $K = 96$  filters with  $11 \times 11 \times 3$ , "
                            "stride 4,"),
                _q("redes", "[227x227x3] INPUT"),
                _q("redes", "[55x55x96] CONV1: 96 11x11 filters at stride 4, pad 0")])


@_entry
def _erratum_efficientnet_b0_table() -> Erratum:
    b0 = _b0()
    t = {r["stage"]: r for r in b0["table"]}
    stride2 = [r for r in b0["table"] if r["res_out"] < r["res_in"]]
    s3 = stride2[1] if len(stride2) > 1 else stride2[0]
    return Erratum(
        "efficientnet-b0-table", "EfficientNet slide (Table 1)", "error",
        'five "MBConv6, k5x5 14×14 192" rows',
        f"B0 has {b0['n192']} MBConv6 k{t[7]['operator'][-3:]} layers with 192 channels "
        f"({b0['blocks']} MBConv blocks in all). The Resolution column is each stage's "
        f"*input*, as the caption says (\"input de resolución\"): stage {s3['stage']} "
        f"({s3['operator']}, {s3['channels']} channels) is listed at "
        f"{s3['res_in']}x{s3['res_in']} and its first block, stride 2, outputs "
        f"{s3['res_out']}x{s3['res_out']}.",
        f"The paper's Table 1 lists "
        f"{' + '.join(str(r['layers']) for r in b0['table'])} = "
        f"{sum(r['layers'] for r in b0['table'])} layers; the slide, one row per layer, has "
        "a fifth 192 row. The stage table is printed by "
        "'cnnlab errata efficientnet-b0-table'.",
        "cnnlab summary efficientnet_b0 --depth 3",
        [f"features.6.{b0['n192'] - 1}", "192x7x7"], _b0_demo,
        quotes=[_q("redes", "MBConv6, k5x5\t14×14\t192"),
                _q("redes", "input de resolución")])


@_entry
def _erratum_kron_snippet() -> Erratum:
    return Erratum(
        "kron-snippet", "CNN backprop notes (mean pooling)", "error",
        "np.kron(delta,ones(poolDim)); the arrow labelled \"flip\"",
        "np.kron(delta, np.ones((poolDim, poolDim))) / poolDim**2 spreads each delta over "
        "its pooling window; the arrow is an upsampling, not a flip.",
        f"np.ones(poolDim) is 1-D, so the kron repeats only the columns: "
        f"{np.kron(np.ones((2, 2)), np.ones(2)).shape} for a 2x2 delta instead of "
        f"{np.kron(np.ones((2, 2)), np.ones((2, 2))).shape}. In MATLAB/Octave, where "
        "ones(poolDim) is a square matrix, the same line without np. is right. Nothing is "
        "flipped in pooling's backward pass; the flip belongs to the convolution layers.",
        "cnnlab errata kron-snippet",
        ["(2, 4)", "(4, 4)", "gives the same: True"], _kron_demo,
        quotes=[_q("redes", "np.kron(delta,ones(poolDim));"),
                _q("redes", r"\xrightarrow{\text{flip}}")])


@_entry
def _erratum_eq4_1_over_m() -> Erratum:
    return Erratum(
        "eq4-1-over-m", "CNN backprop notes, equations (3) and (4)", "error",
        "equation (4) without equation (3)'s 1/m",
        "dJ/dW = (1/m) sum_i dJ_i/dW: the gradient of the mean cost keeps the 1/m.",
        "Dropping it makes the gradient m times too large, which silently multiplies the "
        "learning rate by the batch size.",
        "cnnlab errata eq4-1-over-m",
        [f"ratio {M_DEMO:.3f} = m"], _eq4_demo,
        quotes=[_q("redes", r"$$J(\theta) = -\frac{1}{m} \left[\sum_{i=1}^m"),
                _q("redes", r"\nabla_{\theta^{(k)}} J(\theta) &= -\sum_{i=1}^m")])


@_entry
def _erratum_conv_gradient_flip() -> Erratum:
    return Erratum(
        "conv-gradient-flip", "CNN backprop notes (convolution layer)", "ambiguity",
        "dW = sum_i a_i * rot90(delta, 2), after the tip \"W = rot90(W,2)\"",
        "Right as printed, with the slides' own definitions: * is the convolution of the "
        "filtering slides (I'[u,v] = sum w[q,p] I[u-q, v-p]) and the forward pass flips W "
        "first (the tip), so the layer correlates with W, as PyTorch and Keras do. Convolving "
        "a with rot90(delta, 2) is correlating a with delta: that layer's weight gradient.",
        "The formula holds only together with the tip, and the slide does not say so: read "
        "with * as a library's conv2d (itself a correlation), it gives a wrong gradient; and "
        "a layer that convolves without the tip's flip (cnnlab's NumPy Conv2D, which follows "
        "the filtering slides) has the formula rotated by 180 degrees as its gradient. The "
        "demonstration checks each reading against a numerical gradient.",
        "cnnlab errata conv-gradient-flip",
        ["a * rot90(delta, 2), * a convolution: largest difference"], _conv_grad_demo,
        quotes=[_q("redes", r"\nabla_{W_k^{(l)}} J(W, b; x, y) &= \sum_{i=1}^m (a_i^{(l)}) "
                            r"* \text{rot90}(\delta_k^{(l+1)}, 2)"),
                _q("redes", "> W = rot90(W,2);")])


@_entry
def _erratum_depthwise_separable() -> Erratum:
    ds = _dwsep()
    return Erratum(
        "depthwise-separable", "MobileNet slide (100x100x3 example)", "error",
        '"3 × 3 × 3 × 128 = 1638", "lateral: 3 × 3 × (3) = 9", "total = 3.930.000"',
        f"standard {ds['std_w']:,} weights per position ({ds['std_mults']:,} "
        f"multiplications), depthwise {ds['dw_w']} (3 maps x 3x3), pointwise "
        f"{ds['pw_w']}: {ds['sep_mults']:,} multiplications, ratio {ds['ratio']:.4f} = "
        "1/128 + 1/9.",
        "1,638 = 2 x 3^2 x 7 x 13 cannot come from this layer's sizes; 9 is one 3x3 kernel "
        "(a single map); the slide's pointwise term uses 3 maps, its depthwise term 1.",
        "cnnlab cost",
        [f"{ds['std_mults']:,}", f"{ds['sep_mults']:,}", f"{ds['std_w']:,}"],
        quotes=[_q("ponti", r"$3 \times 3 \times 3 \times 128 = 1638$"),
                _q("ponti", r"lateral:  $3 \times 3 \times (3) = 9$  parâmetros."),
                _q("ponti", "total = 3.930.000")])


@_entry
def _erratum_mobilenet_last_s2() -> Erratum:
    mb = _mobilenet()
    return Erratum(
        "mobilenet-last-s2", "MobileNet slide (Table 1)", "error",
        'the last "Conv dw / s2" at 7x7',
        f"stride {mb['stride']}: the last depthwise layer ({mb['last']}) keeps "
        f"{mb['in']} -> {mb['out']}.",
        "A stride 2 there would give 4x4 maps, and the 7x7 average pooling after it would "
        "not fit; the paper's Table 1 has the same misprint.",
        "cnnlab summary mobilenet_v1 --depth 2",
        [f"{mb['last']}", mb["out"]],
        quotes=[_q("architectures", "Conv dw / s2\t$3 \\times 3 \\times 1024 \\text{ dw}$\t"
                                    "$7 \\times 7 \\times 1024$")])


@_entry
def _erratum_allcnn_6x6() -> Erratum:
    ac = _allconv()
    return Erratum(
        "allcnn-6x6", "All-CNN slide and course notebook", "ambiguity",
        '"global averaging over 6×6 spatial dimensions"; the notebook\'s padding="same" '
        'and its ReLU on the 10 class maps',
        f"Both sizes are right for different networks: the paper's All-CNN-C leaves its last "
        f"3x3 convolution unpadded, so the last map is {ac['paper']}; the notebook pads "
        f"every convolution ('same'), so it is {ac['same']} (same parameters). The ReLU on "
        f"the class maps is the paper's own layer (\"1×1 conv. 10 ReLU\", in the table on "
        f"the same slide), not a notebook slip.",
        "A ReLU before the softmax clamps negative class scores at 0; the paper trained "
        "with it. cnnlab's allconv_c leaves the class maps linear by default "
        "(final_relu=False; final_relu=True is the table's layer), because with the ReLU a "
        "step that pushes every class map below 0 leaves all logits and their gradients at "
        "0: a risk, not a certainty.",
        "cnnlab errata allcnn-6x6",
        [ac["paper"], ac["same"]], _allconv_demo,
        quotes=[_q("allconv", "global averaging over 6×6 spatial dimensions"),
                _q("allconv", 'model.add(Conv2D(classes, (1, 1), activation="relu", '
                              'padding="same",))'),
                _q("allconv", "1×1 conv. 10 ReLU")])


@_entry
def _erratum_allcnn_params() -> Erratum:
    ac = _allconv()
    return Erratum(
        "allcnn-params", "All-CNN slide", "ambiguity",
        '"1.3M parámetros", beside the notebook\'s "Total params: 1,369,738"',
        f"{ac['params']:,} parameters (All-CNN-C, 10 classes): 1.37M, which rounds to "
        f"1.4M; \"1.3M\" is the same figure truncated, not another network.",
        f"The slide's own summary prints the exact total, so nothing is wrong but the "
        f"rounding. (Without the stride-2 convolutions, Strided-CNN-C, it would be "
        f"{ac['model_c']:,}.)",
        "cnnlab summary allconv_c --depth 1",
        [f"Total params: {ac['params']:,}"],
        quotes=[_q("allconv", "1.3M parámetros"),
                _q("allconv", "Total params: 1,369,738")])


@_entry
def _erratum_efficientnet_18_layers() -> Erratum:
    b0 = _b0()
    return Erratum(
        "efficientnet-18-layers", "EfficientNet slide", "ambiguity",
        '"d = 1 -> 18 capas convolucionales"',
        f"18 = the stem convolution + the {b0['blocks']} MBConv blocks + the 1x1 head "
        f"convolution (Table 1's Layers column, FC not counted). Counting every "
        f"convolution on the longest path, as cnnlab's depth does, gives {b0['depth']}.",
        "Each MBConv block holds 2-3 convolutions plus the SE block's two; the paper counts "
        "a block as one layer.",
        "cnnlab summary efficientnet_b0 --depth 1",
        [f"Depth: {b0['depth']} weighted layers"], _efficientnet18_demo,
        quotes=[_q("redes", r"$d = 1 \rightarrow 18$ capas convolucionales")])


@_entry
def _erratum_keras_depth() -> Erratum:
    kd = _keras_depth()
    kv, kr = kd["vgg16"], kd["resnet50"]
    return Erratum(
        "keras-depth", "Keras applications table (Andrew Ng's architectures)", "ambiguity",
        'Depth column: VGG16 "16", ResNet50 "107"',
        f"Keras counts every layer with weights, batch norms included: VGG16 {kv['conv']} "
        f"conv + {kv['fc']} dense = {kv['keras']} (no batch norm, so it equals the 16 of "
        f"its name); ResNet50 {kr['conv']} conv + {kr['bn']} batch norm + {kr['fc']} dense "
        f"= {kr['keras']}, though its longest path has {kr['depth']} weighted layers, the 50 "
        f"of its name.",
        "One rule that reads as two on one page: the column matches a network's name only "
        "when the network has no batch norm, so it does not compare depth across families. "
        "'cnnlab compare --keras' prints Keras's column and cnnlab's side by side.",
        "cnnlab errata keras-depth",
        [f"= {kr['keras']} layers with weights", f"(cnnlab's depth): {kr['depth']}",
         f"= {kv['keras']} layers with weights"], _keras_depth_demo,
        quotes=[_q("andrew-ng", "VGG16\t528\t71.3%\t90.1%\t138.4M\t16"),
                _q("andrew-ng", "ResNet50\t98\t74.9%\t92.1%\t25.6M\t107")])


@_entry
def _erratum_lenet_c5() -> Erratum:
    le = _lenet()
    return Erratum(
        "lenet-c5", "LeNet-5 slides", "error",
        '"Las capas FC:F5 ... las neuronas escondidas de F5 (120)"; "Entre F5 y F6"',
        f"The layer from S4 ({le['s4']} = {le['c5_in']} values) to 120 units is C5, a "
        f"convolution of 120 {le['c5_k']}x{le['c5_k']} filters (the slide's own table: "
        f"CONV, C5, 120): at the {'x'.join(map(str, le['native']))} input it outputs "
        f"{le['c5'].output_shape} with {le['c5'].params:,} parameters, the same as a full "
        f"connection. F6 (84 units, {le['f6'].params:,} parameters) is the first fully "
        f"connected layer; \"entre F5 y F6\" is between C5 and F6.",
        "LeCun et al. (1998) call C5 a convolutional layer because on a larger input its "
        "maps would be larger than 1x1; LeNet-5 has no F5.",
        "cnnlab summary lenet5 --depth 2",
        ["features.c5", le["c5"].output_shape, f"{le['c5'].params:,}"],
        quotes=[_q("redes", "Las capas FC:F5 están completamente conectadas entre las "
                            "salidas de S4 (400 neuronas) y las neuronas escondidas de F5 "
                            "(120)."),
                _q("redes", "Entre F5 y F6 es también una conexión completa"),
                _q("redes", "Nombre\t\tC1\tS2\tC3\tS4\tC5\tF6")])


@_entry
def _erratum_lenet_c1_params() -> Erratum:
    le = _lenet()
    return Erratum(
        "lenet-c1-params", "LeNet-5 slides (C1)", "error",
        '"Los parámetros a ser entrenados en cada capa son 25, más el bias"',
        f"{le['c1_per_filter']} weights per filter (one 5x5 kernel) plus its bias; C1's "
        f"{le['c1_filters']} filters make {le['c1'].params:,} parameters in the layer "
        f"({le['c1_per_filter']} x {le['c1_filters']} + {le['c1_filters']}).",
        "The sentence says \"en cada capa\" (per layer) and then counts the layer's 156: "
        "the 25 are per filter.",
        "cnnlab summary lenet5 --depth 2",
        [le["c1"].output_shape, f"{le['c1'].params:,}"],
        quotes=[_q("redes", "Los parámetros a ser entrenados en cada capa son 25, más el "
                            "bias. En total son 156 parámetros en esta capa "
                            "($25 * 6 + 6$).")])


@_entry
def _erratum_lenet_28x28() -> Erratum:
    le = _lenet()
    chain = le["chain28"]
    return Erratum(
        "lenet-28x28", "LeNet-5 slides and the lab", "ambiguity",
        "the lab's \"28×28 pixeles\" digits; LeNet-5's \"32x32 pixels\" input",
        f"LeNet-5 as the slides build it needs 32x32: on 28x28 its valid convolutions give "
        f"C1 {chain[1]}x{chain[1]}, S2 {chain[2]}x{chain[2]}, C3 {chain[3]}x{chain[3]}, "
        f"S4 {chain[4]}x{chain[4]}, and C5's {le['c5_k']}x{le['c5_k']} kernel no longer "
        f"fits. Either pad the digits to 32x32 or pad C1 by 2, which gives the slide's "
        f"{le['pad_c1']} after C1 (cnnlab's lenet5(c1_padding=2)).",
        "The lab slide gives the input size but not how a 28x28 digit meets the 32x32 "
        "LeNet-5 of the previous slides (its network is in a figure). LeCun et al. (1998) "
        "feed 32x32 images whose digits sit in the central 28x28 field.",
        "cnnlab errata lenet-28x28",
        [f"C3 {chain[3]}x{chain[3]}, S4 {chain[4]}x{chain[4]}", f"C1 {le['pad_c1']}"],
        _lenet28_demo,
        quotes=[_q("redes", "en niveles de gris con un tamaño 28×28 pixeles."),
                _q("redes", "La entrada consiste en una matriz de un solo plano de 32x32 "
                            "pixels.")])


@_entry
def _erratum_dy_sign() -> Erratum:
    dy = _dy_responses()
    return Erratum(
        "dy-sign", "Image filtering slides (derivative masks)", "ambiguity",
        "Dy printed as [1; -1] on the segmentation slide, as [-1; 1] on the next "
        "(\"Máscaras\"), beside Dx [-1 1] on both",
        f"Use Dy = [-1; 1], the \"Máscaras\" slide's sign and that of the Prewitt and Sobel "
        f"masks (-1 on top): then Dx and Dy answer an edge from dark to bright with the "
        f"same sign ({dy['dx']:+g} and {dy['dy2']:+g}), one across columns and one across "
        f"rows; [1; -1] gives {dy['dy1']:+g}. The edge magnitude is the same either way.",
        "Both are derivative estimates; what changes is the sign of every vertical "
        "response, which matters as soon as Dx and Dy are combined into a direction.",
        "cnnlab errata dy-sign",
        [f"(first slide) across a dark-top/bright-bottom edge: {dy['dy1']:+g}",
         f"('Máscaras' slide) across the same edge:     {dy['dy2']:+g}"], _dy_demo,
        quotes=[_q("redes", r"$$\begin{matrix} 1 \\ -1 \end{matrix}$$ Dy"),
                _q("redes", r"$$\begin{matrix} -1 & 1 \\ \rightarrow & \end{matrix}$$ Dx"),
                _q("redes", "Máscaras -1 1 -1 1")])


@_entry
def _erratum_line_45() -> Erratum:
    line = _line45_responses()
    return Erratum(
        "line-45", "Image filtering slides (line masks)", "ambiguity",
        "the mask [2 -1 -1; -1 2 -1; -1 -1 2] labelled \"+45°\"",
        f"Its 2s run from top left to bottom right: it answers most to a line falling to the "
        f"right ({line['falling']:g}, against {line['rising']:g} for a line rising to the "
        f"right). That is +45° only with angles measured from an x axis pointing down the "
        f"rows (image (row, column) axes); with the usual y-up axes it is -45°.",
        f"The slide does not say which convention it uses. cnnlab calls this mask "
        f"{line['name']} and its 'cnnlab filter --list' line says it is the slide's '+45'.",
        "cnnlab errata line-45",
        [f"falling to the right: {line['falling']:g}",
         f"rising to the right: {line['rising']:g}", line["name"]], _line45_demo,
        quotes=[_q("redes", "2 -1 -1 -1 2 -1 -1 -1 2 +45°")])


@_entry
def _erratum_densenet_bottleneck() -> Erratum:
    dn = _densenet()
    dense_depth = 1 + 2 * sum(dn["layers"]) + dn["transitions"] + dn["fcs"]
    dense_plain = 1 + sum(dn["layers"]) + dn["transitions"] + dn["fcs"]
    return Erratum(
        "densenet-bottleneck", "DenseNet slide", "error",
        '"H : BN + ReLu + Conv 3×3" with "Variantes: DenseNet 121/169/201"',
        f"DenseNet-121/169/201 are DenseNet-BC: each H is BN-ReLU-Conv 1x1 "
        f"({dn['bottleneck']} maps = 4k, the bottleneck of DenseNet-B) then BN-ReLU-Conv 3x3 "
        f"({dn['growth']} maps = k), and each transition layer halves the channels (C). "
        f"H = BN + ReLU + Conv 3x3 is the basic DenseNet, which has no 121-layer variant.",
        f"The 121 counts both convolutions of every H: 1 (stem) + 2 x "
        f"({' + '.join(map(str, dn['layers']))}) + {dn['transitions']} (transitions) + "
        f"{dn['fcs']} (FC) = {dense_depth}; with H as on the slide it would be "
        f"{dense_plain}.",
        "cnnlab summary densenet121 --depth 4",
        [dn["row1"].name, dn["row1"].output_shape, dn["row2"].output_shape,
         f"Depth: {dn['depth']} weighted layers"],
        quotes=[_q("redes", "H : BN + ReLu + Conv 3×3"),
                _q("redes", "Variantes: DenseNet 121/169/201")])


@_entry
def _erratum_inverted_residual() -> Erratum:
    m2 = _mnv2()
    return Erratum(
        "inverted-residual", "MobileNet slide (variants)", "error",
        '"MobileNetV2: inverted convolutions"; the heading "Inverted Convolutions"',
        f"MobileNetV2's block is the inverted residual with a linear bottleneck: a 1x1 "
        f"expansion ({m2['cin']} -> {m2['wide']} channels, t = {m2['wide'] // m2['cin']}), "
        f"a 3x3 depthwise convolution ({m2['dw_groups']} groups), a 1x1 projection back to "
        f"{m2['cout']} channels with no activation, and the shortcut between the narrow "
        f"ends. The convolutions are ordinary; the residual block is inverted: "
        f"narrow-wide-narrow, where ResNet's bottleneck is wide-narrow-wide.",
        "The slide's own figure is captioned \"(b) Inverted residual block\", the name "
        "Sandler et al. (2018) give it.",
        "cnnlab summary mobilenet_v2 --depth 4",
        [m2["cls"], m2["expand_row"].name, m2["expand_row"].output_shape,
         m2["project_row"].output_shape],
        quotes=[_q("redes", "MobileNetV2: inverted convolutions"),
                _q("redes", "Inverted Convolutions"),
                _q("redes", "(b) Inverted residual block")])


@_entry
def _erratum_alexnet_conv2_groups() -> Erratum:
    ag = _alexnet_groups()
    c2_one, c2_two = ag["params"]["conv2"]
    return Erratum(
        "alexnet-conv2-groups", "AlexNet slide (Portuguese listing)", "error",
        '"conv2: K = 256 filters with 5 × 5 × 96"; conv4 and conv5 "3 × 3 × 384"',
        f"AlexNet is split over two GPUs: a conv2 filter sees only the 48 maps on its own "
        f"GPU, 5x5x48 (weight {ag['shape']['conv2']}), and conv4 and conv5 filters are "
        f"3x3x192; only conv3 reads both halves (3x3x256, as the slide says). conv2 has "
        f"{c2_two:,} parameters, not {c2_one:,}; the network {ag['total'][1]:,} (the "
        f"paper's \"60 million\"), not {ag['total'][0]:,}.",
        "Krizhevsky et al. (2012): the kernels of layers 2, 4 and 5 connect only to the maps "
        "of the previous layer on the same GPU (groups=2 in PyTorch). 5x5x96 is a one-GPU "
        "AlexNet, which cnnlab's alexnet_original builds by default.",
        "cnnlab errata alexnet-conv2-groups",
        [str(ag["shape"]["conv2"]), str(ag["shape"]["conv4"]), f"{c2_two:,} parameters"],
        _alexnet_groups_demo,
        quotes=[_q("ponti", r"conv2:  $K = 256$  filters with  $5 \times 5 \times 96$ ,"),
                _q("ponti", r"conv4:  $K = 384$  filters with  $3 \times 3 \times 384$ ,"),
                _q("ponti", r"conv5:  $K = 256$  filters with  $3 \times 3 \times 384$ ,")])


def errata() -> list[Erratum]:
    """Every erratum, its figures computed now."""
    return [build() for build in _ENTRIES]


# Checked against the course text and the papers, and not listed, with the reason.
NOT_LISTED: list[tuple[str, str]] = [
    ('"Top 5 error: hasta 2011:28% - 2012: AlexNet 16%" (course/' + COURSE_FILES["redes"] + ")",
     "ILSVRC-2010's best top-5 error was 28.2 % (quoted in the AlexNet paper) and "
     "ILSVRC-2011's 25.8 %; \"hasta 2011\" can mean \"before 2011\", which makes 28 % the "
     "2010 figure, so the text is not clearly wrong; and no cnnlab command computes "
     "competition results, which every entry here must show."),
]


def _squash(text: str) -> str:
    """Runs of white space (tabs and line breaks of the extracted text) as one space."""
    return " ".join(text.split())


def find(entry_id: str) -> Erratum:
    from ..errors import CnnlabError

    entries = errata()
    for e in entries:
        if e.id == entry_id:
            return e
    raise CnnlabError(f"no erratum {entry_id!r}; one of: {', '.join(e.id for e in entries)}")


def format_entry(e: Erratum, demo: bool = False) -> str:
    lines = [f"[{e.id}] {e.source} ({e.kind})",
             f"  slide says: {e.slide}",
             *(f"  slide text: \"{_squash(t)}\" (course/{f})" for f, t in e.quotes),
             f"  right:      {e.right}",
             f"  why:        {e.why}",
             f"  see:        {e.command}"]
    if demo and e.demo is not None:
        lines += ["  demonstration (computed now):"] + [f"    {x}" for x in e.demo()]
    return "\n".join(lines)


def render_markdown(entries: list[Erratum] | None = None) -> str:
    """docs/errata.md: generated by ``cnnlab errata --markdown``; do not edit by hand."""
    entries = entries if entries is not None else errata()
    out = ["# Errata for the course material", "",
           "<!-- generated by `cnnlab errata --markdown > docs/errata.md`; do not edit -->", "",
           "Every error or ambiguity found in the course's slides and notebooks: what the slide "
           "says, what is right, why, and the cnnlab command that shows it. The figures are "
           "computed by cnnlab (`src/cnnlab/lab/errata.py`), and a test runs every command and "
           "checks that its output carries the corrected figure; another checks that every "
           "quoted slide text is word for word in the course's extracted text. `cnnlab errata "
           "ID` prints one entry with its demonstration.", ""]
    for e in entries:
        out += [f"## {e.id}: {e.source}", "",
                f"*{e.kind}.* **Slide:** {e.slide}", ""]
        if e.quotes:
            out += ["**Slide text** (verbatim from the course's extracted text, white space "
                    "collapsed):", ""]
            out += [f"- `course/{f}`: `{_squash(t)}`" for f, t in e.quotes] + [""]
        out += [f"**Right:** {e.right}", "",
                f"**Why:** {e.why}", "",
                f"**Shown by:** `{e.command}`", ""]
        if e.demo is not None:
            out += ["```", f"$ cnnlab errata {e.id}   (demonstration)"] + e.demo() + ["```", ""]
    if NOT_LISTED:
        out += ["## Checked and not listed", ""]
        out += [f"- {what}: {why}" for what, why in NOT_LISTED] + [""]
    return "\n".join(out).rstrip("\n") + "\n"
