"""Start-up wall time of the ``cnnlab`` command against importing NumPy and PyTorch.

Each command runs in a fresh interpreter (``python -m cnnlab ...``, output discarded); the
reference commands are ``python -c "import numpy"`` and ``python -c "import torch"``. Runs are
interleaved (one of each per round, in a rotating order) so that a change in the machine's
load hits every command alike; the median of the rounds is reported, with the load average
before and after. Targets (issue 16): ``--help`` and ``cost`` within 1.5x of importing NumPy,
``list`` within 1.3x of importing torch. ``cnnlab summary resnet18`` is timed twice, as the
``cnnlab`` process runs it and through ``main()`` with the garbage collector left as Python
sets it, to show what pausing it for ``import torch`` and freezing it saves a torch command.

    PYTHONPATH=src python benchmarks/bench_cli.py [--rounds 7] [--markdown]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "import numpy": ["-c", "import numpy"],
    "import torch": ["-c", "import torch"],
    "cnnlab --help": ["-m", "cnnlab", "--help"],
    "cnnlab cost": ["-m", "cnnlab", "cost"],
    "cnnlab list": ["-m", "cnnlab", "list"],
    "cnnlab filter --list": ["-m", "cnnlab", "filter", "--list"],
    "cnnlab macs lenet5": ["-m", "cnnlab", "macs", "lenet5"],
    "cnnlab summary resnet18": ["-m", "cnnlab", "summary", "resnet18"],
    # the same command through main() without the process's collector set-up
    # (cnnlab.cli._one_command_collector), as every command ran before it existed
    "summary resnet18, collector untouched": [
        "-c", "import sys; from cnnlab.cli import main; sys.exit(main(sys.argv[1:]))",
        "summary", "resnet18"],
}
# (command, reference, target ratio)
TARGETS = [("cnnlab --help", "import numpy", 1.5), ("cnnlab cost", "import numpy", 1.5),
           ("cnnlab list", "import torch", 1.3)]


def wall_time(args: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, *args], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    names = list(COMMANDS)
    for name in names:  # warm the file cache once
        wall_time(COMMANDS[name])
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(wall_time(COMMANDS[name]))
    load_after = os.getloadavg()
    med = {n: statistics.median(v) for n, v in times.items()}

    print(f"date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average (1/5/15 min) "
          f"before {' '.join(f'{x:.2f}' for x in load_before)}, after "
          f"{' '.join(f'{x:.2f}' for x in load_after)}; Python {platform.python_version()}")
    print(f"wall time of a fresh process, median of {args.rounds} interleaved rounds")
    print()
    print("| command | median s | runs (s) |")
    print("|---|---:|---|")
    for n in names:
        print(f"| `{n}` | {med[n]:.3f} | {', '.join(f'{t:.2f}' for t in times[n])} |")
    print()
    print("| ratio | measured | target | met |")
    print("|---|---:|---:|---|")
    for cmd, ref, target in TARGETS:
        ratio = med[cmd] / med[ref]
        print(f"| `{cmd}` / `{ref}` | {ratio:.2f}x | {target}x | "
              f"{'yes' if ratio <= target else 'NO'} |")
    a, b = "cnnlab summary resnet18", "summary resnet18, collector untouched"
    print(f"| `{a}` / `{b}` | {med[a] / med[b]:.2f}x | - | - |")


if __name__ == "__main__":
    main()
