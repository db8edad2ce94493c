"""One way to open "a model": :func:`open_source`.

Every command that takes a model (``train --resume/--weights``, ``evaluate``, ``predict``,
``export``, ``explore``, ``visualize``, ``compare --checkpoint``, ``weights inspect``) hands its
``MODEL_OR_RUN`` argument (and ``--weights``) to this module, so the same argument means the
same thing, and the same mistake gives the same one-line error, in each. A spec is one of:

========================  ====================================================================
kind                      what it is
========================  ====================================================================
``name``                  a registered model name: its initial weights, seeded (``--weights
                          FILE`` loads a file into it instead: kind ``weights``)
``run``                   a ``cnnlab train`` run folder (``config.json`` + ``model.safetensors``,
                          or only ``checkpoint.pt`` while it trains)
``safetensors``           a ``.safetensors`` file inside a run folder (that file's weights)
``checkpoint``            a ``checkpoint.pt`` (its weights and its config)
``weights``               a weights file or run folder loaded into a named architecture
                          (torchvision, timm or cnnlab layout; :func:`~cnnlab.create_pretrained`)
``scratch``               a ``cnnlab scratch train --out DIR`` folder (the NumPy LeNet-5, its
                          weights copied into the PyTorch LeNet-5)
========================  ====================================================================

A run's configuration is checked against :data:`~cnnlab.training.schema.RUN_CONFIG_SCHEMA`
once, here, whichever way it is opened. Mistakes raise :class:`~cnnlab.errors.CheckpointError`
(a path) or :class:`~cnnlab.errors.UnknownModelError` (a name), whose text names the spec and
what to give instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CheckpointError, CnnlabError

KINDS = ("name", "run", "safetensors", "checkpoint", "weights", "scratch")
#: each kind in words, for messages ("X is a model name, not ...")
KIND_WORDS = {"name": "model name", "run": "'cnnlab train' run folder",
              "safetensors": "weights file of a 'cnnlab train' run",
              "checkpoint": "training checkpoint", "weights": "weights file",
              "scratch": "'cnnlab scratch train' folder"}
CHECKPOINT_FILE = "checkpoint.pt"
# Suffixes that make a spec a path even when nothing is there (a typo in a file name must not
# be looked up as a model name).
PATH_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".json", ".npz", ".ckpt")
WHAT_TO_GIVE = ("give a run folder (runs/NAME), its model.safetensors or checkpoint.pt, a "
                "'cnnlab scratch train' folder, or a model name (see 'cnnlab list')")


class DeviceError(CnnlabError, ValueError):
    """A ``--device`` this machine does not have, or one that is not a device."""


@dataclass
class Source:
    """What :func:`open_source` opened: the model (eval mode) and what is known about it."""

    kind: str                          # one of KINDS
    spec: str                          # as given
    model: Any                         # torch.nn.Module in eval mode, on the device asked for
    name: str                          # the registered architecture
    model_kwargs: dict = field(default_factory=dict)
    path: Path | None = None           # the run folder or file opened (None for a name)
    config: dict | None = None         # the run's config (validated), a scratch run's, or None
    classes: list[str] | None = None   # class names in index order (None: unknown)
    data_config: Any = None            # cnnlab.data.config.DataConfig, or None
    preprocess: Any = None             # cnnlab.data.Preprocess for a run, or None
    weights: str = "random"            # "random", "trained", or which file / EMA weights
    notes: list[str] = field(default_factory=list)
    scratch: Any = None                # (NumPy net, its config) of a scratch run

    @property
    def trained(self) -> bool:
        return self.kind != "name"

    @property
    def run_dir(self) -> Path | None:
        """The folder of the run or file opened (None for a name)."""
        if self.path is None:
            return None
        return self.path if self.path.is_dir() else self.path.parent

    @property
    def input_size(self) -> tuple[int, int, int]:
        if self.kind == "scratch":
            size = int(self.config["input_size"])
            return 1, size, size
        if self.data_config is not None:
            return tuple(self.data_config.input_size)
        from .registry import get_entry

        c, h, w = get_entry(self.name).input_size
        return getattr(self.model, "in_chans", c), h, w

    def describe(self) -> str:
        """One line: what was opened."""
        if self.kind == "name":
            return f"{self.name}: random weights (not trained)"
        return f"{self.name}: {self.weights} from {self.path}"

    def to_dict(self) -> dict:
        """The JSON-able facts (``--json`` output of the commands)."""
        return {"kind": self.kind, "spec": self.spec, "model": self.name,
                "model_kwargs": self.model_kwargs,
                "path": None if self.path is None else str(self.path),
                "weights": self.weights, "input_size": list(self.input_size),
                "classes": self.classes,
                "data_config": None if self.data_config is None else self.data_config.to_dict()}


# --------------------------------------------------------------------------- devices

def auto_device() -> str:
    """``--device auto``: cuda if available, else mps, else cpu."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def usable_device(device) -> Any:
    """``--device`` (auto, cpu, cuda, cuda:N, mps) as a torch device, or a :class:`DeviceError`
    naming what this machine has."""
    import torch

    if device is None or str(device) == "auto":
        device = auto_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"unknown device {device!r}; use auto, cpu, cuda or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"--device {device} was asked for, but CUDA is not available here "
                          "(no CUDA device); use --device cpu (or auto)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"--device {device} is not available: there are "
                          f"{torch.cuda.device_count()} CUDA devices")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"--device {device} was asked for, but MPS is not available; use "
                          "--device cpu (or auto)")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"device {device!r} is not supported; use auto, cpu, cuda or mps")
    return dev


