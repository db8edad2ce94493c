"""EfficientNet B0-B7 and the compound scaling rule (Tan & Le 2019, "EfficientNet: Rethinking
model scaling for convolutional neural networks", ICML, arXiv:1905.11946).

The baseline B0 is the paper's Table 1 (:data:`EFFICIENTNET_B0_TABLE`): a 3x3/2 stem, seven
stages of MBConv blocks (expansion 1x1, depthwise kxk, squeeze-and-excitation, linear 1x1
projection, identity shortcut with stochastic depth; :class:`cnnlab.layers.InvertedResidual`),
a 1x1 convolution to 1280 channels, global pooling, dropout and a linear classifier. Swish
(SiLU) everywhere.

Scaling a network by width ``w`` and depth ``d`` happens in one place,
:func:`scale_stages`: channels become ``make_divisible(c * w, 8)`` (the paper's code rounds to
multiples of 8, never more than 10% down) and repeats ``ceil(n * d)``. The stem follows the
width; the head is 4x the last stage's channels (1280 for B0).

Compound scaling (Sec. 3.3): depth ``d = alpha^phi``, width ``w = beta^phi``, resolution
``r = gamma^phi`` with alpha = 1.2, beta = 1.1, gamma = 1.15 found by grid search at phi = 1
under ``alpha * beta^2 * gamma^2 ~ 2``, so the FLOPs grow by ``(alpha beta^2 gamma^2)^phi =
1.9203^phi ~ 2^phi``. :func:`compound_scaling` returns these factors and
:func:`efficientnet` builds the network for any ``phi`` (resolution ``round(224 * gamma^phi)``).

How B1-B7 relate to the rule. The released models do *not* use ``alpha^phi, beta^phi,
gamma^phi``; they use the hand-set (width, depth, resolution, dropout) table of the official
code (:data:`EFFICIENTNET_PARAMS`, identical in Keras and torchvision). Reading each
coefficient back as an exponent, ``phi_w = ln w / ln 1.1``, ``phi_d = ln d / ln 1.2``,
``phi_r = ln(r / 224) / ln 1.15`` (:func:`implied_phi`), gives (printed by
``implied_phi`` in this session)::

    model  width depth  res   phi_w  phi_d  phi_r
    B1     1.0   1.1    240   0.00   0.52   0.49
    B2     1.1   1.2    260   1.00   1.00   1.07
    B3     1.2   1.4    300   1.91   1.85   2.09
    B4     1.4   1.8    380   3.53   3.22   3.78
    B5     1.6   2.2    456   4.93   4.32   5.09
    B6     1.8   2.6    528   6.17   5.24   6.14
    B7     2.0   3.1    600   7.27   6.21   7.05

So Bk is *not* phi = k: B2 is almost exactly phi = 1 (1.1 / 1.2 / ~258), B1 is about phi =
1/2, and from B3 on the three exponents drift apart (width and resolution grow faster than
depth would by the rule). The published coefficients follow the spirit of the rule (all three
dimensions grow together, FLOPs roughly double per step) rather than its formula. The registered
``efficientnet_b0`` ... ``efficientnet_b7`` use the published table, so they match the released
weights; ``efficientnet(phi=...)`` follows the formula.

Compatibility and deviations:
    * ``efficientnet_b0`` ... ``b7`` have torchvision's module names and shapes key for key
      (B0: 5,288,548 parameters) and torchvision's initialisation (Kaiming-normal fan_out
      convolutions, BN 1/0, linear uniform(+-1/sqrt(classes))).
    * Batch norm: torchvision uses PyTorch's defaults (eps 1e-5, momentum 0.1) for B0-B4,
      whose weights were trained in PyTorch, and the TensorFlow settings (eps 1e-3, momentum
      0.01, i.e. TF's decay 0.99) for B5-B7, whose weights are ports of the paper's. We follow
      torchvision so its checkpoints give the same outputs; ``bn_eps``/``bn_momentum`` override.
      ``efficientnet(phi=...)`` defaults to the paper's TF settings.
    * Stochastic depth ("drop connect" in the paper's code) of probability 0.2 increasing
      linearly over the blocks, ``0.2 * i / N`` for block ``i`` of ``N`` (torchvision's rule; the
      paper's Sec. 5.2 gives only the survival probability 0.8).
    * Dropout before the classifier 0.2 (B0, B1), 0.3 (B2, B3), 0.4 (B4, B5), 0.5 (B6, B7) as in
      the official code; ``efficientnet(phi=...)`` keeps 0.2 unless told.
    * Padding is PyTorch's symmetric ``(k - 1) // 2``, not TF's "same" (asymmetric on stride 2);
      ported TF weights then see a one-pixel shift (torchvision accepts the same).
    * Native resolutions are the paper's: 224, 240, 260, 300, 380, 456, 528, 600. For B2
      torchvision evaluates its weights at a 288 crop (1,087,529,456 MACs there); the registry
      keeps the paper's 260 (993,561,872 MACs).
    * Every convolution pads, so each stride-2 layer maps ``h`` to ``ceil(h / 2)`` and any input
      of at least 1 x 1 goes through: ``min_input_size`` is 1.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import torch
from torch import nn

from ..data.config import torchvision_weights
from ..errors import CheckpointError, UsageError
from ..layers import (
    ConvNormAct,
    InvertedResidual,
    init_weights,
    make_divisible,
    rename_timm_keys,
    timm_block_names,
    timm_blocks,
)
from ..registry import register_model
from .base import FeatureSpec, ImageClassifier

# Paper Table 1 (EfficientNet-B0), stages 2-8 (stage 1 is the 3x3/2 stem with 32 channels, stage 9
# the 1x1 conv to 1280, pooling and FC): (expansion, kernel, first stride, output channels,
# repeats). Expansion 1 is "MBConv1", 6 is "MBConv6".
EFFICIENTNET_STEM = 32
EFFICIENTNET_B0_TABLE: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
HEAD_RATIO = 4  # the last 1x1 conv has 4x the channels of the last stage (1280 = 4 * 320)

# The official (width, depth, resolution, dropout) of B0-B7.
EFFICIENTNET_PARAMS: dict[str, tuple[float, float, int, float]] = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
}
# The variants whose torchvision weights are TF ports, with TF's BN settings.
TF_BN = {"eps": 1e-3, "momentum": 0.01}
TORCH_BN = {"eps": 1e-5, "momentum": 0.1}
TORCHVISION_BN = {**{f"b{i}": TORCH_BN for i in range(5)}, **{f"b{i}": TF_BN for i in (5, 6, 7)}}

# Compound scaling coefficients (Sec. 3.3), found by grid search at phi = 1.
ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15
BASE_RESOLUTION = 224


class CompoundScale(NamedTuple):
    """Scaling factors for one ``phi``: depth and width multipliers, input resolution (pixels),
    and the FLOPs ratio to B0 the rule expects, ``(alpha beta^2 gamma^2)^phi``."""

    depth: float
    width: float
    resolution: int
    flops_ratio: float


def compound_scaling(phi: float) -> CompoundScale:
    """The paper's rule: depth 1.2^phi, width 1.1^phi, resolution 224 * 1.15^phi (rounded)."""
    if not isinstance(phi, (int, float)) or phi < 0:
        raise UsageError(f"phi must be a number >= 0, got {phi!r}")
    return CompoundScale(depth=ALPHA ** phi, width=BETA ** phi,
                         resolution=round(BASE_RESOLUTION * GAMMA ** phi),
                         flops_ratio=(ALPHA * BETA ** 2 * GAMMA ** 2) ** phi)


