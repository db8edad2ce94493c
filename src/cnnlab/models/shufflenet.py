"""ShuffleNet v1 and v2.

* v1: Zhang, Zhou, Lin & Sun 2018, "ShuffleNet: An Extremely Efficient Convolutional Neural
  Network for Mobile Devices", CVPR (arXiv:1707.01083).
* v2: Ma, Zhang, Zheng & Sun 2018, "ShuffleNet V2: Practical Guidelines for Efficient CNN
  Architecture Design", ECCV (arXiv:1807.11164).

**ShuffleNet v1** (paper Table 1, 224 x 224 input)::

    Conv1    3x3 conv, stride 2, 24 maps             112 x 112
    MaxPool  3x3, stride 2                            56 x 56
    Stage2   1 unit stride 2, then 3 units stride 1   28 x 28   c2 channels
    Stage3   1 unit stride 2, then 7 units stride 1   14 x 14   c3 = 2 c2
    Stage4   1 unit stride 2, then 3 units stride 1    7 x 7    c4 = 2 c3
    GlobalPool, FC 1000

with (c2, c3, c4) = (144, 288, 576) for g=1, (200, 400, 800) for g=2, (240, 480, 960) for
g=3, (272, 544, 1088) for g=4, (384, 768, 1536) for g=8 (``V1_STAGE_CHANNELS``). A unit
(Fig. 2 b, c) is: 1x1 group conv (g groups) -> BN -> ReLU -> channel shuffle -> 3x3 depthwise
conv (stride 1 or 2) -> BN -> 1x1 group conv -> BN; the bottleneck has 1/4 of the unit's
output channels. A stride-1 unit adds its input and applies ReLU; a stride-2 unit
concatenates a 3x3 average pool (stride 2) of its input with the branch, whose last 1x1
conv then makes ``c_out - c_in`` maps, and applies ReLU. As the paper says, the first 1x1
conv of Stage 2 is not grouped (its input has only 24 channels).

"ShuffleNet s x" scales the number of filters of 1x by ``s`` (``width_mult``; the paper
uses 0.25, 0.5, 1, 1.5, 2). cnnlab rounds every stage width ``s * c`` to the nearest
multiple of ``4 g`` (``make_divisible(s * c, 4 * g)``, which never loses more than 10%), so
that the bottleneck ``c / 4`` splits into ``g`` groups; the stem's ``s * 24`` is rounded to a
multiple of ``g`` the same way. Every width of the paper's Table 1 (s = 1) is already such a
multiple, so 1x is exactly the paper. At 0.25x this gives, e.g., (36, 72, 144) for g=1,
(48, 104, 200) for g=2, (60, 120, 240) for g=3, (64, 144, 272) for g=4 and
(96, 192, 384) for g=8.

Complexity at 224 x 224 (multiply-adds of the convolutions and the FC, counted here):
143.08 M (g=1), 140.84 M (g=2), 137.46 M (g=3), 134.34 M (g=4), 138.37 M (g=8), against
the paper's Table 1 "complexity" of 143, 140, 137, 133, 137 MFLOPs.

Deviations and choices for v1 (the paper leaves them open; cnnlab follows megvii's official
code, megvii-model/ShuffleNet-Series ``ShuffleNetV1``, unless said otherwise):

* the FC layer has no bias, as in megvii's code (``fc_bias=True`` adds the 1,000 biases of
  osmr/imgclsmob's version); no convolution has a bias (BN follows each one);
* the channel shuffle follows the first 1x1 conv of every unit, also in the first unit of
  Stage 2, where that conv is not grouped (megvii does the same; it only renames channels);
* megvii's 1.5x models keep a 24-channel stem (cnnlab's rule gives 36 for g=3 and 40 for
  g=8); pass ``stem_channels=24`` to build them exactly;
* the global pool is adaptive (megvii: a fixed 7 x 7 average pool), so any input size works:
  every convolution and pooling is padded, so the smallest input is 1 x 1;
* initialisation is cnnlab's common one (``layers.init_weights``: Kaiming-normal fan-out
  convolutions, BN at 1/0, FC N(0, 0.01)); the paper does not give one.

**ShuffleNet v2** (paper Table 5) is torchvision's ``ShuffleNetV2`` module for module:
``conv1`` (3x3/2, 24 maps) -> max pool -> ``stage2/3/4`` (one stride-2 unit, then 3/7/3
stride-1 units) -> ``conv5`` (1x1) -> global average pool -> ``fc``, with stage outputs
(48, 96, 192 | 1024) for 0.5x, (116, 232, 464 | 1024) for 1x, (176, 352, 704 | 1024) for 1.5x
and (244, 488, 976 | 2048) for 2x. A stride-1 unit (Fig. 3 c) splits its channels in two
halves, passes one through untouched and the other through 1x1 conv-BN-ReLU, 3x3 depthwise
conv-BN, 1x1 conv-BN-ReLU, concatenates, and shuffles with 2 groups. A stride-2 unit
(Fig. 3 d) feeds the whole input to both branches; ``branch1`` is 3x3 depthwise conv (stride 2)
-BN, 1x1 conv-BN-ReLU. The state_dict keys and shapes are torchvision's (``conv1.0``,
``stage2.0.branch1.0`` ... ``conv5.0``, ``fc``), so torchvision checkpoints load unchanged.
Like torchvision, v2 keeps PyTorch's default initialisation and has no dropout; the smallest
input is 1 x 1 for the same reason as v1.

In both versions the BN after a depthwise conv feeds a linear 1x1 conv and another BN, so in
training mode its bias gets no gradient: the second BN subtracts the constant it adds. The
gradient is zero up to rounding, and exactly zero on 1 x 1 feature maps with a batch of 2.
That is the paper's (and torchvision's) design, kept as it is.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.config import torchvision_weights
from ..errors import UsageError
from ..layers import ChannelShuffle, ConvNormAct, init_weights, make_divisible
from ..registry import register_model
from .base import FeatureSpec, ImageClassifier

# --------------------------------------------------------------------------- ShuffleNet v1

# Paper Table 1: output channels of Stage 2, 3, 4 of ShuffleNet 1x, per number of groups g.
V1_STAGE_CHANNELS: dict[int, tuple[int, int, int]] = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
V1_STEM_CHANNELS = 24           # Table 1, Conv1
V1_STAGE_REPEATS = (3, 7, 3)    # Table 1: stride-1 units after the first (stride-2) unit
V1_BOTTLENECK_RATIO = 4         # "the number of bottleneck channels ... 1/4 of the output"
V1_WIDTHS = (0.25, 0.5, 1.0, 1.5, 2.0)  # the scale factors of the paper's Table 2


def shufflenet_v1_channels(groups: int = 3, width_mult: float = 1.0,
                           stem_channels: int | None = None) -> tuple[int, tuple[int, int, int]]:
    """(stem, (c2, c3, c4)) of ShuffleNet ``width_mult`` x with ``groups`` groups.

    Table 1's widths times ``width_mult``, each rounded to the nearest multiple of ``4*groups``
    (the stem to a multiple of ``groups``) with :func:`make_divisible`.
    """
    if groups not in V1_STAGE_CHANNELS:
        raise UsageError(f"ShuffleNet v1 groups must be one of {sorted(V1_STAGE_CHANNELS)} "
                         f"(the paper's Table 1), got {groups!r}")
    if not isinstance(width_mult, (int, float)) or width_mult <= 0:
        raise UsageError(f"width_mult must be a positive number (the paper uses {V1_WIDTHS}), "
                         f"got {width_mult!r}")
    stages = tuple(make_divisible(c * width_mult, V1_BOTTLENECK_RATIO * groups)
                   for c in V1_STAGE_CHANNELS[groups])
    if stem_channels is None:
        stem_channels = make_divisible(V1_STEM_CHANNELS * width_mult, groups)
    elif stem_channels < 1 or stem_channels % groups:
        raise UsageError(f"stem_channels must be a positive multiple of groups={groups}, "
                         f"got {stem_channels}")
    if stem_channels >= stages[0]:
        raise UsageError(f"stem_channels={stem_channels} leaves no channels for the first unit's "
                         f"branch (stage 2 has {stages[0]})")
    return stem_channels, stages  # type: ignore[return-value]


class ShuffleV1Unit(nn.Module):
    """The ShuffleNet unit of Fig. 2 (b) (stride 1, add) and (c) (stride 2, concatenate).

    ``gconv1`` (1x1, ``groups``, BN, ReLU) -> ``shuffle`` -> ``dwconv`` (3x3 depthwise, BN) ->
    ``gconv2`` (1x1, ``groups``, BN); then ReLU(x + branch) or ReLU(cat(avgpool(x), branch)).
    ``first_groups`` sets the groups of ``gconv1`` alone (1 in the first unit of Stage 2).
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int, groups: int,
                 first_groups: int | None = None):
        super().__init__()
        if stride not in (1, 2):
            raise UsageError(f"a ShuffleNet unit has stride 1 or 2, got {stride}")
        if stride == 1 and in_chs != out_chs:
            raise UsageError(f"a stride-1 unit adds its input: in_chs {in_chs} != "
                             f"out_chs {out_chs}")
        mid = out_chs // V1_BOTTLENECK_RATIO
        branch_out = out_chs - in_chs if stride == 2 else out_chs
        first_groups = groups if first_groups is None else first_groups
        for what, n, g in (("bottleneck", mid, groups), ("branch output", branch_out, groups),
                           ("input", in_chs, first_groups)):
            if n <= 0 or n % g:
                raise UsageError(f"ShuffleNet unit {in_chs}->{out_chs}: {what} of {n} channels "
                                 f"does not split into {g} groups")
        self.stride = stride
        names = ("conv", "bn", "act")
        self.gconv1 = ConvNormAct(in_chs, mid, 1, groups=first_groups, names=names)
        self.shuffle = ChannelShuffle(groups)
        self.dwconv = ConvNormAct(mid, mid, 3, stride, groups=mid, act_layer=None, names=names)
        self.gconv2 = ConvNormAct(mid, branch_out, 1, groups=groups, act_layer=None, names=names)
        self.shortcut = nn.AvgPool2d(3, 2, 1) if stride == 2 else nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.gconv2(self.dwconv(self.shuffle(self.gconv1(x))))
        if self.stride == 1:
            return self.act(x + branch)
        return self.act(torch.cat((self.shortcut(x), branch), dim=1))


