"""One trainer for every registered model.

:func:`train` takes a :class:`TrainConfig` and does the whole job: load the data, build the
model at the input size its registry entry gives (or ``input_size``), convert channels and
resize through :class:`~cnnlab.data.transforms.Preprocess`, train with the chosen optimizer and
schedule, evaluate on the validation split every epoch and on the test split at the end, and
keep the run folder up to date::

    runs/<name>/config.json         model, model_kwargs, input_size, classes, mean, std, ...
    runs/<name>/model.safetensors   the weights (after every epoch; the final ones at the end)
    runs/<name>/checkpoint.pt       everything --resume needs (see training.checkpoint)
    runs/<name>/metrics.jsonl       one JSON object per epoch; metrics.csv the same
    runs/<name>/results.json        test_top1, test_top5, test_loss, ...
    runs/<name>/loss.png, accuracy.png, confusion.png

Everything that can be wrong with the input (data path, format, batch size, a model that
cannot take the data) is checked before the run folder is created.

Determinism: the model is initialised from ``seed``; each epoch's order comes from a
``DistributedSampler`` seeded with (seed, epoch); augmentation from (seed, epoch, index); the
DataLoader has its own generator, so the global RNG feeds only the model (dropout, stochastic
depth), and its state is checkpointed. Two CPU runs with the same seed give the same metrics,
and a run interrupted at any step and resumed gives the same metrics as one that was not.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from .. import __version__
from ..data import Augment, DataSplits, Prepared, Preprocess, load_data
from ..errors import CheckpointError, CnnlabError, DataError, InputShapeError
from ..models.base import AuxOutput, main_logits
from ..registry import create_model, get_entry
from ..weights import CONFIG_FILE, WEIGHTS_FILE, atomic_write_bytes, save_weights
from . import checkpoint as ckpt
from .distributed import (
    DistInfo,
    all_reduce_sum,
    barrier,
    broadcast_object,
    cleanup,
    gather_objects,
    init_distributed,
)
from .finetune import FREEZE_CHOICES, apply_frozen_modes, split_param_groups, start_from_weights
from .metrics import confusion_matrix, format_table, topk_correct, write_metrics

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
AUGMENTS = ("auto", "none", "crop", "flip", "crop+flip")
AMP_MODES = ("none", "bf16", "fp16")


@dataclass
class TrainConfig:
    """Every setting of a training run (all JSON-serialisable; stored in the checkpoint)."""

    model: str
    data: str = "digits"
    data_format: str = "auto"
    model_kwargs: dict = field(default_factory=dict)
    input_size: tuple[int, int, int] | None = None     # C, H, W; default: the registry's
    epochs: int = 60
    batch_size: int = 16
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    step_size: int = 10                                # epochs, for schedule="step"
    gamma: float = 0.1
    label_smoothing: float = 0.0
    clip_grad: float | None = None
    amp: str = "none"
    channels_last: bool = False
    compile: bool = False
    patience: int | None = None                        # early stopping on val top-1
    seed: int = 0
    augment: str = "auto"
    checkpoint_every: int = 0                          # steps; 0: at the end of epochs only
    num_workers: int = 0
    threads: int | None = None                         # torch CPU threads; None: torch's default
    device: str = "auto"
    runs_dir: str = "runs"
    name: str | None = None
    plots: bool = True
    deterministic: bool = False
    weights: str | None = None                         # start from this file / cnnlab run
    weights_sha256: str | None = None
    freeze: str = "none"                               # "features": train the classifier only
    head_lr: float | None = None                       # the classifier's own learning rate
    mean: list[float] | None = None                    # normalisation; default: see finetune
    std: list[float] | None = None

    def validate(self) -> None:
        def bad(msg):
            raise ValueError(msg)
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            bad(f"batch size must be a positive integer, got {self.batch_size}")
        if self.epochs < 1:
            bad(f"epochs must be at least 1, got {self.epochs}")
        if not self.lr > 0:
            bad(f"learning rate must be positive, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            bad(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            bad(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if self.augment not in AUGMENTS:
            bad(f"unknown augmentation {self.augment!r}; choose one of {', '.join(AUGMENTS)}")
        if self.amp not in AMP_MODES:
            bad(f"unknown autocast mode {self.amp!r}; choose one of {', '.join(AMP_MODES)}")
        if not 0 <= self.label_smoothing < 1:
            bad(f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.warmup_epochs < 0 or self.weight_decay < 0 or self.momentum < 0:
            bad("warm-up, weight decay and momentum must be >= 0")
        if self.step_size < 1:
            bad(f"step size must be at least 1 epoch, got {self.step_size}")
        if self.threads is not None and self.threads < 1:
            bad(f"threads must be at least 1, got {self.threads}")
        if self.checkpoint_every < 0 or self.num_workers < 0:
            bad("checkpoint interval and worker count must be >= 0")
        if self.patience is not None and self.patience < 1:
            bad(f"patience must be at least 1 epoch, got {self.patience}")
        if self.clip_grad is not None and not self.clip_grad > 0:
            bad(f"gradient clipping norm must be positive, got {self.clip_grad}")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            bad("Nesterov momentum needs --optimizer sgd and a momentum > 0")
        if self.input_size is not None:
            if len(self.input_size) != 3 or min(self.input_size) < 1:
                bad(f"input size must be C x H x W with positive numbers, got {self.input_size}")
        if self.freeze not in FREEZE_CHOICES:
            bad(f"unknown --freeze {self.freeze!r}; choose one of {', '.join(FREEZE_CHOICES)}")
        if self.head_lr is not None and not self.head_lr > 0:
            bad(f"--head-lr must be positive, got {self.head_lr}")
        if self.weights_sha256 is not None and not self.weights:
            bad("--weights-sha256 checks the file given with --weights")
        for key in ("mean", "std"):
            v = getattr(self, key)
            if v is not None and (not v or len(v) not in (1, 2, 3, 4, 6)
                                  or (key == "std" and min(v) <= 0)):
                bad(f"--{key} takes one value or one per channel (std > 0), got {v}")
        if self.name is not None and (not self.name or "/" in self.name
                                      or self.name in (".", "..")):
            bad(f"run name must be a plain folder name, got {self.name!r}")

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["input_size"] = list(self.input_size) if self.input_size else None
        return d

    @classmethod
    def from_json(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        if d.get("input_size") is not None:
            d["input_size"] = tuple(d["input_size"])
        return cls(**d)


# --------------------------------------------------------------------------- set-up helpers

def pick_device(name: str, info: DistInfo) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("--device cuda was asked for, but no CUDA device is available")
        return torch.device("cuda", info.local_rank if info.enabled else
                            torch.device(name).index or 0)
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError("--device mps was asked for, but MPS is not available")
        return torch.device("mps")
    if name != "cpu":
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def augment_for(cfg: TrainConfig, data: DataSplits, pre: Preprocess) -> Augment:
    if cfg.augment == "auto":
        crop, flip = data.crop_padding, data.hflip
    else:
        crop = 4 if "crop" in cfg.augment else 0
        flip = "flip" in cfg.augment
    # Scale the padding with the resize (4 px of a 32 px CIFAR image is 12.5 % of it).
    if crop and data.image_size:
        crop = max(1, round(crop * pre.size[0] / data.image_size[0]))
    fill = [-m / s for m, s in zip(pre.mean, pre.std, strict=True)]  # black, after normalisation
    return Augment(crop_padding=crop, hflip=flip, fill=fill)


def lr_factor(cfg: TrainConfig, steps_per_epoch: int):
    """The schedule as a function of the optimizer step (for ``LambdaLR``)."""
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = int(round(cfg.warmup_epochs * steps_per_epoch))
    if cfg.schedule == "onecycle" and warm == 0:
        warm = int(0.3 * total)

    def factor(step: int) -> float:
        if step < warm:
            start = 1 / 25 if cfg.schedule == "onecycle" else 0.0
            return start + (1 - start) * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        if cfg.schedule == "constant":
            return 1.0
        if cfg.schedule == "step":
            return cfg.gamma ** (step // steps_per_epoch // cfg.step_size)
        low = 1e-4 if cfg.schedule == "onecycle" else 0.0
        return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

    return factor


def make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = split_param_groups(model, cfg.lr, cfg.head_lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def compute_loss(output, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy of the main logits, plus ``w * CE`` of every auxiliary classifier."""
    if isinstance(output, AuxOutput):
        loss = F.cross_entropy(output.logits, target, label_smoothing=label_smoothing)
        for aux, w in zip(output.aux_logits, output.aux_weights, strict=True):
            loss = loss + w * F.cross_entropy(aux, target, label_smoothing=label_smoothing)
        return loss
    return F.cross_entropy(output, target, label_smoothing=label_smoothing)


