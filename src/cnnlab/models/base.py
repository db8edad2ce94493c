"""The contract every cnnlab model keeps.

* ``num_classes``, ``in_chans`` and ``num_features`` attributes;
* ``head_hidden_size``: the width of ``forward_head(x, pre_logits=True)``, the vector that
  feeds the final classifier (``num_features`` for most models; 4096 for AlexNet and VGG,
  whose fully connected layers come before it; 1280 for MobileNet v3 large; 84 for LeNet-5);
* ``forward_features(x)`` returns the last feature map (N, num_features, h, w);
* ``forward_head(x, pre_logits=False)`` pools and classifies (or stops before the
  classifier and returns the pooled vector, N x head_hidden_size, taken before the head's
  dropout in every family: in eval mode the same, in training mode not yet dropped out);
* ``forward(x)`` checks the input, then runs the two;
* ``min_input_size`` (H, W) is the smallest input the architecture takes; smaller inputs,
  and inputs with the wrong number of channels, raise :class:`~cnnlab.errors.InputShapeError`
  with a message that names the model, what it needs and what it got. One function,
  :func:`check_image_batch`, does that check however the model runs: eagerly, traced by
  ``torch.fx`` (it stays in the graph as one call), scripted (TorchScript compiles it) or
  exported (it runs on the example input's shapes). No ``forward`` in cnnlab branches in
  Python on a tensor's shape or builds module names at run time, so every model traces,
  scripts and exports (docs/interop.md).

The head API (timm's names):

* ``classifier_name`` (class attribute) is the dotted module path of the final classifier,
  ``get_classifier()`` returns that module (``fc``, ``classifier.6`` for VGG, ``head.fc`` for
  ResNet v2);
* ``classifier_names()`` lists the module paths of *every* classifier, the main one first,
  then the auxiliary heads' last layers that exist (``aux1.fc2``, ``aux2.fc2`` for GoogLeNet,
  ``AuxLogits.fc`` for Inception v3). They are the state_dict key prefixes whose shapes
  depend on ``num_classes``; ``classifier_keys()`` gives the keys themselves
  (``["fc.weight", "fc.bias", ...]``), e.g. to drop them from a checkpoint with another
  number of classes before ``load_state_dict(..., strict=False)``;
* ``reset_classifier(num_classes)`` replaces every classifier (auxiliary heads included) by a
  new one for ``num_classes`` classes, with PyTorch's default initialisation; ``0`` replaces
  them by ``nn.Identity``, so that ``forward`` returns the pooled pre-logits vector
  (N x head_hidden_size), as ``create_model(name, num_classes=0)`` does.

Models with auxiliary classifiers (GoogLeNet, Inception v3) return an :class:`AuxOutput` in
training mode. It carries the auxiliary logits *and their loss weights*, so the trainer and
the analysis tools handle every such model through this one type, never by its name.
"""

# No `from __future__ import annotations` in this file: TorchScript reads its annotations.

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn

from ..errors import InputShapeError, UsageError


class AuxOutput(NamedTuple):
    """Training-mode output of a model with auxiliary classifiers.

    The training loss is ``CE(logits) + sum(w * CE(a) for a, w in zip(aux_logits, aux_weights))``.
    The two sequences are lists (TorchScript has no variable-length tuples).
    """

    logits: torch.Tensor
    aux_logits: list[torch.Tensor]
    aux_weights: list[float]


@dataclass(frozen=True)
class FeatureSpec:
    """Where a model class's multi-scale feature maps are, as data (:mod:`cnnlab.features`
    reads it; timm's ``feature_info`` contract). Each model class declares its own as the
    class attribute ``feature_spec``; subclasses inherit it.

    ``trunk``: module paths in the order ``forward_features`` runs them. ``"a.*"`` is every
    child of ``a``; ``"a[:-1]"`` every child but the last; a wildcard in the last name
    (``"layer*"``) matches children in their registration order. ``nn.Identity`` steps are
    skipped. A map is tapped at the last step of each stride level. ``rest``: what
    ``forward_features`` runs after the trunk, not tapped (checked in the tests: trunk + rest
    == forward_features). ``tap_alias``: trunk step -> module applied to its output to make
    the tapped map (the module must not change its input in place). ``prologue``: ``model ->
    function`` applied to the input first, or None.
    """

    trunk: tuple
    rest: tuple = ()
    tap_alias: dict = field(default_factory=dict)
    prologue: Callable | None = None


# The taps of a model whose ``forward_features`` is ``self.features`` (an nn.Sequential).
SEQUENTIAL_FEATURES = FeatureSpec(trunk=("features.*",))


