"""The Keras Applications table, reproduced for cnnlab's models in Keras's conventions.

The course shows Keras's table (https://keras.io/api/applications/): Size (MB), Top-1, Top-5,
Parameters, Depth, and the time per inference step (CPU/GPU, batch 32). Its columns do not use
cnnlab's conventions, so this module counts cnnlab's networks the Keras way:

* **Depth (Keras)**: the number of layers *with parameters*; each convolution, batch norm and
  dense layer counts once, and a separable convolution (Keras ``SeparableConv2D``; cnnlab's
  :class:`~cnnlab.layers.SeparableConv2d`) counts once. ResNet50 = 53 convolutions + 53 batch
  norms + 1 dense = 107. Only layers that run in inference count (auxiliary heads do not:
  Keras has none). cnnlab's own depth (:mod:`cnnlab.analysis.summary`) is the number of
  weighted layers on the longest path: ResNet50 50.
* **Parameters (Keras)**: ``model.count_params()``: every weight, trainable or not, so the
  batch norms' moving mean and variance count too (PyTorch keeps them as buffers). Auxiliary
  heads are left out (Keras's networks have none).
* **Size**: the float32 weights of that count, 1 MB = 2^20 bytes.
* **Top-1/Top-5** and Keras's own figures are *published*: copied from the Keras page (ImageNet
  validation), never measured here; :data:`KERAS_PUBLISHED` holds the page's rows and
  :data:`KERAS_COUNT_PARAMS` Keras's exact ``count_params()`` (keras 3.15.1,
  ``weights=None``; the page rounds it to 0.1 M). Both are copied from
  ``REFERENCE_NUMBERS.md`` §3 and tested against that file.

Where cnnlab's network is not Keras's (ResNet convolutions with biases, Keras's own ResNetV2,
Inception v3's batch norms without scale, EfficientNet's input normalisation layer), the row
gives Keras's figure beside cnnlab's, the difference, and why; the reason's number is counted
from cnnlab's model (biases Keras adds = output channels of the convolutions that have none
here, and so on), and the row says whether it accounts for the whole difference. The reasons
are the families' own (each model class's ``keras_quirks``); this module knows no family.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import UsageError

MB = 2**20

# Keras's page (keras-io templates/api/applications/index.md, commit e7be306b): size MB,
# Top-1 %, Top-5 %, parameters (as printed), depth, ms per step CPU, GPU.
KERAS_PUBLISHED: dict[str, tuple] = {
    "Xception": (88, 79.0, 94.5, "22.9M", 81, 109.4, 8.1),
    "VGG16": (528, 71.3, 90.1, "138.4M", 16, 69.5, 4.2),
    "VGG19": (549, 71.3, 90.0, "143.7M", 19, 84.8, 4.4),
    "ResNet50": (98, 74.9, 92.1, "25.6M", 107, 58.2, 4.6),
    "ResNet50V2": (98, 76.0, 93.0, "25.6M", 103, 45.6, 4.4),
    "ResNet101": (171, 76.4, 92.8, "44.7M", 209, 89.6, 5.2),
    "ResNet101V2": (171, 77.2, 93.8, "44.7M", 205, 72.7, 5.4),
    "ResNet152": (232, 76.6, 93.1, "60.4M", 311, 127.4, 6.5),
    "ResNet152V2": (232, 78.0, 94.2, "60.4M", 307, 107.5, 6.6),
    "InceptionV3": (92, 77.9, 93.7, "23.9M", 189, 42.2, 6.9),
    "MobileNet": (16, 70.4, 89.5, "4.3M", 55, 22.6, 3.4),
    "MobileNetV2": (14, 71.3, 90.1, "3.5M", 105, 25.9, 3.8),
    "DenseNet121": (33, 75.0, 92.3, "8.1M", 242, 77.1, 5.4),
    "DenseNet169": (57, 76.2, 93.2, "14.3M", 338, 96.4, 6.3),
    "DenseNet201": (80, 77.3, 93.6, "20.2M", 402, 127.2, 6.7),
    "EfficientNetB0": (29, 77.1, 93.3, "5.3M", 132, 46.0, 4.9),
    "EfficientNetB1": (31, 79.1, 94.4, "7.9M", 186, 60.2, 5.6),
    "EfficientNetB2": (36, 80.1, 94.9, "9.2M", 186, 80.8, 6.5),
    "EfficientNetB3": (48, 81.6, 95.7, "12.3M", 210, 140.0, 8.8),
    "EfficientNetB4": (75, 82.9, 96.4, "19.5M", 258, 308.3, 15.1),
    "EfficientNetB5": (118, 83.6, 96.7, "30.6M", 312, 579.2, 25.3),
    "EfficientNetB6": (166, 84.0, 96.8, "43.3M", 360, 958.1, 40.4),
    "EfficientNetB7": (256, 84.3, 97.0, "66.7M", 438, 1578.9, 61.6),
}

# Keras's exact count_params() (keras 3.15.1, weights=None, 1000 classes).
KERAS_COUNT_PARAMS: dict[str, int] = {
    "Xception": 22_910_480, "VGG16": 138_357_544, "VGG19": 143_667_240,
    "ResNet50": 25_636_712, "ResNet50V2": 25_613_800, "ResNet101": 44_707_176,
    "ResNet101V2": 44_675_560, "ResNet152": 60_419_944, "ResNet152V2": 60_380_648,
    "InceptionV3": 23_851_784, "MobileNet": 4_253_864, "MobileNetV2": 3_538_984,
    "DenseNet121": 8_062_504, "DenseNet169": 14_307_880, "DenseNet201": 20_242_984,
    "EfficientNetB0": 5_330_571, "EfficientNetB1": 7_856_239, "EfficientNetB2": 9_177_569,
    "EfficientNetB3": 12_320_535, "EfficientNetB4": 19_466_823, "EfficientNetB5": 30_562_527,
    "EfficientNetB6": 43_265_143, "EfficientNetB7": 66_658_687,
}

# Keras name -> cnnlab model, in the page's order.
KERAS_TO_CNNLAB: dict[str, str] = {
    "Xception": "xception", "VGG16": "vgg16", "VGG19": "vgg19", "ResNet50": "resnet50",
    "ResNet50V2": "resnet50_v2", "ResNet101": "resnet101", "ResNet101V2": "resnet101_v2",
    "ResNet152": "resnet152", "ResNet152V2": "resnet152_v2", "InceptionV3": "inception_v3",
    "MobileNet": "mobilenet_v1", "MobileNetV2": "mobilenet_v2", "DenseNet121": "densenet121",
    "DenseNet169": "densenet169", "DenseNet201": "densenet201",
    **{f"EfficientNetB{i}": f"efficientnet_b{i}" for i in range(8)},
}
CNNLAB_TO_KERAS = {v: k for k, v in KERAS_TO_CNNLAB.items()}

PUBLISHED_NOTE = ("Top-1/Top-5, Keras depth and Keras ms are PUBLISHED figures from the Keras "
                  "Applications page (ImageNet validation; CPU AMD EPYC 92 cores, GPU Tesla "
                  "A100, batch 32), not measured here; Keras params is Keras's exact "
                  "count_params() (keras 3.15.1, weights=None), which the page prints rounded "
                  "(25.6M)")
DEPTH_NOTE = ("Depth (Keras) = layers with parameters, each conv, batch norm and dense layer "
              "once, a separable conv once (ResNet50: 53 + 53 + 1 = 107); Depth (cnnlab) = "
              "weighted layers (conv + linear) on the longest input-to-output path, every "
              "convolution once (ResNet50: 50)")
PARAMS_NOTE = ("Params (Keras) = count_params(): trainable weights + the batch norms' moving "
               "mean and variance (PyTorch buffers), auxiliary heads left out; Size = those "
               "weights in float32, 1 MB = 2^20 bytes; Keras MB = the size the Keras page "
               "publishes (of its weights file)")


@dataclass
class KerasRow:
    model: str                      # cnnlab name
    keras_name: str | None
    input_size: tuple[int, int, int]
    depth_keras: int
    depth: int                      # cnnlab's convention
    params_keras: int
    params: int                     # trainable (PyTorch's count)
    macs: int
    ms: float | None = None
    runs: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def size_mb(self) -> float:
        return self.params_keras * 4 / MB

    @property
    def published(self) -> dict | None:
        if self.keras_name not in KERAS_PUBLISHED:
            return None
        size, top1, top5, params, depth, cpu, gpu = KERAS_PUBLISHED[self.keras_name]
        return {"size_mb": size, "top1": top1, "top5": top5, "params": params,
                "params_exact": KERAS_COUNT_PARAMS.get(self.keras_name), "depth": depth,
                "ms_cpu": cpu, "ms_gpu": gpu}

    @property
    def params_diff(self) -> int | None:
        pub = self.published
        return None if pub is None else self.params_keras - pub["params_exact"]

    @property
    def depth_diff(self) -> int | None:
        pub = self.published
        return None if pub is None else self.depth_keras - pub["depth"]

    def to_dict(self) -> dict:
        c, h, w = self.input_size
        return {"model": self.model, "keras_name": self.keras_name, "input": f"{c}x{h}x{w}",
                "size_mb": round(self.size_mb, 2), "params_keras": self.params_keras,
                "params": self.params, "depth_keras": self.depth_keras, "depth": self.depth,
                "macs": self.macs, "ms_per_step": None if self.ms is None else round(self.ms, 3),
                "timed_runs": self.runs, "keras_published": self.published,
                "params_diff": self.params_diff, "depth_diff": self.depth_diff,
                "notes": self.notes}


def _is_separable(m: nn.Module) -> bool:
    from ..layers import SeparableConv2d

    return isinstance(m, SeparableConv2d)


def keras_depth(model: nn.Module, ran: set[str] | None = None) -> int:
    """Layers with parameters, Keras's way: every module holding parameters of its own counts
    once, a separable convolution (depthwise + pointwise) once. ``ran``: only the modules of
    these names (the ones an inference pass ran) count."""
    count = 0
    skip: set[int] = set()
    for name, m in model.named_modules():
        if id(m) in skip:
            continue
        if ran is not None and name not in ran:
            continue
        if _is_separable(m):
            count += 1
            skip.update(id(c) for c in m.modules())
        elif any(True for _ in m.parameters(recurse=False)):
            count += 1
    return count


def bn_running_stats(model: nn.Module, ran: set[str] | None = None) -> int:
    """Elements of the batch norms' running mean and variance (Keras's non-trainable weights)."""
    total = 0
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and (ran is None or name in ran):
            total += sum(b.numel() for b in (m.running_mean, m.running_var) if b is not None)
    return total


def _params_of(model: nn.Module, ran: set[str] | None) -> int:
    seen: dict[int, int] = {}
    for name, m in model.named_modules():
        if ran is not None and name not in ran:
            continue
        for p in m.parameters(recurse=False):
            seen[id(p)] = p.numel()
    return sum(seen.values())


def _difference_notes(model: nn.Module, row: KerasRow, ran: set[str]) -> list[str]:
    """Why cnnlab's figure differs from Keras's, with the count that explains it.

    The model's class says how its family differs from Keras's (no family is known here):
    ``model.keras_quirks(ran)`` returns ``{"params": (n, reason), "depth": (n, reason)}``,
    ``n`` being what Keras has more (parameters, layers with parameters; negative: fewer),
    ``reason`` a sentence with an ``{accounts}`` slot (filled with whether ``n`` is the whole
    difference) and optionally ``{diff}`` (cnnlab minus Keras)."""
    quirks_of = getattr(model, "keras_quirks", None)
    quirks = quirks_of(ran) if quirks_of is not None else {}
    notes = []
    diff, ddiff = row.params_diff, row.depth_diff
    if diff:
        if "params" in quirks:
            n, reason = quirks["params"]
            whole = "this is the whole difference" if n == -diff else f"{-diff - n:+,} remain"
            notes.append(reason.format(accounts=whole, diff=diff))
        else:
            notes.append(f"cnnlab's network differs from Keras's by {diff:+,} parameters.")
    if ddiff:
        if "depth" in quirks:
            n, reason = quirks["depth"]
            notes.append(reason.format(accounts="the whole difference" if ddiff == -n
                                       else "not all", diff=ddiff))
        else:
            notes.append(f"Keras's depth differs by {-ddiff:+d} layers with parameters.")
    return notes


def analyse_keras(name: str, *, keep_aux: bool = False) -> KerasRow:
    """Count ``name`` (built on the meta device) in Keras's conventions.

    Layers that an inference pass does not run (auxiliary heads) are left out unless
    ``keep_aux``.
    """
    from .compare import build_and_trace, ran_modules

    model, size, t = build_and_trace(name)
    ran = ran_modules(model, t)
    named = dict(model.named_modules())
    if keep_aux:
        ran = set(named)
    params = _params_of(model, ran)
    row = KerasRow(name, CNNLAB_TO_KERAS.get(name), size, keras_depth(model, ran), t.depth,
                   params + bn_running_stats(model, ran), params, t.macs)
    if row.keras_name:
        row.notes = _difference_notes(model, row, ran)
    return row


def keras_table(names=None, *, timing: bool = True, batch: int = 32, device: str = "cpu",
                repeats: int = 10, warmup: int = 2, time_budget_s: float | None = None,
                progress=None, plan=None) -> list[KerasRow]:
    """One :class:`KerasRow` per model (default: every model with a Keras counterpart).

    Every model is counted first (on the meta device, seconds); ``plan(rows)`` is then called
    once (to say how long the timing will take), and ``progress(i, row, seconds)`` after each
    model is timed."""
    import time

    from ..factory import create_model
    from .benchmark import time_inference

    names = list(names) if names else list(KERAS_TO_CNNLAB.values())
    rows = [analyse_keras(name) for name in names]
    if plan and timing:
        plan(rows)
    for i, row in enumerate(rows):
        if timing:
            start = time.perf_counter()
            torch.manual_seed(0)
            model = create_model(row.model)
            tm = time_inference(model, row.input_size, batch=batch, device=device,
                                repeats=repeats, warmup=warmup, time_budget_s=time_budget_s)
            row.ms, row.runs = tm.median_ms, tm.runs
            del model
            if progress:
                progress(i, row, time.perf_counter() - start)
    return rows


KERAS_COLUMNS = ("Model", "Keras name", "Input", "Size (MB)", "Keras MB", "Params (Keras)",
                 "Keras params",
                 "Depth (Keras)", "Keras depth", "Depth (cnnlab)", "ms/step",
                 "Keras ms CPU", "Top-1 % (pub.)", "Top-5 % (pub.)")


def _keras_cells(r: KerasRow) -> list[str]:
    c, h, w = r.input_size
    pub = r.published
    if pub is None:
        kp = kd = kcpu = t1 = t5 = kmb = ""
    else:
        kp = f"{pub['params_exact']:,}"
        if r.params_diff:
            kp += f" ({-r.params_diff:+,})"
        kd = str(pub["depth"]) + (f" ({-r.depth_diff:+d})" if r.depth_diff else "")
        kcpu, t1, t5 = f"{pub['ms_cpu']:.1f}", f"{pub['top1']:.1f}", f"{pub['top5']:.1f}"
        kmb = str(pub["size_mb"])
    return [r.model, r.keras_name or "-", f"{c}x{h}x{w}", f"{r.size_mb:.2f}", kmb,
            f"{r.params_keras:,}", kp, str(r.depth_keras), kd, str(r.depth),
            "" if r.ms is None else f"{r.ms:.2f}", kcpu, t1, t5]


def format_keras(rows: list[KerasRow], style: str = "text", header=()) -> str:
    """The table (``text`` or ``markdown``), then the notes on every difference and the
    conventions."""
    from ..training.metrics import format_table, markdown_table

    body = [_keras_cells(r) for r in rows]
    if style == "markdown":
        out = [line for h in header for line in (h, "")]
        out += markdown_table(KERAS_COLUMNS, body, left=3).split("\n")
    elif style == "text":
        out = [*header, *format_table(KERAS_COLUMNS, body,
                                      "lll" + "r" * (len(KERAS_COLUMNS) - 3)).split("\n")]
    else:
        raise UsageError(f"style must be text or markdown for --keras, got {style!r}")
    notes = [(r, n) for r in rows for n in r.notes]
    out.append("")
    if notes:
        out.append("Where cnnlab's figure differs from Keras's (the figure in brackets is "
                   "Keras minus cnnlab):")
        out += [f"  {r.model}: {n}" for r, n in notes]
        out.append("")
    out += [f"* {DEPTH_NOTE}.", f"* {PARAMS_NOTE}.", f"* {PUBLISHED_NOTE}."]
    return "\n".join(out)