def implied_phi(width: float, depth: float, resolution: int) -> tuple[float, float, float]:
    """Read (width, depth, resolution) back as exponents of beta, alpha, gamma: (phi_w, phi_d,
    phi_r). Equal values mean the coefficients follow the compound rule exactly."""
    return (math.log(width) / math.log(BETA), math.log(depth) / math.log(ALPHA),
            math.log(resolution / BASE_RESOLUTION) / math.log(GAMMA))


class StageSpec(NamedTuple):
    expand: int
    kernel: int
    stride: int
    in_chs: int
    out_chs: int
    repeats: int


def scale_stages(width: float = 1.0, depth: float = 1.0,
                 table=EFFICIENTNET_B0_TABLE) -> tuple[int, list[StageSpec]]:
    """The stem width and the stages of B0 scaled by ``width`` and ``depth``: the one place where
    channels become ``make_divisible(c * width, 8)`` and repeats ``ceil(n * depth)``."""
    if not (width > 0 and depth > 0):
        raise UsageError(f"width and depth multipliers must be > 0, got {width}, {depth}")
    stem = make_divisible(EFFICIENTNET_STEM * width)
    stages, chs = [], stem
    for expand, kernel, stride, out, repeats in table:
        out = make_divisible(out * width)
        stages.append(StageSpec(expand, kernel, stride, chs, out, math.ceil(repeats * depth)))
        chs = out
    return stem, stages


