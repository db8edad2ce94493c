"""The architecture comparison table (as in the Keras Applications table and the papers).

One row per model: input size, parameter size in MB (float32, 1 MB = 2^20 bytes), parameters,
depth (weighted layers on the longest path), MACs at the model's native resolution (counted
on the ``meta`` device, so nothing is allocated), the median milliseconds of one inference
step (see :mod:`cnnlab.analysis.benchmark`), and Top-1/Top-5 when a trained run is given.

Accuracy comes from the run folder (the one ``cnnlab train`` writes, see
:mod:`cnnlab.weights`): ``results.json`` with ``test_top1`` and ``test_top5``, or else the
last line of ``metrics.jsonl`` that has them. Values up to 1 are read as fractions and shown
as percentages. The run's weights are loaded (strictly) to check that the folder is intact
and belongs to the model named; the models are not re-evaluated here.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CheckpointError, UsageError, user_files
from .benchmark import time_inference
from .macs import trace

MB = 2**20


@dataclass
class CompareRow:
    model: str
    input_size: tuple[int, int, int]
    params: int
    size_mb: float
    depth: int
    macs: int
    ms: float | None = None
    runs: int = 0
    top1: float | None = None
    top5: float | None = None
    checkpoint: str | None = None
    channels_last: bool = False
    amp: str | None = None
    max_diff: float | None = None   # largest |output - fp32 eager output| (when a variant)
    backend: str | None = None      # analysis.backends name the ms column was timed with

    @property
    def precision(self) -> str:
        return (self.amp or "fp32") + (" CL" if self.channels_last else "")

    def to_dict(self) -> dict:
        c, h, w = self.input_size
        return {"model": self.model, "input": f"{c}x{h}x{w}", "size_mb": round(self.size_mb, 2),
                "precision": self.amp or "fp32", "channels_last": self.channels_last,
                "max_diff_vs_fp32": self.max_diff, "params": self.params, "depth": self.depth,
                "macs": self.macs,
                "flops": 2 * self.macs, "ms_per_step": None if self.ms is None else
                round(self.ms, 3), "timed_runs": self.runs, "top1": self.top1,
                "top5": self.top5, "checkpoint": self.checkpoint, "backend": self.backend}


def parse_checkpoints(items) -> dict[str, str]:
    """``["resnet18=runs/r18", ...]`` -> ``{"resnet18": "runs/r18"}``."""
    out = {}
    for item in items or ():
        model, sep, run = item.partition("=")
        if not sep or not model or not run:
            raise UsageError(f"--checkpoint takes MODEL=RUN_FOLDER, got {item!r}")
        out[model.strip()] = run.strip()
    return out


def _percent(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v * 100 if v <= 1.0 else v


@user_files()  # the run's files are the user's: unreadable, a folder, a link loop
def read_accuracy(run_dir: str | Path) -> tuple[float | None, float | None]:
    """Test Top-1 / Top-5 (in %) written by training into ``run_dir``, or ``(None, None)``."""
    run_dir = Path(run_dir)
    res = run_dir / "results.json"
    if res.is_file():
        try:
            data = json.loads(res.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CheckpointError(f"{res} is not valid JSON: {err}") from None
        return _percent(data.get("test_top1")), _percent(data.get("test_top5"))
    metrics = run_dir / "metrics.jsonl"
    found: tuple[float | None, float | None] = (None, None)
    if metrics.is_file():
        for line in metrics.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and "test_top1" in rec:
                found = (_percent(rec.get("test_top1")), _percent(rec.get("test_top5")))
    return found


def _check_run(model: str, run_dir: str) -> tuple[float | None, float | None]:
    from ..resolve import open_source

    src = open_source(run_dir, ema=False)  # the one opener's errors for a bad path
    if src.kind not in ("run", "safetensors", "checkpoint"):
        raise CheckpointError(f"checkpoint for {model}: {run_dir} is not a cnnlab run folder")
    path, config = src.run_dir, src.config
    if config.get("model") != model:
        raise CheckpointError(f"{run_dir} is a run of {config.get('model')!r}, not {model!r}; "
                              f"pass it as {config.get('model')}={run_dir}")
    return read_accuracy(path)


def ran_modules(model: torch.nn.Module, t) -> set[str]:
    """Names of the modules an inference pass ran (a container run only through a slice of
    it, ``classifier[:-1]``, counts as run), and the model itself ("")."""
    ran = {n for n, rec in t.modules.items() if rec.calls} | {""}
    for n, _ in model.named_modules():
        if n and n not in ran and any(k.startswith(n + ".") for k in ran):
            ran.add(n)
    return ran


def build_and_trace(name: str):
    """``(model, input_size, trace)`` of ``name`` at its native input: built on the meta device
    (no weights, no initialisation), or for real (seed 0) where an operator has no meta kernel."""
    from ..registry import create_model, get_entry

    size = tuple(get_entry(name).input_size)
    try:
        with torch.device("meta"):
            model = create_model(name)
        t = trace(model, size)
    except (NotImplementedError, RuntimeError):
        torch.manual_seed(0)
        model = create_model(name)
        t = trace(model, size)
    return model, size, t


def analyse(name: str, *, no_aux: bool = False) -> CompareRow:
    """Size, parameters, depth and MACs of ``name`` at its native input (meta device).

    ``no_aux``: leave out the parameters of layers that inference never runs (GoogLeNet's and
    Inception v3's auxiliary classifiers).
    """
    model, size, t = build_and_trace(name)
    if no_aux:
        ran = ran_modules(model, t)
        params = list({id(p): p for n, m in model.named_modules() if n in ran
                       for p in m.parameters(recurse=False)}.values())
    else:
        params = list({id(p): p for p in model.parameters()}.values())
    n = sum(p.numel() for p in params)
    nbytes = sum(p.numel() * 4 for p in params)  # float32
    return CompareRow(name, size, n, nbytes / MB, t.depth, t.macs)


def compare(names, *, batch: int = 32, device: str = "cpu", repeats: int = 10, warmup: int = 2,
            time_budget_s: float | None = None, timing: bool = True,
            checkpoints: dict[str, str] | None = None, progress=None, no_aux: bool = False,
            channels_last: bool = False, amp: str | None = None,
            fuse: bool = False, backend: str | None = None) -> list[CompareRow]:
    """One :class:`CompareRow` per model name. ``timing=False`` leaves the ms column empty.

    ``channels_last`` / ``amp`` ("bf16") time the model in that memory format / under
    autocast, and fill ``max_diff`` with the largest difference of its outputs from the plain
    fp32 eager outputs (two seeded inputs, same weights) so that a fast but wrong setting shows.

    ``checkpoints`` maps model names to run folders whose test accuracy fills Top-1/Top-5.
    ``progress(name)`` is called before each model (for a progress line).
    """
    from ..registry import create_model, get_entry

    checkpoints = dict(checkpoints or {})
    for model in checkpoints:
        get_entry(model)
        if model not in names:
            raise UsageError(f"--checkpoint names {model}, which is not in the comparison; "
                             "add it to the list of models")
    rows = []
    for name in names:
        if progress:
            progress(name)
        row = analyse(name, no_aux=no_aux)
        row.channels_last, row.amp = channels_last, amp
        if name in checkpoints:
            row.checkpoint = checkpoints[name]
            row.top1, row.top5 = _check_run(name, checkpoints[name])
        if timing and backend not in (None, "eager"):  # cnnlab bench's figure for the column
            from .backends import timed_with_backend
            row.backend, row.ms, row.runs = timed_with_backend(
                name, backend, batch=batch, repeats=repeats, warmup=warmup)
        elif timing:
            torch.manual_seed(0)
            model = create_model(name)
            if fuse:  # batch norm folded (cnnlab.fuse): same outputs, timed as deployed
                from ..fuse import fuse as fold
                model = fold(model.eval())
            if channels_last or amp:
                row.max_diff = max_diff_vs_eager(model, row.input_size, device=device,
                                                 channels_last=channels_last, amp=amp)
            t = time_inference(model, row.input_size, batch=batch, device=device,
                               repeats=repeats, warmup=warmup, time_budget_s=time_budget_s,
                               channels_last=channels_last, amp=amp)
            row.ms, row.runs = t.median_ms, t.runs
            del model
        elif channels_last or amp:
            torch.manual_seed(0)
            row.max_diff = max_diff_vs_eager(create_model(name), row.input_size, device=device,
                                             channels_last=channels_last, amp=amp)
        rows.append(row)
    return rows


def variant_outputs(model: torch.nn.Module, x: torch.Tensor, *, channels_last: bool = False,
                    amp: str | None = None) -> torch.Tensor:
    """The model's eval outputs for ``x`` run the way :func:`compare` times it (channels-last
    memory format, autocast), as float32. The model is left in the contiguous format and
    its previous train/eval mode."""
    from .benchmark import inference_context

    was_training = model.training
    model.eval()
    try:
        if channels_last:
            model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), inference_context(x.device, amp):
            out = model(x)
        return out.float()
    finally:
        if channels_last:
            model.to(memory_format=torch.contiguous_format)
        model.train(was_training)


def max_diff_vs_eager(model: torch.nn.Module, input_size, *, device: str = "cpu",
                      channels_last: bool = False, amp: str | None = None,
                      batch: int = 2) -> float:
    """Largest ``|variant - fp32 eager|`` over the outputs of ``batch`` seeded inputs."""
    gen = torch.Generator().manual_seed(1)
    model.to(device)
    x = torch.randn(batch, *input_size, generator=gen).to(device)
    ref = variant_outputs(model, x)
    got = variant_outputs(model, x, channels_last=channels_last, amp=amp)
    return float((got - ref).abs().max())


COLUMNS = ("Model", "Input", "Size (MB)", "Params", "Depth", "MACs (M)", "ms/step",
           "Top-1 %", "Top-5 %")


VARIANT_COLUMNS = ("Precision", "max |diff| vs fp32")


def _cells(r: CompareRow, variant: bool = False) -> list[str]:
    c, h, w = r.input_size
    extra = ([r.precision, "" if r.max_diff is None else f"{r.max_diff:.2e}"]
             if variant else [])
    return [r.model, f"{c}x{h}x{w}", f"{r.size_mb:.2f}", f"{r.params:,}", str(r.depth),
            f"{r.macs / 1e6:,.2f}",
            "" if r.ms is None else f"{r.ms:.2f}",
            "" if r.top1 is None else f"{r.top1:.2f}",
            "" if r.top5 is None else f"{r.top5:.2f}"] + extra


def format_rows(rows: list[CompareRow], style: str = "text", header: list[str] = ()) -> str:
    """The table as ``text`` (aligned), ``markdown`` or ``csv``; ``header`` lines go above
    (as ``#`` comments in CSV). Rows timed channels-last or under autocast add the columns
    Precision and max |diff| vs fp32."""
    variant = any(r.channels_last or r.amp for r in rows)
    columns = COLUMNS + VARIANT_COLUMNS if variant else COLUMNS
    if style == "csv":
        buf = io.StringIO()
        for line in header:
            buf.write(f"# {line}\n")
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["model", "input", "size_mb", "params", "depth", "macs", "flops",
                    "ms_per_step", "timed_runs", "top1", "top5"]
                   + (["precision", "channels_last", "max_diff_vs_fp32"] if variant else []))
        for r in rows:
            d = r.to_dict()
            w.writerow([d["model"], d["input"], d["size_mb"], d["params"], d["depth"],
                        d["macs"], d["flops"], d["ms_per_step"], d["timed_runs"],
                        d["top1"], d["top5"]]
                       + ([d["precision"], d["channels_last"], d["max_diff_vs_fp32"]]
                          if variant else []))
        return buf.getvalue().rstrip("\n")
    from ..training.metrics import format_table, markdown_table

    body = [_cells(r, variant) for r in rows]
    if style == "markdown":
        return "\n".join([line for h in header for line in (h, "")]
                         + [markdown_table(columns, body, left=2)])
    if style != "text":
        raise UsageError(f"style must be text, markdown or csv, got {style!r}")
    return "\n".join([*header, format_table(columns, body, "ll" + "r" * (len(columns) - 2))])


def header_lines(batch: int, device: str, timing: bool, repeats: int, warmup: int,
                 channels_last: bool = False, amp: str | None = None,
                 no_aux: bool = False) -> list[str]:
    from .benchmark import machine_description

    lines = [machine_description(device)]
    if channels_last or amp:
        lines.append(f"Timed {'channels-last' if channels_last else 'contiguous (NCHW)'}"
                     f"{f', under autocast {amp}' if amp else ', float32'}; 'max |diff| vs "
                     "fp32' = largest difference of the outputs from plain fp32 eager outputs "
                     "(same weights, 2 seeded inputs)")
    if no_aux:
        lines.append("Params: auxiliary classifiers left out (layers inference never runs)")
    if timing:
        lines.append(f"ms/step: median wall-clock time of one forward pass of a batch of "
                     f"{batch} on {device} (eval, inference mode) over up to {repeats} runs "
                     f"after {max(warmup, 1)} warm-up runs; threads {torch.get_num_threads()}")
    lines.append("MACs: conv + linear multiply-accumulates at the native input, batch 1 "
                 "(FLOPs = 2 x MACs); Size: float32 parameters, 1 MB = 2^20 bytes; "
                 "Depth: weighted layers (conv + linear) on the longest path")
    return lines


def plot(rows: list[CompareRow], path: str | Path) -> Path:
    """Params vs MACs (bubble area ~ params) and, when accuracies exist, Top-1 vs MACs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise UsageError(f"--plot writes a PNG file; give a name ending in .png, got {path}")
    with_acc = [r for r in rows if r.top1 is not None]
    fig, axes = plt.subplots(1, 2 if with_acc else 1, figsize=(14 if with_acc else 9, 6),
                             squeeze=False)
    biggest = max(r.params for r in rows) or 1

    def spread(values) -> bool:  # log axes once the values span more than two decades
        positive = [v for v in values if v > 0]
        return len(positive) > 1 and max(positive) / min(positive) > 100

    def bubbles(ax, items, ys):
        xs = [r.macs / 1e9 for r in items]
        sizes = [30 + 1500 * r.params / biggest for r in items]
        ax.scatter(xs, ys, s=sizes, alpha=0.5)
        for r, x, y in zip(items, xs, ys, strict=True):
            ax.annotate(r.model, (x, y), fontsize=6, ha="center", va="bottom")
        if spread(xs):
            ax.set_xscale("log")
        ax.set_xlabel("GMACs at native input (batch 1)" + (", log scale" if spread(xs) else ""))
        ax.grid(alpha=0.3, which="both")

    ax = axes[0][0]
    params_m = [r.params / 1e6 for r in rows]
    bubbles(ax, rows, params_m)
    if spread(params_m):
        ax.set_yscale("log")
    ax.set_ylabel("parameters (millions)" + (", log scale" if spread(params_m) else ""))
    ax.set_title("Parameters vs MACs (bubble area ~ parameters)")
    if with_acc:
        ax2 = axes[0][1]
        bubbles(ax2, with_acc, [r.top1 for r in with_acc])
        ax2.set_ylabel("Top-1 accuracy (%)")
        ax2.set_title("Top-1 vs MACs (bubble area ~ parameters)")
    fig.tight_layout()
    try:
        with user_files(path):  # a folder, no permission, no space: the user's to fix
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path
