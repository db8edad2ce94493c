"""Where one training epoch of the NumPy LeNet-5 spends its time.

Same set-up as ``bench_scratch.py`` (28x28, sigmoid, average pooling, float32, batch 16, the
digits' 1,258 training images, one BLAS thread). Every layer's ``forward`` and ``backward`` is
timed by layer type. The convolutions are split further: their code is replayed step by step
with a timer around each step (``timed_conv_forward``/``timed_conv_backward`` below, a copy
of :class:`cnnlab.scratch.layers.Conv2D`'s methods; the script first checks that the copy
gives the layer's exact outputs and gradients, so it fails when the two drift apart).

The figures are those of the fastest of ``--repeats`` epochs after a warm-up (on a shared
machine, the one least disturbed by other jobs); "elsewhere" is that epoch minus its parts.

    PYTHONPATH=src python benchmarks/profile_scratch.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict

import numpy as np
from threadpoolctl import threadpool_limits

from cnnlab.scratch import SGD, lenet5
from cnnlab.scratch.im2col import col2im, im2col, out_size
from cnnlab.scratch.layers import Conv2D, _check_nchw
from cnnlab.scratch.losses import softmax_cross_entropy
from cnnlab.scratch.train import load_digits_split

CLOCK = time.perf_counter


class Timer:
    def __init__(self):
        self.totals: dict[str, float] = defaultdict(float)
        self.t = CLOCK()

    def lap(self, key: str) -> None:
        now = CLOCK()
        self.totals[key] += now - self.t
        self.t = now


def timed_conv_forward(self: Conv2D, x: np.ndarray, tm: Timer) -> np.ndarray:
    tm.lap("elsewhere")
    _check_nchw(self, x, self.in_channels)
    n, _, h, w = x.shape
    if self.ph or self.pw:
        xp = np.zeros((n, x.shape[1], h + 2 * self.ph, w + 2 * self.pw), dtype=x.dtype)
        xp[:, :, self.ph:self.ph + h, self.pw:self.pw + w] = x
        x = xp
    ho = out_size(x.shape[2], self.kh, self.stride)
    wo = out_size(x.shape[3], self.kw, self.stride)
    tm.lap("conv: padding, flips, bias, layout copies")
    cols = im2col(x, self.kh, self.kw, self.stride)
    tm.lap("conv: im2col")
    w_flip = self.params["W"][:, :, ::-1, ::-1].reshape(self.out_channels, -1)
    tm.lap("conv: padding, flips, bias, layout copies")
    y = w_flip @ cols
    tm.lap("conv: GEMM")
    y += self.params["b"][:, None]
    y = np.ascontiguousarray(y.reshape(self.out_channels, n, ho, wo).transpose(1, 0, 2, 3))
    self.cache = {"cols": cols, "padded_shape": x.shape, "out_shape": y.shape}
    tm.lap("conv: padding, flips, bias, layout copies")
    return y


def timed_conv_backward(self: Conv2D, delta: np.ndarray, tm: Timer) -> np.ndarray | None:
    tm.lap("elsewhere")
    self._check_delta(delta)
    n, o, ho, wo = delta.shape
    cols = self.cache["cols"]
    d2 = delta.transpose(1, 0, 2, 3).reshape(o, -1)
    self.grads["b"] = d2.sum(axis=1)
    tm.lap("conv: padding, flips, bias, layout copies")
    dw_flip = (d2 @ cols.T).reshape(self.params["W"].shape)
    tm.lap("conv: GEMM")
    self.grads["W"] = np.ascontiguousarray(dw_flip[:, :, ::-1, ::-1])
    tm.lap("conv: padding, flips, bias, layout copies")
    if not self.need_input_grad:
        return None
    hp, wp = self.cache["padded_shape"][2:]
    w_flip = self.params["W"][:, :, ::-1, ::-1].reshape(o, -1)
    tm.lap("conv: padding, flips, bias, layout copies")
    dcols = w_flip.T @ d2
    tm.lap("conv: GEMM")
    dxp = col2im(dcols, self.cache["padded_shape"], self.kh, self.kw, self.stride)
    tm.lap("conv: col2im")
    dx = np.ascontiguousarray(dxp[:, :, self.ph:hp - self.ph, self.pw:wp - self.pw])
    tm.lap("conv: padding, flips, bias, layout copies")
    return dx


LABELS = {"AvgPool2D": "pooling (AvgPool2D fwd + bwd)",
          "Sigmoid": "activations (Sigmoid fwd + bwd)",
          "Dense": "dense layers (fwd + bwd, 3 small GEMMs each way)",
          "Flatten": "flatten"}


def instrument(net, tm: Timer) -> None:
    for _, layer in net.layers:
        if isinstance(layer, Conv2D):
            layer.forward = lambda x, _l=layer: timed_conv_forward(_l, x, tm)
            layer.backward = lambda d, _l=layer: timed_conv_backward(_l, d, tm)
            continue
        label = LABELS[type(layer).__name__]
        for method in ("forward", "backward"):
            fn = getattr(layer, method)

            def timed(x, _fn=fn, _label=label):
                tm.lap("elsewhere")
                out = _fn(x)
                tm.lap(_label)
                return out
            setattr(layer, method, timed)


def check_copy_is_exact(x, y) -> None:
    ref, timed = lenet5(28, dtype=np.float32), lenet5(28, dtype=np.float32)
    instrument(timed, Timer())
    for net in (ref, timed):
        net.loss_and_grads(x[:16], y[:16])
    for (name, a), (_, b) in zip(ref.layers, timed.layers, strict=True):
        for key in a.grads:
            if not np.array_equal(a.grads[key], b.grads[key]):
                raise SystemExit(f"the timed copy of Conv2D differs from the layer ({name}.{key}):"
                                 " update timed_conv_forward/backward")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    x, y = load_digits_split(28)["train"]
    order = np.random.default_rng(0).permutation(len(x))
    bs = args.batch_size
    runs = defaultdict(list)
    with threadpool_limits(limits=1):
        check_copy_is_exact(x, y)
        net = lenet5(28, dtype=np.float32)
        opt = SGD(net, lr=0.05, momentum=0.9)
        tm = Timer()
        instrument(net, tm)
        for rep in range(args.repeats + 1):  # the first is a warm-up
            tm.totals.clear()
            t0 = tm.t = CLOCK()
            for i in range(0, len(x), bs):
                idx = order[i:i + bs]
                logits = net.forward(x[idx])
                tm.lap("elsewhere")
                _, d = softmax_cross_entropy(logits, y[idx])
                tm.lap("loss")
                net.backward(d)
                tm.lap("elsewhere")
                opt.step()
                tm.lap("SGD step")
            epoch = CLOCK() - t0
            if rep:
                runs["epoch"].append(epoch)
                for k, v in tm.totals.items():
                    runs[k].append(v)
    epochs = runs.pop("epoch")
    best = epochs.index(min(epochs))           # the least disturbed epoch, all its parts
    epoch = epochs[best]
    parts = {k: v[best] for k, v in runs.items() if k != "elsewhere"}
    parts["elsewhere (the loop, batching, layer calls)"] = epoch - sum(parts.values())
    print(f"LeNet-5 28x28 sigmoid/avg, batch {bs}, float32, 1 BLAS thread, fastest of "
          f"{args.repeats} epochs; load average {os.getloadavg()[0]:.2f}")
    print(f"epoch {epoch:.3f} s (median {statistics.median(epochs):.3f} s)")
    for k, v in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<48} {v:7.3f} s  {100 * v / epoch:5.1f} %")


if __name__ == "__main__":
    main()