class ShuffleNetV1(ImageClassifier):
    """ShuffleNet v1 with the paper's stage names (conv1, maxpool, stage2-4, globalpool, fc)."""

    # the feature taps (cnnlab.features)
    feature_spec = FeatureSpec(trunk=("conv1", "maxpool", "stage*"))

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, groups: int = 3,
                 width_mult: float = 1.0, stem_channels: int | None = None,
                 fc_bias: bool = False):
        # Every convolution and pooling is padded (3x3, padding 1), so a 1x1 input stays 1x1.
        super().__init__(num_classes, in_chans, min_input_size=1)
        stem, stages = shufflenet_v1_channels(groups, width_mult, stem_channels)
        self.groups, self.width_mult, self.fc_bias = groups, width_mult, fc_bias
        self.conv1 = ConvNormAct(in_chans, stem, 3, 2, names=("conv", "bn", "act"))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_chs = stem
        for idx, (out_chs, repeats) in enumerate(zip(stages, V1_STAGE_REPEATS, strict=True)):
            first_groups = 1 if idx == 0 else groups  # Stage 2's first 1x1 is not grouped
            units = [ShuffleV1Unit(in_chs, out_chs, 2, groups, first_groups=first_groups)]
            units += [ShuffleV1Unit(out_chs, out_chs, 1, groups) for _ in range(repeats)]
            self.add_module(f"stage{idx + 2}", nn.Sequential(*units))
            in_chs = out_chs
        self.num_features = self.head_hidden_size = in_chs
        self.globalpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_chs, num_classes, bias=fc_bias) if num_classes else nn.Identity()
        init_weights(self)

    def make_classifier(self, in_features: int, num_classes: int) -> nn.Module:
        return nn.Linear(in_features, num_classes, bias=self.fc_bias) if num_classes \
            else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        return self.stage4(self.stage3(self.stage2(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.globalpool(x).flatten(1)
        return x if pre_logits else self.fc(x)


# --------------------------------------------------------------------------- ShuffleNet v2

V2_STAGE_REPEATS = (4, 8, 4)    # Table 5: 1 stride-2 unit + 3 / 7 / 3 stride-1 units
# Table 5: output channels of Conv1, Stage 2, 3, 4 and Conv5, per model size.
V2_STAGE_CHANNELS: dict[str, tuple[int, int, int, int, int]] = {
    "0.5": (24, 48, 96, 192, 1024),
    "1.0": (24, 116, 232, 464, 1024),
    "1.5": (24, 176, 352, 704, 1024),
    "2.0": (24, 244, 488, 976, 2048),
}


class ShuffleV2Unit(nn.Module):
    """ShuffleNet v2's unit (Fig. 3 c, d) with torchvision's module names ``branch1``/``branch2``.

    Stride 1: split the channels in halves, keep one, transform the other with ``branch2``.
    Stride 2: both branches read the whole input and halve the resolution. Then concatenate
    and shuffle with 2 groups.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int):
        super().__init__()
        if stride not in (1, 2):
            raise UsageError(f"a ShuffleNet v2 unit has stride 1 or 2, got {stride}")
        if out_chs % 2:
            raise UsageError(f"a ShuffleNet v2 unit needs an even number of outputs, got {out_chs}")
        half = out_chs // 2
        if stride == 1 and in_chs != out_chs:
            raise UsageError(f"a stride-1 unit keeps its width: in_chs {in_chs} != "
                             f"out_chs {out_chs}")
        self.stride = stride
        self.branch1: nn.Module | None = None  # stride 1: the kept half needs no branch
        if stride == 2:
            self.branch1 = nn.Sequential(
                nn.Conv2d(in_chs, in_chs, 3, stride, 1, groups=in_chs, bias=False),
                nn.BatchNorm2d(in_chs),
                nn.Conv2d(in_chs, half, 1, bias=False),
                nn.BatchNorm2d(half),
                nn.ReLU(inplace=True),
            )
        branch_in = in_chs if stride == 2 else half
        self.branch2 = nn.Sequential(
            nn.Conv2d(branch_in, half, 1, bias=False),
            nn.BatchNorm2d(half),
            nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 3, stride, 1, groups=half, bias=False),
            nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, bias=False),
            nn.BatchNorm2d(half),
            nn.ReLU(inplace=True),
        )
        self.shuffle = ChannelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch1 is None:
            kept, x2 = x.chunk(2, dim=1)
            out = torch.cat((kept, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return self.shuffle(out)


class ShuffleNetV2(ImageClassifier):
    """ShuffleNet v2 with torchvision's module names (conv1, maxpool, stage2-4, conv5, fc)."""

    # the feature taps (cnnlab.features); conv5, the 1x1 widening before pooling, is left out
    feature_spec = FeatureSpec(trunk=("conv1", "maxpool", "stage*"), rest=("conv5",))

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, width: str = "1.0"):
        super().__init__(num_classes, in_chans, min_input_size=1)  # all 3x3 ops are padded
        if width not in V2_STAGE_CHANNELS:
            raise UsageError(f"ShuffleNet v2 width must be one of {sorted(V2_STAGE_CHANNELS)}, "
                             f"got {width!r}")
        stem, *stages, last = V2_STAGE_CHANNELS[width]
        self.conv1 = ConvNormAct(in_chans, stem, 3, 2)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_chs = stem
        for idx, (out_chs, repeats) in enumerate(zip(stages, V2_STAGE_REPEATS, strict=True)):
            units = [ShuffleV2Unit(in_chs, out_chs, 2)]
            units += [ShuffleV2Unit(out_chs, out_chs, 1) for _ in range(repeats - 1)]
            self.add_module(f"stage{idx + 2}", nn.Sequential(*units))
            in_chs = out_chs
        self.conv5 = ConvNormAct(in_chs, last, 1)
        self.num_features = self.head_hidden_size = last
        self.fc = nn.Linear(last, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        return self.conv5(self.stage4(self.stage3(self.stage2(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean((2, 3))
        return x if pre_logits else self.fc(x)


# --------------------------------------------------------------------------- builders


def _v1(groups: int, kwargs: dict) -> ShuffleNetV1:
    return ShuffleNetV1(**{"groups": groups, **kwargs})


@register_model
def shufflenet_v1(**kwargs) -> ShuffleNetV1:
    """ShuffleNet v1 (Zhang et al. 2018), g=3, 1x; `groups=` and `width_mult=` select others."""
    return _v1(3, kwargs)


@register_model
def shufflenet_v1_g1(**kwargs) -> ShuffleNetV1:
    """ShuffleNet v1 1x, g=1 (Table 1: 144/288/576 channels, 143 MFLOPs)."""
    return _v1(1, kwargs)


@register_model
def shufflenet_v1_g2(**kwargs) -> ShuffleNetV1:
    """ShuffleNet v1 1x, g=2 (Table 1: 200/400/800 channels, 140 MFLOPs)."""
    return _v1(2, kwargs)


@register_model
def shufflenet_v1_g3(**kwargs) -> ShuffleNetV1:
    """ShuffleNet v1 1x, g=3 (Table 1: 240/480/960 channels, 137 MFLOPs)."""
    return _v1(3, kwargs)


@register_model
def shufflenet_v1_g4(**kwargs) -> ShuffleNetV1:
    """ShuffleNet v1 1x, g=4 (Table 1: 272/544/1088 channels, 133 MFLOPs)."""
    return _v1(4, kwargs)


@register_model
def shufflenet_v1_g8(**kwargs) -> ShuffleNetV1:
    """ShuffleNet v1 1x, g=8 (Table 1: 384/768/1536 channels, 137 MFLOPs)."""
    return _v1(8, kwargs)


@register_model(reference="torchvision:shufflenet_v2_x0_5",
                data_config=torchvision_weights(256, 224))
def shufflenet_v2_x0_5(**kwargs) -> ShuffleNetV2:
    """ShuffleNet v2 0.5x (Ma et al. 2018), torchvision-compatible."""
    return ShuffleNetV2(width="0.5", **kwargs)


@register_model(reference="torchvision:shufflenet_v2_x1_0",
                data_config=torchvision_weights(256, 224))
def shufflenet_v2_x1_0(**kwargs) -> ShuffleNetV2:
    """ShuffleNet v2 1x (Ma et al. 2018), torchvision-compatible."""
    return ShuffleNetV2(width="1.0", **kwargs)


@register_model(reference="torchvision:shufflenet_v2_x1_5",
                data_config=torchvision_weights(232, 224))
def shufflenet_v2_x1_5(**kwargs) -> ShuffleNetV2:
    """ShuffleNet v2 1.5x (Ma et al. 2018), torchvision-compatible."""
    return ShuffleNetV2(width="1.5", **kwargs)


@register_model(reference="torchvision:shufflenet_v2_x2_0",
                data_config=torchvision_weights(232, 224))
def shufflenet_v2_x2_0(**kwargs) -> ShuffleNetV2:
    """ShuffleNet v2 2x (Ma et al. 2018), torchvision-compatible."""
    return ShuffleNetV2(width="2.0", **kwargs)