@torch.fx.wrap
def check_image_batch(x: torch.Tensor, name: str, in_chans: int, min_h: int, min_w: int) -> None:
    """Raise :class:`InputShapeError` unless ``x`` is N x ``in_chans`` x H x W with H >= ``min_h``
    and W >= ``min_w``; the message names the model, what it needs and what it got.

    One function for every way a model runs: called eagerly it checks the tensor; TorchScript
    compiles it (a scripted model raises the same message); ``torch.fx`` keeps it as one call
    in the graph (``torch.fx.wrap``), so a traced model checks its inputs too; ``torch.export``
    runs it on the example input's shapes while tracing and records nothing.
    """
    if x.dim() != 4:
        shape = ", ".join([str(s) for s in x.shape])
        raise InputShapeError(
            f"{name} expects a batch of images N x C x H x W, got a tensor of shape "
            f"({shape}); add a batch dimension with x.unsqueeze(0)")
    c, h, w = x.shape[1], x.shape[2], x.shape[3]
    if c != in_chans:
        raise InputShapeError(
            f"{name} was built for {in_chans}-channel input, got {c} channels; "
            f"build it with in_chans={c} or convert the images")
    if h < min_h or w < min_w:
        raise InputShapeError(
            f"{name} needs inputs of at least {min_h}x{min_w}, got {h}x{w}; resize the images")


def main_logits(output: torch.Tensor | AuxOutput) -> torch.Tensor:
    """The main classifier's logits, whatever the model returned (also the named tuple a
    scripted model returns, which TorchScript rebuilds as its own class)."""
    return output if isinstance(output, torch.Tensor) else output.logits


class ImageClassifier(nn.Module):
    """Base class: input checking and the features/head split. Subclasses build the layers."""

    __jit_unused_properties__ = ["display_name"]  # noqa: RUF012  (TorchScript reads this name)

    def __init__(self, num_classes: int, in_chans: int, min_input_size: int | tuple[int, int]):
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 0:
            raise UsageError(f"num_classes must be a non-negative integer, got {num_classes!r}")
        if not isinstance(in_chans, int) or in_chans < 1:
            raise UsageError(f"in_chans must be a positive integer, got {in_chans!r}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        if isinstance(min_input_size, int):
            min_input_size = (min_input_size, min_input_size)
        self.min_input_size = tuple(min_input_size)
        # The name in error messages; create_model sets the registered name.
        self.model_name = type(self).__name__.lower()

    #: Dotted module path of the final classifier; see :meth:`get_classifier`.
    classifier_name: str = "fc"
    #: Auxiliary classifiers' last layers, module path -> input width (only those that exist
    #: in a given model count; GoogLeNet built with ``aux_logits=False`` has none).
    aux_classifiers: dict[str, int] = {}

    @property
    def display_name(self) -> str:
        return self.model_name

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`InputShapeError` when ``x`` cannot go through this model."""
        mh, mw = self.min_input_size
        check_image_batch(x, self.model_name, self.in_chans, mh, mw)

    # --- head API ---------------------------------------------------------------------

    def get_classifier(self) -> nn.Module:
        """The final classifier (an ``nn.Identity`` when built with ``num_classes=0``)."""
        return self.get_submodule(self.classifier_name)

    def classifier_names(self) -> list[str]:
        """Module paths of every classifier: the main one, then the auxiliary heads present."""
        names = [self.classifier_name]
        for name in self.aux_classifiers:
            try:
                self.get_submodule(name)
            except AttributeError:  # the head was not built (aux_logits=False)
                continue
            names.append(name)
        return names

    def classifier_keys(self) -> list[str]:
        """The state_dict keys of every classifier (those that depend on ``num_classes``)."""
        prefixes = tuple(f"{name}." for name in self.classifier_names())
        return [k for k in self.state_dict() if k.startswith(prefixes)]

    def make_classifier(self, in_features: int, num_classes: int) -> nn.Module:
        """A new classifier layer: linear, or ``nn.Identity`` for ``num_classes=0``."""
        return nn.Linear(in_features, num_classes) if num_classes else nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        """Replace every classifier by a fresh one for ``num_classes`` (0: pre-logits output)."""
        if not isinstance(num_classes, int) or num_classes < 0:
            raise UsageError(f"num_classes must be a non-negative integer, got {num_classes!r}")
        for name in self.classifier_names():
            width = self.aux_classifiers.get(name, self.head_hidden_size)
            new = self.make_classifier(width, num_classes)
            ref = next(self.parameters(), None)
            if ref is not None:
                new = new.to(device=ref.device, dtype=ref.dtype)
            self.set_submodule(name, new)
        self.num_classes = num_classes

    # --- forward -----------------------------------------------------------------------

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, self.model_name, self.in_chans, self.min_input_size[0],
                          self.min_input_size[1])
        return self.forward_head(self.forward_features(x))


class AuxClassifier(ImageClassifier):
    """A model with auxiliary classifiers on intermediate features (GoogLeNet, Inception v3).

    Subclasses implement ``forward_trunk(x) -> (features, aux_logits)``, returning the
    auxiliary heads' logits only in training mode when the heads exist, and set
    ``aux_weights`` (one loss weight per head). ``forward`` then returns an
    :class:`AuxOutput` while training with heads, plain logits otherwise.
    """

    aux_weights: tuple[float, ...] = ()
    __constants__ = ["aux_weights"]  # noqa: RUF012  (TorchScript reads the class attribute)

    def forward_trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_trunk(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor | AuxOutput:
        check_image_batch(x, self.model_name, self.in_chans, self.min_input_size[0],
                          self.min_input_size[1])
        feats, aux = self.forward_trunk(x)
        logits = self.forward_head(feats)
        if len(aux) > 0:
            weights: list[float] = []
            for w in self.aux_weights:
                weights.append(w)
            return AuxOutput(logits, aux, weights)
        return logits
