"""The trainer's overhead: `cnnlab train` against a minimal hand-written PyTorch loop.

Three measurements (issue 16 item 3), each as a ratio of runs interleaved on one machine:

1. **Training phase, in one process.** The trainer's own epoch (``training.loop.
   train_one_epoch`` with the callbacks `cnnlab train` uses: progress, metrics, early stopping,
   checkpointing) against a hand-written loop over the same prepared data tensors, the same
   model (a copy of the same initial weights), batch, optimizer (SGD, momentum, weight decay)
   and thread count. Epochs alternate (trainer, hand, hand, trainer, ...); the ratio is
   trainer images/s over hand-loop images/s, the median of the per-pair ratios, from wall
   time and from CPU time (``time.process_time``: on a loaded machine the CPU time is less
   disturbed by other programs than the wall time), and the ratio of the fastest epochs of
   each (other programs only ever add time).
   lenet5 on the digits (batch 16, 1,258 images an epoch) and resnet20 on synthetic 3x32x32
   data (batch 128, a few steps an epoch).
2. **The whole default run**: ``python -m cnnlab train lenet5`` (60 epochs, validation,
   checkpoints, metrics, plots, test) against a process that loads the same data, builds the
   same model and runs the hand loop for 60 epochs plus a test evaluation; wall time of each
   process, in rotating order. The cnnlab process pauses the garbage collector while it
   imports torch and freezes it afterwards (``cnnlab.cli._one_command_collector``), which
   saves seconds of start-up and exit; a third process, the hand loop with the same collector
   set-up, separates that saving from the trainer's own cost.
3. **Peak memory** (``VmHWM`` of each process, its peak resident set): `cnnlab train`
   (weights and checkpoint written every epoch) against the hand loop with the same model,
   data and steps, for resnet50 at 3x64x64 (a 98 MB state) and lenet5 on the digits.

Every figure is printed with the machine's load average (``os.getloadavg``) before and after:
on a shared machine the ratios are what they are under that load.

    PYTHONPATH=src python benchmarks/bench_train_overhead.py [--repeats 7] [--full-runs 2]
        [--threads N] [--out benchmarks/results/train_overhead.md]
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def peak_rss_kib() -> int:
    """This process's peak resident memory (``VmHWM``; unlike ``ru_maxrss`` it does not carry
    the parent's peak across fork + exec), in KiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def load() -> str:
    a, b, c = os.getloadavg()
    return f"{a:.2f} {b:.2f} {c:.2f}"


# --------------------------------------------------------------------------- the hand loop

def hand_epoch(model, opt, x_all, y_all, batch_size, order):
    """The minimal loop: index, forward, cross-entropy, backward, step."""
    import torch.nn.functional as F

    model.train()
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        if len(idx) == 1:
            continue
        loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def hand_optimizer(model, cfg):
    import torch

    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay)


# --------------------------------------------------------------------------- 1. training phase

