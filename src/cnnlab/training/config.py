"""The settings of a training run (:class:`TrainConfig`) and the default thread count.

``TrainConfig`` holds every option of ``cnnlab train``; it is JSON-serialisable and stored in
the run's ``config.json`` (under ``"train"``) and in its checkpoint. :func:`choose_threads`
picks torch's CPU thread count when ``--threads`` is not given.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle", "lecun1998")
AUGMENTS = ("auto", "none", "crop", "flip", "crop+flip", "distort", "rrc", "trivial",
            "randaugment")
PHOTO_RECIPES = ("rrc", "trivial", "randaugment")  # random-resized crop (+ a policy), flip
AMP_MODES = ("none", "bf16", "fp16")
NAMED_DATA = ("digits", "synthetic")
FREEZE_CHOICES = ("none", "features")

# Options that --resume may change (recorded in config.json's "resumed" list); any other
# option given with --resume must equal the run's (see trainer.resume_config).
RESUME_SAFE = ("epochs", "patience", "checkpoint_every", "num_workers", "threads", "device",
               "plots", "cache")
MAX_WORKERS = 8  # the automatic --workers never exceeds this


@dataclass
class TrainConfig:
    """Every setting of a training run (all JSON-serialisable; stored in the checkpoint)."""

    model: str
    data: str = "digits"
    data_format: str = "auto"
    skip_bad: bool = False                             # leave out unreadable files of a folder
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
    crop_scale: list[float] | None = None              # random-resized crop area fraction
    crop_ratio: list[float] | None = None              # and aspect w/h (None: 0.08-1, 3/4-4/3)
    randaugment_ops: int = 2                           # RandAugment N and M (torchvision's)
    randaugment_magnitude: int = 9
    mixup: float = 0.0                                 # Beta(alpha, alpha); 0: off
    cutmix: float = 0.0
    random_erase: float = 0.0                          # probability
    ema: float | None = None                           # EMA decay of the weights; None: off
    cache: bool = False                                # keep decoded folder images in memory
    checkpoint_every: int = 0                          # steps; 0: at the end of epochs only
    num_workers: int | None = None                     # None: chosen from the usable cores
    threads: int | None = None                         # torch CPU threads; None: choose_threads
    device: str = "auto"
    runs_dir: str = "runs"
    name: str | None = None
    plots: bool = True
    deterministic: bool = False
    weights: str | None = None                         # start from this file / cnnlab run
    weights_sha256: str | None = None
    freeze: str = "none"                               # "features": train the classifier only
    head_lr: float | None = None                       # the classifier's own learning rate
    mean: list[float] | None = None                    # normalisation (see training.finetune)
    std: list[float] | None = None

    def validate(self) -> None:
        def bad(msg):
            raise UsageError(msg)
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
        if self.threads is not None:
            check_threads(self.threads)
        if (self.num_workers or 0) > 4 * usable_cores():  # each is a process: 10**12 of them...
            bad(f"--workers {self.num_workers} is more than 4 per usable core "
                f"({usable_cores()} cores); give at most {4 * usable_cores()}")
        if self.checkpoint_every < 0 or (self.num_workers or 0) < 0:
            bad("checkpoint interval and worker count must be >= 0")
        self._validate_recipe(bad)
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
            if v is not None and (not v or (key == "std" and min(v) <= 0)):
                bad(f"--{key} takes one value or one per channel (std > 0), got {v}")
        if self.name is not None and (not self.name or "/" in self.name
                                      or self.name in (".", "..")):
            bad(f"run name must be a plain folder name, got {self.name!r}")

        for key in ("lr", "momentum", "weight_decay", "warmup_epochs", "gamma",
                    "label_smoothing", "clip_grad", "head_lr", "mean", "std"):
            v = getattr(self, key)
            if v is not None and not all(math.isfinite(x) for x in
                                         (v if isinstance(v, (list, tuple)) else [v])):
                bad(f"--{key.replace('_', '-')} must be a finite number, got {_plain(v)}")

    def _validate_recipe(self, bad) -> None:
        """The photo-recipe settings (--mixup, --cutmix, --random-erase, --ema, crop ranges)."""
        import math

        from ..data.augment import check_range

        for flag, a in (("--mixup", self.mixup), ("--cutmix", self.cutmix)):
            if not (isinstance(a, (int, float)) and math.isfinite(a) and a >= 0):
                bad(f"{flag} alpha must be a number >= 0 (e.g. 0.2 or 1.0; 0 is off), got {a}")
        if not 0 <= self.random_erase <= 1:
            bad(f"--random-erase is a probability in [0, 1] (e.g. 0.25), got {self.random_erase}")
        if self.ema is not None and not 0 < self.ema < 1:
            bad(f"--ema decay must be between 0 and 1, exclusive (e.g. 0.999), got {self.ema}")
        for flag, r in (("--crop-scale", self.crop_scale), ("--crop-ratio", self.crop_ratio)):
            if r is not None:
                try:
                    check_range(flag, r, upper=1.0 if flag == "--crop-scale" else None)
                except ValueError as err:
                    bad(str(err))
        if not 0 <= self.randaugment_magnitude < 31 or self.randaugment_ops < 0:
            bad("--randaugment-magnitude must be in 0..30 and --randaugment-ops >= 0, got "
                f"{self.randaugment_magnitude} and {self.randaugment_ops}")
        recipe_only = [f for f, on in (("--crop-scale", self.crop_scale is not None),
                                       ("--crop-ratio", self.crop_ratio is not None),
                                       ("--random-erase", self.random_erase > 0)) if on]
        if recipe_only and self.augment not in PHOTO_RECIPES + ("auto",):
            bad(f"{', '.join(recipe_only)} belong to the photo recipes: use them with --augment "
                f"{'|'.join(PHOTO_RECIPES)}, not --augment {self.augment}")

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


def _plain(v):
    return " ".join(str(x) for x in v) if isinstance(v, (list, tuple)) else v


def absolute_data(spec: str) -> str:
    """``digits`` and ``synthetic[:...]`` as given; a folder as an absolute path, so that a run
    can be evaluated or resumed from any working directory."""
    spec = str(spec)
    if spec.split(":")[0] in NAMED_DATA:
        return spec
    try:
        return str(Path(spec).expanduser().resolve())
    except RuntimeError:  # Python 3.11's "Symlink loop from ..."
        from ..errors import DataError

        raise DataError(f"{spec}: a loop of symbolic links (a link that leads back to itself);"
                        " fix or remove it") from None


def choose_workers(cores: int | None = None) -> tuple[int, str]:
    """DataLoader workers for a run that did not give ``--workers``: one per usable core but
    one (the main process trains), at most :data:`MAX_WORKERS`; 0 on a single core."""
    cores = usable_cores() if cores is None else cores
    n = max(0, min(MAX_WORKERS, cores - 1))
    return n, f"auto: {cores} usable cores"


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_threads(n: int, flag: str = "--threads") -> None:
    """Refuse more threads than the usable cores: ``--threads 100000`` made torch start that
    many OpenMP threads and die with a segmentation fault."""
    cores = usable_cores()
    if n > cores:
        raise UsageError(f"{flag} {n} is more than the {cores} usable cores of this machine; "
                         f"give at most {cores}")


def choose_threads(processes: int = 1) -> tuple[int, str]:
    """torch's CPU thread count for a run that did not ask for one, and why.

    The usable cores (``os.sched_getaffinity``) are shared by the ``processes`` of this run on
    this machine (torchrun's ``LOCAL_WORLD_SIZE``); the one-minute load average
    (``os.getloadavg``) says how many of them other programs keep busy. Each process takes
    ``round((cores - load) / processes)`` threads, at least 1 and at most torch's own default
    (its count of physical cores): on a busy machine, threads that wait for a core make every
    step wait for the slowest one (issue 16 measured 2 threads at 1.8-2.3x the time of 1 as soon
    as one of 2 cores was busy).
    """
    cores = usable_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    processes = max(1, processes)
    free = max(0.0, cores - load)
    n = max(1, min(_torch_default_threads(), round(free / processes)))
    return n, f"auto: {cores} usable cores, load {load:.2f}, {processes} process(es)"


_TORCH_DEFAULT: list[int] = []


def _torch_default_threads() -> int:
    """torch's own default, read once (before a run changes it with ``set_num_threads``)."""
    if not _TORCH_DEFAULT:
        import torch

        _TORCH_DEFAULT.append(torch.get_num_threads())
    return _TORCH_DEFAULT[0]