# ---------------------------------------------------------------------------------------------
# timm's layout. timm (timm/models/efficientnet.py) names the same network ``conv_stem``, ``bn1``,
# ``blocks.<stage>.<index>.*`` (its block part names: :func:`cnnlab.layers.timm_block_names`),
# ``conv_head``, ``bn2``, ``classifier``; shapes and layer order are torchvision's, so only the
# names change.

def timm_key_map(keys) -> dict[str, str]:
    """timm key -> key here, for the keys of a timm EfficientNet state_dict. Raises
    ``ValueError`` saying what in the file has no counterpart in this architecture."""
    keys = list(keys)
    blocks = timm_blocks(keys)
    head = 2 + max((i for i, _ in blocks), default=-1)  # features index of the 1x1 head conv
    names = {}
    for (i, j), parts in blocks.items():
        try:
            block = timm_block_names(parts)
        except ValueError as err:
            raise CheckpointError(f"blocks.{i}.{j}.{err}") from None
        if "se.conv_reduce" not in parts:
            raise CheckpointError(f"blocks.{i}.{j} has no squeeze-and-excitation (as timm's "
                                  "efficientnet_lite*, mnasnet_* and mobilenetv2_*); every MBConv "
                                  "block of EfficientNet has one")
        names.update({(i, j, part): f"features.{i + 1}.{j}.{path}"
                      for part, path in block.items()})
    top = {"conv_stem": "features.0.0", "bn1": "features.0.1", "conv_head": f"features.{head}.0",
           "bn2": f"features.{head}.1", "classifier": "classifier.1"}
    return rename_timm_keys(keys, names, top, "EfficientNet")


def checkpoint_filter(state: dict, model: nn.Module) -> tuple[dict, list[str]]:
    """A timm EfficientNet state_dict in this layout, and what the conversion means (the
    checkpoint-filter hook that :mod:`cnnlab.pretrained` calls). Other states come back as
    they are. timm's ``efficientnet_b0`` ... ``b7`` are torchvision's architecture with
    batch-norm eps 1e-5; its ``tf_efficientnet_*`` have the same keys, eps 1e-3 and
    TensorFlow's asymmetric "same" padding, which no model here has."""
    if "conv_stem.weight" not in state:
        return state, []
    try:
        names = timm_key_map(state)
    except ValueError as err:
        return state, [f"timm's EfficientNet layout, not converted: {err}"]
    notes = [f"{len(names)} keys converted from timm's layout (conv_stem, blocks, conv_head, "
             "classifier -> features, classifier.1)"]
    eps = next((m.eps for m in model.modules() if isinstance(m, nn.BatchNorm2d)), None)
    if eps is not None and eps != TORCH_BN["eps"]:
        notes.append(f"timm's efficientnet_b* use batch-norm eps 1e-5, this model {eps:g} "
                     "(torchvision's, and timm's tf_efficientnet_*): build it with bn_eps=1e-5, "
                     "bn_momentum=0.1 for timm's efficientnet_b* outputs")
    else:
        notes.append("timm's tf_efficientnet_* files have the same keys but batch-norm eps 1e-3 "
                     "(bn_eps=1e-3) and TensorFlow's 'same' padding, which cnnlab does not have: "
                     "their outputs shift slightly")
    return {names[k]: v for k, v in state.items()}, notes


