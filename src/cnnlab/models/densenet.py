"""DenseNet (Huang, Liu, van der Maaten & Weinberger 2017, "Densely connected convolutional
networks", CVPR; arXiv:1608.06993), the ImageNet models of Table 1 ("DenseNet-BC").

Inside a dense block, layer ``l`` reads the concatenation of the block input and the outputs of
all earlier layers, ``x_l = H_l([x_0, x_1, ..., x_{l-1}])``, and adds ``k`` (the growth rate)
new maps. ``H_l`` is BN-ReLU-conv1x1 to ``bn_size * k`` maps (the bottleneck, "B"), then
BN-ReLU-conv3x3 to ``k`` maps. Between blocks, a transition layer BN-ReLU-conv1x1 halves the
maps (compression 0.5, "C") and a 2x2 average pool halves the size::

    conv0 7x7/2 (2k maps; 96 for densenet161) -> 3x3 max-pool /2
    -> dense block 1 -> transition 1 -> ... -> dense block 4 -> BN-ReLU -> global avg pool -> fc

    densenet121: k=32, blocks (6, 12, 24, 16)    densenet169: k=32, (6, 12, 32, 32)
    densenet201: k=32, (6, 12, 48, 32)           densenet161: k=48, (6, 12, 36, 24)

The depth counts the layers with weights: 1 + 2 x (layers in the blocks) + 3 transitions + 1,
so 1 + 2 x 58 + 3 + 1 = 121. Module names and shapes are torchvision's
(``features.conv0, features.denseblock1.denselayer1.norm1, ..., features.transition1.conv,
features.norm5, classifier``), and so is the initialisation (Kaiming-normal fan_in
convolutions, BN at 1/0, zero classifier bias). The final ReLU is part of
``forward_features`` (module ``features.relu5``, no parameters).

``memory_efficient=True`` recomputes each layer's concatenation and bottleneck during the
backward pass instead of storing them (``torch.utils.checkpoint``; Pleiss et al. 2017,
"Memory-efficient implementation of DenseNets"): the stored activations of a block then grow
linearly with its depth instead of quadratically. Outputs and gradients are the same; unlike
torchvision's version the recomputation does not update the BN running statistics a second
time, so they stay the same too.

The paper adds dropout 0.2 after each convolution only for CIFAR without augmentation;
``dropout`` (default 0, as on ImageNet) applies it to each layer's new maps, as torchvision does.

Smallest input: the stem takes ``h`` to ``ceil(h / 4)`` and the three 2x2 average pools (no
padding) need at least 8 pixels there, so ``h >= 29``.
"""

# No `from __future__ import annotations` in this file: TorchScript reads its annotations.

import re
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..data.config import torchvision_weights
from ..errors import UsageError
from ..layers import ConvNormAct, NormActConv, add_flat
from ..registry import register_model
from .base import SEQUENTIAL_FEATURES, ImageClassifier


