"""Summarise LeNet-5 runs on the full MNIST (mnist.pkl.gz) as the table of
benchmarks/results/mnist_lenet5.md: paper vs cnnlab test error, epochs, seed, wall time.

    PYTHONPATH=src python benchmarks/mnist_lenet5.py RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a ``cnnlab train`` run folder (config.json, results.json, metrics.jsonl) or a
``cnnlab scratch train --out`` folder (scratch_config.json). With ``--logs DIR``, the output of
``/usr/bin/time -v`` in ``DIR/<run name>.log`` adds the process's CPU time (user + system) and
wall time: on a shared machine the CPU time is the comparable figure. Runs of the same model, data
and settings that differ only in seed are also summarised as mean and spread. The last
lines print the CPU's flags and the load, as every speed figure here must.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from pathlib import Path

# LeCun, Bottou, Bengio & Haffner (1998), section III.C: LeNet-5's test error on MNIST,
# without and with distortions. The paper has no sigmoid / average-pooling variant: the
# slides' LeNet-5 and the NumPy lab's are set against LeNet-5's 0.95 %.
PAPER = {"lenet5_paper": 0.95, "lenet5_paper+distort": 0.8, "lenet5": 0.95, "scratch": 0.95}


def read_run(path: Path) -> dict:
    if (path / "scratch_config.json").is_file():
        c = json.loads((path / "scratch_config.json").read_text())
        last = c["epochs"][-1]
        return {"run": path.name, "model": "NumPy LeNet-5 (28x28, C1 padded)",
                "key": "scratch", "seed": c["seed"], "epochs": len(c["epochs"]),
                "val_top1": 100 * last["val_acc"], "test_top1": 100 * c["test_acc"],
                "train_s": last["seconds"], "settings": "scratch"}
    config = json.loads((path / "config.json").read_text())
    results = json.loads((path / "results.json").read_text())
    t = config["train"]
    distort = bool(config.get("augment", {}).get("distort"))
    key = t["model"] + ("+distort" if distort else "")
    settings = {k: t[k] for k in ("data", "optimizer", "lr", "momentum", "weight_decay",
                                  "schedule", "batch_size", "epochs", "model_kwargs")}
    return {"run": path.name, "model": key, "key": key, "seed": t["seed"],
            "epochs": results["epochs"], "val_top1": results["val_top1"],
            "test_top1": results["test_top1"], "train_s": results["train_time_s"],
            "settings": json.dumps(settings, sort_keys=True),
            "pad": (config.get("resize") or {}).get("pad_from")}


def wall_text(wall: float | None, run: dict) -> str:
    """The process's wall time, else the training time the run recorded."""
    return f"{(wall or run['train_s']) / 60:.1f} min"


def time_of(log: Path) -> tuple[float | None, float | None]:
    """(user + system CPU seconds, wall seconds) from ``/usr/bin/time -v`` output, or Nones."""
    if not log.is_file():
        return None, None
    cpu, wall = 0.0, None
    for line in log.read_text().splitlines():
        key, _, value = line.strip().partition(": ")
        if key in ("User time (seconds)", "System time (seconds)"):
            cpu += float(value)
        elif key.startswith("Elapsed (wall clock) time"):
            parts = [float(x) for x in line.rsplit(" ", 1)[1].split(":")]
            wall = sum(x * 60**i for i, x in enumerate(reversed(parts)))
    return (cpu or None), wall


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--logs", type=Path, help="folder of the runs' /usr/bin/time -v logs")
    args = ap.parse_args(argv)
    rows = [read_run(p) for p in args.runs]
    print("| model | run | seed | epochs | val error | test error | paper | CPU time | wall time |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        paper = PAPER.get(r["key"])
        cpu, wall = time_of(args.logs / f"{r['run']}.log") if args.logs else (None, None)
        print(f"| {r['model']} | {r['run']} | {r['seed']} | {r['epochs']} | "
              f"{100 - r['val_top1']:.2f} % | {100 - r['test_top1']:.2f} % | "
              f"{f'{paper:.2f} %' if paper else '-'} | "
              f"{f'{cpu / 60:.1f} min' if cpu else '-'} | "
              f"{wall_text(wall, r)} |")
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault((r["key"], r["settings"]), []).append(r)
    for (key, _), rs in groups.items():
        if len(rs) > 1:
            errs = [100 - r["test_top1"] for r in rs]
            print(f"\n{key}: {len(rs)} seeds {sorted(r['seed'] for r in rs)}: test error mean "
                  f"{statistics.mean(errs):.2f} %, standard deviation "
                  f"{statistics.stdev(errs):.2f}, range {min(errs):.2f}-{max(errs):.2f} %")
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = " ".join(f for f in line.split(":", 1)[1].split()
                                 if f.startswith(("avx", "fma", "sse4", "amx")))
                break
    except OSError:
        pass
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} CPUs, load average now "
          f"{os.getloadavg()[0]:.2f}; CPU flags: {flags or 'unknown'}")


if __name__ == "__main__":
    main()
