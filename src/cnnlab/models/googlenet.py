"""GoogLeNet / Inception v1 (Szegedy et al. 2014, "Going deeper with convolutions",
arXiv:1409.4842, CVPR 2015).

An inception module runs four branches on the same input and concatenates their outputs
along the channels::

    branch1: 1x1 conv                                   (#1x1)
    branch2: 1x1 conv (#3x3 reduce) -> 3x3 conv         (#3x3)
    branch3: 1x1 conv (#5x5 reduce) -> 5x5 conv         (#5x5)
    branch4: 3x3 max pool, stride 1 -> 1x1 conv         (pool proj)

so a module's output has ``#1x1 + #3x3 + #5x5 + pool proj`` channels. Table 1 of the paper
(``INCEPTION_TABLE`` below) gives the widths; at 224x224 the network runs::

    conv 7x7/2 (64) -> max pool 3x3/2 -> [LRN] -> conv 1x1 (64) -> conv 3x3 (192) -> [LRN]
    -> max pool 3x3/2 -> 28x28: 3a (256), 3b (480) -> max pool 3x3/2
    -> 14x14: 4a (512), 4b (512), 4c (512), 4d (528), 4e (832) -> max pool
    -> 7x7: 5a (832), 5b (1024) -> global average pool -> dropout -> linear

Two auxiliary classifiers read the outputs of 4a and 4d while training ("average pooling 5x5
stride 3, 1x1 conv 128 + ReLU, FC 1024 + ReLU, dropout 70%, linear"); the paper adds their
losses with weight 0.3 each and discards them at inference. In training mode, with
``aux_logits=True``, the model returns :class:`~cnnlab.models.base.AuxOutput` carrying the two
auxiliary logits (4a's first) and the weights ``(0.3, 0.3)``; otherwise plain logits.

Two forms are registered:

``googlenet`` (torchvision-compatible; state_dict matches torchvision's ``googlenet`` key for
key: 6,624,904 parameters without the auxiliary heads, 13,004,888 with them). It differs
from the paper in the way torchvision's does:

* every convolution is conv (no bias) -> batch norm (eps 0.001) -> ReLU, and there is no LRN;
* the "5x5" branch uses a **3x3** kernel (torchvision calls it "a known bug"; the ported
  weights depend on it);
* the auxiliary heads pool adaptively to 4x4 (the paper's 5x5/3 pooling gives 4x4 only for
  14x14 to 16x16 maps) and their 1x1 convolution has batch norm;
* dropout before the classifier is 0.2 (torchvision's default), not the paper's 0.4;
* initialisation: truncated normal, std 0.01, for convolutions and linear layers
  (torchvision's);
* ``transform_input=True`` rescales inputs normalised with ImageNet mean/std into the
  ``(x - 0.5) / 0.5`` range of the Google-ported weights (channel-wise affine map, needs 3
  channels). Only useful with those weights; off by default.

``googlenet_paper`` (the paper's form): 5x5 kernels in branch3, convolutions with bias and
ReLU but no batch norm, local response normalisation after the first max pool and after
conv 3x3, dropout 0.4, auxiliary heads with the paper's 5x5/3 average pooling. Deviations:
LRN constants are those of the Caffe reference replication ``bvlc_googlenet`` (size 5,
alpha 1e-4 averaged over the 5 channels, beta 0.75, k 1; the paper gives none); the final
7x7 average pool is a global average pool (the same at 224x224); when an auxiliary input is
not 14-16 pixels wide, the pooled map is resized to 4x4 by adaptive average pooling (a no-op
at 224x224); initialisation follows ``bvlc_googlenet`` (Xavier/fan-in uniform weights, bias
0.2 for hidden layers, 0 for classifiers), since the paper does not give one.

Both forms use torchvision's pooling arithmetic (3x3 max pools with ``ceil_mode=True``, as in
Caffe), so 224x224 gives 112, 56, 28, 14 and 7 pixel maps. Both keep torchvision's default
``aux_logits=True``: the auxiliary heads are part of training GoogLeNet. Build with
``aux_logits=False`` for the 6.6M-parameter inference network.
"""