# --------------------------------------------------------------------------- what a spec is

def looks_like_path(spec: str) -> bool:
    return (os.sep in spec or "/" in spec or "\\" in spec
            or spec.lower().endswith(PATH_SUFFIXES) or spec.startswith("."))


def classify(spec) -> tuple[str, Path | None]:
    """``(kind, path)`` of ``spec`` without loading anything; a path that does not exist, a
    folder that is no run and an unknown name raise the one error for each."""
    from .scratch.runs import CONFIG as SCRATCH_CONFIG
    from .scratch.runs import WEIGHTS as SCRATCH_WEIGHTS
    from .weights import CONFIG_FILE, WEIGHTS_FILE

    text = str(spec)
    path = Path(text).expanduser()
    if not text.strip():
        raise CheckpointError(f"an empty model or run was given; {WHAT_TO_GIVE}")
    if path.is_dir():
        if (path / SCRATCH_WEIGHTS).is_file() or (path / SCRATCH_CONFIG).is_file():
            return "scratch", path
        if (path / CONFIG_FILE).is_file():
            if not (path / WEIGHTS_FILE).is_file() and (path / CHECKPOINT_FILE).is_file():
                return "checkpoint", path / CHECKPOINT_FILE
            return "run", path
        if (path / CHECKPOINT_FILE).is_file():
            return "checkpoint", path / CHECKPOINT_FILE
        if (path / WEIGHTS_FILE).is_file():  # weights without a config: a file to --weights
            return "weights", path / WEIGHTS_FILE
        raise CheckpointError(f"{path} is not a cnnlab run: it has no {CONFIG_FILE}, "
                              f"{WEIGHTS_FILE} or {CHECKPOINT_FILE}; {WHAT_TO_GIVE}")
    if path.exists():
        if path.suffix == ".safetensors" and (path.parent / CONFIG_FILE).is_file():
            return "safetensors", path
        if path.name == CHECKPOINT_FILE or (path.suffix == ".pt"
                                            and (path.parent / CONFIG_FILE).is_file()):
            return "checkpoint", path
        return "weights", path
    if looks_like_path(text):
        raise CheckpointError(f"{text} does not exist, so it is not a cnnlab run or weights "
                              f"file; {WHAT_TO_GIVE}")
    from .registry import get_entry

    get_entry(text)  # an unknown name fails here, with suggestions
    return "name", None


# --------------------------------------------------------------------------- opening

def open_source(spec, weights=None, *, sha256: str | None = None, device="cpu",
                ema: bool = True, in_chans: int | None = None, seed: int | None = 0,
                need_weights: str | None = None,
                log: Callable[[str], None] | None = None) -> Source:
    """Open ``spec`` (see the module doc) and return a :class:`Source`.

    ``weights``: a file or run folder to load into the architecture ``spec`` names
    (``sha256`` checks it, ``in_chans`` adapts its stem). ``device``: auto, cpu, cuda, mps.
    ``ema``: a run trained with ``--ema`` gives its averaged weights. ``seed``: the seed of a
    name's initial weights (None: the global generator as it is). ``need_weights``: the
    command needs trained weights; a bare name is refused, the text says how to give them
    (for example ``"and a labelled folder with --data FOLDER"``; ``""``: nothing more).
    ``log``: where the notes of loading a weights file go (they are also in ``.notes``).
    """
    dev = usable_device(device)
    if weights is not None:
        src = _open_weights(str(spec), weights, sha256, in_chans, log)
    else:
        if sha256:
            raise CheckpointError("--weights-sha256 checks the file given with --weights")
        kind, path = classify(spec)
        if kind == "name":
            if need_weights is not None:
                raise CheckpointError(f"{spec} is a model name: give its weights with --weights "
                                      f"FILE{' ' + need_weights if need_weights else ''} (or "
                                      "give a run folder instead)")
            src = _open_name(str(spec), in_chans, seed)
        elif kind == "scratch":
            src = _open_scratch(path)
        elif kind == "weights" and _is_checkpoint(path):  # a checkpoint copied elsewhere
            src = _open_run(path, "checkpoint", ema)
        elif kind == "weights":
            raise CheckpointError(f"{path} is a weights file, not a cnnlab run: name its "
                                  f"architecture and give the file with --weights {path} "
                                  f"('cnnlab weights inspect {path}' lists the models it fits)")
        else:
            src = _open_run(path, kind, ema)
        src.spec = str(spec)
    src.model = src.model.to(dev).eval()
    return src


