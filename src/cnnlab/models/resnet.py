"""ResNet v1 (He, Zhang, Ren & Sun 2015, "Deep residual learning for image recognition",
arXiv:1512.03385) and ResNet v2 (He et al. 2016, "Identity mappings in deep residual networks",
arXiv:1603.05027).

A residual block computes ``y = F(x) + shortcut(x)``. The shortcut is the identity where the
shapes agree; where a stage starts (more channels, stride 2) it is option B of the paper, a 1x1
projection (ImageNet models), or option A, zero-padding without parameters (CIFAR models).

ImageNet ResNet v1 (Table 1 of the paper), torchvision's layout and state_dict keys
(``conv1, bn1, layer1.0.conv1, ..., layer1.0.downsample.0/1, fc``)::

    conv1 7x7/2, 64 -> 3x3 max-pool /2 -> layer1..layer4 (64, 128, 256, 512 planes,
    stride 1, 2, 2, 2) -> global average pool -> fc
    resnet18 [2, 2, 2, 2] and resnet34 [3, 4, 6, 3]: basic blocks 3x3-3x3
    resnet50 [3, 4, 6, 3], resnet101 [3, 4, 23, 3], resnet152 [3, 8, 36, 3]:
    bottlenecks 1x1 (planes) - 3x3 (planes) - 1x1 (4 x planes)

Depth counts the layers with weights on the main path: resnet50 = 1 + 3 x (3+4+6+3) + 1.

**Stride placement (``stride_in_1x1``).** The paper (and its Caffe models, and Keras' ResNet50)
puts a stage's stride 2 in the *first 1x1* convolution of its first bottleneck. torchvision,
timm and most later code put it in the *3x3* convolution ("ResNet v1.5"), which costs more
(resnet50: 4.09 G multiply-adds at 224x224 instead of the paper's 3.86 G) and is about half
a point more accurate. The default, ``stride_in_1x1=False``, is torchvision's form;
``stride_in_1x1=True`` is the paper's. The parameters and state_dict are the same in both.

CIFAR ResNets (sec. 4.2): ``resnet20/32/44/56/110`` = 6n+2 layers for n = 3, 5, 7, 9, 18. A 3x3
convolution with 16 filters on the 32x32 image, three stages of n basic blocks with 16, 32, 64
filters on maps of 32, 16 and 8 pixels (the first block of stages 2 and 3 has stride 2), global
average pooling and a 10-way fully connected layer. Shortcuts are option A (``shortcut="A"``),
as the paper uses on CIFAR; ``shortcut="B"`` gives projections instead.

ResNet v2 (pre-activation): each block is BN-ReLU-conv three times (bottlenecks), the addition
is not followed by a ReLU, the shortcut of a stage's first block (and its projection) reads the
pre-activated input, and a final BN-ReLU follows the last block (the paper's sec. 4.1 and
appendix). ``resnet50_v2``/``resnet101_v2``/``resnet152_v2`` match **timm's** ``resnetv2_50``
/ ``resnetv2_101`` / ``resnetv2_152`` (key for key: ``stem.conv, stages.0.blocks.0.norm1, ...,
downsample.conv, norm, head.fc``). As in timm, the stem is a bare 7x7 convolution and max-pool
(no BN: the first block normalises) and projections have no BN. The stride sits in the 3x3
convolution, as in timm; the authors' code (KaimingHe/resnet-1k-layers, ``resnet-pre-act.lua``,
as timm's notes say) puts it in the first 1x1, which ``stride_in_1x1=True`` gives. The classifier
``head.fc`` is a 1x1 convolution on the pooled features (the same map as a linear layer, kept as
a convolution so that timm's checkpoints load). Keras' ResNet50V2 is a different network
(25,568,360 trainable parameters, 3.48 G multiply-adds): among other things it puts the stride
in the *last* block of each stage.

Initialisation (torchvision's and timm's): Kaiming-normal (fan_out) convolutions, BN weight 1
and bias 0, PyTorch's default for the v1 linear layer, N(0, 0.01) for the v2 head.
``zero_init_residual=True`` starts each block as the identity (the last BN weight of a v1 block,
the last convolution of a v2 block, at zero; Goyal et al. 2017). The paper initialises with He
et al.'s fan_in variant; the difference is a constant factor per layer.

Smallest input: every stride-2 step (7x7 convolution, max-pool, 3x3 or 1x1 convolution,
zero-pad shortcut) pads or subsamples ``h`` to ``ceil(h / 2)`` and the pooling is adaptive, so a
1x1 image goes through (every map is then 1x1). Under about 64 pixels the ImageNet models see
very little; use the CIFAR models for 32x32 data.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..data.config import INCEPTION_MEAN, INCEPTION_STD, timm_weights, torchvision_weights
from ..errors import UsageError
from ..layers import ConvNormAct, NormActConv, add_flat, init_weights, residual_shortcut
from ..registry import register_model
from .base import FeatureSpec, ImageClassifier


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers (ReLU between), added to the shortcut, then ReLU (Fig. 2 left)."""

    expansion = 1

    def __init__(self, in_chs: int, planes: int, stride: int = 1, shortcut: str = "B"):
        super().__init__()
        add_flat(self, ConvNormAct(in_chs, planes, 3, stride, names=("conv1", "bn1", "relu")),
                 ConvNormAct(planes, planes, 3, act_layer=None, names=("conv2", "bn2")))
        self.downsample = residual_shortcut(in_chs, planes, stride, shortcut)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 (reduce) - 3x3 - 1x1 (expand x4) conv-BN layers, plus the shortcut, then ReLU
    (Fig. 5 right). The stride is in the 3x3 (torchvision) or the first 1x1 (paper)."""

    expansion = 4

    def __init__(self, in_chs: int, planes: int, stride: int = 1, shortcut: str = "B",
                 stride_in_1x1: bool = False):
        super().__init__()
        out_chs = planes * self.expansion
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        add_flat(self, ConvNormAct(in_chs, planes, 1, s1, names=("conv1", "bn1", "relu")),
                 ConvNormAct(planes, planes, 3, s3, act_layer=None, names=("conv2", "bn2")),
                 ConvNormAct(planes, out_chs, 1, act_layer=None, names=("conv3", "bn3")))
        self.downsample = residual_shortcut(in_chs, out_chs, stride, shortcut)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class PreActBottleneck(nn.Module):
    """ResNet v2 bottleneck: (BN-ReLU-conv) 1x1, 3x3, 1x1, plus the shortcut, no ReLU after
    the addition (He et al. 2016, Fig. 1b and 4e). timm's names: norm1, conv1, ..., conv3."""

    expansion = 4

    def __init__(self, in_chs: int, planes: int, stride: int = 1, shortcut: str = "B",
                 stride_in_1x1: bool = False):
        super().__init__()
        out_chs = planes * self.expansion
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        add_flat(self, NormActConv(in_chs, planes, 1, s1, names=("norm1", "act1", "conv1")),
                 NormActConv(planes, planes, 3, s3, names=("norm2", "act2", "conv2")),
                 NormActConv(planes, out_chs, 1, names=("norm3", "act3", "conv3")))
        # The projection reads the pre-activated input, so it needs no BN of its own.
        self.downsample = residual_shortcut(in_chs, out_chs, stride, shortcut, norm_layer=None,
                                            names=("conv",))

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.conv3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_preact = self.act1(self.norm1(x))
        identity = x if self.downsample is None else self.downsample(x_preact)
        out = self.conv1(x_preact)
        out = self.conv2(self.act2(self.norm2(out)))
        out = self.conv3(self.act3(self.norm3(out)))
        return out + identity


