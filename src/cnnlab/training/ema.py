"""An exponential moving average of a model's weights (``cnnlab train --ema DECAY``).

After every optimizer step each floating-point entry of the state dict (parameters and
BatchNorm running statistics) moves towards the model's::

    ema = decay * ema + (1 - decay) * model

and the other entries (BatchNorm's ``num_batches_tracked``) are copied, as timm's
``ModelEmaV2``/``V3`` do. The average starts as a copy of the model when training starts.
It is validated every epoch (``val_ema_*`` in metrics.jsonl), tested at the end
(``test_ema_*`` in results.json), kept in the checkpoint (so ``--resume`` continues it bit for
bit) and saved as ``model_ema.safetensors`` beside ``model.safetensors``; ``cnnlab evaluate``
and ``cnnlab predict`` use it when it is there and say so.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import UsageError

EMA_WEIGHTS_FILE = "model_ema.safetensors"


class ModelEma:
    """The averaged copy ``module`` of a model (eval mode, no gradients)."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise UsageError(f"EMA decay must be between 0 and 1, exclusive, got {decay}")
        self.decay = float(decay)
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One step of the average towards ``model``'s current weights."""
        ema, cur = self.module.state_dict(), model.state_dict()
        floats_e, floats_m = [], []
        for k, e in ema.items():
            m = cur[k].detach()
            if e.is_floating_point():
                floats_e.append(e)
                floats_m.append(m.to(e.dtype))
            else:
                e.copy_(m)
        if floats_e:  # e + (1 - d) (m - e) = d e + (1 - d) m
            torch._foreach_lerp_(floats_e, floats_m, 1.0 - self.decay)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)

    def __repr__(self) -> str:
        return f"ModelEma(decay={self.decay})"
