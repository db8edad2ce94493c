"""Metrics: top-k counts, the confusion matrix, and the run folder's metric files."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence

import torch

from ..weights import atomic_write_bytes

# Columns of metrics.jsonl / metrics.csv, in order (missing values are left empty in the CSV).
METRIC_KEYS = ("epoch", "step", "lr", "train_loss", "train_top1", "train_top5", "val_loss",
               "val_top1", "val_top5", "images_per_s", "epoch_time_s", "time_s")


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: Sequence[int] = (1, 5)
                 ) -> list[int]:
    """How many rows have the target among their k highest logits, for each k (capped at C)."""
    maxk = min(max(ks), logits.shape[1])
    top = logits.topk(maxk, dim=1).indices
    hit = top.eq(target.view(-1, 1))
    return [int(hit[:, :min(k, maxk)].any(dim=1).sum()) for k in ks]


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``cm[true, predicted]`` counts (int64)."""
    idx = target.long() * num_classes + pred.long()
    return torch.bincount(idx, minlength=num_classes**2).reshape(num_classes, num_classes)


def per_class_accuracy(cm: torch.Tensor) -> list[float]:
    totals = cm.sum(1).tolist()
    return [100.0 * cm[i, i].item() / t if t else math.nan for i, t in enumerate(totals)]


def write_metrics(run_dir, history: list[dict]) -> None:
    """Rewrite ``metrics.jsonl`` and ``metrics.csv`` from the full history, atomically, so that
    after a crash and a resume they hold each epoch exactly once."""
    lines = "".join(json.dumps(row) + "\n" for row in history)
    atomic_write_bytes(run_dir / "metrics.jsonl", lines.encode())
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(METRIC_KEYS), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: row.get(k, "") if row.get(k) is not None else "" for k in METRIC_KEYS})
    atomic_write_bytes(run_dir / "metrics.csv", buf.getvalue().encode())


def format_table(headers: Sequence[str], rows: Sequence[Sequence], align: str | None = None
                 ) -> str:
    """A plain text table; ``align`` is one of l/r per column (numbers right by default)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" + "r" * (len(headers) - 1)
    out = []
    for j, r in enumerate(cells):
        out.append("  ".join(c.ljust(w) if a == "l" else c.rjust(w)
                             for c, w, a in zip(r, widths, align, strict=True)).rstrip())
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def format_confusion(cm: torch.Tensor, classes: Sequence[str]) -> str:
    """The confusion matrix as text: rows are true classes, columns predicted."""
    names = [c[:10] for c in classes]
    headers = ["true \\ pred"] + names
    rows = [[names[i]] + cm[i].tolist() for i in range(len(names))]
    return format_table(headers, rows)
