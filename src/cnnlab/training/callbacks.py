"""Callbacks of the epoch loop: progress bar, metrics, early stopping, checkpoints.

The loop (:func:`~cnnlab.training.loop.train_one_epoch` and the trainer around it) calls, in
the order of the list it is given:

* ``on_epoch_start(state, epoch, batches)`` before the first step of an epoch;
* ``on_step_end(state, epoch, n_images)`` after every optimizer step (``state.step`` and
  ``state.batch`` already count it);
* ``on_epoch_end(state, row)`` after an epoch's metrics (``row``, validation included) are
  known and ``state`` has moved to the next epoch (``state.epoch`` epochs done, batch 0);
* ``on_train_end(state)`` once, when the loop ends (normally, early, or by an error).

A callback that sets ``stop = True`` ends training after the current epoch. Each one is a few
lines and can be tested with a hand-made :class:`~cnnlab.training.loop.TrainState`.
"""

from __future__ import annotations

import time


class Callback:
    stop = False

    def on_epoch_start(self, state, epoch: int, batches: list[list[int]]) -> None:
        pass

    def on_step_end(self, state, epoch: int, n_images: int) -> None:
        pass

    def on_epoch_end(self, state, row: dict) -> None:
        pass

    def on_train_end(self, state) -> None:
        pass


def _fmt(v, pct=False):
    if v is None:
        return "-"
    return f"{v:.2f}%" if pct else f"{v:.4f}"


class ProgressBar(Callback):
    """A tqdm bar per epoch (images/s, ETA), counting the images of every rank."""

    def __init__(self, epochs: int, world_size: int = 1, enabled: bool = True):
        self.epochs, self.world, self.enabled, self.bar = epochs, world_size, enabled, None

    def on_epoch_start(self, state, epoch, batches):
        if not self.enabled:
            return
        from tqdm import tqdm

        self.bar = tqdm(total=sum(len(b) for b in batches) * self.world,
                        desc=f"epoch {epoch + 1}/{self.epochs}", unit="img", unit_scale=True,
                        leave=False, dynamic_ncols=True)
        self.bar.update(sum(len(b) for b in batches[:state.batch]) * self.world)

    def on_step_end(self, state, epoch, n_images):
        if self.bar is not None:
            self.bar.update(n_images * self.world)

    def on_epoch_end(self, state, row):
        self.on_train_end(state)

    def on_train_end(self, state):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class MetricsLogger(Callback):
    """Adds each epoch's row to the history, prints one line, appends it to the metric files
    of the run folder (``run`` may be None: nothing written)."""

    def __init__(self, epochs: int, run=None, say=print):
        self.epochs, self.run, self.say = epochs, run, say

    def on_epoch_end(self, state, row):
        state.history.append(row)
        self.say(f"epoch {row['epoch']:>3}/{self.epochs}  train loss {_fmt(row['train_loss'])} "
                 f"acc {_fmt(row['train_top1'], True)}  val loss {_fmt(row['val_loss'])} "
                 f"acc {_fmt(row['val_top1'], True)}  lr {row['lr']:.3g}  "
                 f"{row['images_per_s']:.0f} img/s  {row['epoch_time_s']:.1f}s")
        if self.run is not None:
            self.run.append_metrics(row)


class EarlyStopping(Callback):
    """Stop when validation top-1 has not improved for ``patience`` epochs (state.best holds
    the best top-1, its epoch and the epochs since, and is checkpointed)."""

    def __init__(self, patience: int | None, say=print):
        self.patience, self.say = patience, say

    def on_epoch_end(self, state, row):
        if self.patience is None or row.get("val_top1") is None:
            return
        best = state.best
        if row["val_top1"] > best["top1"]:
            state.best = {"top1": row["val_top1"], "epoch": row["epoch"], "bad_epochs": 0}
        else:
            best["bad_epochs"] += 1
        if state.best["bad_epochs"] >= self.patience:
            self.say(f"early stop: validation top-1 has not improved for {self.patience} "
                     f"epochs (best {state.best['top1']:.2f}% at epoch {state.best['epoch']})")
            self.stop = True


class Checkpointing(Callback):
    """The weights and a checkpoint at the end of every epoch, and a checkpoint every
    ``every`` optimizer steps inside an epoch (``every=0``: at epoch ends only).

    ``snapshot()`` returns the model/optimizer/... part of the checkpoint (see
    :meth:`~cnnlab.training.trainer.Trainer.checkpoint`); the state adds where the run is.
    """

    def __init__(self, run, snapshot, save_weights, every: int = 0):
        self.run, self.snapshot, self.save_weights, self.every = run, snapshot, save_weights, every
        self.n_batches = 0

    def on_epoch_start(self, state, epoch, batches):
        self.n_batches = len(batches)

    def on_step_end(self, state, epoch, n_images):
        if self.every and state.step % self.every == 0 and state.batch < self.n_batches:
            self.save(state)

    def on_epoch_end(self, state, row):
        self.save_weights()
        self.save(state)

    def save(self, state) -> None:
        self.run.save_checkpoint({**self.snapshot(), **state.to_checkpoint()})


class StepDelay(Callback):
    """Sleep after each step (tests set ``CNNLAB_DEBUG_STEP_DELAY`` to catch a run mid-epoch)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def on_step_end(self, state, epoch, n_images):
        time.sleep(self.seconds)
