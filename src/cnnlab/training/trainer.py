"""One trainer for every registered model.

:func:`train` takes a :class:`TrainConfig` and does the whole job: load the data, build the
model at the input size its registry entry gives (or ``input_size``), convert channels and
resize through :class:`~cnnlab.data.transforms.Preprocess`, train with the chosen optimizer and
schedule, evaluate on the validation split every epoch and on the test split at the end, and
keep the run folder up to date (see :mod:`cnnlab.training.run`)::

    runs/<name>/config.json         model, model_kwargs, input_size, classes, mean, std, ...
    runs/<name>/model.safetensors   the weights (after every epoch; the final ones at the end)
    runs/<name>/checkpoint.pt       everything --resume needs (see training.checkpoint)
    runs/<name>/metrics.jsonl       one JSON object per epoch; metrics.csv the same
    runs/<name>/results.json        test_top1, test_top5, test_loss, ...
    runs/<name>/loss.png, accuracy.png, confusion.png

The parts: :mod:`~cnnlab.training.config` (the settings), :mod:`~cnnlab.training.run` (the
run folder and its lock), :mod:`~cnnlab.training.loop` (one step, one epoch, evaluation),
:mod:`~cnnlab.training.callbacks` (progress, metrics, early stopping, checkpoints). This module
sets them up (:func:`prepare_model_and_data`, :class:`Trainer`) and runs them.

Everything that can be wrong with the input (data path, format, batch size, a model that
cannot take the data) is checked before the run folder is created.

Determinism: the model is initialised from ``seed``; each epoch's order comes from a
``DistributedSampler`` seeded with (seed, epoch); augmentation from (seed, epoch, index); the
global RNG feeds only the model (dropout, stochastic depth), and its state is checkpointed. Two
CPU runs with the same seed and thread count give the same metrics, and a run interrupted at
any step and resumed gives the same metrics as one that was not.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..data import Augment, DataSplits, Prepared, Preprocess, load_data
from ..data.config import DataConfig, photo_transform
from ..data.folder import UnreadableFilesError
from ..errors import CheckpointError, CnnlabError, DataError, InputShapeError, UsageError
from ..memory import check_training_fits
from ..models.base import main_logits
from ..registry import create_model, get_entry
from ..weights import save_weights
from . import checkpoint as ckpt
from .callbacks import Checkpointing, EarlyStopping, MetricsLogger, ProgressBar, StepDelay
from .config import (
    AMP_MODES,
    AUGMENTS,
    NAMED_DATA,
    OPTIMIZERS,
    PHOTO_RECIPES,
    RESUME_SAFE,
    SCHEDULES,
    TrainConfig,
    absolute_data,
    choose_threads,
    choose_workers,
    usable_cores,
)
from .distributed import (
    DistInfo,
    barrier,
    broadcast_object,
    cleanup,
    gather_objects,
    init_distributed,
)
from .ema import EMA_WEIGHTS_FILE, ModelEma
from .finetune import start_from_weights
from .loop import (
    DivergedError,
    EpochSums,
    Learner,
    TrainState,
    autocast_for,
    compute_loss,
    epoch_batches,
    evaluate,
    lr_factor,
    make_optimizer,
    param_groups,
    set_train_mode,
    train_one_epoch,
)
from .metrics import format_table
from .run import RunFolder, RunLockedError, check_runs_dir
from .schema import validate_run_config


class ResumeOptionsError(CnnlabError, ValueError):
    """Options given with --resume that differ from the run's and may not change."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; says which run was interrupted and whether it can resume."""

    def __init__(self, run_dir: Path, model: str, resumable: bool):
        super().__init__(str(run_dir))
        self.run_dir, self.model, self.resumable = run_dir, model, resumable


# --------------------------------------------------------------------------- set-up helpers