def autocast_for(cfg: TrainConfig, device: torch.device):
    if cfg.amp == "none":
        return nullcontext()
    dtype = torch.bfloat16 if cfg.amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


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
    data = data if data is not None else load_data(cfg.data, cfg.data_format)
    c, h, w = cfg.input_size or entry.input_size
    kwargs = {"num_classes": data.num_classes, "in_chans": c, **cfg.model_kwargs}
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
    if fresh and fin["record"] is not None:  # resumes use the normalisation decided here
        cfg.mean, cfg.std = list(fin["mean"]), list(fin["std"])
    pre = Preprocess(c, (h, w), fin["mean"], fin["std"])
    try:
        x = pre(data.train[0][0]).unsqueeze(0).repeat(2, 1, 1, 1)
    except ValueError as err:
        raise DataError(f"{data.source or data.name} cannot be fed to {cfg.model}: {err}"
                        ) from None
    model.eval()
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
                              f"{data.num_classes} classes; check --model-kwargs")
    model.train()
    aug = augment_for(cfg, data, pre)
    prepared = RunData(
        data, pre, Prepared(data.train, pre, aug, cfg.seed),
        Prepared(data.val, pre) if data.val is not None and len(data.val) else None,
        Prepared(data.test, pre), fin["record"], fin["notes"] if fresh else [])
    return model, kwargs, prepared


