"""Where one training epoch of the NumPy LeNet-5 spends its time.

Same set-up as ``bench_scratch.py`` (28x28, sigmoid, average pooling, float32, batch 16, the
digits' 1,258 training images, one BLAS thread). Every layer's ``forward`` and ``backward`` is
timed by layer type; inside the convolutions, ``im2col``/``col2im`` are timed on their own,
and the matrix products (GEMM) are timed by replaying each product of the epoch, same shapes
and memory layouts, on their own. The rest of a convolution (padding, kernel flip, bias,
transposes to NCHW) is "conv: reshapes". Median of ``--repeats`` epochs after a warm-up.

    PYTHONPATH=src python benchmarks/profile_scratch.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict

import numpy as np
from threadpoolctl import threadpool_limits

from cnnlab.scratch import SGD, layers, lenet5
from cnnlab.scratch.losses import softmax_cross_entropy
from cnnlab.scratch.train import load_digits_split

CLOCK = time.perf_counter


def instrument(net, totals, products):
    """Wrap the layers' methods and the im2col helpers with timers; record GEMM operands."""
    for name in ("im2col", "col2im"):
        fn = getattr(layers, name)

        def timed(*a, _fn=fn, _name=name, **k):
            t = CLOCK()
            out = _fn(*a, **k)
            totals[f"conv: {_name}"] += CLOCK() - t
            return out
        setattr(layers, name, timed)
    real_matmul = np.matmul

    for _, layer in net.layers:
        kind = type(layer).__name__
        for method in ("forward", "backward"):
            fn = getattr(layer, method)

            def timed(x, _fn=fn, _kind=kind):
                t = CLOCK()
                out = _fn(x)
                totals[_kind] += CLOCK() - t
                return out
            setattr(layer, method, timed)
    return real_matmul


def gemm_shapes(net, x):
    """The operand layouts of every matrix product of one step (forward and backward)."""
    shapes = []
    for _, layer in net.layers:
        if isinstance(layer, layers.Conv2D):
            n = x.shape[0]
            c, kh, kw, o = layer.in_channels, layer.kh, layer.kw, layer.out_channels
            hp, wp = x.shape[2] + 2 * layer.ph, x.shape[3] + 2 * layer.pw
            ho, wo = hp - kh + 1, wp - kw + 1
            k, m = c * kh * kw, n * ho * wo
            shapes.append(("conv fwd", (o, k), (k, m)))
            shapes.append(("conv dW", (o, m), (m, k)))
            if layer.need_input_grad:
                shapes.append(("conv dx", (k, o), (o, m)))
        x = layer.forward(x)
        if isinstance(layer, layers.Dense):
            n, i, o = x.shape[0], layer.in_features, layer.out_features
            shapes += [("dense", (n, i), (i, o)), ("dense", (o, n), (n, i)),
                       ("dense", (n, o), (o, i))]
    return shapes


def time_gemms(shapes, steps, repeats=5):
    """Seconds that ``steps`` steps spend in these products (median of ``repeats`` each)."""
    rng = np.random.default_rng(0)
    total = 0.0
    for _, a_shape, b_shape in shapes:
        a = rng.standard_normal(a_shape, dtype=np.float32)
        b = rng.standard_normal(b_shape, dtype=np.float32)
        ts = []
        for _ in range(repeats):
            t = CLOCK()
            a @ b
            ts.append(CLOCK() - t)
        total += statistics.median(ts)
    return total * steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    data = load_digits_split(28)
    x, y = data["train"]
    order = np.random.default_rng(0).permutation(len(x))
    bs = args.batch_size
    with threadpool_limits(limits=1):
        net = lenet5(28, dtype=np.float32)
        steps = -(-len(x) // bs)
        shapes = gemm_shapes(lenet5(28, dtype=np.float32), x[:bs])
        conv_shapes = [s for s in shapes if s[0] != "dense"]
        dense_shapes = [s for s in shapes if s[0] == "dense"]
        runs = defaultdict(list)
        opt = SGD(net, lr=0.05, momentum=0.9)
        totals = defaultdict(float)
        instrument(net, totals, shapes)
        for rep in range(args.repeats + 1):  # the first is a warm-up
            totals.clear()
            t0 = CLOCK()
            for i in range(0, len(x), bs):
                idx = order[i:i + bs]
                logits = net.forward(x[idx])
                t = CLOCK()
                _, d = softmax_cross_entropy(logits, y[idx])
                totals["loss"] += CLOCK() - t
                net.backward(d)
                t = CLOCK()
                opt.step()
                totals["SGD step"] += CLOCK() - t
            epoch = CLOCK() - t0
            # the products of the epoch, replayed right after it (same load)
            totals["gemm conv"] = time_gemms(conv_shapes, steps)
            totals["gemm dense"] = time_gemms(dense_shapes, steps)
            if rep:
                runs["epoch"].append(epoch)
                for k, v in totals.items():
                    runs[k].append(v)
    med = {k: statistics.median(v) for k, v in runs.items()}
    epoch = med.pop("epoch")
    conv, dense = med.pop("Conv2D"), med.pop("Dense")
    im2col, col2im = med.pop("conv: im2col"), med.pop("conv: col2im")
    conv_gemm, dense_gemm = med.pop("gemm conv"), med.pop("gemm dense")
    parts = {
        "GEMM of the convolutions (replayed)": conv_gemm,
        "im2col": im2col,
        "col2im": col2im,
        "conv: padding, flip, bias, NCHW transposes": conv - im2col - col2im - conv_gemm,
        "dense layers (3 small GEMMs + bias)": dense,
        "pooling (AvgPool2D fwd + bwd)": med.pop("AvgPool2D"),
        "activations (Sigmoid fwd + bwd)": med.pop("Sigmoid"),
    }
    parts.update(med)  # loss, SGD step, Flatten
    parts["elsewhere (loop, batching, timers)"] = epoch - sum(parts.values())
    print(f"replayed dense GEMMs alone: {dense_gemm:.3f} s (part of the dense layers' line)")
    print(f"LeNet-5 28x28 sigmoid/avg, batch {bs}, float32, 1 BLAS thread, median of "
          f"{args.repeats} epochs; load average {os.getloadavg()[0]:.2f}")
    print(f"epoch {epoch:.3f} s")
    for k, v in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<46} {v:7.3f} s  {100 * v / epoch:5.1f} %")


if __name__ == "__main__":
    main()