def _is_checkpoint(path: Path) -> bool:
    """Whether ``path`` (a file outside a run folder) is a cnnlab training checkpoint."""
    if path.is_dir() or path.suffix == ".safetensors":
        return False
    from .training.checkpoint import load_checkpoint

    try:
        load_checkpoint(path)
    except CheckpointError:
        return False
    return True


def _open_name(name: str, in_chans, seed) -> Source:
    import torch

    from .registry import create_model

    kwargs = {} if in_chans is None else {"in_chans": in_chans}
    if seed is not None:
        torch.manual_seed(seed)
    model = create_model(name, **kwargs)
    return Source("name", name, model, name, kwargs,
                  weights="random" if seed is None else f"random (seed {seed})")


def _build(config: dict, where) -> Any:
    """The model a validated run config describes (its builder arguments checked)."""
    from .registry import create_model

    try:
        return create_model(config["model"], **config.get("model_kwargs", {}))
    except (TypeError, ValueError) as err:  # a builder argument the model does not take
        if isinstance(err, CnnlabError) and not isinstance(err, TypeError):
            raise
        raise CheckpointError(f"{where}: model_kwargs do not fit {config['model']}: "
                              f"{err}") from None


def run_config(path: Path) -> dict:
    """The validated ``config.json`` of the run folder ``path``."""
    from .training.schema import validate_run_config
    from .weights import CONFIG_FILE, read_run_config

    return validate_run_config(read_run_config(path), path / CONFIG_FILE)


def _open_run(path: Path, kind: str, ema: bool) -> Source:
    from .training.ema import EMA_WEIGHTS_FILE
    from .training.schema import check_model_outputs, validate_run_config
    from .weights import WEIGHTS_FILE, load_weights

    weights = "trained"
    if kind in ("run", "safetensors"):
        folder = path if kind == "run" else path.parent
        config = run_config(folder)
        model = _build(config, folder / "config.json")
        file = path if kind == "safetensors" else folder / WEIGHTS_FILE
        if kind == "run" and ema and (folder / EMA_WEIGHTS_FILE).is_file():
            file = folder / EMA_WEIGHTS_FILE
        load_weights(model, file)
        if file.name == EMA_WEIGHTS_FILE:
            weights = f"the EMA weights ({EMA_WEIGHTS_FILE})"
            config = dict(config, weights_used=weights)
    else:
        from .training.checkpoint import load_checkpoint

        state = load_checkpoint(path)
        config = validate_run_config(state["config"], path)
        model = _build(config, path)
        use_ema = ema and isinstance(state.get("ema"), dict)
        if use_ema:
            weights = "the EMA weights of the checkpoint"
            config = dict(config, weights_used=weights)
        try:
            model.load_state_dict(state["ema"] if use_ema else state["model"])
        except RuntimeError as err:
            raise CheckpointError(f"{path}: weights do not fit {config['model']}: "
                                  f"{str(err).splitlines()[0][:200]}") from None
    check_model_outputs(model, config, path)
    dc, pre = _run_transform(config)
    return Source(kind, str(path), model, config["model"], dict(config.get("model_kwargs", {})),
                  path, config, list(config["classes"]), dc, pre, weights)


def _run_transform(config: dict):
    from .data import Preprocess
    from .data.config import from_run_config

    dc = from_run_config(config)
    pad = (config.get("resize") or {}).get("pad_from")  # LeNet-5: 28x28 padded to 32x32
    return dc, Preprocess.from_config(dc, pad_from=pad)


