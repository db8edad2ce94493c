"""The epoch loop: one optimizer step, one training epoch, one evaluation.

Each piece takes what it needs and nothing else, so it can be tested alone:

* :func:`compute_loss` - cross-entropy (with label smoothing) plus the weighted auxiliary losses
  of an :class:`~cnnlab.models.base.AuxOutput`;
* :func:`lr_factor` - the schedule as a function of the optimizer step;
* :func:`param_groups` / :func:`make_optimizer` - which parameters are trained and at what rate
  (one function to change for frozen layers or a head learning rate);
* :func:`set_train_mode` - the model's train/eval switch (one function to change for frozen
  BatchNorm layers);
* :func:`epoch_batches` / :func:`iterate_batches` - the seeded order of an epoch and its batches
  (an in-memory data set is indexed a batch at a time, not item by item);
* :func:`train_one_epoch` - the steps of one epoch, reporting to the callbacks;
* :func:`evaluate` - loss, top-1/top-5 and the confusion matrix on a data set.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from ..data import Prepared
from ..errors import TrainingDivergedError as DivergedError
from ..models.base import AuxOutput, main_logits
from .config import TrainConfig
from .distributed import DistInfo, all_reduce_sum, nonfinite_losses
from .metrics import confusion_matrix, topk_correct

# --------------------------------------------------------------------------- the pieces

def compute_loss(output, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy of the main logits, plus ``w * CE`` of every auxiliary classifier."""
    if isinstance(output, AuxOutput):
        loss = F.cross_entropy(output.logits, target, label_smoothing=label_smoothing)
        for aux, w in zip(output.aux_logits, output.aux_weights, strict=True):
            loss = loss + w * F.cross_entropy(aux, target, label_smoothing=label_smoothing)
        return loss
    return F.cross_entropy(output, target, label_smoothing=label_smoothing)


