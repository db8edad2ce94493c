"""PNG plots of a run: loss and accuracy curves, the confusion matrix.

The Agg backend is selected here, and only here, so plotting works without a display and
never changes the backend of a program that imports the rest of cnnlab.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def _save(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)


def plot_curves(history: Sequence[dict], run_dir: str | Path) -> list[Path]:
    """``loss.png`` and ``accuracy.png`` (train and validation per epoch)."""
    run_dir = Path(run_dir)
    epochs = [r["epoch"] for r in history]
    out = []
    for key, ylabel, fname in (("loss", "cross-entropy loss", "loss.png"),
                               ("top1", "top-1 accuracy (%)", "accuracy.png")):
        fig, ax = plt.subplots(figsize=(6, 4))
        for split in ("train", "val"):
            ys = [r.get(f"{split}_{key}") for r in history]
            if any(y is not None for y in ys):
                ax.plot(epochs, [float("nan") if y is None else y for y in ys], marker=".",
                        label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
        _save(fig, run_dir / fname)
        out.append(run_dir / fname)
    return out


def plot_confusion(cm: torch.Tensor, classes: Sequence[str], path: str | Path,
                   title: str = "confusion matrix (test)") -> Path:
    path = Path(path)
    n = len(classes)
    size = min(4 + 0.35 * n, 20)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm.numpy(), cmap="Blues")
    if n <= 30:
        ticks = range(n)
        ax.set_xticks(ticks, [c[:12] for c in classes], rotation=90)
        ax.set_yticks(ticks, [c[:12] for c in classes])
        if n <= 15:
            hi = cm.max().item() / 2 if cm.numel() else 0
            for i in range(n):
                for j in range(n):
                    v = int(cm[i, j])
                    ax.text(j, i, str(v), ha="center", va="center",
                            color="white" if v > hi else "black", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    _save(fig, path)
    return path
