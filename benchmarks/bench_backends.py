"""Every inference backend against the machine's limit: ``cnnlab bench --peak --pick`` on
resnet50 and mobilenet_v2 at batch 32 (and any run folders given), written as Markdown with
the command, the machine (CPU, features, load before and after, versions) and a short
reading of the figures.

    PYTHONPATH=src python benchmarks/bench_backends.py [--models resnet50 mobilenet_v2]
        [--batch 32] [--repeats 3] [--threads 1] [-o benchmarks/results/bench_cpu.md]

Keep it short on a shared machine: resnet50 at batch 32 takes about 4 s a step in eager fp32
on one thread, and int8 and torch.compile spend a minute or more preparing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shlex
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["resnet50", "mobilenet_v2"])
    ap.add_argument("--batch", default="32")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--backends", default=None)
    ap.add_argument("-o", "--output", default=None, help="Markdown file (default: stdout only)")
    args = ap.parse_args()

    from cnnlab.cli import main as cnnlab_main

    argv = ["bench", *args.models, "--batch", args.batch, "--repeats", str(args.repeats),
            "--threads", str(args.threads), "--peak", "--pick", "--markdown"]
    if args.backends:
        argv += ["--backends", args.backends]
    load0 = os.getloadavg()
    t0 = time.time()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cnnlab_main(argv)
    text = buf.getvalue()
    load1 = os.getloadavg()
    took = time.time() - t0
    lines = [
        "# Inference backends on this CPU, against its matrix-multiply peak",
        "",
        "```",
        f"PYTHONPATH=src python benchmarks/bench_backends.py {shlex.join(sys.argv[1:])}",
        f"# = cnnlab {shlex.join(argv)}",
        "```",
        "",
        f"Load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}; after: "
        f"{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} ("
        "every figure is a median of interleaved rounds, read the ratios); "
        f"whole run {took:.0f} s.",
        "",
        text.rstrip(),
        "",
    ]
    out = "\n".join(lines)
    print(out)
    if args.output:
        Path(args.output).write_text(out)
    sys.exit(code)


if __name__ == "__main__":
    main()