def training_phase(model_name, data, batch_size, repeats, threads, out, input_size=None):
    import torch

    from cnnlab.training.loop import train_one_epoch
    from cnnlab.training.trainer import TrainConfig, Trainer

    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(model=model_name, data=data, batch_size=batch_size, epochs=1000,
                          runs_dir=tmp, threads=threads, plots=False, augment="none",
                          input_size=input_size)
        trainer = Trainer(cfg, log=lambda *a, **k: None, progress=False)
        with trainer.open():
            run = trainer.run
            run.write_config(trainer.config)
            run.reset_metrics([])
            callbacks = trainer.callbacks()
            ds = trainer.data.train
            x_all, y_all = ds._cache, ds.base.labels
            hand = copy.deepcopy(trainer.model)
            opt = hand_optimizer(hand, trainer.cfg)
            n = len(ds)
            state = trainer.state
            g = torch.Generator().manual_seed(0)

            def t_trainer(epoch):
                c0, t0 = time.process_time(), time.perf_counter()
                train_one_epoch(trainer.learner, ds, state, epoch, callbacks)
                t, c = time.perf_counter() - t0, time.process_time() - c0
                state.epoch, state.batch = epoch + 1, 0
                return t, c

            def t_hand():
                order = torch.randperm(n, generator=g)
                c0, t0 = time.process_time(), time.perf_counter()
                hand_epoch(hand, opt, x_all, y_all, batch_size, order)
                return time.perf_counter() - t0, time.process_time() - c0

            t_trainer(0)  # warm-up (allocator, first-call costs) for both
            t_hand()
            tt, th = [], []
            l0 = load()
            for r in range(repeats):
                if r % 2 == 0:
                    a, b = t_trainer(r + 1), t_hand()
                else:
                    b, a = t_hand(), t_trainer(r + 1)
                tt.append(a)
                th.append(b)
            l1 = load()
    steps = -(-n // batch_size)
    out(f"{model_name} on {data}, batch {batch_size}, {n} images ({steps} steps) an epoch, "
        f"{torch.get_num_threads()} thread(s), {repeats} interleaved pairs after a warm-up; "
        f"load {l0} -> {l1}")
    ratios = {}
    for k, what in ((0, "wall"), (1, "CPU")):
        a, b = [x[k] for x in tt], [x[k] for x in th]
        pairs = [hb / ta for ta, hb in zip(a, b, strict=True)]  # trainer img/s / hand img/s
        ratios[what] = statistics.median(pairs)
        out(f"  {what} time: cnnlab train {n / statistics.median(a):7.1f} img/s (median "
            f"{statistics.median(a):.3f} s), hand loop {n / statistics.median(b):7.1f} img/s "
            f"(median {statistics.median(b):.3f} s)")
        ratios[what + " best"] = min(b) / min(a)
        out(f"    throughput ratio trainer / hand: median of pairs {ratios[what]:.3f}, of the "
            f"fastest epochs {ratios[what + ' best']:.3f}  "
            f"(pairs: {', '.join(f'{x:.3f}' for x in pairs)})")
    return ratios


# --------------------------------------------------------------------------- children

def child_hand_full(args) -> None:
    """A whole hand-written run: data, model, N epochs, test accuracy; prints JSON.

    ``"collector": true`` in the spec treats the garbage collector as the ``cnnlab`` process
    does (paused while torch is imported, then frozen, frozen again at the end: see
    ``cnnlab.cli._one_command_collector``), to tell that start-up saving from the trainer's
    own cost."""
    import gc

    spec = json.loads(args.child_spec)
    if spec.get("collector"):
        gc.disable()
    import torch

    if spec.get("collector"):
        gc.freeze()
        gc.enable()

    from cnnlab.data import Preprocess, load_data
    from cnnlab.registry import create_model

    try:
        from cnnlab.training.config import TrainConfig
    except ImportError:  # a cnnlab from before the trainer's restructure (--src)
        from cnnlab.training.trainer import TrainConfig

    torch.set_num_threads(args.threads)
    d = load_data(spec["data"])
    size = spec.get("input_size") or [1, 32, 32]
    pre = Preprocess(size[0], tuple(size[1:]), d.mean, d.std)
    x = pre(d.train.batch(0, len(d.train)))
    y = d.train.labels
    torch.manual_seed(0)
    model = create_model(spec["model"], num_classes=d.num_classes, in_chans=size[0])
    cfg = TrainConfig(model=spec["model"])
    opt = hand_optimizer(model, cfg)
    g = torch.Generator().manual_seed(0)
    for _ in range(spec["epochs"]):
        hand_epoch(model, opt, x, y, spec["batch_size"], torch.randperm(len(x), generator=g))
    model.eval()
    with torch.no_grad():
        xt = pre(d.test.batch(0, len(d.test)))
        acc = (model(xt).argmax(1) == d.test.labels).float().mean().item()
    print(json.dumps({"test_top1": 100 * acc,
                      "maxrss_kib": peak_rss_kib()}))
    if spec.get("collector"):
        gc.freeze()


def child_cnnlab(args) -> None:
    """`cnnlab train ...` in this process, then its peak memory as JSON on the last line."""
    from cnnlab.cli import main

    rc = main(json.loads(args.child_spec))
    print(json.dumps({"rc": rc,
                      "maxrss_kib": peak_rss_kib()}))


def _run_child(kind: str, spec) -> tuple[float, dict]:
    env = dict(os.environ, PYTHONPATH=ARGS.src or str(REPO / "src"))
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, __file__, "--child", kind, "--child-spec",
                          json.dumps(spec), "--threads", str(ARGS.threads)],
                         capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"child {kind} failed:\n{res.stderr[-3000:]}")
    return wall, json.loads(res.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- 2. whole run

def _run_cnnlab_process(args: list[str]) -> float:
    """``python -m cnnlab ARGS`` as a user runs it; its wall time."""
    env = dict(os.environ, PYTHONPATH=ARGS.src or str(REPO / "src"))
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True,
                         text=True, env=env)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"cnnlab {' '.join(args)} failed:\n{res.stderr[-3000:]}")
    return wall


