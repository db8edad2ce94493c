"""Train the NumPy LeNet-5 on scikit-learn's bundled handwritten digits.

The data (:func:`load_digits_split`) are the same split as ``cnnlab train``'s (the shared
``cnnlab.data`` loader: 1,797 images of 8x8, fixed seeded split into 1,258 train / 180
validation / 359 test images), taken out as NumPy arrays, resized to 28x28 or 32x32 with the
bilinear :func:`resize_bilinear` below and normalised with the training set's mean and
standard deviation. Both LeNet-5s are therefore scored on the same test images.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputShapeError, TrainingDivergedError, UsageError
from .losses import softmax_cross_entropy
from .model import Sequential, lenet5
from .optim import SGD

# An epoch whose mean training loss is more than this many times the loss of guessing
# (ln of the number of classes) has diverged: training stops.
DIVERGED = 10


def resize_bilinear(images: np.ndarray, size: int) -> np.ndarray:
    """Resize (N, H, W) to (N, size, size) by bilinear interpolation, pixel centres aligned
    as in PIL / ``torch.nn.functional.interpolate(align_corners=False)`` (no antialiasing):
    output pixel ``i`` samples the input at ``(i + 0.5) * H / size - 0.5``, clamped."""
    if images.ndim != 3:
        raise InputShapeError(f"expected images (N, H, W), got shape {images.shape}")

    def axis(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(size) + 0.5) * n_in / size - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, pos - lo

    r0, r1, fr = axis(images.shape[1])
    c0, c1, fc = axis(images.shape[2])
    rows = images[:, r0, :] * (1 - fr)[:, None] + images[:, r1, :] * fr[:, None]
    return rows[:, :, c0] * (1 - fc) + rows[:, :, c1] * fc


def load_digits_split(size: int = 28, dtype=np.float32):
    """``{"train": (x, y), "val": (x, y), "test": (x, y)}`` with x of shape (N, 1, size, size).

    The split is ``cnnlab.data``'s fixed digits split (the one ``cnnlab train`` uses)."""
    from .digits import load_digits_arrays  # the same split, without torch

    split = load_digits_arrays()
    xs = {k: resize_bilinear(x, size) for k, (x, _) in split.items()}
    mean, std = xs["train"].mean(), xs["train"].std()
    out = {k: (((xs[k] - mean) / std)[:, None].astype(dtype), split[k][1]) for k in split}
    out["mean"], out["std"] = float(mean), float(std)
    return out


def evaluate(net: Sequential, x: np.ndarray, y: np.ndarray, batch_size: int = 256):
    """(mean loss, accuracy) over a whole set."""
    total, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        logits = net.forward(x[i:i + batch_size])
        loss, _ = softmax_cross_entropy(logits, y[i:i + batch_size])
        total += loss * len(logits)
        correct += int((logits.argmax(1) == y[i:i + batch_size]).sum())
    return total / len(x), correct / len(x)


@dataclass
class TrainConfig:
    input_size: int = 28
    epochs: int = 15
    batch_size: int = 16
    lr: float = 0.05
    momentum: float = 0.9
    decay: float = 0.95
    seed: int = 0
    activation: str = "sigmoid"
    pool: str = "avg"
    threads: int = 1  # BLAS threads; 1 is the fastest on a busy machine


@dataclass
class History:
    epochs: list[dict] = field(default_factory=list)
    test_loss: float = float("nan")
    test_acc: float = float("nan")
    seconds: float = 0.0


def train(cfg: TrainConfig, data=None, progress: bool = True, log=print):
    """Train LeNet-5 with SGD + momentum and per-epoch decay; returns ``(net, history)``.

    A learning rate that is not a positive finite number, a loss that becomes NaN or infinite,
    or an epoch whose mean loss exceeds :data:`DIVERGED` times the loss of guessing stops
    training with :class:`~cnnlab.errors.TrainingDivergedError`.

    Mini-batches are reshuffled every epoch with a generator seeded by ``cfg.seed``; the
    network is float32. ``log`` receives one line per epoch. The BLAS library runs with
    ``cfg.threads`` threads (threadpoolctl) during training."""
    from threadpoolctl import threadpool_limits

    if cfg.threads < 1:
        raise UsageError(f"threads must be >= 1, got {cfg.threads}")
    if not 0 <= cfg.seed < 2**63:  # NumPy's generators take non-negative seeds
        raise UsageError(f"--seed must be an integer from 0 to 2**63 - 1, got {cfg.seed}")
    if not math.isfinite(cfg.lr) or cfg.lr <= 0:
        raise TrainingDivergedError(f"the learning rate must be a positive finite number, got "
                                    f"{cfg.lr}; try --lr 0.05")
    # overflow in exp/matmul is caught below as a non-finite loss, with one clear message
    with threadpool_limits(limits=cfg.threads), np.errstate(over="ignore", invalid="ignore"):
        return _train(cfg, data, progress, log)


def _train(cfg: TrainConfig, data, progress: bool, log):
    from tqdm import tqdm

    data = data if data is not None else load_digits_split(cfg.input_size)
    xtr, ytr = data["train"]
    net = lenet5(cfg.input_size, activation=cfg.activation, pool=cfg.pool, seed=cfg.seed,
                 dtype=np.float32)
    opt = SGD(net, lr=cfg.lr, momentum=cfg.momentum, decay=cfg.decay)
    rng = np.random.default_rng(cfg.seed + 1)
    hist = History()
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        lr = opt.set_epoch(epoch)
        order = rng.permutation(len(xtr))
        batches = range(0, len(xtr), cfg.batch_size)
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                   disable=not progress, unit="batch")
        run_loss, run_correct = 0.0, 0
        for i in bar:
            idx = order[i:i + cfg.batch_size]
            loss, logits = net.loss_and_grads(xtr[idx], ytr[idx])
            if not math.isfinite(loss):
                raise TrainingDivergedError(
                    f"the loss became {loss} at epoch {epoch + 1}, batch "
                    f"{i // cfg.batch_size + 1}; lower the learning rate (--lr, now {cfg.lr})")
            opt.step()
            run_loss += loss * len(idx)
            run_correct += int((logits.argmax(1) == ytr[idx]).sum())
            bar.set_postfix(loss=f"{loss:.3f}")
        chance = math.log(logits.shape[1])
        if run_loss / len(xtr) > DIVERGED * chance:
            raise TrainingDivergedError(
                f"training diverged: the mean loss of epoch {epoch + 1} is "
                f"{run_loss / len(xtr):.4g}, more than {DIVERGED} times the loss of guessing "
                f"(ln {logits.shape[1]} = {chance:.2f}); lower the learning rate (--lr, now "
                f"{cfg.lr})")
        val_loss, val_acc = evaluate(net, *data["val"])
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": run_loss / len(xtr),
               "train_acc": run_correct / len(xtr), "val_loss": val_loss, "val_acc": val_acc,
               "seconds": time.perf_counter() - start}
        hist.epochs.append(row)
        log(f"epoch {row['epoch']:3d}  lr {lr:.4f}  train loss {row['train_loss']:.4f} "
            f"acc {100 * row['train_acc']:.2f} %  val loss {val_loss:.4f} "
            f"acc {100 * val_acc:.2f} %  "
            f"{row['seconds']:.1f}s")
    hist.seconds = time.perf_counter() - start
    hist.test_loss, hist.test_acc = evaluate(net, *data["test"])
    return net, hist
