"""Training: the trainer, its run folder, epoch loop, callbacks, checkpoints, metrics, plots and
multi-process set-up.

The names below are imported on first use (PEP 562), so that ``cnnlab.training.config`` (the
settings, needed by ``cnnlab train --help``) can be read without importing torch.
"""

from __future__ import annotations

_EXPORTS = {"TrainConfig": "config", "compute_loss": "loop", "evaluate": "loop",
            "train": "trainer"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
