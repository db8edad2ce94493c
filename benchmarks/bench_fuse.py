"""Fused (``cnnlab.fuse``: batch norm folded into the convolution) against eager fp32.

The issue asks for the fused forward time against torchvision's eager forward of the same
architecture. torchvision cannot be installed here (no dependency on it, no network), and
cnnlab's models compute what torchvision's do (same modules and state_dict, outputs equal:
tests/models/test_every_model.py), so the eager reference is cnnlab's own unfused model, with the same
weights, in the same process. Rounds are interleaved (eager, fused, eager, fused, ...) so that
a change in the machine's load hits both alike; the median of the rounds and the ratio of the
medians are printed with the CPU, its features and the load before and after.

    PYTHONPATH=src python benchmarks/bench_fuse.py [--models resnet18 ...] [--batch 8]
        [--rounds 7] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import cnnlab
from cnnlab.analysis.backends import machine_lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+",
                    default=["resnet18", "resnet50", "mobilenet_v2", "vgg11_bn",
                             "efficientnet_b0", "densenet121"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224, help="input height = width")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print("\n".join(machine_lines()))
    print(f"batch {args.batch} x 3x{args.size}x{args.size}, {args.rounds} interleaved rounds, "
          "median; eager = cnnlab's unfused model (the stand-in for torchvision's eager "
          "forward: same architecture and weights)\n")
    print(f"{'model':<16} {'BN folded':>9} {'kept':>5} {'eager ms':>9} {'fused ms':>9} "
          f"{'fused/eager':>11}")
    for name in args.models:
        torch.manual_seed(0)
        eager = cnnlab.create_model(name).eval()
        fused = cnnlab.fuse(eager)
        rep = fused.fuse_report
        x = torch.randn(args.batch, 3, args.size, args.size)
        times = {"eager": [], "fused": []}
        with torch.inference_mode():
            eager(x), fused(x)  # warm-up
            for _ in range(args.rounds):
                for key, m in (("eager", eager), ("fused", fused)):
                    t = time.perf_counter()
                    m(x)
                    times[key].append(time.perf_counter() - t)
        e, f = (statistics.median(times[k]) * 1e3 for k in ("eager", "fused"))
        print(f"{name:<16} {len(rep.folded):>9} {len(rep.kept):>5} {e:>9.1f} {f:>9.1f} "
              f"{f / e:>11.3f}", flush=True)
    load = os.getloadavg()
    print(f"\nload average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