def pick_device(name: str, info: DistInfo) -> torch.device:
    if name == "auto":
        from ..resolve import auto_device

        name = auto_device()  # cuda, else mps, else cpu
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError("--device cuda was asked for, but no CUDA device is available")
        return torch.device("cuda", info.local_rank if info.enabled else
                            torch.device(name).index or 0)
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise UsageError("--device mps was asked for, but MPS is not available")
        return torch.device("mps")
    if name != "cpu":
        raise UsageError(f"unknown device {name!r}; use auto, cpu, cuda or mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def recipe_name(cfg: TrainConfig, data: DataSplits) -> str | None:
    """The photo recipe of a run (``rrc``, ``trivial``, ``randaugment``), or None: the
    ``auto`` augmentation of a colour image folder is ``rrc``."""
    if cfg.augment in PHOTO_RECIPES:
        return cfg.augment
    if cfg.augment == "auto" and data.name == "folder" and data.channels == 3:
        return "rrc"
    return None


def photo_recipe_for(cfg: TrainConfig, data: DataSplits, pre: Preprocess):
    """The :class:`~cnnlab.data.augment.PhotoRecipe` of a run, or None (CIFAR-style Augment)."""
    from ..data.augment import CROP_RATIO, CROP_SCALE, PhotoRecipe

    name = recipe_name(cfg, data)
    if name is None:
        return None
    return PhotoRecipe(name, pre.channels, pre.size, pre.mean, pre.std,
                       scale=cfg.crop_scale or CROP_SCALE, ratio=cfg.crop_ratio or CROP_RATIO,
                       hflip=cfg.augment != "auto" or data.hflip, erase=cfg.random_erase,
                       num_ops=cfg.randaugment_ops, magnitude=cfg.randaugment_magnitude)


def _keep_pre_recipe_auto(cfg: TrainConfig, saved: dict) -> TrainConfig:
    """A run started before the photo recipes with ``--augment auto`` keeps what auto meant
    then (a colour folder: flip only, not ``rrc``) when it is resumed."""
    aug, data, resize = (saved.get(k) or {} for k in ("augment", "data", "resize"))
    colour_folder = data.get("format") == "folder" and (resize.get("from") or [0])[0] == 3
    if cfg.augment != "auto" or not colour_folder or "recipe" in aug:
        return cfg
    return dataclasses.replace(cfg, augment="flip" if aug.get("hflip") else "none")


def mix_for(cfg: TrainConfig, data: DataSplits):
    """The batch mixing of a run (:class:`~cnnlab.data.augment.MixCut`), or None."""
    if not (cfg.mixup or cfg.cutmix):
        return None
    from ..data.augment import MixCut

    return MixCut(cfg.mixup, cfg.cutmix, data.num_classes)


def augment_for(cfg: TrainConfig, data: DataSplits, pre: Preprocess) -> Augment:
    if cfg.augment == "auto":
        crop, flip = data.crop_padding, data.hflip
    elif cfg.augment == "distort":  # LeCun et al. 1998's random planar affine distortions
        crop, flip = 0, False
    else:
        crop = 4 if "crop" in cfg.augment else 0
        flip = "flip" in cfg.augment
    # Scale the padding with the resize (4 px of a 32 px CIFAR image is 12.5 % of it).
    if crop and data.image_size:
        crop = max(1, round(crop * pre.size[0] / data.image_size[0]))
    fill = [-m / s for m, s in zip(pre.mean, pre.std, strict=True)]  # black, after normalisation
    return Augment(crop_padding=crop, hflip=flip, fill=fill, distort=cfg.augment == "distort")


@dataclass
class RunData:
    """The data of a run, prepared for its model."""

    data: DataSplits
    preprocess: Preprocess
    train: Prepared
    val: Prepared | None
    test: Prepared
    weights: dict | None = None      # config.json's "weights" record (--weights)
    notes: list[str] = field(default_factory=list)


def prepare_model_and_data(cfg: TrainConfig, data: DataSplits | None = None,
                           fresh: bool = True):
    """Load the data, build the model, check they fit. Raises before anything is written.

    ``fresh``: a new run, which loads ``cfg.weights``; a resumed one takes the checkpoint's.
    """
    entry = get_entry(cfg.model)
    if data is None:
        try:
            data = load_data(cfg.data, cfg.data_format, skip_bad=cfg.skip_bad)
        except UnreadableFilesError as err:
            if fresh:
                raise
            raise DataError(f"{err.listing}; fix or remove them, then resume (the run read "
                            "every file when it started: --skip-bad now would change its data)"
                            ) from None
    c, h, w = cfg.input_size or entry.input_size
    kwargs = {"num_classes": data.num_classes, "in_chans": c, **cfg.model_kwargs}
    check_training_fits(cfg.model, kwargs, (c, h, w), cfg.batch_size, cfg.optimizer)
    seed_everything(cfg.seed)
    model = create_model(cfg.model, **kwargs)
    in_chans = getattr(model, "in_chans", c)
    if in_chans != c:
        c = in_chans
    min_hw = getattr(model, "min_input_size", (1, 1))
    if h < min_hw[0] or w < min_hw[1]:
        raise InputShapeError(f"{cfg.model} needs inputs of at least {min_hw[0]}x{min_hw[1]}, "
                              f"--input-size gives {h}x{w}; use a larger --input-size")
    fin = start_from_weights(cfg, model, c, (data.mean, data.std), load=fresh)
    if fresh and fin["record"] is not None:  # a resume uses the normalisation decided here
        cfg.mean, cfg.std = list(fin["mean"]), list(fin["std"])
    pre = Preprocess(c, (h, w), fin["mean"], fin["std"], pad_from=pad_from(model, data, (h, w)),
                     **photo_transform(cfg.model, data, (h, w)))  # photos: resize, centre crop
    try:
        x = pre(data.train[0][0]).unsqueeze(0).repeat(2, 1, 1, 1)
    except ValueError as err:
        raise DataError(f"{data.source or data.name} cannot be fed to {cfg.model}: {err}"
                        ) from None
    set_train_mode(model, False)
    try:
        with torch.no_grad():
            out = main_logits(model(x))
    except InputShapeError:
        raise
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0][:200]
        raise InputShapeError(f"{cfg.model} cannot take {c}x{h}x{w} input ({first}); "
                              "give another --input-size") from None
    if out.shape != (2, data.num_classes):
        raise InputShapeError(f"{cfg.model} gives outputs of shape {tuple(out.shape[1:])} for "
                              f"{data.num_classes} classes; check --model-arg")
    set_train_mode(model, True)
    recipe = photo_recipe_for(cfg, data, pre)
    if recipe is not None:
        from ..data.augment import PhotoPrepared

        train_ds = PhotoPrepared(data.train, pre, recipe, cfg.seed, cache=cfg.cache,
                                 progress=sys.stderr.isatty())
    else:
        train_ds = Prepared(data.train, pre, augment_for(cfg, data, pre), cfg.seed)
    prepared = RunData(
        data, pre, train_ds,
        Prepared(data.val, pre) if data.val is not None and len(data.val) else None,
        Prepared(data.test, pre), fin["record"], fin["notes"] if fresh else [])
    return model, kwargs, prepared


