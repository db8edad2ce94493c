"""Opening a finished (or running) run for evaluation and prediction.

``RUN_OR_CHECKPOINT`` may be a run folder (``model.safetensors`` + ``config.json``), the
``model.safetensors`` inside one, or a ``checkpoint.pt`` (its weights and config are used).
The config is checked against :data:`~cnnlab.training.schema.RUN_CONFIG_SCHEMA` first, so a
hand-edited file gives one line naming the key, not a traceback.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..data import Preprocess
from ..data.config import from_run_config
from ..errors import CheckpointError, UsageError
from ..registry import create_model
from ..weights import CONFIG_FILE, WEIGHTS_FILE, load_run_model, load_weights, read_run_config
from .checkpoint import load_checkpoint
from .ema import EMA_WEIGHTS_FILE
from .schema import check_model_outputs, validate_run_config


def usable_device(device: str | torch.device) -> torch.device:
    """``--device`` as a torch device, or a ValueError naming what this machine has."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UsageError(f"unknown device {device!r}; use cpu, cuda or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device} was asked for, but no CUDA device is available; "
                         "use --device cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {device} was asked for, but MPS is not available")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"device {device!r} is not supported; use cpu, cuda or mps")
    return dev


def open_run(path: str | Path, device: str | torch.device = "cpu", ema: bool = True):
    """``(model in eval mode, config, Preprocess)`` of a run folder or checkpoint file.

    ``ema``: a run trained with ``--ema`` gives its averaged weights (``model_ema.safetensors``,
    or the checkpoint's ``ema``); ``config["weights_used"]`` then says so (absent otherwise).
    A weights file named in ``path`` is the one used (``model.safetensors``: the raw ones)."""
    device = usable_device(device)
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist; give a run folder (runs/NAME) or its "
                              "checkpoint.pt")
    if path.is_file() and path.suffix == ".safetensors":
        ema = path.name == EMA_WEIGHTS_FILE  # the file named is the one used
        path = path.parent
    if path.is_dir() and not (path / WEIGHTS_FILE).is_file() and (path / "checkpoint.pt").is_file():
        path = path / "checkpoint.pt"
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            raise CheckpointError(f"{path} is not a cnnlab run: it has no {CONFIG_FILE}")
        config = validate_run_config(read_run_config(path), path / CONFIG_FILE)
        try:
            model, config = load_run_model(path, map_location=device)
        except TypeError as err:  # a builder argument the model does not take
            raise CheckpointError(f"{path / CONFIG_FILE}: model_kwargs do not fit "
                                  f"{config['model']}: {err}") from None
        if ema and (path / EMA_WEIGHTS_FILE).is_file():
            load_weights(model, path / EMA_WEIGHTS_FILE)
            config = dict(config, weights_used=f"the EMA weights ({EMA_WEIGHTS_FILE})")
    else:
        state = load_checkpoint(path)
        config = validate_run_config(state["config"], path)
        try:
            model = create_model(config["model"], **config.get("model_kwargs", {}))
        except TypeError as err:
            raise CheckpointError(f"{path}: model_kwargs do not fit {config['model']}: "
                                  f"{err}") from None
        use_ema = ema and isinstance(state.get("ema"), dict)
        if use_ema:
            config = dict(config, weights_used="the EMA weights of the checkpoint")
        try:
            model.load_state_dict(state["ema"] if use_ema else state["model"])
        except RuntimeError as err:
            raise CheckpointError(f"{path}: weights do not fit {config['model']}: "
                                  f"{str(err).splitlines()[0][:200]}") from None
        model = model.to(device).eval()
    check_model_outputs(model, config, path)
    pad = (config.get("resize") or {}).get("pad_from")  # LeNet-5: 28x28 padded to 32x32
    return model, config, Preprocess.from_config(from_run_config(config), pad_from=pad)
