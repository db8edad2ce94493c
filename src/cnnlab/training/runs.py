"""Opening a finished (or running) run for evaluation and prediction (the names kept; the work
is :mod:`cnnlab.resolve`'s, the one opener of every command).

``RUN_OR_CHECKPOINT`` may be a run folder (``model.safetensors`` + ``config.json``), the
``model.safetensors`` inside one, or a ``checkpoint.pt`` (its weights and config are used).
The config is checked against :data:`~cnnlab.training.schema.RUN_CONFIG_SCHEMA` first, so a
hand-edited file gives one line naming the key, not a traceback.
"""

from __future__ import annotations

from ..resolve import open_run, usable_device

__all__ = ["open_run", "usable_device"]