def pad_from(model: nn.Module, data: DataSplits, size: tuple[int, int]):
    """The data's image size when the model pads images of that size instead of resizing them
    (``model.pad_from``: LeNet-5 pads MNIST's 28x28 to 32x32, as the paper did), else None."""
    pad = getattr(model, "pad_from", None)
    stored = tuple(data.image_size) if data.image_size else None
    if pad and stored == tuple(pad) and stored != tuple(size) and all(
            s >= t for s, t in zip(size, stored, strict=True)):
        return stored
    return None


def run_config(cfg: TrainConfig, kwargs: dict, p: RunData, threads: dict | None = None) -> dict:
    """config.json of the run: the contract of ``cnnlab.weights.load_run_model`` plus the rest."""
    d, pre = p.data, p.preprocess
    size = [pre.channels, *pre.size]
    native = [d.channels, *d.image_size] if d.image_size else [d.channels, None, None]
    return {
        "model": cfg.model,
        "model_kwargs": kwargs,
        "input_size": size,
        "classes": list(d.classes),
        "mean": list(pre.mean),
        "std": list(pre.std),
        "data": {"spec": cfg.data, "format": d.name, "source": d.source,
                 "train": len(d.train), "val": len(d.val) if d.val is not None else 0,
                 "test": len(d.test)},
        "resize": {"from": native, "to": size,
                   "channels": f"{d.channels}->{pre.channels}" if d.channels != pre.channels
                   else "unchanged", "mode": _fit_text(pre, native, size),
                   "pad_from": list(pre.pad_from) if pre.pad_from else None},
        "data_config": DataConfig((pre.channels, *pre.size), pre.resize, pre.interpolation,
                                  pre.mean, pre.std, len(d.classes), "cnnlab train").to_dict(),
        "augment": _augment_record(p.train.augment, cfg),
        "train": cfg.to_json(),
        "model_train_defaults": dict(get_entry(cfg.model).train_defaults),  # its recipe
        "threads": threads or {},
        "cnnlab_version": __version__,
        **({"weights": p.weights} if p.weights else {}),
    }


def _fit_text(pre: Preprocess, native: list, size: list) -> str:
    if pre.pad_from:
        return (f"zero-padded {native[1]}x{native[2]} -> {size[1]}x{size[2]} (not resized; "
                "as LeCun et al. 1998)")
    if pre.resize is not None:
        return (f"shorter side to {pre.resize} ({pre.interpolation}, antialiased), "
                f"centre crop {size[1]}x{size[2]}")
    return "bilinear (antialiased when shrinking)"


def _augment_record(aug, cfg: TrainConfig) -> dict:
    """config.json's "augment": what the training images go through."""
    if hasattr(aug, "describe"):
        rec = aug.describe()
    else:
        rec = {"crop_padding": aug.crop_padding if aug else 0, "hflip": bool(aug and aug.hflip),
               "distort": bool(aug and aug.distort)}
    if cfg.mixup or cfg.cutmix:
        rec.update(mixup=cfg.mixup, cutmix=cfg.cutmix)
    if cfg.ema is not None:
        rec["ema"] = cfg.ema
    return rec


def default_workers_info(cfg: TrainConfig, train_ds, saved: dict | None = None) -> dict:
    """DataLoader workers of this run and why (recorded in config.json as "workers")."""
    if cfg.num_workers is not None:
        return {"used": cfg.num_workers, "chosen": "--workers"}
    if saved and saved.get("used") is not None:
        return {"used": saved["used"], "chosen": "as when the run started (resume)"}
    if getattr(train_ds, "in_memory", False):
        return {"used": 0, "chosen": "auto: the prepared training images are in memory"}
    n, why = choose_workers()
    return {"used": n, "chosen": why}


