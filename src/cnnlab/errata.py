"""Errata for the course material: every error or ambiguity found in the slides and notebooks.

Each entry says what the slide says (a few words), what is right, why, and the ``cnnlab``
command that shows it. Every figure in an entry is computed here, by the code that the command
runs (models built on the ``meta`` device, :func:`cnnlab.analysis.cost.conv_cost`, the NumPy
engine), never typed by hand; ``shows`` lists the strings the command prints that carry the
corrected figure, and a test runs every command and checks them. Entries whose point no
inspection command prints (the NumPy snippets, the gradient formulas) have a demonstration
that ``cnnlab errata ID`` runs.

``cnnlab errata`` prints the list, ``cnnlab errata ID`` one entry with its demonstration,
``--json`` the data and ``--markdown`` the page ``docs/errata.md`` (generated from the same
data; a test checks that the committed page is the generated one).
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

    def to_dict(self) -> dict:
        return {"id": self.id, "source": self.source, "kind": self.kind, "slide": self.slide,
                "right": self.right, "why": self.why, "command": self.command,
                "shows": self.shows}


# --- figures, computed -------------------------------------------------------------------

def _meta_summary(name: str, **kwargs):
    import torch

    from .analysis.summary import summary
    from .registry import create_model, get_entry

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
    from .analysis.cost import conv_cost

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
    from .analysis.cost import SLIDE_EXAMPLE, conv_cost

    c = conv_cost(**SLIDE_EXAMPLE)
    return {"std_w": c.standard_weights, "dw_w": c.depthwise_weights,
            "pw_w": c.pointwise_weights, "sep_mults": c.separable_mults,
            "std_mults": c.standard_mults, "ratio": c.ratio}


# --- demonstrations (what `cnnlab errata ID` runs) ---------------------------------------

def _kron_demo() -> list[str]:
    pool = 2
    delta = np.arange(1.0, 5.0).reshape(2, 2)
    wrong = np.kron(delta, np.ones(pool))
    right = np.kron(delta, np.ones((pool, pool))) / pool**2
    # the NumPy engine's average-pooling backward gives the same as the corrected snippet
    from .scratch.layers import AvgPool2D

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
    from .scratch.losses import softmax_cross_entropy

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
    from .scratch.layers import Conv2D

    rng = np.random.default_rng(0)
    layer = Conv2D(1, 1, 3, rng=rng)
    x = rng.normal(size=(1, 1, 5, 5))
    y = layer.forward(x)
    delta = rng.normal(size=y.shape)
    layer.backward(delta)
    grad = layer.grads["W"][0, 0]
    corr = np.array([[np.sum(x[0, 0, i:i + 3, j:j + 3] * delta[0, 0]) for j in range(3)]
                     for i in range(3)])
    return [
        "cnnlab's NumPy Conv2D convolves (flips the kernel), as the slide's tip says",
        f"dE/dW by backprop vs the slide's formula x * delta (a correlation): largest "
        f"difference {float(np.abs(grad - corr).max()):.3f}",
        f"dE/dW vs rot180(x * delta): largest difference "
        f"{float(np.abs(grad - np.rot90(corr, 2)).max()):.1e}",
    ]


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

def errata() -> list[Erratum]:
    """Every erratum, its figures computed now."""
    v, a, fit, b0, mb, ac, ds = (_vgg(), _alexnet(), _conv1_fit(), _b0(), _mobilenet(),
                                 _allconv(), _dwsep())
    v16, v19 = v["vgg16"], v["vgg19"]
    c = a["convs"]
    fc7 = a["fc7"]
    t = {r["stage"]: r for r in b0["table"]}
    stride2 = [r for r in b0["table"] if r["res_out"] < r["res_in"]]
    s3 = stride2[1] if len(stride2) > 1 else stride2[0]
    return [
        Erratum(
            "vgg-listing", "VGG slide (Portuguese listing)", "error",
            '"conv 5-6-7-8 ... conv 13-14-15-16" as VGG-16, ending without FC-1000',
            f"{v19['convs']} convolutions + {v19['fcs']} fully connected layers is VGG-19 "
            f"(configuration E); VGG-16 (D) has {v16['convs']} convolutions + {v16['fcs']} FC. "
            f"The last FC layer is the {v19['classes']}-way classifier (FC-1000).",
            f"A VGG configuration is named by its weighted layers: "
            f"{' + '.join(map(str, v19['blocks']))} = {v19['convs']} convolutions in its five "
            f"blocks + {v19['fcs']} FC = {v19['depth']} (VGG-16: "
            f"{' + '.join(map(str, v16['blocks']))} = {v16['convs']} convolutions + "
            f"{v16['fcs']} FC = {v16['depth']}). Listing "
            "conv 13-14-15-16 makes it E; the listing also stops before the classifier.",
            "cnnlab summary vgg19 --depth 1",
            [f"Depth: {v19['depth']} weighted layers"]),
        Erratum(
            "alexnet-filters", "AlexNet slide", "error",
            '"266" and "334" filters',
            f"conv2 and conv5 have {c['conv2'].output_shape.split('x')[0]} filters, conv3 and "
            f"conv4 {c['conv3'].output_shape.split('x')[0]} (outputs {c['conv2'].output_shape}, "
            f"{c['conv3'].output_shape}, {c['conv4'].output_shape}, {c['conv5'].output_shape}).",
            "Typing slips for the paper's widths 96-256-384-384-256.",
            "cnnlab summary alexnet_original --depth 2",
            [c["conv2"].output_shape, c["conv3"].output_shape, c["conv5"].output_shape]),
        Erratum(
            "alexnet-fc7", "AlexNet slide", "ambiguity",
            '"FC7 ... with F=1"',
            f"FC7 is a fully connected layer from FC6's 4,096 outputs to 4,096 units: "
            f"{fc7.params:,} parameters ({fc7.macs:,} weights + {fc7.params - fc7.macs:,} "
            f"biases). \"F=1\" is "
            f"only right in the FC-as-convolution view, where FC6 is a 6x6 convolution (F=6) "
            f"over the {a['pool5']} map ({a['fc6_in']:,} inputs) and FC7 a 1x1 one.",
            "The slide mixes the two views of the same layer; in the network as trained there is "
            "no filter size, and the weights are the same either way.",
            "cnnlab summary alexnet_original --depth 2",
            [f"{fc7.params:,}", a["pool5"]]),
        Erratum(
            "alexnet-224", "AlexNet slide", "error",
            "224x224x3 input, conv1 11x11 stride 4 -> 55x55",
            f"(227 - 11) / 4 + 1 = {fit['out227']}: the 55x55 maps need a 227x227 input; "
            f"224 gives (224 - 11) / 4 + 1 = {fit['exact224']:g}.",
            "The paper says 224 but its layer sizes only work with 227 (or with 2 pixels of "
            "padding); torchvision's AlexNet pads by 2 and takes 224.",
            "cnnlab cost --input 224x224x3 --maps 96 --kernel 11 --stride 4 --padding valid",
            [f"{fit['exact224']:g}", "227", f"giving {fit['out227']}"]),
        Erratum(
            "efficientnet-b0-table", "EfficientNet slide (Table 1)", "error",
            "five MBConv6 rows with 192 channels; Resolution read as each stage's size",
            f"B0 has {b0['n192']} MBConv6 k{t[7]['operator'][-3:]} layers with 192 channels "
            f"({b0['blocks']} MBConv blocks in all). The Resolution column is each stage's "
            f"*input*: stage {s3['stage']} ({s3['operator']}, {s3['channels']} channels) is "
            f"listed at {s3['res_in']}x{s3['res_in']} but its first block has stride 2, so it "
            f"outputs {s3['res_out']}x{s3['res_out']}.",
            f"The paper's Table 1 lists "
            f"{' + '.join(str(r['layers']) for r in b0['table'])} = "
            f"{sum(r['layers'] for r in b0['table'])} layers; a fifth 192 row breaks that "
            "count. The stage table is printed by 'cnnlab errata efficientnet-b0-table'.",
            "cnnlab summary efficientnet_b0 --depth 3",
            [f"features.6.{b0['n192'] - 1}", "192x7x7"], _b0_demo),
        Erratum(
            "kron-snippet", "CNN backprop notes (mean pooling)", "error",
            "np.kron(delta, ones(poolDim)); the arrow labelled \"flip\"",
            "np.kron(delta, np.ones((poolDim, poolDim))) / poolDim**2 spreads each delta over "
            "its pooling window; the arrow is an upsampling, not a flip.",
            f"np.ones(poolDim) is 1-D, so the kron repeats only the columns: "
            f"{np.kron(np.ones((2, 2)), np.ones(2)).shape} for a 2x2 delta instead of "
            f"{np.kron(np.ones((2, 2)), np.ones((2, 2))).shape}. Nothing is flipped in "
            "pooling's backward pass; the flip belongs to the convolution layers.",
            "cnnlab errata kron-snippet",
            ["(2, 4)", "(4, 4)", "gives the same: True"], _kron_demo),
        Erratum(
            "eq4-1-over-m", "CNN backprop notes, equations (3) and (4)", "error",
            "equation (4) without equation (3)'s 1/m",
            "dJ/dW = (1/m) sum_i dJ_i/dW: the gradient of the mean cost keeps the 1/m.",
            "Dropping it makes the gradient m times too large, which silently multiplies the "
            "learning rate by the batch size.",
            "cnnlab errata eq4-1-over-m",
            [f"ratio {M_DEMO:.3f} = m"], _eq4_demo),
        Erratum(
            "conv-gradient-flip", "CNN backprop notes (convolution layer)", "error",
            "dE/dW = x * delta for a forward pass that convolves (the slide's flip tip)",
            "With a true convolution forward (kernel flipped), dE/dW = rot180(x * delta); "
            "x * delta (a correlation) is the gradient of a correlation forward pass, "
            "which is what PyTorch and Keras compute.",
            "The slide's tip says the kernel is flipped in the forward pass, then uses the "
            "correlation's gradient: the result is the weight gradient rotated by 180 degrees.",
            "cnnlab errata conv-gradient-flip",
            ["rot180(x * delta): largest difference"], _conv_grad_demo),
        Erratum(
            "depthwise-separable", "MobileNet slide (100x100x3 example)", "error",
            '"1,638" (standard), "9" (depthwise), "3,930,000"',
            f"standard {ds['std_w']:,} weights per position ({ds['std_mults']:,} "
            f"multiplications), depthwise {ds['dw_w']} (3 maps x 3x3), pointwise "
            f"{ds['pw_w']}: {ds['sep_mults']:,} multiplications, ratio {ds['ratio']:.4f} = "
            "1/128 + 1/9.",
            "1,638 = 2 x 3^2 x 7 x 13 cannot come from this layer's sizes; 9 is one 3x3 kernel "
            "(a single map); the slide's pointwise term uses 3 maps, its depthwise term 1.",
            "cnnlab cost",
            [f"{ds['std_mults']:,}", f"{ds['sep_mults']:,}", f"{ds['std_w']:,}"]),
        Erratum(
            "mobilenet-last-s2", "MobileNet slide (Table 1)", "error",
            'the last "Conv dw / s2" at 7x7',
            f"stride {mb['stride']}: the last depthwise layer ({mb['last']}) keeps "
            f"{mb['in']} -> {mb['out']}.",
            "A stride 2 there would give 4x4 maps, and the 7x7 average pooling after it would "
            "not fit; the paper's Table 1 has the same misprint.",
            "cnnlab summary mobilenet_v1 --depth 2",
            [f"{mb['last']}", mb["out"]]),
        Erratum(
            "allcnn-6x6", "All-CNN slide and course notebook", "ambiguity",
            '"global averaging over 6x6"; the notebook\'s ReLU before the softmax',
            f"Both are right for different networks: the paper's All-CNN-C uses a valid 3x3 "
            f"convolution, so the last map is {ac['paper']}; the notebook's 'same' padding "
            f"gives {ac['same']}. The notebook's ReLU on the 10 class maps clamps the logits "
            f"at 0; cnnlab's allconv_c leaves them linear (final_relu=False).",
            "Table 1's text and the notebook code differ; a ReLU before the softmax makes every "
            "negative logit 0, so the network cannot express \"not this class\" and training "
            "stalls.",
            "cnnlab errata allcnn-6x6",
            [ac["paper"], ac["same"]], _allconv_demo),
        Erratum(
            "allcnn-params", "All-CNN slide", "error",
            '"1.3M parameters"',
            f"{ac['params']:,} parameters (All-CNN-C, 10 classes): 1.37M, 1.4M rounded.",
            f"The paper's Table 3 (in a transcription) gives about 1.4M for All-CNN-C and about "
            f"1.3M for the base Model C and Strided-CNN-C, which as described have "
            f"{ac['model_c']:,}: 1.3M fits neither network.",
            "cnnlab summary allconv_c --depth 1",
            [f"Total params: {ac['params']:,}"]),
        Erratum(
            "efficientnet-18-layers", "EfficientNet slide", "ambiguity",
            '"d = 1 -> 18 convolutional layers"',
            f"18 = the stem convolution + the {b0['blocks']} MBConv blocks + the 1x1 head "
            f"convolution (Table 1's Layers column, FC not counted). Counting every "
            f"convolution on the longest path, as cnnlab's depth does, gives {b0['depth']}.",
            "Each MBConv block holds 2-3 convolutions plus the SE block's two; the paper counts "
            "a block as one layer.",
            "cnnlab summary efficientnet_b0 --depth 1",
            [f"Depth: {b0['depth']} weighted layers"], _efficientnet18_demo),
    ]


def find(entry_id: str) -> Erratum:
    from .errors import CnnlabError

    entries = errata()
    for e in entries:
        if e.id == entry_id:
            return e
    raise CnnlabError(f"no erratum {entry_id!r}; one of: {', '.join(e.id for e in entries)}")


def format_entry(e: Erratum, demo: bool = False) -> str:
    lines = [f"[{e.id}] {e.source} ({e.kind})",
             f"  slide says: {e.slide}",
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
           "computed by cnnlab (`src/cnnlab/errata.py`), and a test runs every command and checks "
           "that its output carries the corrected figure. `cnnlab errata ID` prints one entry "
           "with its demonstration.", ""]
    for e in entries:
        out += [f"## {e.id}: {e.source}", "",
                f"*{e.kind}.* **Slide:** {e.slide}", "",
                f"**Right:** {e.right}", "",
                f"**Why:** {e.why}", "",
                f"**Shown by:** `{e.command}`", ""]
        if e.demo is not None:
            out += ["```", f"$ cnnlab errata {e.id}   (demonstration)"] + e.demo() + ["```", ""]
    return "\n".join(out).rstrip("\n") + "\n"
