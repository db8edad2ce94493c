"""SGD with momentum and a per-epoch learning-rate decay."""

from __future__ import annotations

import numpy as np

from ..errors import UsageError


class SGD:
    """Stochastic gradient descent with momentum, as in the course::

        v     = gamma * v + eta * grad
        theta = theta - v

    ``eta`` decays once per epoch: ``eta_e = lr * decay ** e`` (call :meth:`set_epoch`).
    ``model`` is anything with ``parameters()`` yielding ``(name, layer, key)``, the
    parameter being ``layer.params[key]`` and its gradient ``layer.grads[key]``; the velocity
    of each parameter lives here, keyed by its name.
    """

    def __init__(self, model, lr: float = 0.1, momentum: float = 0.9, decay: float = 1.0,
                 weight_decay: float = 0.0):
        if lr <= 0 or not 0 <= momentum < 1 or not 0 < decay <= 1 or weight_decay < 0:
            raise UsageError(f"need lr > 0, 0 <= momentum < 1, 0 < decay <= 1, weight_decay >= 0;"
                             f" got lr={lr}, momentum={momentum}, decay={decay}, "
                             f"weight_decay={weight_decay}")
        self.model, self.base_lr, self.lr = model, lr, lr
        self.momentum, self.decay, self.weight_decay = momentum, decay, weight_decay
        self.velocity: dict[str, np.ndarray] = {}

    def set_epoch(self, epoch: int) -> float:
        self.lr = self.base_lr * self.decay ** epoch
        return self.lr

    def step(self) -> None:
        for name, layer, key in self.model.parameters():
            p, g = layer.params[key], layer.grads[key]
            if self.weight_decay:
                g = g + self.weight_decay * p
            v = self.velocity.get(name)
            v = self.lr * g if v is None else self.momentum * v + self.lr * g
            self.velocity[name] = v
            p -= v  # in place: the layer sees the new value
