"""Training: the trainer, checkpoints, metrics, plots and multi-process set-up.

The names are loaded on first use (PEP 562), so that :mod:`cnnlab.training.config` can be
imported without torch.
"""

from __future__ import annotations

import importlib

_LAZY = {"TrainConfig": ".config", "compute_loss": ".trainer", "evaluate": ".trainer",
         "train": ".trainer"}

__all__ = ["TrainConfig", "compute_loss", "evaluate", "train"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
