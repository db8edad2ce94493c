"""One training epoch of LeNet-5: the NumPy engine against PyTorch, same everything.

Same network (28x28 input, padded C1, sigmoid, average pooling, the NumPy weights copied into
the PyTorch model with the kernels rotated), same data (the digits' training split, 1,258
images), same batch size and order, float32, SGD with momentum, the same number of CPU
threads (BLAS threads for NumPy via threadpoolctl, ``torch.set_num_threads`` for PyTorch).
Each epoch is timed ``--repeats`` times after one warm-up epoch; the median is reported.

    PYTHONPATH=src python benchmarks/bench_scratch.py [--batch-size 16] [--threads 1]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

import cnnlab
from cnnlab.scratch import SGD, lenet5
from cnnlab.scratch.train import load_digits_split


def numpy_epoch(net, opt, x, y, order, bs):
    for i in range(0, len(x), bs):
        idx = order[i:i + bs]
        net.loss_and_grads(x[idx], y[idx])
        opt.step()


def torch_epoch(model, opt, x, y, order, bs):
    for i in range(0, len(x), bs):
        idx = order[i:i + bs]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    data = load_digits_split(28)
    x, y = data["train"]
    order = np.random.default_rng(0).permutation(len(x))
    net = lenet5(28, dtype=np.float32)
    model = cnnlab.create_model("lenet5", c1_padding=2)
    state = {}
    for ours, theirs in {"c1": "features.c1", "c3": "features.c3", "c5": "features.c5",
                         "f6": "f6", "output": "output"}.items():
        w = net[ours].params["W"]
        w = np.ascontiguousarray(w[..., ::-1, ::-1]) if w.ndim == 4 else w
        state[f"{theirs}.weight"] = torch.from_numpy(w.copy())
        state[f"{theirs}.bias"] = torch.from_numpy(net[ours].params["b"].copy())
    model.load_state_dict(state)
    model.train()
    np_opt = SGD(net, lr=0.05, momentum=0.9)
    t_opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    xt, yt, ot = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(order)

    torch.set_num_threads(args.threads)
    times = {"numpy": [], "pytorch": []}
    with threadpool_limits(limits=args.threads):
        for rep in range(args.repeats + 1):  # the first is a warm-up
            t0 = time.perf_counter()
            numpy_epoch(net, np_opt, x, y, order, args.batch_size)
            t1 = time.perf_counter()
            torch_epoch(model, t_opt, xt, yt, ot, args.batch_size)
            t2 = time.perf_counter()
            if rep:
                times["numpy"].append(t1 - t0)
                times["pytorch"].append(t2 - t1)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; numpy {np.__version__}, torch "
          f"{torch.__version__}")
    print(f"LeNet-5 28x28 sigmoid/avg, one epoch of {len(x)} images, batch {args.batch_size}, "
          f"float32, {args.threads} thread(s), median of {args.repeats} epochs")
    for k in ("numpy", "pytorch"):
        runs = ", ".join(f"{t:.2f}" for t in times[k])
        print(f"  {k:<8} {med[k]:7.2f} s/epoch   ({runs})")
    print(f"  ratio numpy / pytorch: {med['numpy'] / med['pytorch']:.2f}x")
    pairs = [a / b for a, b in zip(times["numpy"], times["pytorch"], strict=True)]
    print(f"  median of the per-epoch ratios (each pair run back to back): "
          f"{statistics.median(pairs):.2f}x   ({', '.join(f'{r:.2f}' for r in pairs)}); "
          f"load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