class EfficientNet(ImageClassifier):
    """EfficientNet: B0's MBConv stages scaled by width and depth multipliers."""

    # the feature taps (cnnlab.features); the 1x1 head convolution to 1280 is left out, as timm
    feature_spec = FeatureSpec(trunk=("features[:-1]",), rest=("features[-1:]",))

    classifier_name = "classifier.1"
    checkpoint_filter = staticmethod(checkpoint_filter)

    def __init__(self, width: float = 1.0, depth: float = 1.0, num_classes: int = 1000,
                 in_chans: int = 3, dropout: float = 0.2, stochastic_depth: float = 0.2,
                 bn_eps: float = 1e-5, bn_momentum: float = 0.1):
        if not 0.0 <= stochastic_depth < 1.0:
            raise UsageError(f"stochastic_depth must be in [0, 1), got {stochastic_depth}")
        super().__init__(num_classes, in_chans, min_input_size=1)
        self.width_mult, self.depth_mult = width, depth
        norm = partial(nn.BatchNorm2d, eps=bn_eps, momentum=bn_momentum)
        stem, stages = scale_stages(width, depth)
        total = sum(s.repeats for s in stages)
        layers: list[nn.Module] = [ConvNormAct(in_chans, stem, 3, stride=2, norm_layer=norm,
                                               act_layer=nn.SiLU)]
        index = 0
        for spec in stages:
            blocks = []
            for i in range(spec.repeats):
                in_chs = spec.in_chs if i == 0 else spec.out_chs
                blocks.append(InvertedResidual(
                    in_chs, spec.out_chs, spec.stride if i == 0 else 1,
                    mid_chs=make_divisible(in_chs * spec.expand), kernel_size=spec.kernel,
                    act_layer=nn.SiLU, norm_layer=norm,
                    se_chs=max(1, in_chs // 4),  # SE ratio 0.25 of the block's *input* channels
                    se_act_layer=nn.SiLU, se_gate_layer=nn.Sigmoid,
                    drop_path=stochastic_depth * index / total))
                index += 1
            layers.append(nn.Sequential(*blocks))
        self.num_features = HEAD_RATIO * stages[-1].out_chs
        layers.append(ConvNormAct(stages[-1].out_chs, self.num_features, 1, norm_layer=norm,
                                  act_layer=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.head_hidden_size = self.num_features
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout, inplace=True),
            nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity())
        init_weights(self, linear_std=None)
        if num_classes:
            bound = 1.0 / math.sqrt(num_classes)
            nn.init.uniform_(self.classifier[1].weight, -bound, bound)
            nn.init.zeros_(self.classifier[1].bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.avgpool(x).flatten(1)
        return x if pre_logits else self.classifier(x)

    def keras_quirks(self, ran: set[str]) -> dict:
        """Where Keras's EfficientNet differs from this one (:mod:`cnnlab.analysis.keras`): its
        input Normalization layer (mean and variance per channel, and a count)."""
        c = self.in_chans
        norm = 2 * c + 1
        return {"params": (norm, (
                    f"Keras's EfficientNet starts with a Normalization layer holding the mean "
                    f"and variance of the {c} input channels and a count: {norm} weights "
                    "({accounts}).")),
                "depth": (1, "Keras's depth counts that Normalization layer too (1 layer with "
                             "weights; {accounts}).")}


def _efficientnet_bx(variant: str, **kwargs) -> EfficientNet:
    width, depth, _, dropout = EFFICIENTNET_PARAMS[variant]
    bn = TORCHVISION_BN[variant]
    kwargs = {"dropout": dropout, "bn_eps": bn["eps"], "bn_momentum": bn["momentum"], **kwargs}
    return EfficientNet(width, depth, **kwargs)


@register_model(reference="torchvision:efficientnet_b0",
                data_config=torchvision_weights(256, 224, "bicubic"))
def efficientnet_b0(**kwargs) -> EfficientNet:
    """EfficientNet-B0 (Tan & Le 2019, Table 1), 224 px, torchvision-compatible."""
    return _efficientnet_bx("b0", **kwargs)


@register_model(input_size=(3, 240, 240), reference="torchvision:efficientnet_b1",
                data_config=torchvision_weights(256, 240, "bicubic"))
def efficientnet_b1(**kwargs) -> EfficientNet:
    """EfficientNet-B1: width 1.0, depth 1.1, 240 px, dropout 0.2, torchvision-compatible."""
    return _efficientnet_bx("b1", **kwargs)


@register_model(input_size=(3, 260, 260), reference="torchvision:efficientnet_b2",
                data_config=torchvision_weights(288, 288, "bicubic"))
def efficientnet_b2(**kwargs) -> EfficientNet:
    """EfficientNet-B2: width 1.1, depth 1.2, 260 px (paper), dropout 0.3, torchvision keys."""
    return _efficientnet_bx("b2", **kwargs)


@register_model(input_size=(3, 300, 300), reference="torchvision:efficientnet_b3",
                data_config=torchvision_weights(320, 300, "bicubic"))
def efficientnet_b3(**kwargs) -> EfficientNet:
    """EfficientNet-B3: width 1.2, depth 1.4, 300 px, dropout 0.3, torchvision-compatible."""
    return _efficientnet_bx("b3", **kwargs)


@register_model(input_size=(3, 380, 380), reference="torchvision:efficientnet_b4",
                data_config=torchvision_weights(384, 380, "bicubic"))
def efficientnet_b4(**kwargs) -> EfficientNet:
    """EfficientNet-B4: width 1.4, depth 1.8, 380 px, dropout 0.4, torchvision-compatible."""
    return _efficientnet_bx("b4", **kwargs)


@register_model(input_size=(3, 456, 456), reference="torchvision:efficientnet_b5",
                data_config=torchvision_weights(456, 456, "bicubic"))
def efficientnet_b5(**kwargs) -> EfficientNet:
    """EfficientNet-B5: width 1.6, depth 2.2, 456 px, dropout 0.4, torchvision-compatible."""
    return _efficientnet_bx("b5", **kwargs)


@register_model(input_size=(3, 528, 528), reference="torchvision:efficientnet_b6",
                data_config=torchvision_weights(528, 528, "bicubic"))
def efficientnet_b6(**kwargs) -> EfficientNet:
    """EfficientNet-B6: width 1.8, depth 2.6, 528 px, dropout 0.5, torchvision-compatible."""
    return _efficientnet_bx("b6", **kwargs)


@register_model(input_size=(3, 600, 600), reference="torchvision:efficientnet_b7",
                data_config=torchvision_weights(600, 600, "bicubic"))
def efficientnet_b7(**kwargs) -> EfficientNet:
    """EfficientNet-B7: width 2.0, depth 3.1, 600 px, dropout 0.5, torchvision-compatible."""
    return _efficientnet_bx("b7", **kwargs)


@register_model
def efficientnet(phi: float = 0, **kwargs) -> EfficientNet:
    """EfficientNet by the compound rule: depth 1.2^phi, width 1.1^phi (input 224 * 1.15^phi)."""
    scale = compound_scaling(phi)
    kwargs = {"bn_eps": TF_BN["eps"], "bn_momentum": TF_BN["momentum"], **kwargs}
    model = EfficientNet(scale.width, scale.depth, **kwargs)
    model.phi, model.native_resolution = phi, scale.resolution
    return model