def default_run_name(cfg: TrainConfig) -> str:
    """``<model>-<data>``: ``lenet5-digits``, ``resnet20-synthetic``, ``vgg11-<folder name>``."""
    data = str(cfg.data)
    label = data.split(":")[0] if data.split(":")[0] in NAMED_DATA else (
        Path(data).expanduser().resolve().name or "data")
    return f"{cfg.model}-{label}"


def default_threads_info(cfg: TrainConfig, saved: dict | None = None) -> dict:
    """How many CPU threads torch uses in this run and why (recorded in config.json)."""
    if cfg.threads:
        return {"used": cfg.threads, "chosen": "--threads"}
    if saved and saved.get("used"):
        used = min(int(saved["used"]), usable_cores())  # resumed on a machine with fewer
        return {"used": used, "chosen": "as when the run started (resume)"}
    n, why = choose_threads(int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    return {"used": n, "chosen": why}


# --------------------------------------------------------------------------- the run folder

def new_run_folder(cfg: TrainConfig, writer: bool = True) -> RunFolder:
    """Lock the folder of a new run: ``--name``, else the default name (``-2``, ``-3``... if
    taken or being written by another process)."""
    runs = Path(cfg.runs_dir)
    check_runs_dir(runs)
    if not writer:
        return RunFolder(runs / (cfg.name or default_run_name(cfg)), writer=False)
    if cfg.name:
        run = RunFolder(runs / cfg.name).lock()  # RunLockedError names the writer's PID
        if run.is_used():
            run.unlock()
            how = (" (it was stopped before its first checkpoint: --resume starts it again "
                   "from the beginning)" if _stopped_before_first_checkpoint(run.path) else "")
            raise UsageError(f"run folder {run.path} already exists; use --resume to continue "
                             f"it{how} or choose another --name")
        return run
    base, i = default_run_name(cfg), 2
    run = RunFolder(runs / base)
    while True:
        if not run.is_used():
            try:
                run.lock()
            except RunLockedError:
                pass
            else:
                if not run.is_used():
                    return run
                run.unlock()
        run, i = RunFolder(runs / f"{base}-{i}"), i + 1


def _stopped_before_first_checkpoint(run_dir: Path) -> bool:
    """A run folder with the run's config.json but neither a checkpoint nor a finished
    model: the run was stopped (Ctrl-C, killed) before its first checkpoint."""
    return ((run_dir / "config.json").is_file()
            and not (run_dir / ckpt.CHECKPOINT_FILE).exists()
            and not any((run_dir / f).exists() for f in ("model.safetensors", "results.json")))


def resume_path(cfg: TrainConfig, resume) -> Path:
    if isinstance(resume, (str, os.PathLike)) and not isinstance(resume, bool):
        return Path(resume)
    return Path(cfg.runs_dir) / (cfg.name or default_run_name(cfg))


_FLAGS = {"data_format": "--format", "model_kwargs": "--model-arg", "num_workers": "--workers",
          "plots": "--no-plots"}


def _flag(key: str) -> str:
    return _FLAGS.get(key, "--" + key.replace("_", "-"))


def resume_config(saved_config: dict, cfg: TrainConfig, given=None, epochs_done: int = 0,
                  where="the run") -> tuple[TrainConfig, dict]:
    """The settings of a resumed run and what changed: ``(config, {key: [old, new]})``.

    The run's own settings are used. Of ``cfg``, the options in ``RESUME_SAFE`` (epochs,
    patience, checkpoint interval, workers, threads, device, plots) are taken. ``given`` (the
    options the user typed; None from the library) makes every other given option that
    differs from the run's an error naming them, instead of silently ignoring it.
    """
    saved = TrainConfig.from_json(saved_config["train"])
    if saved.model != cfg.model:
        raise CheckpointError(f"{where} is a checkpoint of {saved.model}, not {cfg.model}")
    keys = RESUME_SAFE if given is None else [k for k in given
                                               if k not in ("model", "runs_dir", "name")]
    changed, refused = {}, []
    for key in keys:
        old, new = getattr(saved, key), getattr(cfg, key)
        if key == "data":
            old, new = absolute_data(old), absolute_data(new)
        if key == "input_size":
            old, new = (tuple(old) if old else None), (tuple(new) if new else None)
        if old == new:
            continue
        if key in RESUME_SAFE:
            changed[key] = [old, new]
            setattr(saved, key, new)
        else:
            refused.append(f"{_flag(key)} {_show(new)} (the run's: {_show(old)})")
    if refused:
        raise ResumeOptionsError(
            f"--resume continues {where} with its own settings, but these options differ: "
            f"{'; '.join(refused)}; drop them, or start a new run with another --name")
    if saved.epochs < epochs_done:
        raise ResumeOptionsError(f"{where} has already trained {epochs_done} epochs; --epochs "
                                 f"{saved.epochs} would undo them: give at least {epochs_done}")
    return saved, changed


def _num(v) -> str:
    """A recipe setting as the announce line shows it (3 significant digits)."""
    if isinstance(v, (list, tuple)):
        return "-".join(_num(x) for x in v)
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _show(v) -> str:
    if isinstance(v, dict):
        return ",".join(f"{k}={x}" for k, x in v.items()) or "{}"
    return str(v)


# --------------------------------------------------------------------------- the trainer

def train(cfg: TrainConfig, resume: bool | str = False, data: DataSplits | None = None,
          log=print, progress: bool | None = None, given=None) -> dict:
    """Train as ``cfg`` says; returns the final results (also written to results.json).

    ``resume``: False, True (the run folder ``cfg.name`` or the default name), or a path to a
    run folder or checkpoint file. The checkpoint's settings are used; ``epochs``,
    ``patience``, ``checkpoint_every``, ``num_workers``, ``threads``, ``device`` and ``plots``
    are taken from ``cfg`` (see :func:`resume_config`; ``given``, the names of the options the
    user gave, makes other differing options an error) and the changes are recorded in
    config.json's ``resumed`` list.
    """
    cfg.validate()
    check_runs_dir(Path(cfg.runs_dir))
    info = DistInfo() if int(os.environ.get("WORLD_SIZE", "1")) <= 1 else None
    dev_type = "cuda" if (cfg.device.startswith("cuda") or
                          (cfg.device == "auto" and torch.cuda.is_available())) else "cpu"
    info = info or init_distributed(dev_type)
    try:
        trainer = Trainer(cfg, info, log=log, progress=progress)
        with trainer.open(resume, given, data):
            return trainer.fit()
    finally:
        cleanup(info)


class Trainer:
    """Sets up a run (:meth:`open`) and runs it (:meth:`fit`)."""

    def __init__(self, cfg: TrainConfig, info: DistInfo | None = None, log=print,
                 progress: bool | None = None):
        self.cfg, self.info = cfg, info or DistInfo()
        main = self.info.is_main
        self.say = log if main else (lambda *a, **k: None)
        self.show = (sys.stderr.isatty() if progress is None else progress) and main
        self.run: RunFolder | None = None

    # ------------------------------------------------------------------ set-up
    def open(self, resume=False, given=None, data: DataSplits | None = None) -> RunFolder:
        """Lock the run folder (new, or the one to resume), build everything; returns the run
        folder, a context manager that releases the lock."""
        info = self.info
        cfg = dataclasses.replace(self.cfg, data=absolute_data(self.cfg.data))
        saved_state, changes = None, None
        if resume:
            path = resume_path(cfg, resume)
            run_dir = path.parent if path.is_file() else path
            if not path.is_file() and not (run_dir / ckpt.CHECKPOINT_FILE).is_file():
                if not _stopped_before_first_checkpoint(run_dir):
                    ckpt.load_checkpoint(path)  # raises: no checkpoint, nothing to resume
                return self._restart(run_dir, cfg, given, data)
            self.run = _on_main(info, lambda: RunFolder(run_dir).lock(),
                                lambda: RunFolder(run_dir, writer=False))
            try:
                saved_state = ckpt.load_checkpoint(path)
                validate_run_config(saved_state["config"], path)
                cfg, changes = resume_config(saved_state["config"], cfg, given,
                                             saved_state["epoch"], where=str(run_dir))
                cfg = _keep_pre_recipe_auto(cfg, saved_state["config"])
                cfg.validate()
            except BaseException:
                self.run.unlock()
                raise
        try:
            self._build(cfg, data, saved_state, changes)
        except BaseException:
            if self.run is not None:
                self.run.unlock()
            raise
        return self.run

    def _restart(self, run_dir: Path, cfg: TrainConfig, given, data) -> RunFolder:
        """``--resume`` of a run stopped before its first checkpoint: it starts again from the
        beginning, in its folder, with its saved settings (those --resume may change taken
        from ``cfg``). Before, --resume said "nothing to resume" and the name stayed taken."""
        self.run = _on_main(self.info, lambda: RunFolder(run_dir).lock(),
                            lambda: RunFolder(run_dir, writer=False))
        try:
            saved = json.loads((run_dir / "config.json").read_text())
            validate_run_config(saved, run_dir)
            cfg, _ = resume_config(saved, cfg, given, 0, where=str(run_dir))
            cfg.validate()
            self.say(f"{run_dir} was stopped before its first checkpoint: starting it again "
                     "from the beginning with its saved settings")
            self._build(cfg, data, None, None)
        except BaseException:
            self.run.unlock()
            raise
        return self.run

    def _build(self, cfg, data, saved_state, changes) -> None:
        info = self.info
        self.cfg = cfg
        self.device = pick_device(cfg.device, info)
        saved_threads = saved_state["config"].get("threads") if saved_state else None
        self.threads = default_threads_info(cfg, saved_threads)
        torch.set_num_threads(self.threads["used"])
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        model, kwargs, p = prepare_model_and_data(cfg, data, fresh=saved_state is None)
        config = run_config(cfg, kwargs, p, self.threads)
        saved_workers = saved_state["config"].get("workers") if saved_state else None
        config["workers"] = default_workers_info(cfg, p.train, saved_workers)
        cfg = self.cfg = dataclasses.replace(cfg, num_workers=config["workers"]["used"])
        if saved_state is not None:
            saved = saved_state["config"]
            if saved.get("classes") != config["classes"]:
                raise CheckpointError("the data's classes differ from those the checkpoint was "
                                      "trained on; resume with the same --data")
            if saved.get("input_size") != config["input_size"]:
                raise CheckpointError(f"the checkpoint was trained at {saved.get('input_size')}"
                                      f", not {config['input_size']}")
            if saved.get("weights"):
                config["weights"] = saved["weights"]
            config["resumed"] = list(saved.get("resumed") or []) + [
                {"at_epoch": saved_state["epoch"], "at_batch": saved_state["batch"],
                 "at_step": saved_state["step"], "changed": changes or {}}]
        elif self.run is None:  # (set already when a run restarts: see _restart)
            self.run = _on_main(info, lambda: new_run_folder(cfg),
                                lambda: new_run_folder(cfg, writer=False))
        self.model, self.data, self.config = model, p, config

        model.to(self.device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        optimizer = make_optimizer(cfg, model)
        self.steps_per_epoch = len(epoch_batches(len(p.train), cfg, 0, info))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                      lr_factor(cfg, self.steps_per_epoch))
        self.use_scaler = cfg.amp == "fp16" and self.device.type == "cuda"
        scaler = torch.amp.GradScaler("cuda", enabled=self.use_scaler)
        self.state = TrainState()
        self.ema = ModelEma(model, cfg.ema) if cfg.ema is not None else None
        if saved_state is not None:
            self._restore(saved_state, model, optimizer, scheduler, scaler)
        else:
            torch.manual_seed(cfg.seed + info.rank)  # dropout differs across ranks, init not
        net: nn.Module = model
        if info.enabled:
            net = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if cfg.compile:
            net = torch.compile(net)
        self.learner = Learner(cfg, model, net, optimizer, scheduler, scaler, self.device, info,
                               autocast_for(cfg, self.device), mix=mix_for(cfg, p.data),
                               ema=self.ema)

    def _restore(self, state, model, optimizer, scheduler, scaler) -> None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            if self.ema is not None:
                if "ema" not in state:
                    raise CheckpointError("the checkpoint holds no EMA weights")
                self.ema.load_state_dict(state["ema"])
        except (RuntimeError, ValueError, KeyError) as err:
            first = str(err).strip().splitlines()[0][:200]
            raise CheckpointError(f"the checkpoint does not fit this model: {first}") from None
        self.state = TrainState.from_checkpoint(state)
        self.run.last_saved = (state["epoch"], state["batch"])
        ckpt.set_rng_state(state["rng"])
        s = self.state
        self.say(f"resuming {self.run.path} at epoch {s.epoch + 1}, batch {s.batch} "
                 f"(step {s.step})")
        changed = self.config["resumed"][-1]["changed"]
        if changed:
            self.say("changed on resume: " + ", ".join(f"{k} {a} -> {b}"
                                                       for k, (a, b) in changed.items()))

    def checkpoint(self) -> dict:
        """The model/optimizer/schedule/RNG part of a checkpoint (the state adds the rest)."""
        lr = self.learner
        return {"config": json.dumps(self.config), "model": self.model.state_dict(),
                "optimizer": lr.optimizer.state_dict(), "scheduler": lr.scheduler.state_dict(),
                "scaler": lr.scaler.state_dict() if self.use_scaler else {},
                "rng": ckpt.rng_state(),
                **({"ema": self.ema.state_dict()} if self.ema is not None else {})}

    def callbacks(self) -> list:
        cfg, run = self.cfg, self.run
        cbs = [ProgressBar(cfg.epochs, self.info.world_size, self.show),
               MetricsLogger(cfg.epochs, run, self.say),
               EarlyStopping(cfg.patience, self.say),
               Checkpointing(run, self.checkpoint, lambda: self._save_weights(durable=False),
                             cfg.checkpoint_every)]
        delay = float(os.environ.get("CNNLAB_DEBUG_STEP_DELAY", "0") or 0)
        if delay:
            cbs.append(StepDelay(delay))
        return cbs

    def _save_weights(self, durable: bool = True) -> None:
        """model.safetensors, and model_ema.safetensors beside it when --ema is on."""
        self.run.save_weights(self.model, durable=durable)
        if self.ema is not None and self.run.writer:
            save_weights(self.ema.module, self.run.path / EMA_WEIGHTS_FILE, durable=durable)

    def _announce(self) -> None:
        cfg, p, config, say = self.cfg, self.data, self.config, self.say
        c, h, w = config["input_size"]
        fr = config["resize"]["from"]
        say(f"training {cfg.model} on {p.data.name} ({len(p.train)} train, "
            f"{len(p.val) if p.val else 0} val, {len(p.test)} test images, "
            f"{p.data.num_classes} classes) -> {self.run.path}")
        if fr[1] is not None and (fr != config["input_size"]):
            how = ("zero-padded, not resized, as LeCun et al. 1998" if p.preprocess.pad_from
                   else f"channels {config['resize']['channels']}")
            say(f"input: {fr[0]}x{fr[1]}x{fr[2]} images converted to {c}x{h}x{w} ({how})")
        elif fr[1] is None and p.data.extra.get("sizes"):  # a folder: sizes read at the check
            say(f"input: images of {p.data.extra['sizes']} pixels (width x height) resized to "
                f"{w}x{h}, {c} channel{'s' if c > 1 else ''} ({config['resize']['mode']}; "
                f"channels {config['resize']['channels']})")
        if p.weights:
            say(f"weights: {p.weights['given']} (sha256 {p.weights['sha256'][:16]}...)")
        for line in p.notes:
            say(line)
        if getattr(p.train, "cache_note", ""):
            say(p.train.cache_note)
        elif cfg.cache:
            say("--cache: only for the photo recipes (a colour image folder, or --augment "
                "rrc|trivial|randaugment); this run reads its data as before")
        aug = config["augment"]
        if "recipe" in aug or "mixup" in aug or "ema" in aug:
            say("recipe: " + ", ".join(f"{k} {_num(v)}" for k, v in aug.items())
                + f"; {config['workers']['used']} loader workers")
        mom = f" momentum {cfg.momentum}" if cfg.optimizer == "sgd" else ""
        say(f"{cfg.optimizer} lr {cfg.lr}{mom} batch {cfg.batch_size} "
            f"{cfg.schedule} schedule, {cfg.epochs} epochs, seed {cfg.seed}, device "
            f"{self.device}, {self.threads['used']} threads"
            + (f", {self.info.world_size} processes" if self.info.enabled else ""))

    # ------------------------------------------------------------------ the run
    def fit(self) -> dict:
        """Train the remaining epochs, then :meth:`finish`; returns the results."""
        run = self.run
        run.write_config(self.config)
        run.reset_metrics(self.state.history)
        if not self.config.get("resumed"):
            self._announce()
        if self.cfg.plots and run.writer:
            _import_in_background("cnnlab.training.plots")  # matplotlib: ~1 s, needed at the end
        callbacks = self.callbacks()
        try:
            stopped_early = self.train_epochs(callbacks)
            return self.finish(stopped_early)
        except DivergedError as err:
            if run.last_saved is None:
                kept = f"no checkpoint was written to {run.path} yet"
            else:
                e, b = run.last_saved
                kept = (f"{run.path} keeps the checkpoint of epoch {e}"
                        + (f" (batch {b})" if b else ""))
            raise DivergedError(f"{err}; {kept}") from None
        except KeyboardInterrupt:
            raise TrainingInterrupted(run.path, self.cfg.model, run.has_checkpoint()) from None
        finally:
            for cb in callbacks:
                cb.on_train_end(self.state)

    def train_epochs(self, callbacks) -> bool:
        """The epoch loop: train, validate, call back; True when a callback stopped it."""
        cfg, state, p = self.cfg, self.state, self.data
        t_start = time.time() - (state.history[-1]["time_s"] if state.history else 0.0)
        for epoch in range(state.epoch, cfg.epochs):
            row = train_one_epoch(self.learner, p.train, state, epoch, callbacks)
            row["time_s"] = time.time() - t_start
            if p.val is not None:
                v = evaluate(self.model, p.val, cfg.batch_size * 2, self.device, self.info,
                             channels_last=cfg.channels_last, amp_ctx=self.learner.amp_ctx)
                row.update(val_loss=v["loss"], val_top1=v["top1"], val_top5=v["top5"])
                if self.ema is not None:
                    e = evaluate(self.ema.module, p.val, cfg.batch_size * 2, self.device,
                                 self.info, channels_last=cfg.channels_last,
                                 amp_ctx=self.learner.amp_ctx)
                    row.update(val_ema_loss=e["loss"], val_ema_top1=e["top1"],
                               val_ema_top5=e["top5"])
                row["time_s"] = row.pop("time_s")  # keep the column order of METRIC_KEYS
            state.epoch, state.batch, state.sums = epoch + 1, 0, EpochSums()
            for cb in callbacks:
                cb.on_epoch_end(state, row)
            if any(cb.stop for cb in callbacks):
                return True
        return False

    def finish(self, stopped_early: bool) -> dict:
        """Test evaluation, the replica check, results.json, plots and the final table."""
        cfg, p, info, run, history = self.cfg, self.data, self.info, self.run, self.state.history
        test = evaluate(self.model, p.test, cfg.batch_size * 2, self.device, info,
                        num_classes=p.data.num_classes, channels_last=cfg.channels_last,
                        amp_ctx=self.learner.amp_ctx)
        digests = gather_objects(_weights_digest(self.model), info)
        if len(set(digests)) != 1:
            raise RuntimeError(f"the model replicas differ across ranks: {digests}")
        last = history[-1] if history else {}
        ema_test = None
        if self.ema is not None:
            ema_test = evaluate(self.ema.module, p.test, cfg.batch_size * 2, self.device, info,
                                channels_last=cfg.channels_last, amp_ctx=self.learner.amp_ctx)
        results = {"model": cfg.model, "data": p.data.name, "epochs": len(history),
                   "stopped_early": stopped_early, "test_loss": test["loss"],
                   "test_top1": test["top1"], "test_top5": test["top5"],
                   "test_images": test["n"], "val_top1": last.get("val_top1"),
                   "train_top1": last.get("train_top1"), "train_time_s": last.get("time_s"),
                   "world_size": info.world_size, "weights_sha256": digests,
                   "run_dir": str(run.path)}
        if ema_test is not None:
            results.update(ema_decay=cfg.ema, test_ema_loss=ema_test["loss"],
                           test_ema_top1=ema_test["top1"], test_ema_top5=ema_test["top5"],
                           val_ema_top1=last.get("val_ema_top1"))
        self._save_weights()
        run.write_results(results)
        if cfg.plots:
            run.write_plots(history, test["confusion"], p.data.classes)
        def top5(v):  # with 5 classes or fewer every label is in the top 5: no information
            return _fmt(v, True) if len(p.data.classes) > 5 else "n/a"

        rows = [["train (last epoch)", _fmt(last.get("train_loss")),
                 _fmt(last.get("train_top1"), True), top5(last.get("train_top5"))],
                ["validation", _fmt(last.get("val_loss")), _fmt(last.get("val_top1"), True),
                 top5(last.get("val_top5"))],
                ["test", _fmt(test["loss"]), _fmt(test["top1"], True), top5(test["top5"])]]
        if ema_test is not None:
            rows += [["validation (EMA weights)", _fmt(last.get("val_ema_loss")),
                      _fmt(last.get("val_ema_top1"), True), top5(last.get("val_ema_top5"))],
                     ["test (EMA weights)", _fmt(ema_test["loss"]), _fmt(ema_test["top1"], True),
                      top5(ema_test["top5"])]]
        self.say("")
        self.say(format_table(["split", "loss", "top-1", "top-5"], rows))
        self.say(f"\ntest accuracy {test['top1']:.2f}% after {len(history)} epochs in "
                 f"{last.get('time_s', 0):.1f}s; run saved in {run.path}")
        barrier(info)
        return results


def _on_main(info: DistInfo, on_main, elsewhere):
    """Run ``on_main`` on rank 0 and ``elsewhere`` on the other ranks; an error on rank 0 is
    raised on every rank (so none waits forever), with rank 0's message."""
    result, err = None, None
    if info.is_main:
        try:
            result = on_main()
        except CnnlabError as e:
            err = e
    if info.enabled:
        if info.is_main:
            box = (type(err).__name__, str(err)) if err else (None, str(result.path))
        else:
            box = None
        box = broadcast_object(box, info)
        if not info.is_main:
            if box[0] is not None:
                raise _RemoteError(box[1])
            result = elsewhere()
            result.path = Path(box[1])
    if err is not None:
        raise err
    return result


class _RemoteError(CnnlabError, RuntimeError):
    """An error raised on rank 0 that ends the other ranks too (printed by rank 0 only)."""


def _import_in_background(module: str) -> None:
    """Start importing ``module`` in a daemon thread (while the epochs run: torch releases the
    GIL in its kernels); a later ``import`` of it waits for this one to finish."""
    import importlib
    import threading

    threading.Thread(target=importlib.import_module, args=(module,), daemon=True,
                     name=f"import {module}").start()


def _fmt(v, pct=False):
    if v is None:
        return "-"
    return f"{v:.2f}%" if pct else f"{v:.4f}"


def _weights_digest(model: nn.Module) -> str:
    import hashlib

    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


__all__ = ["AMP_MODES", "AUGMENTS", "OPTIMIZERS", "SCHEDULES", "CnnlabError", "DivergedError",
           "ResumeOptionsError", "Trainer", "TrainConfig", "TrainingInterrupted", "compute_loss",
           "evaluate", "lr_factor", "make_optimizer", "param_groups", "prepare_model_and_data",
           "set_train_mode", "train"]