def _open_weights(name: str, weights, sha256, in_chans, log) -> Source:
    from dataclasses import replace

    from .data.config import data_config
    from .data.imagenet import names_for
    from .pretrained import create_pretrained, read_weights
    from .registry import get_entry
    from .training.schema import validate_run_config

    if Path(name).exists() or looks_like_path(name):
        raise CheckpointError(f"--weights loads a file into the architecture a model name "
                              f"gives; {name} is a path: give a model name (see 'cnnlab list') "
                              "with --weights, or the run without --weights")
    get_entry(name)  # an unknown name fails before the file is read
    notes: list[str] = []

    def say(line: str) -> None:
        notes.append(line)
        if log is not None:
            log(line)

    wf = read_weights(weights, sha256)
    cfg = wf.run_config if wf.run_config and wf.run_config.get("model") == name else None
    if cfg is not None:
        cfg = validate_run_config(cfg, wf.path)
    model = create_pretrained(name, wf, in_chans=in_chans, log=say)
    c = getattr(model, "in_chans", in_chans)
    n = getattr(model, "num_classes", 0)
    pre = None
    if cfg is not None:
        dc, pre = _run_transform(cfg)
        classes = list(cfg.get("classes") or [str(i) for i in range(n)])
    else:
        dc = data_config(name)
        if c is not None:
            dc = replace(dc, input_size=(c, *dc.input_size[1:]))
        classes = names_for(n) or [str(i) for i in range(n)]
    return Source("weights", name, model, name, {}, Path(wf.path), cfg, classes, dc, pre,
                  str(weights), notes)


def _open_scratch(path: Path) -> Source:
    """The NumPy LeNet-5's weights in the PyTorch LeNet-5 (kernels rotated by 180 degrees: the
    engine convolves, PyTorch correlates)."""
    import numpy as np
    import torch

    from .registry import create_model
    from .scratch.runs import open_run

    net, cfg = open_run(path, dtype=np.float32)
    size = int(cfg["input_size"])
    kwargs = {"activation": cfg["activation"], "pool": cfg["pool"],
              "c1_padding": 2 if size == 28 else 0}
    model = create_model("lenet5", **kwargs)
    state = {}
    for ours, theirs in (("c1", "features.c1"), ("c3", "features.c3"), ("c5", "features.c5"),
                         ("f6", "f6"), ("output", "output")):
        w = net[ours].params["W"]
        target = model.get_submodule(theirs).weight.shape
        if w.ndim == 4:
            w = w[..., ::-1, ::-1]
        elif w.shape != target:
            w = w.T
        state[f"{theirs}.weight"] = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))
        state[f"{theirs}.bias"] = torch.from_numpy(
            np.ascontiguousarray(net[ours].params["b"], dtype=np.float32).reshape(-1))
    model.load_state_dict(state)
    return Source("scratch", str(path), model, "lenet5", kwargs, path, cfg,
                  [str(i) for i in range(10)], weights="trained (NumPy engine)",
                  scratch=(net, cfg))


def scratch_data_config(src: Source):
    """The DataConfig of a scratch run (``src.kind == "scratch"``): its 1xNxN input and the
    mean/std of the data it was trained on (the NumPy engine normalises with them). Reads that
    data, so it is asked for only by the commands that prepare images."""
    from .data.config import DataConfig
    from .scratch.runs import run_data

    data, size = run_data(src.config), int(src.config["input_size"])
    return DataConfig((1, size, size), None, "bilinear", (float(data["mean"]),),
                      (float(data["std"]),), 10, "cnnlab scratch run (its training data)")


def load_run_model(run_dir, map_location="cpu"):
    """``(model in eval mode, config)`` of a run folder, its raw (not EMA) weights: the
    opener :func:`cnnlab.weights.load_run_model` names."""
    src = open_source(run_dir, device=map_location, ema=False)
    if src.kind == "name":
        raise CheckpointError(f"{run_dir} is a model name, not a cnnlab run; {WHAT_TO_GIVE}")
    return src.model, src.config


def open_run(path, device="cpu", ema: bool = True):
    """``(model in eval mode, config, Preprocess)`` of a run folder, its ``model.safetensors``
    or a checkpoint (what :func:`cnnlab.training.runs.open_run` names)."""
    kind, _ = classify(path)
    if kind in ("name", "scratch"):
        raise CheckpointError(f"{path} is not a cnnlab run; give a run folder (runs/NAME), its "
                              "model.safetensors or its checkpoint.pt")
    src = open_source(path, device=device, ema=ema)
    return src.model, src.config, src.preprocess