# LeCun et al. (1998), section III.C: 0.0005 for 2 passes, 0.0002 for 3, 0.0001 for 3,
# 0.00005 for 4, then 0.00001; as multiples of the first rate, one per epoch (the last one
# for every later epoch). ``--schedule lecun1998`` multiplies ``--lr`` by them.
LECUN1998_FACTORS = (1.0, 1.0, 0.4, 0.4, 0.4, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1, 0.02)


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
        if cfg.schedule == "lecun1998":
            epoch = min(step // steps_per_epoch, len(LECUN1998_FACTORS) - 1)
            return LECUN1998_FACTORS[epoch]
        low = 1e-4 if cfg.schedule == "onecycle" else 0.0
        return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

    return factor


def param_groups(cfg: TrainConfig, model: nn.Module) -> list[dict]:
    """The optimizer's parameter groups: every trainable parameter at ``cfg.lr``.

    This is the one place that decides what is trained and at which rate; freezing layers
    (``requires_grad=False``) or a separate rate for the head are changes to this function.
    """
    from .finetune import split_param_groups  # --head-lr: the classifier in its own group

    return split_param_groups(model, cfg.lr, cfg.head_lr)


def make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    groups = param_groups(cfg, model)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def set_train_mode(model: nn.Module, training: bool) -> None:
    """Switch ``model`` between training and evaluation mode (dropout, BatchNorm statistics).

    The trainer calls only this; keeping frozen BatchNorm layers in eval mode while the rest
    trains is a change to this function.
    """
    from .finetune import apply_frozen_modes  # --freeze: the frozen part stays in eval mode

    model.train(training)
    apply_frozen_modes(model, training)


def autocast_for(cfg: TrainConfig, device: torch.device):
    if cfg.amp == "none":
        return nullcontext()
    dtype = torch.bfloat16 if cfg.amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


# --------------------------------------------------------------------------- batches

def epoch_batches(n: int, cfg: TrainConfig, epoch: int, info: DistInfo) -> list[list[int]]:
    """This rank's batches of epoch ``epoch``: a ``DistributedSampler`` order seeded with
    (seed, epoch), cut into batches; a last batch of one image is dropped (BatchNorm)."""
    sampler = DistributedSampler(range(n), num_replicas=info.world_size, rank=info.rank,
                                 shuffle=True, seed=cfg.seed, drop_last=False)
    sampler.set_epoch(epoch)
    idx = list(sampler)
    batches = [idx[i:i + cfg.batch_size] for i in range(0, len(idx), cfg.batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()  # a batch of one breaks BatchNorm; its image is seen next epoch
    return batches


def in_memory(ds) -> bool:
    """Is ``ds`` a :class:`~cnnlab.data.Prepared` whose prepared images are one tensor?"""
    return isinstance(ds, Prepared) and ds.in_memory


def iterate_batches(ds, batches: list[list[int]], num_workers: int = 0, seed: int = 0):
    """Yield ``(x, y)`` for each list of indices in ``batches``.

    An in-memory data set (the prepared images cached as one tensor, as the digits, MNIST,
    CIFAR and synthetic data are) is indexed one batch at a time: the same tensors as
    ``DataLoader`` + ``default_collate`` of its items, without a Python call per image (only
    augmentation, seeded per image, still runs per image). Other data sets, or
    ``num_workers > 0``, go through a ``DataLoader``.
    """
    if num_workers == 0 and in_memory(ds):
        for b in batches:
            yield ds.batch(b)
        return
    loader = DataLoader(ds, batch_sampler=batches, num_workers=num_workers,
                        generator=torch.Generator().manual_seed(seed),
                        persistent_workers=False)
    yield from loader


# --------------------------------------------------------------------------- one epoch

@dataclass
class EpochSums:
    """Sums over the steps of the epoch in progress (checkpointed mid-epoch).

    Top-1/top-5 cost nothing per step: the detached logits and targets of the steps are kept
    (a list append) and counted together by :meth:`fold` (one rank computation over all of
    them) when about a million logits are pending, and when the sums are read.
    """

    loss: float = 0.0
    top1: int = 0
    top5: int = 0
    n: int = 0
    time: float = 0.0
    lr: float | None = None            # the learning rate of the epoch's first step
    pending: list = field(default_factory=list, repr=False)
    pending_size: int = field(default=0, repr=False)

    FOLD_AT = 2**20                    # pending logits (rows x classes) before counting

    def add(self, loss: float, logits: torch.Tensor, target: torch.Tensor) -> None:
        self.loss += loss * len(target)
        self.n += len(target)
        self.pending.append((logits.detach(), target))
        self.pending_size += logits.numel()
        if self.pending_size >= self.FOLD_AT:
            self.fold()

    def fold(self) -> None:
        """Count the pending steps' top-1/top-5 into ``top1``/``top5``."""
        if not self.pending:
            return
        with torch.no_grad():
            logits = torch.cat([lg for lg, _ in self.pending]).float()
            target = torch.cat([t for _, t in self.pending])
            c1, c5 = topk_correct(logits, target)
        self.top1 += c1
        self.top5 += c5
        self.pending, self.pending_size = [], 0

    def snapshot(self, elapsed: float = 0.0) -> dict:
        """JSON-able sums (for the checkpoint), with ``elapsed`` seconds added to the time."""
        self.fold()
        return {"loss": self.loss, "top1": self.top1, "top5": self.top5, "n": self.n,
                "time": self.time + elapsed, "lr": self.lr}

    @classmethod
    def from_snapshot(cls, d: dict | None) -> EpochSums:
        d = d or {}
        return cls(loss=d.get("loss", 0.0), top1=d.get("top1", 0), top5=d.get("top5", 0),
                   n=d.get("n", 0), time=d.get("time", 0.0), lr=d.get("lr"))


@dataclass
class TrainState:
    """Where a run is: everything besides the model/optimizer that a checkpoint holds."""

    epoch: int = 0                     # epochs completed
    batch: int = 0                     # batches done in the current epoch
    step: int = 0                      # optimizer steps so far
    sums: EpochSums = field(default_factory=EpochSums)
    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"top1": -1.0, "epoch": -1, "bad_epochs": 0})
    elapsed: float = 0.0               # seconds into the epoch in progress (not yet in sums)

    def to_checkpoint(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch, "step": self.step,
                "running": self.sums.snapshot(self.elapsed), "history": self.history,
                "best": dict(self.best)}

    @classmethod
    def from_checkpoint(cls, state: dict) -> TrainState:
        s = cls(epoch=state["epoch"], batch=state["batch"], step=state["step"],
                sums=EpochSums.from_snapshot(state.get("running")),
                history=list(state.get("history") or []))
        if state.get("best"):
            s.best = dict(state["best"])
        return s


@dataclass
class Learner:
    """What one optimizer step needs: the model (and its DDP/compiled wrapper ``net``), the
    optimizer, schedule, gradient scaler and the run's settings."""

    cfg: TrainConfig
    model: nn.Module
    net: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    device: torch.device
    info: DistInfo = field(default_factory=DistInfo)
    amp_ctx: object = field(default_factory=nullcontext)
    mix: object = None                 # data.augment.MixCut: mixup / cutmix of each batch
    ema: object = None                 # training.ema.ModelEma: updated after each step

    def step(self, x: torch.Tensor, y: torch.Tensor, where: str, step: int = 0):
        """Forward, loss, backward, (clip), optimizer and schedule step. Returns the loss, the
        model's output and the targets on the device. A loss that is not finite raises
        :class:`DivergedError` (``where`` says which epoch and step). With ``mix`` the batch
        is mixed (draws seeded by the run's seed and ``step``) and the loss is taken against
        the mixed soft targets; the returned targets stay the hard labels."""
        cfg = self.cfg
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        target = y
        if self.mix is not None:
            from ..data.augment import batch_seed

            x, target = self.mix(x, y, batch_seed(cfg.seed, step))
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self.amp_ctx:
            out = self.net(x)
            loss = compute_loss(out, target, cfg.label_smoothing)
        value = loss.item()
        bad = [] if math.isfinite(value) else [(self.info.rank, value)]
        if self.info.enabled:  # a NaN on any rank stops every rank at this step (no one waits)
            bad = nonfinite_losses(value, self.info, loss.device)
        if bad:
            on = (" on " + ", ".join(f"rank {r} ({v})" for r, v in bad)
                  if self.info.enabled else "")
            raise DivergedError(f"the loss became {bad[0][1]}{on} at {where}; lower the "
                                "learning rate (--lr) or clip gradients (--clip-grad)")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if cfg.clip_grad:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return value, out, y


def train_one_epoch(learner: Learner, ds, state: TrainState, epoch: int, callbacks=()) -> dict:
    """Train epoch ``epoch`` from batch ``state.batch`` on; returns its metrics row.

    ``state`` is updated as the steps go (batch, step, sums), so a callback can checkpoint it
    at any step; each callback's ``on_step_end(state, epoch, n_images)`` is called after every
    step, ``on_epoch_start(state, epoch, batches)`` before the first.
    """
    cfg, info = learner.cfg, learner.info
    batches = epoch_batches(len(ds), cfg, epoch, info)
    if state.batch == 0:
        state.sums = EpochSums()
    if isinstance(ds, Prepared):
        ds.set_epoch(epoch)
    set_train_mode(learner.model, True)
    for cb in callbacks:
        cb.on_epoch_start(state, epoch, batches)
    sums = state.sums
    t0 = time.perf_counter()
    for x, y in iterate_batches(ds, batches[state.batch:], cfg.num_workers, cfg.seed + epoch):
        if sums.lr is None:
            sums.lr = learner.optimizer.param_groups[0]["lr"]
        loss, out, y = learner.step(x, y, f"epoch {epoch + 1}, step {state.step}", state.step)
        state.step += 1
        state.batch += 1
        sums.add(loss, main_logits(out), y)
        state.elapsed = time.perf_counter() - t0
        for cb in callbacks:
            cb.on_step_end(state, epoch, len(y))
    sums.time += time.perf_counter() - t0
    state.elapsed = 0.0
    snap = sums.snapshot()
    totals = all_reduce_sum(torch.tensor([snap["loss"], snap["top1"], snap["top5"], snap["n"]],
                                         dtype=torch.float64), info)
    n = max(totals[3].item(), 1)
    return {"epoch": epoch + 1, "step": state.step, "lr": snap["lr"],
            "train_loss": totals[0].item() / n, "train_top1": 100 * totals[1].item() / n,
            "train_top5": 100 * totals[2].item() / n,
            "val_loss": None, "val_top1": None, "val_top5": None,
            "images_per_s": n / max(sums.time, 1e-9), "epoch_time_s": sums.time}


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
    set_train_mode(model, False)
    indices = list(range(info.rank, len(ds), info.world_size))
    batches = [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]
    n_cls = num_classes or 0
    sums = torch.zeros(4, dtype=torch.float64)  # loss*n, top1, top5, n
    cm = torch.zeros(n_cls, n_cls, dtype=torch.int64)
    try:
        _evaluate_batches(model, ds, batches, device, channels_last, amp_ctx, sums, cm, n_cls)
    finally:  # the model's train/eval mode comes back even when a batch raises
        set_train_mode(model, was_training)
    all_reduce_sum(sums, info)
    if n_cls:
        all_reduce_sum(cm, info)
    n = max(sums[3].item(), 1)
    return {"loss": sums[0].item() / n, "top1": 100 * sums[1].item() / n,
            "top5": 100 * sums[2].item() / n, "n": int(sums[3].item()), "confusion": cm}


def _evaluate_batches(model, ds, batches, device, channels_last, amp_ctx, sums, cm,
                      n_cls: int) -> None:
    """Add each batch's loss, top-1, top-5 and count to ``sums`` and its confusion to ``cm``."""
    for x, y in iterate_batches(ds, batches):
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
