"""Reproduce the comparison table for every registered model on the CPU.

Writes ``benchmarks/results/compare_cpu.md`` and ``compare_cpu.csv`` with the command, the
machine (CPU model, torch threads), the torch version and the date. Run from the repository
root::

    PYTHONPATH=src python benchmarks/bench_models.py                 # every model
    PYTHONPATH=src python benchmarks/bench_models.py lenet5 'resnet*' --batch 8

Defaults suit a small shared machine: batch 1, one warm-up step, up to 5 timed steps, and
at most 60 s of timing per model (slow models get fewer timed steps, never fewer than one).
MACs and parameters are counted on the meta device and cost nothing; only the timing runs
the models for real.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import shlex
import sys
import time
from pathlib import Path

import torch

from cnnlab.analysis.benchmark import machine_description
from cnnlab.analysis.compare import compare, format_rows, header_lines, parse_checkpoints
from cnnlab.commands.compare import resolve_models

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", help="names or patterns (default: every model)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--time-budget", type=float, default=60.0,
                   help="seconds of timing per model at most (default 60)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=RESULTS / "compare_cpu.md")
    p.add_argument("--checkpoint", action="append", default=[], metavar="MODEL=RUN",
                   help="a trained run folder whose test top-1/top-5 fill the accuracy columns")
    p.add_argument("--accuracy-note", default="",
                   help="what the accuracy columns measure (data set, input), for the header")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = resolve_models(args.models, not args.models)
    start = time.perf_counter()
    rows = compare(names, batch=args.batch, device="cpu", repeats=args.repeats,
                   warmup=args.warmup, time_budget_s=args.time_budget,
                   checkpoints=parse_checkpoints(args.checkpoint),
                   progress=lambda n: print(f"  {n}", file=sys.stderr, flush=True))
    took = time.perf_counter() - start
    argv_text = " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    command = f"PYTHONPATH=src python benchmarks/bench_models.py {argv_text}".rstrip()
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    header = [f"Command: `{command}`", f"Date: {now}; whole run {took:.0f} s",
              f"Machine: {machine_description('cpu')}"]
    header += header_lines(args.batch, "cpu", True, args.repeats, args.warmup)[1:]
    header.append(f"Timing budget per model: {args.time_budget:g} s (slow models get fewer "
                  "timed runs; the CSV's timed_runs column says how many)")
    if args.checkpoint:
        header.append("Top-1/Top-5: test accuracy of the trained runs "
                      + (f"({args.accuracy_note})" if args.accuracy_note else "given")
                      + "; empty where no run was given")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    md = "# cnnlab compare, CPU\n\n" + format_rows(rows, "markdown", header) + "\n"
    args.out.write_text(md)
    csv_path = args.out.with_suffix(".csv")
    csv_path.write_text(format_rows(rows, "csv", header) + "\n")
    print(md)
    print(f"written: {args.out}, {csv_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
