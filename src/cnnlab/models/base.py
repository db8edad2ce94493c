"""The contract every cnnlab model keeps.

* ``num_classes``, ``in_chans`` and ``num_features`` attributes;
* ``forward_features(x)`` returns the last feature map (N, num_features, h, w);
* ``forward_head(x, pre_logits=False)`` pools and classifies (or stops before the
  classifier and returns the pooled vector);
* ``forward(x)`` checks the input, then runs the two;
* ``min_input_size`` (H, W) is the smallest input the architecture takes; smaller inputs,
  and inputs with the wrong number of channels, raise :class:`~cnnlab.errors.InputShapeError`
  with a message that names the model, what it needs and what it got.

Models with auxiliary classifiers (GoogLeNet, Inception v3) return an :class:`AuxOutput` in
training mode. It carries the auxiliary logits *and their loss weights*, so the trainer and
the analysis tools handle every such model through this one type, never by its name.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..errors import InputShapeError


class AuxOutput(NamedTuple):
    """Training-mode output of a model with auxiliary classifiers.

    The training loss is ``CE(logits) + sum(w * CE(a) for a, w in zip(aux_logits, aux_weights))``.
    """

    logits: torch.Tensor
    aux_logits: tuple[torch.Tensor, ...]
    aux_weights: tuple[float, ...]


def main_logits(output: torch.Tensor | AuxOutput) -> torch.Tensor:
    """The main classifier's logits, whatever the model returned."""
    return output.logits if isinstance(output, AuxOutput) else output


class ImageClassifier(nn.Module):
    """Base class: input checking and the features/head split. Subclasses build the layers."""

    def __init__(self, num_classes: int, in_chans: int, min_input_size: int | tuple[int, int]):
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be a non-negative integer, got {num_classes!r}")
        if not isinstance(in_chans, int) or in_chans < 1:
            raise ValueError(f"in_chans must be a positive integer, got {in_chans!r}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        if isinstance(min_input_size, int):
            min_input_size = (min_input_size, min_input_size)
        self.min_input_size = tuple(min_input_size)

    @property
    def display_name(self) -> str:
        return getattr(self, "model_name", type(self).__name__.lower())

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`InputShapeError` when ``x`` cannot go through this model."""
        name = self.display_name
        if x.dim() != 4:
            raise InputShapeError(
                f"{name} expects a batch of images N x C x H x W, got a tensor of shape "
                f"{tuple(x.shape)}; add a batch dimension with x.unsqueeze(0)"
            )
        c, h, w = x.shape[1:]
        if c != self.in_chans:
            raise InputShapeError(
                f"{name} was built for {self.in_chans}-channel input, got {c} channels; "
                f"build it with in_chans={c} or convert the images"
            )
        mh, mw = self.min_input_size
        if h < mh or w < mw:
            raise InputShapeError(
                f"{name} needs inputs of at least {mh}x{mw}, got {h}x{w}; resize the images"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor):
        self.check_input(x)
        return self.forward_head(self.forward_features(x))


class AuxClassifier(ImageClassifier):
    """A model with auxiliary classifiers on intermediate features (GoogLeNet, Inception v3).

    Subclasses implement ``forward_trunk(x) -> (features, aux_logits)``, returning the
    auxiliary heads' logits only in training mode when the heads exist, and set
    ``aux_weights`` (one loss weight per head). ``forward`` then returns an
    :class:`AuxOutput` while training with heads, plain logits otherwise.
    """

    aux_weights: tuple[float, ...] = ()

    def forward_trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_trunk(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor | AuxOutput:
        self.check_input(x)
        feats, aux = self.forward_trunk(x)
        logits = self.forward_head(feats)
        return AuxOutput(logits, tuple(aux), tuple(self.aux_weights)) if aux else logits
