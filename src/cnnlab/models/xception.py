"""Xception (Chollet 2017, "Xception: Deep learning with depthwise separable convolutions",
arXiv:1610.02357, CVPR 2017).

Inception modules taken to the extreme: every convolution after the stem is a depthwise
separable one (a 3x3 depthwise convolution, then a 1x1 pointwise one, nothing between,
:class:`~cnnlab.layers.SeparableConv2d`), each followed by batch norm, and the blocks are
residual. Figure 5 of the paper, at 299x299::

    entry flow   conv 3x3/2 (32) 149 -> conv 3x3 (64) 147
                 block1: [sep 128, ReLU, sep 128] + max pool 3x3/2          -> 128 x 74
                 block2: [ReLU, sep 256, ReLU, sep 256] + max pool          -> 256 x 37
                 block3: [ReLU, sep 728, ReLU, sep 728] + max pool          -> 728 x 19
    middle flow  block4..block11 (8 repeats): [ReLU, sep 728] x 3, identity shortcut
                                                                            -> 728 x 19
    exit flow    block12: [ReLU, sep 728, ReLU, sep 1024] + max pool        -> 1024 x 10
                 sep 1536, ReLU, sep 2048, ReLU                             -> 2048 x 10
    global average pool -> dropout -> linear

The entry blocks and block12 add a shortcut of a 1x1 convolution with stride 2 and batch norm
(the paper's "1x1 conv, stride 2x2"); the middle blocks add their input unchanged.

Parameters: 22,855,952 with 1000 classes, the paper's Table 3 figure, Keras ``Xception``'s
trainable weights and timm's ``legacy_xception``, whose state_dict this model matches key for
key (``block1.rep.0.conv1.weight``, ``block1.skip``/``skipbn`` ...): weights ported to timm's
legacy Xception load directly.

Differences from the paper and Keras: max pools and separable convolutions pad symmetrically
(PyTorch) where TensorFlow's "same" pads the bottom/right more; the map sizes are the same
(74, 37, 19, 10 at 299x299). Initialisation is timm's (Kaiming-normal, fan-out, for
convolutions; PyTorch's default for the classifier). Dropout 0.5 before the classifier is the
paper's ImageNet setting (section 4.3); Keras and timm have none (``dropout=0`` gives theirs).
The smallest input is 7x7 (the two unpadded stem convolutions; the padded pools then keep
at least 1x1).
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.config import INCEPTION_MEAN, INCEPTION_STD, timm_weights
from ..layers import SeparableConv2d, init_weights
from ..registry import register_model
from .base import FeatureSpec, ImageClassifier

# (in, out, repetitions, stride, start_with_relu, grow_first) of the 12 blocks (Figure 5).
ENTRY_FLOW = ((64, 128, 2, 2, False, True), (128, 256, 2, 2, True, True),
              (256, 728, 2, 2, True, True))
MIDDLE_FLOW = ((728, 728, 3, 1, True, True),) * 8
EXIT_FLOW = ((728, 1024, 2, 2, True, False),)


def separable(in_chs: int, out_chs: int) -> SeparableConv2d:
    """3x3 separable convolution with timm's legacy sub-module names."""
    return SeparableConv2d(in_chs, out_chs, 3, names=("conv1", "pointwise"))


class XceptionBlock(nn.Module):
    """``reps`` x (ReLU, separable 3x3, BN), an optional 3x3/2 max pool, plus the shortcut.

    ``grow_first`` widens at the first convolution (entry and middle flows), otherwise at the
    last (block12: 728 -> 728 -> 1024). The shortcut is a 1x1 convolution (stride ``stride``)
    with batch norm when the width or the size changes, the identity otherwise.
    """

    def __init__(self, in_chs: int, out_chs: int, reps: int, stride: int = 1,
                 start_with_relu: bool = True, grow_first: bool = True):
        super().__init__()
        if out_chs != in_chs or stride != 1:
            self.skip = nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False)
            self.skipbn = nn.BatchNorm2d(out_chs)
        else:
            self.skip = self.skipbn = None
        layers: list[nn.Module] = []
        for i in range(reps):
            if grow_first:
                cin, cout = (in_chs if i == 0 else out_chs), out_chs
            else:
                cin, cout = in_chs, (in_chs if i < reps - 1 else out_chs)
            # The first ReLU must not overwrite the block input: the shortcut still reads it.
            layers += [nn.ReLU(inplace=i > 0), separable(cin, cout), nn.BatchNorm2d(cout)]
        if not start_with_relu:
            layers = layers[1:]
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, padding=1))
        self.rep = nn.Sequential(*layers)
        self.out_channels = out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.skip is None else self.skipbn(self.skip(x))
        return self.rep(x) + shortcut


class Xception(ImageClassifier):
    """Xception with timm ``legacy_xception``'s module names (conv1, block1..block12, conv4)."""

    # the feature taps (cnnlab.features): the maps at 1/4, 1/8 and 1/16 are a block's output
    # after the ReLU that opens the next block, as timm's block2.rep.0, ... (tap_alias)
    feature_spec = FeatureSpec(
        trunk=("conv1", "bn1", "act1", "conv2", "bn2", "act2", "block*",
               "conv3", "bn3", "act3", "conv4", "bn4", "act4"),
        tap_alias={"block1": "block2.rep.0", "block2": "block3.rep.0",
                   "block11": "block12.rep.0"})

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5):
        super().__init__(num_classes, in_chans, min_input_size=7)
        self.conv1 = nn.Conv2d(in_chans, 32, 3, stride=2, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(32, 64, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.act2 = nn.ReLU(inplace=True)
        for i, cfg in enumerate(ENTRY_FLOW + MIDDLE_FLOW + EXIT_FLOW, start=1):
            self.add_module(f"block{i}", XceptionBlock(*cfg))
        self.conv3 = separable(1024, 1536)
        self.bn3 = nn.BatchNorm2d(1536)
        self.act3 = nn.ReLU(inplace=True)
        self.conv4 = separable(1536, 2048)
        self.bn4 = nn.BatchNorm2d(2048)
        self.act4 = nn.ReLU(inplace=True)
        self.num_features = self.head_hidden_size = 2048
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        init_weights(self, linear_std=None)

    def forward_entry(self, x: torch.Tensor) -> torch.Tensor:
        """Entry flow: the stem and blocks 1-3 (728 x 19 x 19 at 299x299)."""
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        return self.block3(self.block2(self.block1(x)))

    def forward_middle(self, x: torch.Tensor) -> torch.Tensor:
        """Middle flow: blocks 4-11, eight residual blocks at constant size."""
        x = self.block7(self.block6(self.block5(self.block4(x))))
        return self.block11(self.block10(self.block9(self.block8(x))))

    def forward_exit(self, x: torch.Tensor) -> torch.Tensor:
        """Exit flow up to the global pool: block12, conv3, conv4 (2048 x 10 x 10 at 299)."""
        x = self.block12(x)
        x = self.act3(self.bn3(self.conv3(x)))
        return self.act4(self.bn4(self.conv4(x)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_exit(self.forward_middle(self.forward_entry(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(torch.flatten(self.global_pool(x), 1))
        return x if pre_logits else self.fc(x)


@register_model(input_size=(3, 299, 299), reference={"timm:legacy_xception": {}},
                data_config=timm_weights("legacy_xception.tf_in1k", 299, 0.8975,
                                         mean=INCEPTION_MEAN, std=INCEPTION_STD))
def xception(**kwargs) -> Xception:
    """Xception (Chollet 2017): entry, 8x middle and exit flows of separable convs, 299x299."""
    return Xception(**kwargs)
