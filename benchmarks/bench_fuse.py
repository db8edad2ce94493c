"""Fused (``cnnlab.fuse``: batch norm folded into the convolution) against eager fp32.

The issue asks for the fused forward time against torchvision's eager forward of the same
architecture. torchvision cannot be installed here (no dependency on it, no network), and
cnnlab's models compute what torchvision's do (same modules and state_dict, outputs equal:
tests/models/test_every_model.py), so the eager reference is cnnlab's own unfused model, with
the same weights, in the same process. Rounds are interleaved (eager, folded, fused, eager,
...) so that a change in the machine's load hits all alike; the median of the rounds and the
ratios of the medians are printed with the CPU, its features and the load before and after.

    PYTHONPATH=src python benchmarks/bench_fuse.py [--models resnet18 ...] [--batch 1,8]
        [--rounds 7] [--threads 1]

Three columns: eager, ``cnnlab.fuse(model, channels_last=False)`` (batch norm folded only) and
``cnnlab.fuse(model)`` (folded, weights channels-last: the default), so that what folding
gains and what the layout gains are read apart.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import cnnlab
from cnnlab.analysis.backends import machine_lines


def torchvision_twin(name: str, model):
    """torchvision's ``name`` holding ``model``'s weights (the state_dicts match key for key:
    tests/models/test_every_model.py), in eval mode."""
    import torchvision  # not a dependency of cnnlab: the machine that runs this has it

    twin = getattr(torchvision.models, name)(weights=None)
    twin.load_state_dict(model.state_dict(), strict=True)
    return twin.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+",
                    default=["resnet18", "resnet50", "mobilenet_v2", "vgg11_bn",
                             "efficientnet_b0", "densenet121"])
    ap.add_argument("--batch", default="8", help="batch sizes, comma-separated")
    ap.add_argument("--size", type=int, default=224, help="input height = width")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reference", choices=("cnnlab", "torchvision"), default="cnnlab",
                    help="the eager model: cnnlab's unfused one, or torchvision's with the same "
                         "weights loaded (strict), where torchvision can be imported")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print("\n".join(machine_lines()))
    print(f"3x{args.size}x{args.size} inputs, {args.rounds} interleaved rounds, median; "
          + ("eager = torchvision's model with the same weights; " if args.reference ==
             "torchvision" else "eager = cnnlab's unfused model (the stand-in for "
             "torchvision's eager forward: same architecture and weights); ")
          + "folded = cnnlab.fuse(model, channels_last=False); "
          "fused = cnnlab.fuse(model), batch norm folded and weights channels-last\n")
    print(f"{'model':<16} {'batch':>5} {'BN folded':>9} {'kept':>5} {'eager ms':>9} "
          f"{'folded ms':>9} {'fused ms':>9} {'folded/eager':>12} {'fused/eager':>11} "
          f"{'fused vs eager':>14}")
    for batch in (int(b) for b in args.batch.split(",")):
        for name in args.models:
            torch.manual_seed(0)
            ours = cnnlab.create_model(name).eval()
            folded = cnnlab.fuse(ours, channels_last=False)
            fused = cnnlab.fuse(ours)
            eager = ours if args.reference == "cnnlab" else torchvision_twin(name, ours)
            rep = fused.fuse_report
            x = torch.randn(batch, 3, args.size, args.size)
            models = {"eager": eager, "folded": folded, "fused": fused}
            times = {k: [] for k in models}
            with torch.inference_mode():
                ref, out = (m(x) for m in (eager, fused))  # also the warm-up
                diff = ((out - ref).norm() / ref.norm()).item()  # relative L2 of the logits
                folded(x)
                for _ in range(args.rounds):
                    for key, m in models.items():
                        t = time.perf_counter()
                        m(x)
                        times[key].append(time.perf_counter() - t)
            e, fo, f = (statistics.median(times[k]) * 1e3 for k in models)
            print(f"{name:<16} {batch:>5} {len(rep.folded):>9} {len(rep.kept):>5} {e:>9.1f} "
                  f"{fo:>9.1f} {f:>9.1f} {fo / e:>12.3f} {f / e:>11.3f} {diff:>14.1e}",
                  flush=True)
    load = os.getloadavg()
    print(f"\nload average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