def whole_run(runs: int, out) -> tuple[float, float]:
    """``python -m cnnlab train lenet5`` against the hand loop's process, and against the hand
    loop with the collector set up as the cnnlab process sets it up; rounds of three, the
    order rotating. Returns the two ratios of medians."""
    tmp = tempfile.mkdtemp()
    cli = ["train", "lenet5", "--runs-dir", tmp, "--threads", str(ARGS.threads)]
    hand = {"model": "lenet5", "data": "digits", "epochs": 60, "batch_size": 16}
    kinds = ("cnnlab", "hand", "hand+gc")
    times: dict[str, list[float]] = {k: [] for k in kinds}
    l0 = load()
    for r in range(runs):
        for kind in kinds[r % 3:] + kinds[:r % 3]:
            if kind == "cnnlab":
                times[kind].append(_run_cnnlab_process(cli + ["--name", f"r{r}"]))
            else:
                times[kind].append(_run_child("hand-full", {**hand,
                                                            "collector": kind == "hand+gc"})[0])
    l1 = load()
    med = {k: statistics.median(v) for k, v in times.items()}
    res = json.loads((Path(tmp) / f"r{runs - 1}" / "results.json").read_text())
    out(f"whole default run: `python -m cnnlab train lenet5 --threads {ARGS.threads}` (60 "
        f"epochs, digits, validation, checkpoints, plots, test) vs the hand loop's process (60 "
        f"epochs + test), and vs the hand loop with the collector as the cnnlab process sets it "
        f"(hand+gc); {runs} of each, in rotating order; load {l0} -> {l1}")
    labels = {"cnnlab": "cnnlab train", "hand": "hand loop", "hand+gc": "hand loop+gc"}
    for k in kinds:
        extra = f"; test top-1 {res['test_top1']:.2f}%" if k == "cnnlab" else ""
        out(f"  {labels[k]:13s} median {med[k]:6.1f} s  "
            f"({', '.join(f'{t:.1f}' for t in times[k])}){extra}")
    ratio, ratio_gc = med["cnnlab"] / med["hand"], med["cnnlab"] / med["hand+gc"]
    per_round = [c / h for c, h in zip(times["cnnlab"], times["hand"], strict=True)]
    per_round_gc = [c / h for c, h in zip(times["cnnlab"], times["hand+gc"], strict=True)]
    out(f"  time ratio cnnlab / hand loop:    {ratio:.3f} (median of rounds "
        f"{statistics.median(per_round):.3f})")
    out(f"  time ratio cnnlab / hand loop+gc: {ratio_gc:.3f} (median of rounds "
        f"{statistics.median(per_round_gc):.3f}): the trainer's own cost (validation, "
        "checkpoints, metrics, plots)")
    return ratio, ratio_gc


# --------------------------------------------------------------------------- 3. peak memory

