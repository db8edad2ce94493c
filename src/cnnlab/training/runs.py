"""Opening a finished (or running) run for evaluation and prediction.

``RUN_OR_CHECKPOINT`` may be a run folder (``model.safetensors`` + ``config.json``), the
``model.safetensors`` inside one, or a ``checkpoint.pt`` (its weights and config are used).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..data import Preprocess
from ..errors import CheckpointError
from ..registry import create_model
from ..weights import CONFIG_FILE, WEIGHTS_FILE, load_run_model
from .checkpoint import load_checkpoint


def open_run(path: str | Path, device: str | torch.device = "cpu"):
    """``(model in eval mode, config, Preprocess)`` of a run folder or checkpoint file."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist; give a run folder (runs/NAME) or its "
                              "checkpoint.pt")
    if path.is_file() and path.suffix == ".safetensors":
        path = path.parent
    if path.is_dir() and not (path / WEIGHTS_FILE).is_file() and (path / "checkpoint.pt").is_file():
        path = path / "checkpoint.pt"
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            raise CheckpointError(f"{path} is not a cnnlab run: it has no {CONFIG_FILE}")
        model, config = load_run_model(path, map_location=device)
    else:
        state = load_checkpoint(path)
        config = state["config"]
        model = create_model(config["model"], **config.get("model_kwargs", {}))
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as err:
            raise CheckpointError(f"{path}: weights do not fit {config['model']}: "
                                  f"{str(err).splitlines()[0][:200]}") from None
        model = model.to(device).eval()
    for key in ("input_size", "classes", "mean", "std"):
        if key not in config:
            raise CheckpointError(f"{path}: its config has no {key!r}; not a training run")
    c, h, w = config["input_size"]
    return model, config, Preprocess(c, (h, w), config["mean"], config["std"])