def run_config(cfg: TrainConfig, kwargs: dict, p: RunData) -> dict:
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
                   else "unchanged", "mode": "bilinear (antialiased when shrinking)"},
        "augment": {"crop_padding": p.train.augment.crop_padding if p.train.augment else 0,
                    "hflip": bool(p.train.augment and p.train.augment.hflip)},
        "train": cfg.to_json(),
        "cnnlab_version": __version__,
        **({"weights": p.weights} if p.weights else {}),
    }


def default_run_name(cfg: TrainConfig) -> str:
    """``<model>-<data>``: ``lenet5-digits``, ``resnet20-synthetic``, ``vgg11-<folder name>``."""
    data = str(cfg.data)
    label = data.split(":")[0] if data.split(":")[0] in ("digits", "synthetic") else (
        Path(data).expanduser().resolve().name or "data")
    return f"{cfg.model}-{label}"


def resolve_run_dir(cfg: TrainConfig, resume: bool) -> Path:
    """The run folder: ``--name``, else the default name (``-2``, ``-3``... if taken)."""
    runs = Path(cfg.runs_dir)
    if resume:
        return runs / (cfg.name or default_run_name(cfg))
    if cfg.name:
        d = runs / cfg.name
        if d.exists() and any(d.iterdir()):
            raise ValueError(f"run folder {d} already exists; use --resume to continue it or "
                             "choose another --name")
        return d
    base = default_run_name(cfg)
    d, i = runs / base, 2
    while d.exists() and any(d.iterdir()):
        d, i = runs / f"{base}-{i}", i + 1
    return d


# --------------------------------------------------------------------------- evaluation

@torch.no_grad()
def evaluate(model: nn.Module, ds, batch_size: int, device: torch.device,
             info: DistInfo | None = None, num_classes: int | None = None,
             channels_last: bool = False, amp_ctx=None) -> dict:
    """Loss, top-1, top-5 (percent) and the confusion matrix of ``model`` on ``ds``.

    With several processes each rank takes every ``world_size``-th item (no padding, so no
    item counts twice) and the sums are reduced over ranks.
    """
    info = info or DistInfo()
    was_training = model.training
    model.eval()
    indices = list(range(info.rank, len(ds), info.world_size))
    loader = DataLoader(ds, batch_size=batch_size, sampler=indices)
    n_cls = num_classes or 0
    sums = torch.zeros(4, dtype=torch.float64)  # loss*n, top1, top5, n
    cm = torch.zeros(n_cls, n_cls, dtype=torch.int64)
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with amp_ctx or nullcontext():
            logits = main_logits(model(x))
        logits = logits.float()
        loss = F.cross_entropy(logits, y, reduction="sum")
        c1, c5 = topk_correct(logits, y)
        sums += torch.tensor([loss.item(), c1, c5, len(y)], dtype=torch.float64)
        if n_cls:
            cm += confusion_matrix(logits.argmax(1).cpu(), y.cpu(), n_cls)
    all_reduce_sum(sums, info)
    if n_cls:
        all_reduce_sum(cm, info)
    model.train(was_training)
    apply_frozen_modes(model, was_training)
    n = max(sums[3].item(), 1)
    return {"loss": sums[0].item() / n, "top1": 100 * sums[1].item() / n,
            "top5": 100 * sums[2].item() / n, "n": int(sums[3].item()), "confusion": cm}


