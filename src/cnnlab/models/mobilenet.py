"""MobileNet v1, v2 and v3.

* v1: Howard et al. 2017, "MobileNets: Efficient convolutional neural networks for mobile vision
  applications", arXiv:1704.04861.
* v2: Sandler et al. 2018, "MobileNetV2: Inverted residuals and linear bottlenecks", CVPR.
* v3: Howard et al. 2019, "Searching for MobileNetV3", ICCV.

The stage tables below are the papers' tables, as data; the width multiplier is applied in one
place per version. The shared blocks (:class:`~cnnlab.layers.DepthwiseSeparable`,
:class:`~cnnlab.layers.InvertedResidual`, :class:`~cnnlab.layers.SqueezeExcite`,
:func:`~cnnlab.layers.make_divisible`) live in ``cnnlab.layers``.

Every convolution pads ``(k - 1) // 2``, so each stride-2 layer maps ``h`` to ``ceil(h / 2)``
and any input of at least 1 x 1 goes through (global average pooling at the end):
``min_input_size`` is 1 for all three versions. The resolution multiplier of v1 is just the input
size you feed in.

MobileNet v1: differences from the paper and from Keras
    * Paper Table 1 lists the second-to-last depthwise layer as "Conv dw / s2" on a 7x7 input
      with a 7x7 output; that is a misprint, the stride is 1 (Keras, timm and the TF-slim code
      all use 1), as here.
    * Activation ReLU as in the paper (Keras and TF-slim use ReLU6; same parameter count).
    * The classifier is a linear layer (Keras: a 1x1 convolution with bias on the pooled
      vector, the same 1024 * 1000 + 1000 weights). Dropout defaults to 0 as in the paper
      (Keras uses 1e-3).
    * Widths are ``int(c * width_mult)`` for every layer, as Keras and the paper ("the number
      of input channels M becomes alpha M"); no rounding to multiples of 8. The trainable
      parameters equal Keras' for alpha 1.0, 0.75, 0.5, 0.25 (4,231,976 / 2,585,560 /
      1,331,592 / 470,072), and the multiply-adds at 224 for alpha 1.0 are 568,740,352 (the
      paper's 569 M).
    * PyTorch's symmetric padding instead of Keras' TF-style "same" (pad right/bottom only on
      stride 2): same shapes at even sizes, but Keras weights would need a one-pixel shift.

MobileNet v2 and v3: module names and shapes are torchvision's, key for key (v2 3,504,872
parameters; v3 large 5,483,032, small 2,542,856), with torchvision's initialisation
(Kaiming-normal fan_out convolutions, BN 1/0, linear N(0, 0.01)). Deviations:
    * v2: the paper's Table 2 ends in "conv2d 1x1, k" after the pooling; here (and in
      torchvision/Keras) it is a linear layer preceded by dropout 0.2. For ``width_mult < 1``
      the last 1280-channel layer is not thinned (paper Sec. 6.1), as in torchvision.
    * v3: the paper's last two layers are 1x1 convolutions without BN on the pooled vector
      (Tables 1, 2: "conv2d 1x1, NBN"); here, as in torchvision, they are linear layers
      (same weights), with dropout 0.2 before the last one. BN uses eps 1e-3 and momentum
      0.01 (TensorFlow's 0.99), as torchvision (``bn_eps`` sets the eps: timm's
      ``mobilenetv3_*`` use 1e-5). The SE squeeze width is
      ``make_divisible(expanded / 4, 8)`` with a hard-sigmoid gate (paper Sec. 5.3).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from ..data.config import INCEPTION_MEAN, INCEPTION_STD, timm_weights, torchvision_weights
from ..errors import CheckpointError, UsageError
from ..layers import (
    ConvNormAct,
    DepthwiseSeparable,
    InvertedResidual,
    init_weights,
    make_divisible,
    rename_timm_keys,
    timm_block_names,
    timm_blocks,
)
from ..registry import register_model
from .base import SEQUENTIAL_FEATURES, FeatureSpec, ImageClassifier

# ---------------------------------------------------------------------------------------------
# MobileNet v1

# Paper Table 1, after the stem "Conv / s2, 3x3x3x32": one (stride, output channels) pair per
# depthwise-separable unit (the dw 3x3 conv carries the stride, the pw 1x1 conv the channels).
MOBILENET_V1_STEM = 32
MOBILENET_V1_TABLE: tuple[tuple[int, int], ...] = (
    (1, 64),
    (2, 128), (1, 128),
    (2, 256), (1, 256),
    (2, 512), (1, 512), (1, 512), (1, 512), (1, 512), (1, 512),
    (2, 1024), (1, 1024),   # Table 1 prints "s2" for the last one: a misprint (7x7 -> 7x7)
)


class MobileNetV1(ImageClassifier):
    """MobileNet v1: a 3x3/2 stem, 13 depthwise-separable units, average pool, linear."""

    feature_spec = SEQUENTIAL_FEATURES  # the feature taps (cnnlab.features)

    classifier_name = "classifier"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, width_mult: float = 1.0,
                 dropout: float = 0.0):
        if not width_mult > 0:
            raise UsageError(f"width_mult (alpha) must be > 0, got {width_mult}")
        super().__init__(num_classes, in_chans, min_input_size=1)
        self.width_mult = width_mult

        def width(c: int) -> int:  # the width multiplier, applied here only
            return max(1, int(c * width_mult))

        chs = width(MOBILENET_V1_STEM)
        layers: list[nn.Module] = [ConvNormAct(in_chans, chs, 3, stride=2)]
        for stride, out in MOBILENET_V1_TABLE:
            layers.append(DepthwiseSeparable(chs, width(out), stride=stride))
            chs = width(out)
        self.features = nn.Sequential(*layers)
        self.num_features = self.head_hidden_size = chs
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(chs, num_classes) if num_classes else nn.Identity()
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.avgpool(x).flatten(1)
        return x if pre_logits else self.classifier(self.dropout(x))


@register_model(reference={
    "keras:MobileNet_alpha1.0": {},
    "keras:MobileNet_alpha0.75": {"width_mult": 0.75},
    "keras:MobileNet_alpha0.5": {"width_mult": 0.5},
    "keras:MobileNet_alpha0.25": {"width_mult": 0.25},
}, data_config=timm_weights("mobilenetv1_100.ra4_e3600_r224_in1k", 224, 0.875,
                                mean=INCEPTION_MEAN, std=INCEPTION_STD))
def mobilenet_v1(**kwargs) -> MobileNetV1:
    """MobileNet v1 (Howard et al. 2017), width multiplier width_mult (alpha), default 1.0."""
    return MobileNetV1(**kwargs)


# ---------------------------------------------------------------------------------------------
# MobileNet v2

# Paper Table 2: expansion t, output channels c, repeats n, first stride s.
MOBILENET_V2_STEM, MOBILENET_V2_LAST = 32, 1280
MOBILENET_V2_TABLE: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


# ---------------------------------------------------------------------------------------------
# timm's layout of v2 and v3. timm names the stem ``conv_stem``/``bn1``, the blocks
# ``blocks.<stage>.<index>.*`` (its block part names: :func:`cnnlab.layers.timm_block_names`;
# here the blocks are numbered flat, ``features.1`` ...), then v2 (timm's EfficientNet class,
# timm/models/efficientnet.py) ``conv_head``/``bn2`` and ``classifier``; v3
# (timm/models/mobilenetv3.py) ends its blocks with the last 1x1 conv (``conv``/``bn1``) and
# applies ``conv_head`` (a 1x1 conv with bias, no BN) to the pooled vector: the same weights as
# the first linear layer of the classifier here.

def timm_key_map(keys) -> dict[str, str]:
    """timm key -> key here, for the keys of a timm MobileNet v2 or v3 state_dict (v3 when it
    has no ``bn2``). Raises ``ValueError`` saying what has no counterpart here."""
    keys = list(keys)
    v3 = "bn2.weight" not in keys
    blocks = timm_blocks(keys)
    names = {}
    for n, ((i, j), parts) in enumerate(blocks.items(), start=1):
        if v3 and parts == {"conv", "bn1"}:  # timm's ConvBnAct block
            block = {"conv": "0", "bn1": "1"}
        elif not v3 and "se.conv_reduce" in parts:
            raise CheckpointError(f"blocks.{i}.{j} has squeeze-and-excitation, which MobileNet v2 "
                                  "has not (an EfficientNet file?)")
        else:
            try:
                block = timm_block_names(parts, "block" if v3 else "conv")
            except ValueError as err:
                raise CheckpointError(f"blocks.{i}.{j}.{err}") from None
        names.update({(i, j, part): f"features.{n}.{path}" for part, path in block.items()})
    last = len(blocks) + 1
    top = {"conv_stem": "features.0.0", "bn1": "features.0.1"}
    top.update({"conv_head": "classifier.0", "classifier": "classifier.3"} if v3 else
               {"conv_head": f"features.{last}.0", "bn2": f"features.{last}.1",
                "classifier": "classifier.1"})
    return rename_timm_keys(keys, names, top, f"MobileNet v{3 if v3 else 2}")


def checkpoint_filter(state: dict, model: nn.Module) -> tuple[dict, list[str]]:
    """A timm MobileNet v2/v3 state_dict in this layout, and what the conversion means (the
    checkpoint-filter hook that :mod:`cnnlab.pretrained` calls). Other states come back as
    they are. timm's ``mobilenetv2_*`` are torchvision's v2; its ``mobilenetv3_*_100`` are
    torchvision's v3 with batch-norm eps 1e-5; its ``tf_mobilenetv3_*`` have the same keys,
    eps 1e-3 and TensorFlow's asymmetric "same" padding, which no model here has."""
    if "conv_stem.weight" not in state:
        return state, []
    try:
        names = timm_key_map(state)
    except ValueError as err:
        return state, [f"timm's MobileNet layout, not converted: {err}"]
    v3 = "bn2.weight" not in state
    out = {names[k]: v.flatten(1) if names[k] == "classifier.0.weight" else v
           for k, v in state.items()}
    notes = [f"{len(out)} keys converted from timm's MobileNet v{3 if v3 else 2} layout "
             "(conv_stem, blocks, conv_head, classifier -> features, classifier)"]
    if v3 and "conv_head.bias" not in state:
        notes.append("timm's conv_head has no bias in this file (head_bias=False, as timm's "
                     "mobilenetv3_rw); the first linear layer of MobileNet v3's head has one")
    if v3:
        eps = next((m.eps for m in model.modules() if isinstance(m, nn.BatchNorm2d)), None)
        notes.append(f"timm's mobilenetv3_* use batch-norm eps 1e-5, this model {eps:g} "
                     "(torchvision's, and timm's tf_mobilenetv3_*, which also pad TensorFlow's "
                     "'same' way): build it with bn_eps=1e-5 for timm's mobilenetv3_* outputs"
                     if eps != 1e-5 else
                     "timm's tf_mobilenetv3_* files have the same keys but batch-norm eps 1e-3 "
                     "and TensorFlow's 'same' padding, which cnnlab does not have: their "
                     "outputs shift slightly")
    return out, notes