# No `from __future__ import annotations` in this file: TorchScript reads its annotations.

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..data.config import torchvision_weights
from ..errors import UsageError
from ..layers import (
    BasicConv2d,
    ConvNormAct,
    LocalResponseNorm,
    google_range_prologue,
    to_google_range,
)
from ..registry import register_model
from .base import AuxClassifier, FeatureSpec

# Table 1: (name, in, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj)
INCEPTION_TABLE: tuple[tuple[str, int, int, int, int, int, int, int], ...] = (
    ("3a", 192, 64, 96, 128, 16, 32, 32),
    ("3b", 256, 128, 128, 192, 32, 96, 64),
    ("4a", 480, 192, 96, 208, 16, 48, 64),
    ("4b", 512, 160, 112, 224, 24, 64, 64),
    ("4c", 512, 128, 128, 256, 24, 64, 64),
    ("4d", 512, 112, 144, 288, 32, 64, 64),
    ("4e", 528, 256, 160, 320, 32, 128, 128),
    ("5a", 832, 256, 160, 320, 32, 128, 128),
    ("5b", 832, 384, 192, 384, 48, 128, 128),
)
# Section 5 of the paper: "the losses of the auxiliary classifiers were weighted by 0.3".
AUX_WEIGHTS = (0.3, 0.3)
FORMS = ("torchvision", "paper")

# The paper's convolution: conv with bias -> ReLU.
PaperConv2d = partial(ConvNormAct, norm_layer=None, names=("conv", "act"))


