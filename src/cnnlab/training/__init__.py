"""Training: the trainer, its run folder, epoch loop, callbacks, checkpoints, metrics, plots and
multi-process set-up.

The names below are imported on first use (PEP 562), so that ``cnnlab.training.config`` (the
settings, needed by ``cnnlab train --help``) can be read without importing torch.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {"TrainConfig": ".config", "compute_loss": ".loop", "evaluate": ".loop",
            "train": ".trainer"}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
