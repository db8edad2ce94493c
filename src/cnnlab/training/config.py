"""The settings of a training run: :class:`TrainConfig` and the choices of its options.

No torch here, so that ``cnnlab train --help`` can show the defaults without importing it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

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