class Inception(nn.Module):
    """One inception module: four parallel branches, concatenated along channels."""

    def __init__(self, in_chs: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int,
                 ch5x5: int, pool_proj: int, conv_block=BasicConv2d, branch3_kernel: int = 3):
        super().__init__()
        self.branch1 = conv_block(in_chs, ch1x1, 1)
        self.branch2 = nn.Sequential(conv_block(in_chs, ch3x3red, 1),
                                     conv_block(ch3x3red, ch3x3, 3))
        self.branch3 = nn.Sequential(conv_block(in_chs, ch5x5red, 1),
                                     conv_block(ch5x5red, ch5x5, branch3_kernel))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     conv_block(in_chs, pool_proj, 1))
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: pool to 4x4, 1x1 conv 128, FC 1024 + ReLU, dropout, linear.

    ``paper_pool=True`` pools 5x5 with stride 3 first (the paper), then adaptively to 4x4 only
    if that did not already give 4x4; otherwise (torchvision) it pools adaptively to 4x4.
    """

    def __init__(self, in_chs: int, num_classes: int, conv_block=BasicConv2d,
                 dropout: float = 0.7, paper_pool: bool = False):
        super().__init__()
        self.paper_pool = paper_pool
        self.conv = conv_block(in_chs, 128, 1)
        self.fc1 = nn.Linear(4 * 4 * 128, 1024)
        self.fc2 = nn.Linear(1024, num_classes) if num_classes else nn.Identity()
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.paper_pool:
            x = F.avg_pool2d(x, kernel_size=5, stride=3)
        x = F.adaptive_avg_pool2d(x, (4, 4))  # identity when already 4x4
        x = torch.flatten(self.conv(x), 1)
        x = self.dropout(F.relu(self.fc1(x), inplace=True))
        return self.fc2(x)


class GoogLeNet(AuxClassifier):
    """GoogLeNet with torchvision's module names; ``form`` picks torchvision's or the paper's."""

    # the feature taps (cnnlab.features)
    feature_spec = FeatureSpec(
        trunk=("conv1", "maxpool1", "lrn1", "conv2", "conv3", "lrn2", "maxpool2",
               "inception3*", "maxpool3", "inception4*", "maxpool4", "inception5*"),
        prologue=google_range_prologue)

    aux_weights = AUX_WEIGHTS
    aux_classifiers = {"aux1.fc2": 1024, "aux2.fc2": 1024}

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = True,
                 transform_input: bool = False, dropout: float = 0.2, dropout_aux: float = 0.7,
                 form: str = "torchvision"):
        if form not in FORMS:
            raise UsageError(f"form must be one of {FORMS}, got {form!r}")
        if transform_input and in_chans != 3:
            raise UsageError(f"transform_input=True maps ImageNet RGB statistics and needs "
                             f"in_chans=3, got in_chans={in_chans}")
        paper = form == "paper"
        # Smallest input (checked in tests/test_googlenet.py): 15 -> 8 -> 4 -> 2 -> 1 -> 1 through
        # conv1 and the ceil-mode pools; the paper form's 5x5/3 auxiliary pooling needs 4a maps
        # of at least 5x5, i.e. 79 -> 40 -> 20 -> 10 -> 5.
        super().__init__(num_classes, in_chans, min_input_size=79 if paper and aux_logits else 15)
        self.form, self.aux_logits, self.transform_input = form, aux_logits, transform_input
        conv = PaperConv2d if paper else BasicConv2d
        inception = partial(Inception, conv_block=conv, branch3_kernel=5 if paper else 3)
        pool = partial(nn.MaxPool2d, 3, stride=2, ceil_mode=True)

        self.conv1 = conv(in_chans, 64, 7, stride=2, padding=3)
        self.maxpool1 = pool()
        # bvlc_googlenet's LRN (Caffe divides alpha by the size; LocalResponseNorm does not).
        lrn = partial(LocalResponseNorm, 5, alpha=1e-4 / 5, beta=0.75, k=1.0)
        self.lrn1 = lrn() if paper else nn.Identity()
        self.conv2 = conv(64, 64, 1)
        self.conv3 = conv(64, 192, 3, padding=1)
        self.lrn2 = lrn() if paper else nn.Identity()
        self.maxpool2 = pool()
        rows = {row[0]: row[1:] for row in INCEPTION_TABLE}
        self.inception3a = inception(*rows["3a"])
        self.inception3b = inception(*rows["3b"])
        self.maxpool3 = pool()
        self.inception4a = inception(*rows["4a"])
        self.inception4b = inception(*rows["4b"])
        self.inception4c = inception(*rows["4c"])
        self.inception4d = inception(*rows["4d"])
        self.inception4e = inception(*rows["4e"])
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = inception(*rows["5a"])
        self.inception5b = inception(*rows["5b"])
        if aux_logits:
            aux = partial(InceptionAux, conv_block=conv, dropout=dropout_aux, paper_pool=paper)
            self.aux1 = aux(self.inception4a.out_channels, num_classes)
            self.aux2 = aux(self.inception4d.out_channels, num_classes)
        else:
            self.aux1 = self.aux2 = None
        self.num_features = self.head_hidden_size = self.inception5b.out_channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        self._init_weights(paper)

    def _init_weights(self, paper: bool) -> None:
        classifiers = {self.fc} | ({self.aux1.fc2, self.aux2.fc2} if self.aux_logits else set())
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                if paper:  # Caffe "xavier" (fan-in uniform), bias 0.2 except classifiers
                    nn.init.kaiming_uniform_(m.weight, nonlinearity="linear")
                    if m.bias is not None:
                        nn.init.constant_(m.bias, 0.0 if m in classifiers else 0.2)
                else:  # torchvision
                    nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        aux: list[torch.Tensor] = []
        if self.transform_input:
            x = to_google_range(x)
        x = self.maxpool1(self.conv1(x))
        x = self.lrn1(x)
        x = self.lrn2(self.conv3(self.conv2(x)))
        x = self.maxpool2(x)
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        if self.aux1 is not None and self.training:
            aux.append(self.aux1(x))
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        if self.aux2 is not None and self.training:
            aux.append(self.aux2(x))
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        return x, aux

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)  # pre_logits: before the dropout, as every family
        return x if pre_logits else self.fc(self.dropout(x))


@register_model(input_size=(3, 224, 224),
                reference={"torchvision:googlenet": {"aux_logits": False},
                           "torchvision:googlenet_aux": {"aux_logits": True}},
                data_config=torchvision_weights(256, 224))
def googlenet(**kwargs) -> GoogLeNet:
    """GoogLeNet, torchvision form (BN, 3x3 in the "5x5" branch), aux heads weighted 0.3."""
    return GoogLeNet(**kwargs)


@register_model(input_size=(3, 224, 224))
def googlenet_paper(**kwargs) -> GoogLeNet:
    """GoogLeNet as in the paper: 5x5 branches, LRN, no BN, dropout 0.4, aux heads 0.3."""
    return GoogLeNet(**{"form": "paper", "dropout": 0.4, **kwargs})