Block = type[nn.Module]  # BasicBlock, Bottleneck or PreActBottleneck


def make_stage(block: Block, in_chs: int, planes: int, depth: int, stride: int,
               **block_kwargs) -> nn.Sequential:
    """``depth`` blocks; the first one takes the stride and the change of width."""
    out_chs = planes * block.expansion
    return nn.Sequential(*[
        block(in_chs if i == 0 else out_chs, planes, stride if i == 0 else 1, **block_kwargs)
        for i in range(depth)
    ])


def _check_layers(layers, widths, stages: tuple[int, ...] | None = None) -> None:
    if stages is not None and len(widths) not in stages:
        raise UsageError(f"need {' or '.join(map(str, stages))} stage widths, got {tuple(widths)}")
    if len(layers) != len(widths) or any(not isinstance(d, int) or d < 1 for d in layers):
        raise UsageError(f"need one positive block count per stage width {tuple(widths)}, "
                         f"got {tuple(layers)}")


class ResNet(ImageClassifier):
    """ResNet v1 with torchvision's module names, for ImageNet (``stem="imagenet"``) or
    CIFAR (``stem="cifar"``: one 3x3 convolution, no max-pool)."""

    # the feature taps (cnnlab.features): the first map is the stem after its ReLU, before the
    # max-pool, as in timm
    feature_spec = FeatureSpec(trunk=("conv1", "bn1", "relu", "maxpool", "layer*"))

    def __init__(self, block: Block, layers: tuple[int, ...],
                 widths: tuple[int, ...] = (64, 128, 256, 512), num_classes: int = 1000,
                 in_chans: int = 3, stem: str = "imagenet", zero_init_residual: bool = False,
                 **block_kwargs):
        if stem not in ("imagenet", "cifar"):
            raise UsageError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        _check_layers(layers, widths, stages=(3, 4))  # layer1 ... layer3 or layer4
        super().__init__(num_classes, in_chans, min_input_size=1)
        if stem == "imagenet":
            add_flat(self, ConvNormAct(in_chans, widths[0], 7, 2, names=("conv1", "bn1", "relu")))
            self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        else:
            add_flat(self, ConvNormAct(in_chans, widths[0], 3, 1, names=("conv1", "bn1", "relu")))
            self.maxpool = nn.Identity()
        chs = widths[0]
        for i, (planes, depth) in enumerate(zip(widths, layers, strict=True)):
            self.add_module(f"layer{i + 1}", make_stage(block, chs, planes, depth,
                                                        1 if i == 0 else 2, **block_kwargs))
            chs = planes * block.expansion
        if len(layers) == 3:  # the CIFAR models: layer1 ... layer3 only
            self.layer4 = None
        self.num_features = self.head_hidden_size = chs
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(chs, num_classes) if num_classes else nn.Identity()
        init_weights(self, linear_std=None)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    m.zero_init_last()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return x if self.layer4 is None else self.layer4(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.avgpool(x).flatten(1)
        return x if pre_logits else self.fc(x)

    def keras_quirks(self, ran: set[str]) -> dict:
        """Where Keras's ResNet differs from this one (:mod:`cnnlab.analysis.keras`): ``kind
        -> (what Keras has more, the reason with an {accounts} slot)``."""
        convs = [m for n, m in self.named_modules() if isinstance(m, nn.Conv2d) and n in ran]
        biases = sum(m.out_channels for m in convs if m.bias is None)
        return {"params": (biases, (
            f"Keras's ResNet convolutions have biases: +{biases:,} (one per output channel of "
            f"cnnlab's {len(convs)} bias-free convolutions; {{accounts}}). Both put a stage's "
            "stride in its first 1x1 convolution (the paper's v1; cnnlab stride_in_1x1=True)."))}


class ResNetV2(ImageClassifier):
    """Pre-activation ResNet (v2) with timm's module names (``resnetv2_*``)."""

    # the feature taps (cnnlab.features): the last map is stages.3, before the final norm/act
    feature_spec = FeatureSpec(trunk=("stem.conv", "stem.pool", "stages.*"), rest=("norm", "act"))

    classifier_name = "head.fc"

    def __init__(self, layers: tuple[int, ...], widths: tuple[int, ...] = (64, 128, 256, 512),
                 num_classes: int = 1000, in_chans: int = 3, zero_init_residual: bool = False,
                 **block_kwargs):
        _check_layers(layers, widths)
        super().__init__(num_classes, in_chans, min_input_size=1)
        block = PreActBottleneck
        self.stem = nn.Sequential(OrderedDict([
            ("conv", nn.Conv2d(in_chans, widths[0], 7, 2, padding=3, bias=False)),
            ("pool", nn.MaxPool2d(3, 2, padding=1)),
        ]))
        chs, stages = widths[0], []
        for i, (planes, depth) in enumerate(zip(widths, layers, strict=True)):
            blocks = make_stage(block, chs, planes, depth, 1 if i == 0 else 2, **block_kwargs)
            stages.append(nn.Sequential(OrderedDict(blocks=blocks)))
            chs = planes * block.expansion
        self.stages = nn.Sequential(*stages)
        self.num_features = self.head_hidden_size = chs
        self.norm = nn.BatchNorm2d(chs)  # the extra activation after the last addition
        self.act = nn.ReLU(inplace=True)
        self.head = nn.Sequential(OrderedDict([
            ("pool", nn.AdaptiveAvgPool2d(1)),
            ("fc", nn.Conv2d(chs, num_classes, 1) if num_classes else nn.Identity()),
            ("flatten", nn.Flatten(1)),
        ]))
        init_weights(self)
        if num_classes:
            nn.init.normal_(self.head.fc.weight, 0.0, 0.01)
            nn.init.zeros_(self.head.fc.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, PreActBottleneck):
                    m.zero_init_last()

    def make_classifier(self, in_features: int, num_classes: int) -> nn.Module:
        """timm's head: a 1x1 convolution on the pooled 1x1 map."""
        return nn.Conv2d(in_features, num_classes, 1) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.stages(self.stem(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head.pool(x)
        return x.flatten(1) if pre_logits else self.head(x)

    def keras_quirks(self, ran: set[str]) -> dict:
        """Where Keras's ResNetV2 differs from this one (timm's layout; see
        :meth:`ResNet.keras_quirks`)."""
        last = [m for n, m in self.named_modules() if isinstance(m, nn.Conv2d) and n in ran
                and m.bias is None and (n.endswith(("conv3", "downsample.conv"))
                                        or n.count(".") <= 1)]
        biases = sum(m.out_channels for m in last)
        return {"params": (biases, (
            "Keras's ResNetV2 is not timm's layout, which cnnlab follows: Keras gives the stem "
            "convolution, each block's last 1x1 convolution and the shortcut convolutions "
            "biases, and puts a stage's stride in its last block; cnnlab's count differs by "
            f"{{diff:+,}}. Biases on those convolutions here: {biases:,} ({{accounts}})."))}


# ResNet v1, ImageNet (Table 1 of the paper).

@register_model(reference="torchvision:resnet18",
                data_config=torchvision_weights(256, 224))
def resnet18(**kwargs) -> ResNet:
    """ResNet-18 (He et al. 2015): basic blocks [2, 2, 2, 2], torchvision layout."""
    return ResNet(BasicBlock, (2, 2, 2, 2), **kwargs)


@register_model(reference="torchvision:resnet34",
                data_config=torchvision_weights(256, 224))
def resnet34(**kwargs) -> ResNet:
    """ResNet-34 (He et al. 2015): basic blocks [3, 4, 6, 3], torchvision layout."""
    return ResNet(BasicBlock, (3, 4, 6, 3), **kwargs)


@register_model(reference="torchvision:resnet50",
                data_config=torchvision_weights(256, 224))
def resnet50(**kwargs) -> ResNet:
    """ResNet-50 v1.5 (stride in the 3x3) [3, 4, 6, 3]; stride_in_1x1=True: the paper's v1."""
    return ResNet(Bottleneck, (3, 4, 6, 3), **kwargs)


@register_model(reference="torchvision:resnet101",
                data_config=torchvision_weights(256, 224))
def resnet101(**kwargs) -> ResNet:
    """ResNet-101 v1.5 (stride in the 3x3) [3, 4, 23, 3]; stride_in_1x1=True: the paper's v1."""
    return ResNet(Bottleneck, (3, 4, 23, 3), **kwargs)


@register_model(reference="torchvision:resnet152",
                data_config=torchvision_weights(256, 224))
def resnet152(**kwargs) -> ResNet:
    """ResNet-152 v1.5 (stride in the 3x3) [3, 8, 36, 3]; stride_in_1x1=True: the paper's v1."""
    return ResNet(Bottleneck, (3, 8, 36, 3), **kwargs)


# ResNet v1, CIFAR-10 (section 4.2): 6n + 2 layers.

# n blocks per stage, the one place the depths are written (the builders below read it)
CIFAR_DEPTHS = {"resnet20": 3, "resnet32": 5, "resnet44": 7, "resnet56": 9, "resnet110": 18}


def _cifar_resnet(n: int, num_classes: int = 10, shortcut: str = "A", **kwargs) -> ResNet:
    return ResNet(BasicBlock, (n, n, n), widths=(16, 32, 64), num_classes=num_classes,
                  stem="cifar", shortcut=shortcut, **kwargs)


@register_model(input_size=(3, 32, 32))
def resnet20(**kwargs) -> ResNet:
    """CIFAR ResNet-20 (He et al. 2015, sec. 4.2): n=3, 16/32/64 filters, option A shortcuts."""
    return _cifar_resnet(CIFAR_DEPTHS["resnet20"], **kwargs)


@register_model(input_size=(3, 32, 32))
def resnet32(**kwargs) -> ResNet:
    """CIFAR ResNet-32 (He et al. 2015, sec. 4.2): n=5, 16/32/64 filters, option A shortcuts."""
    return _cifar_resnet(CIFAR_DEPTHS["resnet32"], **kwargs)


@register_model(input_size=(3, 32, 32))
def resnet44(**kwargs) -> ResNet:
    """CIFAR ResNet-44 (He et al. 2015, sec. 4.2): n=7, 16/32/64 filters, option A shortcuts."""
    return _cifar_resnet(CIFAR_DEPTHS["resnet44"], **kwargs)


@register_model(input_size=(3, 32, 32))
def resnet56(**kwargs) -> ResNet:
    """CIFAR ResNet-56 (He et al. 2015, sec. 4.2): n=9, 16/32/64 filters, option A shortcuts."""
    return _cifar_resnet(CIFAR_DEPTHS["resnet56"], **kwargs)


@register_model(input_size=(3, 32, 32))
def resnet110(**kwargs) -> ResNet:
    """CIFAR ResNet-110 (He et al. 2015, sec. 4.2): n=18, 16/32/64 filters, option A shortcuts."""
    return _cifar_resnet(CIFAR_DEPTHS["resnet110"], **kwargs)


# ResNet v2, pre-activation (He et al. 2016), timm's resnetv2_* layout.

@register_model(reference="timm:resnetv2_50",
                data_config=timm_weights("resnetv2_50.a1h_in1k", 224, 0.95,
                                         mean=INCEPTION_MEAN, std=INCEPTION_STD))
def resnet50_v2(**kwargs) -> ResNetV2:
    """Pre-activation ResNet-50 v2 (He et al. 2016): [3, 4, 6, 3], timm resnetv2_50 layout."""
    return ResNetV2((3, 4, 6, 3), **kwargs)


@register_model(reference="timm:resnetv2_101",
                data_config=timm_weights("resnetv2_101.a1h_in1k", 224, 0.95,
                                         mean=INCEPTION_MEAN, std=INCEPTION_STD))
def resnet101_v2(**kwargs) -> ResNetV2:
    """Pre-activation ResNet-101 v2 (He et al. 2016): [3, 4, 23, 3], timm resnetv2_101 layout."""
    return ResNetV2((3, 4, 23, 3), **kwargs)


@register_model
def resnet152_v2(**kwargs) -> ResNetV2:
    """Pre-activation ResNet-152 v2 (He et al. 2016): [3, 8, 36, 3], timm resnetv2_152 layout."""
    return ResNetV2((3, 8, 36, 3), **kwargs)