def peak_memory(out) -> str:
    tmp = tempfile.mkdtemp()
    cases = [
        ("resnet50", "synthetic:classes=10,size=3x64x64,train=32,val=0,test=8", [3, 64, 64], 16,
         1),
        ("lenet5", "digits", None, 16, 2),
    ]
    ratios = []
    for model, data, size, bs, epochs in cases:
        cli = ["train", model, "--data", data, "--epochs", str(epochs), "--batch-size", str(bs),
               "--runs-dir", tmp, "--threads", str(ARGS.threads), "--no-plots",
               "--augment", "none"]
        if size:
            cli += ["--input-size", "x".join(map(str, size))]
        hand = {"model": model, "data": data, "epochs": epochs, "batch_size": bs,
                "input_size": size}
        l0 = load()
        mc, mh = [], []
        for r in range(2):
            _, a = _run_child("cnnlab", cli + ["--name", f"{model}-{r}"])
            _, b = _run_child("hand-full", hand)
            mc.append(a["maxrss_kib"])
            mh.append(b["maxrss_kib"])
        ratio = max(mc) / max(mh)
        out(f"peak memory, {model} on {data.split(',')[0]}..., batch {bs}, {epochs} epoch(s) "
            f"(peak RSS of each process, 2 of each; load {l0} -> {load()})")
        for label, ms in (("cnnlab train", mc), ("hand loop   ", mh)):
            out(f"  {label}  {max(ms) / 1024:7.1f} MiB  "
                f"({', '.join(f'{m / 1024:.1f}' for m in ms)})")
        out(f"  ratio cnnlab / hand: {ratio:.3f}")
        ratios.append(f"{model} {ratio:.3f}")
    return f"peak memory {', '.join(ratios)} of the hand loop's (target <= 1.05)"


# --------------------------------------------------------------------------- main

def main() -> None:
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7, help="interleaved epoch pairs (lenet5)")
    ap.add_argument("--full-runs", type=int, default=2, help="whole runs of each (0: skip)")
    ap.add_argument("--threads", type=int, help="default: what `cnnlab train` would choose")
    ap.add_argument("--parts", default="phase,whole,memory",
                    help="which measurements (comma-separated: phase, whole, memory)")
    ap.add_argument("--out", help="also write the report to this file")
    ap.add_argument("--src", help="the cnnlab source folder the child processes (whole run, "
                    "memory) import, e.g. another checkout's src to compare versions")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-spec", help=argparse.SUPPRESS)
    ARGS = ap.parse_args()
    if ARGS.child == "hand-full":
        return child_hand_full(ARGS)
    if ARGS.child == "cnnlab":
        return child_cnnlab(ARGS)

    import torch

    from cnnlab.training.config import choose_threads

    if ARGS.threads is None:
        ARGS.threads, why = choose_threads()
    else:
        why = "--threads"
    lines: list[str] = []

    def out(text=""):
        print(text, flush=True)
        lines.append(text)

    cmd = "PYTHONPATH=src python benchmarks/bench_train_overhead.py " + " ".join(sys.argv[1:])
    out(f"$ {cmd.strip()}")
    out(f"date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    if ARGS.src:
        out(f"child processes import cnnlab from {ARGS.src}")
    out(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {load()}; "
        f"torch {torch.__version__}; threads {ARGS.threads} ({why})")
    out()
    torch.set_num_threads(ARGS.threads)
    parts = ARGS.parts.split(",")
    summary = []
    if "phase" in parts:
        r1 = training_phase("lenet5", "digits", 16, ARGS.repeats, ARGS.threads, out)
        out()
        r2 = training_phase("resnet20",
                            "synthetic:classes=10,size=3x32x32,train=384,val=0,test=8", 128,
                            ARGS.repeats, ARGS.threads, out)
        out()
        summary.append(
            "training-phase throughput of the hand loop's (target >= 0.95), median of pairs "
            f"wall/CPU time, fastest epochs wall/CPU time: lenet5 {r1['wall']:.3f}/"
            f"{r1['CPU']:.3f}, {r1['wall best']:.3f}/{r1['CPU best']:.3f}; resnet20 "
            f"{r2['wall']:.3f}/{r2['CPU']:.3f}, {r2['wall best']:.3f}/{r2['CPU best']:.3f}")
    if "whole" in parts and ARGS.full_runs:
        r3, r3_gc = whole_run(ARGS.full_runs, out)
        out()
        summary.append(f"whole lenet5 run {r3:.3f}x the hand loop's time (target <= 1.1), "
                       f"{r3_gc:.3f}x the hand loop's with the same collector set-up")
    if "memory" in parts:
        summary.append(peak_memory(out))
        out()
    out("summary: " + "; ".join(summary))
    if ARGS.out:
        Path(ARGS.out).write_text("```\n" + "\n".join(lines) + "\n```\n")


ARGS = None

if __name__ == "__main__":
    main()
