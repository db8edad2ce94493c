"""Resumable checkpoints: one file, tensors and primitives only, written atomically.

``checkpoint.pt`` in the run folder is a ``torch.save`` of a dict that holds nothing but
tensors, numbers, strings, lists and dicts, so it loads with ``torch.load(weights_only=True)``
(no arbitrary pickle). It contains::

    format: "cnnlab-checkpoint", version: 1
    config: the run's config.json as a JSON string
    model, optimizer, scheduler, scaler: state dicts
    epoch: epochs completed; batch: batches done in the current epoch (0 at an epoch's end)
    step: optimizer steps so far
    running: sums of the epoch in progress (loss, correct top-1/top-5, images)
    history: the metrics of every completed epoch; best: early-stopping state
    rng: torch (CPU and CUDA), NumPy and Python random states

A file that is not a cnnlab checkpoint, or one damaged on disk, raises
:class:`~cnnlab.errors.CheckpointError`; nothing falls back to a fresh start.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError
from ..weights import atomic_write

FORMAT, VERSION = "cnnlab-checkpoint", 1
CHECKPOINT_FILE = "checkpoint.pt"


def rng_state() -> dict:
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": {"name": str(np_state[0]), "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "cached": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write ``state`` (plus the format marker) to ``path`` atomically."""
    with atomic_write(path) as f:  # streamed: the file is never built in memory
        torch.save({"format": FORMAT, "version": VERSION, **state}, f)


REQUIRED = ("config", "model", "optimizer", "epoch", "batch", "step", "rng")


def load_checkpoint(path: str | Path) -> dict:
    """Load and validate a checkpoint with ``weights_only=True``."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; nothing to resume")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for damaged files
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupt, truncated or "
                              f"not made by cnnlab): {first}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a cnnlab checkpoint (no '{FORMAT}' marker)")
    if state.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {state.get('version')!r}; "
                              f"this cnnlab reads version {VERSION}")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"{path} is incomplete: missing {', '.join(missing)}")
    try:
        state["config"] = json.loads(state["config"])
    except (TypeError, json.JSONDecodeError):
        raise CheckpointError(f"{path} has an unreadable config") from None
    return state