# --------------------------------------------------------------------------- training

def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", unit_scale=True, leave=False,
                disable=not enabled, dynamic_ncols=True)


def _epoch_batches(n: int, cfg: TrainConfig, epoch: int, info: DistInfo) -> list[list[int]]:
    sampler = DistributedSampler(range(n), num_replicas=info.world_size, rank=info.rank,
                                 shuffle=True, seed=cfg.seed, drop_last=False)
    sampler.set_epoch(epoch)
    idx = list(sampler)
    batches = [idx[i:i + cfg.batch_size] for i in range(0, len(idx), cfg.batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()  # a batch of one breaks BatchNorm; its image is seen next epoch
    return batches


def _fmt(v, pct=False):
    if v is None:
        return "-"
    return f"{v:.2f}%" if pct else f"{v:.4f}"


def train(cfg: TrainConfig, resume: bool | str = False, data: DataSplits | None = None,
          log=print, progress: bool | None = None) -> dict:
    """Train as ``cfg`` says; returns the final results (also written to results.json).

    ``resume``: False, True (the run folder ``cfg.name`` or the default name), or a path to a
    run folder or checkpoint file. The checkpoint's settings are used; only ``epochs``,
    ``patience``, ``checkpoint_every``, ``num_workers``, ``threads``, ``device`` and ``plots``
    are taken from ``cfg``.
    """
    state = None
    if resume:
        cfg.validate()
        if isinstance(resume, (str, os.PathLike)) and not isinstance(resume, bool):
            path = Path(resume)
        else:
            path = resolve_run_dir(cfg, resume=True)
        state = ckpt.load_checkpoint(path)
        saved = TrainConfig.from_json(state["config"]["train"])
        if saved.model != cfg.model:
            raise CheckpointError(f"{path} is a checkpoint of {saved.model}, not {cfg.model}")
        for key in ("epochs", "patience", "checkpoint_every", "num_workers", "threads", "device",
                    "plots"):
            setattr(saved, key, getattr(cfg, key))
        cfg = saved
        run_dir = path if path.is_dir() else path.parent
    cfg.validate()

    info_pre = DistInfo() if int(os.environ.get("WORLD_SIZE", "1")) <= 1 else None
    dev_type = "cuda" if (cfg.device.startswith("cuda") or
                          (cfg.device == "auto" and torch.cuda.is_available())) else "cpu"
    info = info_pre or init_distributed(dev_type)
    try:
        return _train(cfg, info, state, run_dir if state else None, data, log, progress)
    finally:
        cleanup(info)


def _train(cfg, info, state, run_dir, data, log, progress) -> dict:
    device = pick_device(cfg.device, info)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    model, kwargs, p = prepare_model_and_data(cfg, data, fresh=state is None)
    config = run_config(cfg, kwargs, p)
    if state is not None:
        saved = state["config"]
        if saved.get("classes") != config["classes"]:
            raise CheckpointError("the data's classes differ from those the checkpoint was "
                                  "trained on; resume with the same --data")
        if saved.get("input_size") != config["input_size"]:
            raise CheckpointError(f"the checkpoint was trained at {saved.get('input_size')}, "
                                  f"not {config['input_size']}")
        if saved.get("weights"):
            config["weights"] = saved["weights"]
    else:
        run_dir = resolve_run_dir(cfg, resume=False) if info.is_main else None
        run_dir = Path(broadcast_object(str(run_dir) if run_dir else None, info))
    main = info.is_main
    show = (sys.stderr.isatty() if progress is None else progress) and main
    say = log if main else (lambda *a, **k: None)

    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, model)
    n_train = len(p.train)
    steps_per_epoch = len(_epoch_batches(n_train, cfg, 0, info))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg, steps_per_epoch))
    use_scaler = cfg.amp == "fp16" and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    amp_ctx = autocast_for(cfg, device)

    start_epoch, start_batch, step = 0, 0, 0
    running = {"loss": 0.0, "top1": 0, "top5": 0, "n": 0, "time": 0.0}
    history: list[dict] = []
    best = {"top1": -1.0, "epoch": -1, "bad_epochs": 0}
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
        except (RuntimeError, ValueError, KeyError) as err:
            first = str(err).strip().splitlines()[0][:200]
            raise CheckpointError(f"the checkpoint does not fit this model: {first}") from None
        start_epoch, start_batch, step = state["epoch"], state["batch"], state["step"]
        running = dict(state.get("running") or running)
        history = list(state.get("history") or [])
        best = dict(state.get("best") or best)
        ckpt.set_rng_state(state["rng"])
        say(f"resuming {run_dir} at epoch {start_epoch + 1}, batch {start_batch} "
            f"(step {step})")
    else:
        torch.manual_seed(cfg.seed + info.rank)  # dropout differs across ranks, init does not

    net: nn.Module = model
    if info.enabled:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        net = torch.compile(net)

    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(run_dir / CONFIG_FILE, json.dumps(config, indent=2).encode())
    if state is None:
        c, h, w = config["input_size"]
        fr = config["resize"]["from"]
        say(f"training {cfg.model} on {p.data.name} ({n_train} train, "
            f"{len(p.val) if p.val else 0} val, {len(p.test)} test images, "
            f"{p.data.num_classes} classes) -> {run_dir}")
        if fr[1] is not None and (fr != config["input_size"]):
            say(f"input: {fr[0]}x{fr[1]}x{fr[2]} images converted to {c}x{h}x{w} "
                f"(channels {config['resize']['channels']})")
        if p.weights:
            say(f"weights: {p.weights['file']} (sha256 {p.weights['sha256'][:16]}...)")
        for line in p.notes:
            say(line)
        mom = f" momentum {cfg.momentum}" if cfg.optimizer == "sgd" else ""
        say(f"{cfg.optimizer} lr {cfg.lr}{mom} batch {cfg.batch_size} "
            f"{cfg.schedule} schedule, {cfg.epochs} epochs, seed {cfg.seed}, device {device}"
            + (f", {info.world_size} processes" if info.enabled else ""))

    def save_state(epoch_done: int, batch_done: int, running_now: dict) -> None:
        if not main:
            return
        ckpt.save_checkpoint(run_dir / ckpt.CHECKPOINT_FILE, {
            "config": json.dumps(config), "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if use_scaler else {},
            "epoch": epoch_done, "batch": batch_done, "step": step,
            "running": dict(running_now), "history": history, "best": dict(best),
            "rng": ckpt.rng_state()})

    delay = float(os.environ.get("CNNLAB_DEBUG_STEP_DELAY", "0") or 0)  # tests: slow steps
    t_start = time.time() - (history[-1]["time_s"] if history else 0.0)
    stopped_early = False
    for epoch in range(start_epoch, cfg.epochs):
        batches = _epoch_batches(n_train, cfg, epoch, info)
        first = start_batch if epoch == start_epoch else 0
        if first == 0:
            running = {"loss": 0.0, "top1": 0, "top5": 0, "n": 0, "time": 0.0}
        p.train.set_epoch(epoch)
        loader = DataLoader(p.train, batch_sampler=batches[first:], num_workers=cfg.num_workers,
                            generator=torch.Generator().manual_seed(cfg.seed + epoch),
                            persistent_workers=False)
        model.train()
        apply_frozen_modes(model, True)
        bar = _progress(sum(len(b) for b in batches) * info.world_size,
                        f"epoch {epoch + 1}/{cfg.epochs}", show)
        bar.update(sum(len(b) for b in batches[:first]) * info.world_size)
        t0 = time.perf_counter()
        for b, (x, y) in enumerate(loader, start=first):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with amp_ctx:
                out = net(x)
                loss = compute_loss(out, y, cfg.label_smoothing)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"the loss became {loss.item()} at epoch {epoch + 1}, step {step}; "
                    "lower the learning rate (--lr) or clip gradients (--clip-grad)")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.clip_grad:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            with torch.no_grad():
                c1, c5 = topk_correct(main_logits(out).float(), y)
            running["loss"] += loss.item() * len(y)
            running["top1"] += c1
            running["top5"] += c5
            running["n"] += len(y)
            bar.update(len(y) * info.world_size)
            if delay:
                time.sleep(delay)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and b + 1 < len(batches):
                run_now = dict(running, time=running["time"] + time.perf_counter() - t0)
                save_state(epoch, b + 1, run_now)
        bar.close()
        running["time"] += time.perf_counter() - t0
        sums = all_reduce_sum(torch.tensor([running["loss"], running["top1"], running["top5"],
                                            running["n"]], dtype=torch.float64), info)
        n = max(sums[3].item(), 1)
        row = {"epoch": epoch + 1, "step": step, "lr": optimizer.param_groups[0]["lr"],
               "train_loss": sums[0].item() / n, "train_top1": 100 * sums[1].item() / n,
               "train_top5": 100 * sums[2].item() / n,
               "val_loss": None, "val_top1": None, "val_top5": None,
               "images_per_s": n / max(running["time"], 1e-9),
               "epoch_time_s": running["time"], "time_s": time.time() - t_start}
        if p.val is not None:
            v = evaluate(model, p.val, cfg.batch_size * 2, device, info,
                         channels_last=cfg.channels_last, amp_ctx=amp_ctx)
            row.update(val_loss=v["loss"], val_top1=v["top1"], val_top5=v["top5"])
        history.append(row)
        say(f"epoch {epoch + 1:>3}/{cfg.epochs}  train loss {_fmt(row['train_loss'])} "
            f"acc {_fmt(row['train_top1'], True)}  val loss {_fmt(row['val_loss'])} "
            f"acc {_fmt(row['val_top1'], True)}  lr {row['lr']:.3g}  "
            f"{row['images_per_s']:.0f} img/s  {row['epoch_time_s']:.1f}s")
        if cfg.patience is not None and row["val_top1"] is not None:
            if row["val_top1"] > best["top1"]:
                best = {"top1": row["val_top1"], "epoch": epoch + 1, "bad_epochs": 0}
            else:
                best["bad_epochs"] += 1
        if main:
            write_metrics(run_dir, history)
            save_weights(model, run_dir / WEIGHTS_FILE)
        save_state(epoch + 1, 0, {"loss": 0.0, "top1": 0, "top5": 0, "n": 0, "time": 0.0})
        if cfg.patience is not None and best["bad_epochs"] >= cfg.patience:
            say(f"early stop: validation top-1 has not improved for {cfg.patience} epochs "
                f"(best {best['top1']:.2f}% at epoch {best['epoch']})")
            stopped_early = True
            break

    test = evaluate(model, p.test, cfg.batch_size * 2, device, info,
                    num_classes=p.data.num_classes, channels_last=cfg.channels_last,
                    amp_ctx=amp_ctx)
    sha = _weights_digest(model)
    digests = gather_objects(sha, info)
    if len(set(digests)) != 1:
        raise RuntimeError(f"the model replicas differ across ranks: {digests}")
    last = history[-1] if history else {}
    results = {"model": cfg.model, "data": p.data.name, "epochs": len(history),
               "stopped_early": stopped_early, "test_loss": test["loss"],
               "test_top1": test["top1"], "test_top5": test["top5"], "test_images": test["n"],
               "val_top1": last.get("val_top1"), "train_top1": last.get("train_top1"),
               "train_time_s": last.get("time_s"), "world_size": info.world_size,
               "weights_sha256": digests, "run_dir": str(run_dir)}
    if main:
        save_weights(model, run_dir / WEIGHTS_FILE)
        atomic_write_bytes(run_dir / "results.json", json.dumps(results, indent=2).encode())
        if cfg.plots and history:
            from .plots import plot_confusion, plot_curves
            plot_curves(history, run_dir)
            plot_confusion(test["confusion"], p.data.classes, run_dir / "confusion.png")
        rows = [["train (last epoch)", _fmt(last.get("train_loss")),
                 _fmt(last.get("train_top1"), True), _fmt(last.get("train_top5"), True)],
                ["validation", _fmt(last.get("val_loss")), _fmt(last.get("val_top1"), True),
                 _fmt(last.get("val_top5"), True)],
                ["test", _fmt(test["loss"]), _fmt(test["top1"], True), _fmt(test["top5"], True)]]
        say("")
        say(format_table(["split", "loss", "top-1", "top-5"], rows))
        say(f"\ntest accuracy {test['top1']:.2f}% after {len(history)} epochs in "
            f"{last.get('time_s', 0):.1f}s; run saved in {run_dir}")
    barrier(info)
    return results


def _weights_digest(model: nn.Module) -> str:
    import hashlib

    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


__all__ = ["CnnlabError", "TrainConfig", "compute_loss", "evaluate", "lr_factor",
           "prepare_model_and_data", "train"]