class MobileNetV2(ImageClassifier):
    """MobileNet v2: 3x3/2 stem, 17 inverted residuals (Table 2), 1x1 to 1280, pool, linear."""

    # the feature taps (cnnlab.features); the 1x1 head convolution to 1280 is left out, as timm
    feature_spec = FeatureSpec(trunk=("features[:-1]",), rest=("features[-1:]",))

    classifier_name = "classifier.1"
    checkpoint_filter = staticmethod(checkpoint_filter)

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, width_mult: float = 1.0,
                 dropout: float = 0.2):
        if not width_mult > 0:
            raise UsageError(f"width_mult must be > 0, got {width_mult}")
        super().__init__(num_classes, in_chans, min_input_size=1)
        chs = make_divisible(MOBILENET_V2_STEM * width_mult)
        layers: list[nn.Module] = [ConvNormAct(in_chans, chs, 3, stride=2, act_layer=nn.ReLU6)]
        for t, c, n, s in MOBILENET_V2_TABLE:
            out = make_divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(chs, out, s if i == 0 else 1,
                                               mid_chs=int(round(chs * t)),
                                               act_layer=nn.ReLU6, layout="conv"))
                chs = out
        self.num_features = make_divisible(MOBILENET_V2_LAST * max(1.0, width_mult))
        self.head_hidden_size = self.num_features
        layers.append(ConvNormAct(chs, self.num_features, 1, act_layer=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity())
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.avgpool(x).flatten(1)
        return x if pre_logits else self.classifier(x)


@register_model(reference="torchvision:mobilenet_v2",
                data_config=torchvision_weights(256, 224))
def mobilenet_v2(**kwargs) -> MobileNetV2:
    """MobileNet v2 (Sandler et al. 2018), torchvision-compatible, width_mult 1.0."""
    return MobileNetV2(**kwargs)


# ---------------------------------------------------------------------------------------------
# MobileNet v3

# Paper Tables 1 (large) and 2 (small), one row per bneck:
# (kernel, expansion size, output channels, squeeze-excite, nonlinearity, stride).
V3Row = tuple[int, int, int, bool, str, int]
MOBILENET_V3_LARGE: tuple[V3Row, ...] = (
    (3, 16, 16, False, "RE", 1),
    (3, 64, 24, False, "RE", 2),
    (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2),
    (5, 120, 40, True, "RE", 1),
    (5, 120, 40, True, "RE", 1),
    (3, 240, 80, False, "HS", 2),
    (3, 200, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 480, 112, True, "HS", 1),
    (3, 672, 112, True, "HS", 1),
    (5, 672, 160, True, "HS", 2),
    (5, 960, 160, True, "HS", 1),
    (5, 960, 160, True, "HS", 1),
)
MOBILENET_V3_SMALL: tuple[V3Row, ...] = (
    (3, 16, 16, True, "RE", 2),
    (3, 72, 24, False, "RE", 2),
    (3, 88, 24, False, "RE", 1),
    (5, 96, 40, True, "HS", 2),
    (5, 240, 40, True, "HS", 1),
    (5, 240, 40, True, "HS", 1),
    (5, 120, 48, True, "HS", 1),
    (5, 144, 48, True, "HS", 1),
    (5, 288, 96, True, "HS", 2),
    (5, 576, 96, True, "HS", 1),
    (5, 576, 96, True, "HS", 1),
)
# (stem channels, last 1x1 conv channels, classifier hidden width) of each table.
MOBILENET_V3_HEADS = {"large": (16, 960, 1280), "small": (16, 576, 1024)}
NONLINEARITIES = {"RE": nn.ReLU, "HS": nn.Hardswish}


class MobileNetV3(ImageClassifier):
    """MobileNet v3 large or small: the paper's bneck tables, SE with hard-sigmoid, h-swish."""

    # the feature taps (cnnlab.features); the 960 (576) convolution is kept, as timm keeps it
    feature_spec = SEQUENTIAL_FEATURES

    classifier_name = "classifier.3"
    checkpoint_filter = staticmethod(checkpoint_filter)

    def __init__(self, arch: str = "large", num_classes: int = 1000, in_chans: int = 3,
                 width_mult: float = 1.0, dropout: float = 0.2, bn_eps: float = 1e-3):
        tables = {"large": MOBILENET_V3_LARGE, "small": MOBILENET_V3_SMALL}
        if arch not in tables:
            raise UsageError(f"arch must be 'large' or 'small', got {arch!r}")
        if not width_mult > 0:
            raise UsageError(f"width_mult must be > 0, got {width_mult}")
        super().__init__(num_classes, in_chans, min_input_size=1)
        norm = partial(nn.BatchNorm2d, eps=bn_eps, momentum=0.01)

        def width(c: int) -> int:  # the width multiplier, applied here only
            return make_divisible(c * width_mult)

        stem, last_conv, hidden = MOBILENET_V3_HEADS[arch]
        chs = width(stem)
        layers: list[nn.Module] = [ConvNormAct(in_chans, chs, 3, stride=2, norm_layer=norm,
                                               act_layer=nn.Hardswish)]
        for k, exp, out, se, nl, s in tables[arch]:
            mid = width(exp)
            layers.append(InvertedResidual(
                chs, width(out), s, mid_chs=mid, kernel_size=k, act_layer=NONLINEARITIES[nl],
                norm_layer=norm, se_chs=make_divisible(mid // 4) if se else 0,
                se_act_layer=nn.ReLU, se_gate_layer=nn.Hardsigmoid))
            chs = width(out)
        # The last 1x1 conv is 6x its input (960 = 6 * 160, 576 = 6 * 96); the hidden width is
        # thinned with the rest (torchvision: adjust_channels(1280)).
        self.num_features = 6 * chs
        layers.append(ConvNormAct(chs, self.num_features, 1, norm_layer=norm,
                                  act_layer=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        hidden = self.head_hidden_size = width(hidden)
        self.classifier = nn.Sequential(
            nn.Linear(self.num_features, hidden), nn.Hardswish(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes) if num_classes else nn.Identity())
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.avgpool(x).flatten(1)
        if pre_logits:  # the 1280 (large) / 1024 (small) vector that feeds the last linear layer
            return self.classifier[1](self.classifier[0](x))
        return self.classifier(x)


@register_model(reference="torchvision:mobilenet_v3_large",
                data_config=torchvision_weights(256, 224))
def mobilenet_v3_large(**kwargs) -> MobileNetV3:
    """MobileNet v3 large (Howard et al. 2019, Table 1), torchvision-compatible."""
    return MobileNetV3("large", **kwargs)


@register_model(reference="torchvision:mobilenet_v3_small",
                data_config=torchvision_weights(256, 224))
def mobilenet_v3_small(**kwargs) -> MobileNetV3:
    """MobileNet v3 small (Howard et al. 2019, Table 2), torchvision-compatible."""
    return MobileNetV3("small", **kwargs)
