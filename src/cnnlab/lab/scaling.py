"""The compound-scaling grid search of the EfficientNet paper (Tan & Le 2019, section 3.3).

"α, β, γ are constants that can be determined by a small grid search": with the compound
coefficient φ = 1 (twice the resources), find depth, width and resolution multipliers

    α ≥ 1, β ≥ 1, γ ≥ 1   with   α · β² · γ² ≈ 2

(MACs grow linearly with depth and quadratically with width and resolution), train each
scaled network, keep the best, then scale further with d = α^φ, w = β^φ, r = γ^φ.

Here the base is a small EfficientNet-like network for small grey images (a stem
convolution, three MBConv stages with squeeze-and-excitation and SiLU, a 1x1 head
convolution, global pooling, a linear classifier; :data:`BASE_STAGES`). Scaling follows
EfficientNet's rules: each stage's repeats ``ceil(n · α)``, every width ``make_divisible(c · β,
8)``, the input side ``round(r · γ)``. Every trial is trained from the same seed with the same
short recipe (:class:`Recipe`: AdamW, cosine schedule, label smoothing) on the same images,
resized to the trial's resolution, and scored on the validation split (the test split is
reported too, never used to choose).

The training loop is a small one of its own: it needs nothing of the general trainer (no
checkpoints, no augmentation, no logging) and keeps every trial identical.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError
from ..layers import ConvNormAct, InvertedResidual, make_divisible

# (expansion, kernel, channels, repeats, stride) per MBConv stage, after a 3x3 stem of 16.
BASE_STAGES = ((1, 3, 16, 1, 1), (4, 3, 24, 2, 2), (4, 5, 40, 2, 2))
BASE_STEM, BASE_HEAD = 16, 128
BASE_RESOLUTION = 16

DEFAULT_GRID = {"alpha": (1.0, 1.2, 1.4, 1.6, 1.8, 2.0), "beta": (1.0, 1.1, 1.2, 1.3, 1.4),
                "gamma": (1.0, 1.15, 1.3)}
QUICK_GRID = {"alpha": (1.0, 2.0), "beta": (1.0, 1.4), "gamma": (1.0, 1.4)}


class ScaledNet(nn.Module):
    """The base network scaled by depth ``alpha`` and width ``beta`` (resolution is the
    input's business)."""

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, in_chans: int = 1,
                 num_classes: int = 10, stages=BASE_STAGES, dropout: float = 0.1):
        super().__init__()

        def width(c: int) -> int:
            return make_divisible(c * beta, 8)

        self.stem = ConvNormAct(in_chans, width(BASE_STEM), 3, act_layer=nn.SiLU)
        blocks: list[nn.Module] = []
        chans = width(BASE_STEM)
        self.repeats = []
        for expand, k, c, n, s in stages:
            out, reps = width(c), math.ceil(n * alpha)
            self.repeats.append(reps)
            for i in range(reps):
                blocks.append(InvertedResidual(
                    chans, out, s if i == 0 else 1, mid_chs=chans * expand, kernel_size=k,
                    act_layer=nn.SiLU, se_chs=max(1, chans // 4), se_act_layer=nn.SiLU))
                chans = out
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvNormAct(chans, width(BASE_HEAD), 1, act_layer=nn.SiLU)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(width(BASE_HEAD), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return self.fc(self.drop(x.mean((2, 3))))


class _EfficientNetBase(nn.Module):
    """cnnlab's EfficientNet (B0's stages) scaled by depth ``alpha`` and width ``beta``."""

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, in_chans: int = 1,
                 num_classes: int = 10):
        super().__init__()
        from ..models.efficientnet import EfficientNet

        self.net = EfficientNet(width=beta, depth=alpha, num_classes=num_classes,
                                in_chans=in_chans)
        self.repeats = [len(m) for m in self.net.features[1:-1]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# --base: name -> (builder(alpha, beta, in_chans, num_classes), base input side)
BASES = {"tiny": (ScaledNet, BASE_RESOLUTION), "efficientnet_b0": (_EfficientNetBase, 32)}


def _base(name: str):
    if name not in BASES:
        raise UsageError(f"--base must be one of {', '.join(BASES)}, got {name!r}")
    return BASES[name]


def resolution(gamma: float, base: int = BASE_RESOLUTION) -> int:
    return max(8, round(base * gamma))


def grid(budget: float = 2.0, tolerance: float = 0.08, axes: dict | None = None
         ) -> list[tuple[float, float, float]]:
    """Every (α, β, γ) of the grid, each ≥ 1, with |α·β²·γ² - budget| ≤ tolerance · budget."""
    axes = axes or DEFAULT_GRID
    if not 1 < budget < math.inf:
        raise UsageError(f"--budget must be a finite number above 1 (the resources of the "
                         f"base), got {budget}")
    if not 0 < tolerance < 1:
        raise UsageError(f"--tolerance must be between 0 and 1, got {tolerance}")
    out = [(a, b, g) for a, b, g in itertools.product(axes["alpha"], axes["beta"],
                                                      axes["gamma"])
           if min(a, b, g) >= 1 and (a, b, g) != (1, 1, 1)  # the base is trained anyway
           and abs(a * b * b * g * g - budget) <= tolerance * budget]
    if not out:
        raise UsageError(f"no grid point has alpha*beta^2*gamma^2 within {tolerance:.0%} of "
                         f"{budget}; raise --tolerance or change --budget")
    return out


@dataclass
class Recipe:
    """The one short training recipe every trial gets."""

    epochs: int = 6
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    seed: int = 0
    train_limit: int | None = None      # use the first N training images (--quick)


@dataclass
class Trial:
    alpha: float
    beta: float
    gamma: float
    resolution: int
    repeats: list[int]
    params: int
    macs: int
    macs_ratio: float               # MACs / base MACs (the measured growth)
    target: float                   # alpha * beta^2 * gamma^2 (the grid's growth)
    accuracy: float | None = None   # validation top-1, %
    test_accuracy: float | None = None
    seconds: float | None = None
    is_base: bool = False
    best: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SearchResult:
    trials: list[Trial]
    base: Trial
    best: Trial
    phis: list[dict] = field(default_factory=list)
    recipe: Recipe = field(default_factory=Recipe)
    data: str = "digits"
    budget: float = 2.0
    seconds: float = 0.0
    base_model: str = "tiny"

    def to_dict(self) -> dict:
        return {"best": self.best.to_dict(), "base": self.base.to_dict(),
                "base_model": self.base_model,
                "trials": [t.to_dict() for t in self.trials], "phi": self.phis,
                "recipe": asdict(self.recipe), "data": self.data, "budget": self.budget,
                "seconds": round(self.seconds, 1)}


def describe(alpha: float, beta: float, gamma: float, in_chans: int = 1,
             num_classes: int = 10, base: str = "tiny") -> tuple[nn.Module, int, int, int]:
    """The scaled network (on the meta device), its resolution, parameters and MACs."""
    from ..analysis.macs import count_macs

    builder, side = _base(base)
    with torch.device("meta"):
        net = builder(alpha, beta, in_chans, num_classes)
    r = resolution(gamma, side)
    params = sum(p.numel() for p in net.parameters())
    return net, r, params, count_macs(net, (in_chans, r, r)).macs


def _stack(ds, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All images (N x C x H x W, float 0..1) and labels of a data set, in memory."""
    if hasattr(ds, "images") and hasattr(ds, "labels"):
        x, y = ds.images, ds.labels
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    else:
        n = len(ds) if limit is None else min(limit, len(ds))
        items = [ds[i] for i in range(n)]
        size = items[0][0].shape[-2:]
        x = torch.stack([F.interpolate(a[None], size=size, mode="bilinear",
                                       align_corners=False)[0] if a.shape[-2:] != size else a
                         for a, _ in items])
        y = torch.tensor([b for _, b in items])
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return x, y.long()


class Data:
    """The splits as tensors, normalised once; :meth:`at` resizes them for a trial."""

    def __init__(self, splits, train_limit: int | None = None, eval_limit: int | None = None):
        self.name = splits.source or splits.name
        self.num_classes = splits.num_classes
        self.channels = splits.channels
        mean = torch.tensor(splits.mean).view(1, -1, 1, 1)
        std = torch.tensor(splits.std).view(1, -1, 1, 1).clamp_min(1e-6)
        val = splits.val if splits.val is not None else splits.test
        self.raw = {}
        for name, ds, lim in (("train", splits.train, train_limit), ("val", val, eval_limit),
                              ("test", splits.test, eval_limit)):
            x, y = _stack(ds, lim)
            self.raw[name] = ((x - mean) / std, y)
        self._cache: dict = {}

    def at(self, split: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        key = (split, size)
        if key not in self._cache:
            x, y = self.raw[split]
            if x.shape[-1] != size or x.shape[-2] != size:
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            self._cache[key] = (x.contiguous(), y)
        return self._cache[key]


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 256) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    return 100.0 * correct / max(1, len(x))


def train_trial(alpha: float, beta: float, gamma: float, data: Data, recipe: Recipe,
                base: str = "tiny") -> tuple[float, float, float]:
    """Train the scaled network with ``recipe``; (validation %, test %, seconds)."""
    builder, side = _base(base)
    torch.manual_seed(recipe.seed)
    model = builder(alpha, beta, data.channels, data.num_classes)
    r = resolution(gamma, side)
    x, y = data.at("train", r)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps = recipe.epochs * math.ceil(len(x) / recipe.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=steps,
                                                pct_start=0.15)
    gen = torch.Generator().manual_seed(recipe.seed)
    t0 = time.perf_counter()
    for _ in range(recipe.epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), recipe.batch_size):
            idx = order[i:i + recipe.batch_size]
            if len(idx) < 2:
                continue  # batch norm needs two samples
            loss = F.cross_entropy(model(x[idx]), y[idx], label_smoothing=recipe.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    seconds = time.perf_counter() - t0
    val = _accuracy(model, *data.at("val", r))
    test = _accuracy(model, *data.at("test", r))
    return val, test, seconds


def search(data: Data, *, budget: float = 2.0, tolerance: float = 0.08,
           axes: dict | None = None, recipe: Recipe | None = None, progress=None,
           base: str = "tiny") -> SearchResult:
    """Train the base and every grid point; mark the best (highest validation accuracy,
    then fewer MACs); scale the best to φ = 1, 2, 3."""
    recipe = recipe or Recipe()
    points = grid(budget, tolerance, axes)
    t_start = time.perf_counter()
    _, r0, p0, m0 = describe(1.0, 1.0, 1.0, data.channels, data.num_classes, base)
    trials = []
    for a, b, g in [(1.0, 1.0, 1.0)] + points:
        net, r, p, m = describe(a, b, g, data.channels, data.num_classes, base)
        t = Trial(a, b, g, r, list(net.repeats), p, m, m / m0, a * b * b * g * g,
                  is_base=(a, b, g) == (1.0, 1.0, 1.0) and not trials)
        if progress:
            progress(t, len(trials), len(points) + 1)
        t.accuracy, t.test_accuracy, t.seconds = train_trial(a, b, g, data, recipe, base)
        trials.append(t)
    candidates = trials[1:] or trials
    best = max(candidates, key=lambda t: (t.accuracy, -t.macs))
    best.best = True
    phis = []
    for phi in (1, 2, 3):
        d, w, rr = best.alpha ** phi, best.beta ** phi, best.gamma ** phi
        net, r, p, m = describe(d, w, rr, data.channels, data.num_classes, base)
        phis.append({"phi": phi, "depth_mult": round(d, 4), "width_mult": round(w, 4),
                     "resolution_mult": round(rr, 4), "resolution": r,
                     "repeats": list(net.repeats), "params": p, "macs": m,
                     "macs_ratio": m / m0, "target": budget ** phi,
                     "compound": (best.alpha * best.beta ** 2 * best.gamma ** 2) ** phi})
    return SearchResult(trials, trials[0], best, phis, recipe, data.name, budget,
                        time.perf_counter() - t_start, base)


def format_result(res: SearchResult) -> str:
    head = ("", "alpha", "beta", "gamma", "res", "repeats", "params", "MACs", "MACs/base",
            "a*b^2*g^2", "val %", "test %", "time s")
    body = []
    for t in res.trials:
        mark = "base" if t.is_base else ("best" if t.best else "")
        body.append((mark, f"{t.alpha:.2f}", f"{t.beta:.2f}", f"{t.gamma:.2f}",
                     str(t.resolution), "-".join(map(str, t.repeats)), f"{t.params:,}",
                     f"{t.macs:,}", f"{t.macs_ratio:.2f}", f"{t.target:.3f}",
                     f"{t.accuracy:.2f}", f"{t.test_accuracy:.2f}", f"{t.seconds:.1f}"))
    from ..training.metrics import format_table

    rc = res.recipe
    b = res.best
    lines = [
        f"Compound-scaling grid search on {res.data}: alpha*beta^2*gamma^2 = {res.budget} "
        f"(+- tolerance), base {res.base_model} at {res.base.resolution}x"
        f"{res.base.resolution}, {'-'.join(map(str, res.base.repeats))} blocks per stage",
        f"Recipe (every trial): {rc.epochs} epochs, batch {rc.batch_size}, AdamW lr {rc.lr} "
        f"one-cycle, weight decay {rc.weight_decay}, label smoothing {rc.label_smoothing}, "
        f"seed {rc.seed}" + (f", first {rc.train_limit} training images"
                             if rc.train_limit else ""),
        "", format_table(head, body)] + [
        "",
        f"best: alpha={b.alpha:.2f}, beta={b.beta:.2f}, gamma={b.gamma:.2f} "
        f"(validation {b.accuracy:.2f} %, test {b.test_accuracy:.2f} %; base "
        f"{res.base.accuracy:.2f} % / {res.base.test_accuracy:.2f} %)",
        "",
        "Scaling the best further: depth alpha^phi, width beta^phi, resolution gamma^phi",
    ]
    ph = ("phi", "depth x", "width x", "res", "repeats", "params", "MACs", "MACs/base",
          f"{res.budget:g}^phi")
    pb = [(str(p["phi"]), f"{p['depth_mult']:.3f}", f"{p['width_mult']:.3f}",
           str(p["resolution"]), "-".join(map(str, p["repeats"])), f"{p['params']:,}",
           f"{p['macs']:,}", f"{p['macs_ratio']:.2f}", f"{p['target']:g}") for p in res.phis]
    pw = [max(len(r[i]) for r in [ph, *pb]) for i in range(len(ph))]
    lines.append("  ".join(c.rjust(w) for c, w in zip(ph, pw, strict=True)))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, pw, strict=True)) for r in pb]
    lines += [
        "",
        "MACs/base is measured (conv + linear multiply-accumulates, batch 1); it differs from "
        "alpha*beta^2*gamma^2 because repeats round up, widths round to multiples of 8 and "
        "resolutions to whole pixels, and the stem and head do not scale with depth.",
        f"Total time {res.seconds:.0f} s. Accuracies on this small data set differ by a few "
        "images between trials: read them as a demonstration of the method, not a ranking.",
    ]
    return "\n".join(lines)


def plot(res: SearchResult, path) -> None:
    """Validation accuracy vs MACs of every trial, the best and the base marked."""
    from .plots_lab import _plt, _save  # the lab's one figure writer (file checks, clean-up)

    fig, ax = _plt().subplots(figsize=(8, 5))
    for t in res.trials:
        color = "red" if t.best else ("black" if t.is_base else "tab:blue")
        ax.scatter(t.macs / 1e6, t.accuracy, color=color, s=40)
        ax.annotate(f"{t.alpha:g}/{t.beta:g}/{t.gamma:g}", (t.macs / 1e6, t.accuracy),
                    fontsize=7, ha="left", va="bottom")
    ax.set_xlabel("MACs (millions, batch 1)")
    ax.set_ylabel("validation top-1 (%)")
    ax.set_title("Compound-scaling grid search (alpha/beta/gamma; red: best, black: base)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
