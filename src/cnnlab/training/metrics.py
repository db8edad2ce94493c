"""Metrics: top-k counts, the confusion matrix, and the run folder's metric files."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ..weights import atomic_write_bytes

# Columns of metrics.jsonl / metrics.csv, in order (missing values are left empty in the CSV).
METRIC_KEYS = ("epoch", "step", "lr", "train_loss", "train_top1", "train_top5", "val_loss",
               "val_top1", "val_top5", "images_per_s", "epoch_time_s", "time_s")


def target_rank(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """For each row, how many logits are >= the target's (1 = the target alone is highest).

    A tie with the target counts against it, so constant logits are not "correct"; a NaN
    target logit gives 0 (never a hit). The target is among the top k exactly when
    ``1 <= rank <= k``.
    """
    t = logits.gather(1, target.view(-1, 1).long())
    return (logits >= t).sum(1)


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: Sequence[int] = (1, 5)
                 ) -> list[int]:
    """How many rows have the target among their k highest logits, for each k (capped at C).

    Ties with the target count against it (see :func:`target_rank`).
    """
    rank = target_rank(logits, target)
    hit = rank >= 1
    return [int((hit & (rank <= k)).sum()) for k in ks]


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``cm[true, predicted]`` counts (int64)."""
    idx = target.long() * num_classes + pred.long()
    return torch.bincount(idx, minlength=num_classes**2).reshape(num_classes, num_classes)


def per_class_accuracy(cm: torch.Tensor) -> list[float]:
    totals = cm.sum(1).tolist()
    return [100.0 * cm[i, i].item() / t if t else math.nan for i, t in enumerate(totals)]


def _csv_row(row: dict) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(METRIC_KEYS), extrasaction="ignore",
                            lineterminator="\n")
    writer.writerow({k: row.get(k, "") if row.get(k) is not None else "" for k in METRIC_KEYS})
    return buf.getvalue()


class MetricsWriter:
    """``metrics.jsonl`` and ``metrics.csv`` of a run folder.

    :meth:`rewrite` replaces both files atomically (temporary file, fsync, rename) with a whole
    history; the trainer calls it when a run starts or resumes, so the files hold each epoch
    of the checkpoint exactly once. :meth:`append` then adds one epoch per call (one ``write``
    of the whole line on a file opened for appending) instead of rewriting the files every
    epoch; :meth:`sync` fsyncs them (the trainer does at the end of a run, not every epoch: the
    checkpoint, which is fsync'ed, holds the same history, and a resume rewrites the files from
    it, so a line lost or cut short by a crash is restored).
    """

    def __init__(self, run_dir):
        self.jsonl = Path(run_dir) / "metrics.jsonl"
        self.csv = Path(run_dir) / "metrics.csv"

    def rewrite(self, history: list[dict]) -> None:
        atomic_write_bytes(self.jsonl, "".join(json.dumps(r) + "\n" for r in history).encode())
        head = ",".join(METRIC_KEYS) + "\n"
        atomic_write_bytes(self.csv, (head + "".join(_csv_row(r) for r in history)).encode())

    def append(self, row: dict) -> None:
        for path, text in ((self.jsonl, json.dumps(row) + "\n"), (self.csv, _csv_row(row))):
            with open(path, "ab") as f:
                f.write(text.encode())

    def sync(self) -> None:
        for path in (self.jsonl, self.csv):
            if path.exists():
                with open(path, "rb+") as f:
                    os.fsync(f.fileno())


def write_metrics(run_dir, history: list[dict]) -> None:
    """Rewrite ``metrics.jsonl`` and ``metrics.csv`` from the full history, atomically."""
    MetricsWriter(run_dir).rewrite(history)


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


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence], left: int = 1) -> str:
    """The same table in Markdown: the first ``left`` columns left-aligned, the rest right."""
    out = ["| " + " | ".join(str(h) for h in headers) + " |",
           "|" + "|".join(["---"] * left + ["---:"] * (len(headers) - left)) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def format_confusion(cm: torch.Tensor, classes: Sequence[str]) -> str:
    """The confusion matrix as text: rows are true classes, columns predicted."""
    names = [c[:10] for c in classes]
    headers = ["true \\ pred"] + names
    rows = [[names[i]] + cm[i].tolist() for i in range(len(names))]
    return format_table(headers, rows)
