"""The run folder: where a run lives on disk, who may write it, and what is in it.

:class:`RunFolder` owns ``runs/<name>/``::

    config.json          the run's settings (schema: training.schema), written atomically
    checkpoint.pt        everything --resume needs (training.checkpoint), streamed atomically
    model.safetensors    the weights, streamed atomically (fsync'ed at the end of the run)
    metrics.jsonl/.csv   one row per epoch, appended (rewritten atomically from the checkpoint's
                         history when a run starts or resumes; fsync'ed at the end)
    results.json         the final results, atomically
    loss.png, accuracy.png, confusion.png
    .lock, .lock.owner   the writer's lock (filelock) and who holds it (PID, host, command)

Only one process may write a run folder at a time: :meth:`RunFolder.lock` takes an exclusive
``filelock`` lock for the whole run (including ``--resume``). The lock is an OS file lock, so a
process that dies (even by SIGKILL) releases it; a later run is never blocked by a stale one.
A second writer gets :class:`RunLockedError` naming the run and the PID that holds it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

from ..errors import CnnlabError, user_files
from ..weights import CONFIG_FILE, WEIGHTS_FILE, atomic_write_bytes, save_weights
from . import checkpoint as ckpt
from .metrics import MetricsWriter

LOCK_FILE = ".lock"
OWNER_FILE = ".lock.owner"
RESULTS_FILE = "results.json"
# Files a run folder may hold before its first epoch without counting as "already used".
BOOKKEEPING = (LOCK_FILE, OWNER_FILE)


class RunLockedError(CnnlabError, RuntimeError):
    """Another process is writing this run folder."""


class RunsDirError(CnnlabError, ValueError):
    """``--runs-dir`` is not a folder."""


class RunFolder:
    """One run's folder. ``writer=False`` (ranks other than 0) makes every write a no-op."""

    def __init__(self, path: str | os.PathLike, writer: bool = True):
        self.path = Path(path)
        self.writer = writer
        self.metrics = MetricsWriter(self.path)
        self._lock = None
        self.last_saved: tuple[int, int] | None = None   # (epoch, batch) of the checkpoint

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # ------------------------------------------------------------------ lock
    def lock(self) -> RunFolder:
        """Take the run's exclusive lock (non-blocking), creating the folder if needed."""
        if not self.writer or self._lock is not None:
            return self
        from filelock import FileLock, Timeout

        check_runs_dir(self.path.parent)
        with user_files():  # no permission, a link loop: the user's to fix
            self.path.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.path / LOCK_FILE), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise RunLockedError(f"run {self.path} is being written by another process "
                                 f"({self.owner()}); wait for it to end or use another "
                                 "--name") from None
        self._lock = lock
        owner = {"pid": os.getpid(), "host": socket.gethostname(),
                 "command": " ".join(sys.argv)}
        atomic_write_bytes(self.path / OWNER_FILE, json.dumps(owner).encode())
        return self

    def owner(self) -> str:
        """Who holds the lock, as the owner file says: ``PID 123 on host``."""
        try:
            o = json.loads((self.path / OWNER_FILE).read_text())
            return f"PID {o['pid']} on {o['host']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "PID unknown"

    def unlock(self) -> None:
        if self._lock is not None:
            (self.path / OWNER_FILE).unlink(missing_ok=True)
            self._lock.release()
            self._lock = None

    def __enter__(self) -> RunFolder:
        return self.lock()

    def __exit__(self, *exc) -> None:
        self.unlock()

    # ------------------------------------------------------------------ contents
    def is_used(self) -> bool:
        """Does the folder hold anything but the lock files?"""
        return self.path.is_dir() and any(p.name not in BOOKKEEPING
                                           for p in self.path.iterdir())

    @property
    def checkpoint_path(self) -> Path:
        return self.path / ckpt.CHECKPOINT_FILE

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.is_file()

    def write_config(self, config: dict) -> None:
        if self.writer:
            atomic_write_bytes(self.path / CONFIG_FILE, json.dumps(config, indent=2).encode())

    def save_checkpoint(self, state: dict) -> None:
        if self.writer:
            ckpt.save_checkpoint(self.checkpoint_path, state)
        self.last_saved = (state["epoch"], state["batch"])

    def save_weights(self, model, durable: bool = True) -> None:
        """``model.safetensors``, atomically. The trainer writes it after every epoch with
        ``durable=False`` (no fsync: the fsync'ed checkpoint holds the same weights) and at
        the end with an fsync."""
        if self.writer:
            save_weights(model, self.path / WEIGHTS_FILE, durable=durable)

    def write_results(self, results: dict) -> None:
        """``results.json`` (atomically), after an fsync of the metric files."""
        if self.writer:
            self.metrics.sync()
            atomic_write_bytes(self.path / RESULTS_FILE, json.dumps(results, indent=2).encode())

    def reset_metrics(self, history: list[dict]) -> None:
        """Make the metric files hold exactly ``history`` (atomically): a run that was killed
        after appending an epoch but before checkpointing it does not count it twice."""
        if self.writer:
            self.metrics.rewrite(history)

    def append_metrics(self, row: dict) -> None:
        if self.writer:
            self.metrics.append(row)

    def write_plots(self, history: list[dict], confusion, classes) -> None:
        if self.writer and history:
            from .plots import plot_confusion, plot_curves

            plot_curves(history, self.path)
            plot_confusion(confusion, classes, self.path / "confusion.png")


def check_runs_dir(runs: Path) -> None:
    """``--runs-dir`` must be a folder (or not exist yet); one line otherwise."""
    for p in (runs, *runs.parents):
        if p.exists():
            if not p.is_dir():
                raise RunsDirError(f"--runs-dir {runs}: {p} is a file, not a folder; give a "
                                   "folder for the runs")
            return