class DenseLayer(nn.Module):
    """H_l: BN-ReLU-conv1x1 (bn_size * k maps) then BN-ReLU-conv3x3 (k maps), on the
    concatenation of every earlier output of the block."""

    def __init__(self, in_chs: int, growth_rate: int, bn_size: int = 4, dropout: float = 0.0,
                 memory_efficient: bool = False):
        super().__init__()
        width = bn_size * growth_rate
        add_flat(self, NormActConv(in_chs, width, 1, names=("norm1", "relu1", "conv1")),
                 NormActConv(width, growth_rate, 3, names=("norm2", "relu2", "conv2")))
        self.dropout = dropout
        self.memory_efficient = memory_efficient

    def bottleneck(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.conv1(self.relu1(self.norm1(torch.cat(features, 1))))

    @torch.jit.unused
    def checkpointed_bottleneck(self, features: list[torch.Tensor]) -> torch.Tensor:
        """The bottleneck, its inputs kept but its activations recomputed during backward."""
        calls = 0

        def run(*features: torch.Tensor) -> torch.Tensor:
            nonlocal calls
            calls += 1
            x = torch.cat(features, 1)
            norm = self.norm1
            if calls == 1:
                x = norm(x)
            else:  # recomputation: the same output, without updating the running statistics
                x = F.batch_norm(x, norm.running_mean, norm.running_var, norm.weight, norm.bias,
                                 norm.training or norm.running_mean is None, 0.0, norm.eps)
            return self.conv1(self.relu1(x))

        return checkpoint(run, *features, use_reentrant=False)

    @torch.jit.unused
    def needs_grad(self, features: list[torch.Tensor]) -> bool:
        """Whether autograd will need this layer's activations (then checkpointing pays)."""
        return torch.is_grad_enabled() and any(
            t.requires_grad for t in (*features, *self.parameters()))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        # Only the memory-efficient form looks at requires_grad: the default form has no
        # Python branch on the data and traces (fx) and scripts (TorchScript) like
        # torchvision's. The checkpointed form runs eagerly only; a scripted model computes
        # the same bottleneck without checkpointing.
        if self.memory_efficient and not torch.jit.is_scripting() and self.needs_grad(features):
            x = self.checkpointed_bottleneck(features)
        else:
            x = self.bottleneck(features)
        x = self.conv2(self.relu2(self.norm2(x)))
        if self.dropout > 0:
            x = F.dropout(x, self.dropout, self.training)
        return x


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers; the output concatenates the input and every new map."""

    def __init__(self, num_layers: int, in_chs: int, growth_rate: int, **layer_kwargs):
        super().__init__({
            f"denselayer{i + 1}": DenseLayer(in_chs + i * growth_rate, growth_rate, **layer_kwargs)
            for i in range(num_layers)
        })
        self.out_channels = in_chs + num_layers * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for _, layer in self.items():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(NormActConv):
    """BN-ReLU-conv1x1 (compressing the maps), then 2x2 average pooling, stride 2."""

    def __init__(self, in_chs: int, out_chs: int):
        super().__init__(in_chs, out_chs, 1, names=("norm", "relu", "conv"))
        self.add_module("pool", nn.AvgPool2d(2, 2))


# torchvision's DenseNet files from before 0.3 name a layer's parts "norm.1", "conv.2", ...
_OLD_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\."
                      r"(?:weight|bias|running_mean|running_var|num_batches_tracked))$")


def checkpoint_filter(state: dict, model: nn.Module) -> tuple[dict, list[str]]:
    """A DenseNet state_dict with the old ``norm.1`` key names renamed to ``norm1``, as
    torchvision's loader does (the checkpoint-filter hook that :mod:`cnnlab.pretrained`
    calls); other states come back as they are."""
    n = sum(bool(_OLD_KEY.match(k)) for k in state)
    if not n:
        return state, []
    return ({_OLD_KEY.sub(r"\1\2", k): v for k, v in state.items()},
            [f"{n} DenseNet keys renamed from the old 'norm.1' form to 'norm1'"])


class DenseNet(ImageClassifier):
    """DenseNet-BC for ImageNet, torchvision's module names."""

    feature_spec = SEQUENTIAL_FEATURES  # the feature taps (cnnlab.features)

    classifier_name = "classifier"
    checkpoint_filter = staticmethod(checkpoint_filter)

    def __init__(self, growth_rate: int = 32, block_config: tuple[int, ...] = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, compression: float = 0.5,
                 dropout: float = 0.0, num_classes: int = 1000, in_chans: int = 3,
                 memory_efficient: bool = False):
        if not block_config or any(not isinstance(n, int) or n < 1 for n in block_config):
            raise UsageError(f"block_config needs positive layer counts, got {block_config!r}")
        if not 0.0 < compression <= 1.0:
            raise UsageError(f"compression must be in (0, 1], got {compression}")
        if not 0.0 <= dropout < 1.0:
            raise UsageError(f"dropout must be in [0, 1), got {dropout}")
        # Stem: ceil(h / 4); each transition halves (floor), and there must be 1 pixel left.
        super().__init__(num_classes, in_chans,
                         min_input_size=4 * 2 ** (len(block_config) - 1) - 3)
        stem = ConvNormAct(in_chans, num_init_features, 7, 2, names=("conv0", "norm0", "relu0"))
        features = OrderedDict(stem.named_children())
        features["pool0"] = nn.MaxPool2d(3, 2, padding=1)
        chs = num_init_features
        for i, num_layers in enumerate(block_config):
            block = DenseBlock(num_layers, chs, growth_rate, bn_size=bn_size, dropout=dropout,
                               memory_efficient=memory_efficient)
            features[f"denseblock{i + 1}"] = block
            chs = block.out_channels
            if i != len(block_config) - 1:
                features[f"transition{i + 1}"] = Transition(chs, int(chs * compression))
                chs = int(chs * compression)
        features["norm5"] = nn.BatchNorm2d(chs)
        features["relu5"] = nn.ReLU(inplace=True)
        self.features = nn.Sequential(features)
        self.num_features = self.head_hidden_size = chs
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(chs, num_classes) if num_classes else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.avgpool(x).flatten(1)
        return x if pre_logits else self.classifier(x)


@register_model(reference="torchvision:densenet121",
                data_config=torchvision_weights(256, 224))
def densenet121(**kwargs) -> DenseNet:
    """DenseNet-121 (Huang et al. 2017): k=32, blocks (6, 12, 24, 16), torchvision layout."""
    return DenseNet(**{"growth_rate": 32, "block_config": (6, 12, 24, 16),
                       "num_init_features": 64, **kwargs})


@register_model(reference="torchvision:densenet169",
                data_config=torchvision_weights(256, 224))
def densenet169(**kwargs) -> DenseNet:
    """DenseNet-169 (Huang et al. 2017): k=32, blocks (6, 12, 32, 32), torchvision layout."""
    return DenseNet(**{"growth_rate": 32, "block_config": (6, 12, 32, 32),
                       "num_init_features": 64, **kwargs})


@register_model(reference="torchvision:densenet201",
                data_config=torchvision_weights(256, 224))
def densenet201(**kwargs) -> DenseNet:
    """DenseNet-201 (Huang et al. 2017): k=32, blocks (6, 12, 48, 32), torchvision layout."""
    return DenseNet(**{"growth_rate": 32, "block_config": (6, 12, 48, 32),
                       "num_init_features": 64, **kwargs})


@register_model(reference="torchvision:densenet161",
                data_config=torchvision_weights(256, 224))
def densenet161(**kwargs) -> DenseNet:
    """DenseNet-161 (Huang et al. 2017): k=48, blocks (6, 12, 36, 24), 96 stem maps, torchvision."""
    return DenseNet(**{"growth_rate": 48, "block_config": (6, 12, 36, 24),
                       "num_init_features": 96, **kwargs})
