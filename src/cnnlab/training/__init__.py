"""Training: the trainer, checkpoints, metrics, plots and multi-process set-up."""

from .trainer import TrainConfig, compute_loss, evaluate, train

__all__ = ["TrainConfig", "compute_loss", "evaluate", "train"]
