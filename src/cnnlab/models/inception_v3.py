"""Inception v3 (Szegedy, Vanhoucke, Ioffe, Shlens & Wojna 2015, "Rethinking the Inception
architecture for computer vision", arXiv:1512.00567, CVPR 2016).

The network of the paper's section 6 / Table 1, as released by Google (TF-slim) and ported
by torchvision, whose state_dict ``inception_v3`` matches key for key (23,834,568 parameters
without the auxiliary head, 27,161,264 with it). Input 299x299::

    stem     conv 3x3/2 (32) 149 -> conv 3x3 (32) 147 -> conv 3x3 pad (64) 147
             -> max pool 3x3/2 73 -> conv 1x1 (80) 73 -> conv 3x3 (192) 71 -> max pool 35
    35x35    Mixed_5b/5c/5d  (InceptionA: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1) -> 288
    17x17    Mixed_6a        (InceptionB: grid reduction, 3x3/2 | 1x1-3x3-3x3/2 | maxpool) -> 768
             Mixed_6b..6e    (InceptionC: n x n factorised into 1x7 and 7x1, n = 7) -> 768
    8x8      Mixed_7a        (InceptionD: grid reduction) -> 1280
             Mixed_7b/7c     (InceptionE: expanded filter banks, 1x3 and 3x1 side by side) -> 2048
    global average pool -> dropout -> linear

The auxiliary classifier reads Mixed_6e's 17x17 map while training (5x5/3 average pool ->
1x1 conv 128 -> 5x5 conv 768 -> linear). With ``aux_logits=True`` (the default, as in
torchvision) the training-mode output is :class:`~cnnlab.models.base.AuxOutput` with one
auxiliary logits tensor and weight **0.4**: the weight of Google's own training script for
this network (TF-slim ``train_image_classifier.py``: ``softmax_cross_entropy(AuxLogits, ...,
weights=0.4)``), also used by the PyTorch fine-tuning tutorial (``loss1 + 0.4 * loss2``). The
paper itself gives no weight.

Differences from the paper (all shared with TF-slim and torchvision):

* the stem is Table 1's first layers with the 35x35 part replaced by conv 1x1 (80) -> conv
  3x3 (192) -> max pool, and the 35x35 modules keep a 5x5 branch beside the two-3x3 branch
  (Figure 5 shows only the factorised form);
* batch norm (eps 0.001, no bias in the convolutions) after every convolution of the network
  and of the auxiliary head, but not on its fully connected layer ("BN-auxiliary" in section
  7 also normalises that);
* dropout 0.5 before the classifier (torchvision; TF-slim keeps 0.8 of the units);
* initialisation: truncated normal, std 0.1 (0.01 for the auxiliary 5x5 conv, 0.001 for its
  linear layer), as torchvision; label smoothing and RMSProp are training settings, not part
  of the model.
* ``transform_input=True`` maps ImageNet-normalised inputs into the ``(x - 0.5) / 0.5`` range
  of the Google-ported weights (off by default; see :mod:`cnnlab.models.googlenet`).

Input size: the main path needs 75x75 (75 -> 37 -> 35 -> 17 -> 15 -> 7 -> 3 -> 1). The
auxiliary head's 5x5/3 pooling followed by a 5x5 convolution needs a 17x17 Mixed_6e map
(inputs of about 299); below that this head average-pools the map adaptively to 5x5 instead
of failing (same parameters and keys; at 299x299 it computes exactly torchvision's head), so
the model takes 75x75 inputs in training mode as well.
"""

# No `from __future__ import annotations` in this file: TorchScript reads its annotations.
import torch
import torch.nn.functional as F
from torch import nn

from ..data.config import torchvision_weights
from ..errors import UsageError
from ..layers import BasicConv2d, google_range_prologue, to_google_range
from ..registry import register_model
from .base import AuxClassifier, FeatureSpec

# Inception v3's auxiliary loss weight (TF-slim train_image_classifier.py).
AUX_WEIGHTS = (0.4,)


def conv(in_chs: int, out_chs: int, kernel_size, stride: int = 1, padding=0) -> nn.Module:
    """torchvision's BasicConv2d with its default of no padding."""
    return BasicConv2d(in_chs, out_chs, kernel_size, stride=stride, padding=padding)


class InceptionA(nn.Module):
    """35x35 module (Figure 5 plus a 5x5 branch): 64 + 64 + 96 + pool_features channels."""

    def __init__(self, in_chs: int, pool_features: int):
        super().__init__()
        self.branch1x1 = conv(in_chs, 64, 1)
        self.branch5x5_1 = conv(in_chs, 48, 1)
        self.branch5x5_2 = conv(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = conv(in_chs, 64, 1)
        self.branch3x3dbl_2 = conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = conv(96, 96, 3, padding=1)
        self.branch_pool = conv(in_chs, pool_features, 1)
        self.out_channels = 64 + 64 + 96 + pool_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17 (Figure 10): 384 + 96 + in_chs channels."""

    def __init__(self, in_chs: int):
        super().__init__()
        self.branch3x3 = conv(in_chs, 384, 3, stride=2)
        self.branch3x3dbl_1 = conv(in_chs, 64, 1)
        self.branch3x3dbl_2 = conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = conv(96, 96, 3, stride=2)
        self.out_channels = 384 + 96 + in_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    """17x17 module (Figure 6, n = 7): 7x7 convolutions factorised into 1x7 and 7x1; 768 out."""

    def __init__(self, in_chs: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = conv(in_chs, 192, 1)
        self.branch7x7_1 = conv(in_chs, c7, 1)
        self.branch7x7_2 = conv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = conv(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = conv(in_chs, c7, 1)
        self.branch7x7dbl_2 = conv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = conv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = conv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = conv(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = conv(in_chs, 192, 1)
        self.out_channels = 4 * 192

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_3(self.branch7x7dbl_2(self.branch7x7dbl_1(x)))
        bd = self.branch7x7dbl_5(self.branch7x7dbl_4(bd))
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8: 320 + 192 + in_chs channels."""

    def __init__(self, in_chs: int):
        super().__init__()
        self.branch3x3_1 = conv(in_chs, 192, 1)
        self.branch3x3_2 = conv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = conv(in_chs, 192, 1)
        self.branch7x7x3_2 = conv(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = conv(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = conv(192, 192, 3, stride=2)
        self.out_channels = 320 + 192 + in_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """8x8 module with expanded filter banks (Figure 7): 320 + 768 + 768 + 192 = 2048 out."""

    def __init__(self, in_chs: int):
        super().__init__()
        self.branch1x1 = conv(in_chs, 320, 1)
        self.branch3x3_1 = conv(in_chs, 384, 1)
        self.branch3x3_2a = conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = conv(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = conv(in_chs, 448, 1)
        self.branch3x3dbl_2 = conv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = conv(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = conv(in_chs, 192, 1)
        self.out_channels = 320 + 2 * 384 + 2 * 384 + 192

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([b1, b3, bd, bp], 1)


@torch.fx.wrap
def aux_pool(x: torch.Tensor) -> torch.Tensor:
    """The auxiliary head's pooling: 5x5/3 average pool on maps of at least 17x17, otherwise an
    adaptive average pool to 5x5. It branches on the map size, so ``torch.fx`` keeps it as one
    call in the graph (``torch.fx.wrap``); TorchScript compiles it as it is."""
    if x.shape[-2] >= 17 and x.shape[-1] >= 17:
        return F.avg_pool2d(x, kernel_size=5, stride=3)
    return F.adaptive_avg_pool2d(x, (5, 5))


class InceptionAux(nn.Module):
    """Auxiliary head on the 17x17 map: avg pool 5x5/3, conv 1x1 (128), conv 5x5 (768), linear.

    Maps smaller than 17x17 (inputs below about 299) are average-pooled adaptively to 5x5
    instead, so that the 5x5 convolution still fits.
    """

    def __init__(self, in_chs: int, num_classes: int):
        super().__init__()
        self.conv0 = conv(in_chs, 128, 1)
        self.conv1 = conv(128, 768, 5)
        self.conv1.stddev = 0.01
        self.fc = nn.Linear(768, num_classes) if num_classes else nn.Identity()
        self.fc.stddev = 0.001

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.conv0(aux_pool(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)
        return self.fc(x)


class InceptionV3(AuxClassifier):
    """Inception v3 with torchvision's module names (``Conv2d_1a_3x3`` ... ``Mixed_7c``)."""

    # the feature taps (cnnlab.features)
    feature_spec = FeatureSpec(
        trunk=("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1",
               "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2", "Mixed_*"),
        prologue=google_range_prologue)

    aux_weights = AUX_WEIGHTS
    aux_classifiers = {"AuxLogits.fc": 768}

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = True,
                 transform_input: bool = False, dropout: float = 0.5):
        if transform_input and in_chans != 3:
            raise UsageError(f"transform_input=True maps ImageNet RGB statistics and needs "
                             f"in_chans=3, got in_chans={in_chans}")
        super().__init__(num_classes, in_chans, min_input_size=75)
        self.aux_logits, self.transform_input = aux_logits, transform_input
        self.Conv2d_1a_3x3 = conv(in_chans, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = conv(32, 32, 3)
        self.Conv2d_2b_3x3 = conv(32, 64, 3, padding=1)
        self.maxpool1 = nn.MaxPool2d(3, stride=2)
        self.Conv2d_3b_1x1 = conv(64, 80, 1)
        self.Conv2d_4a_3x3 = conv(80, 192, 3)
        self.maxpool2 = nn.MaxPool2d(3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.AuxLogits = InceptionAux(768, num_classes) if aux_logits else None
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048)
        self.num_features = self.head_hidden_size = self.Mixed_7c.out_channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=float(getattr(m, "stddev", 0.1)),
                                      a=-2, b=2)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.transform_input:
            x = to_google_range(x)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.maxpool1(x)
        x = self.maxpool2(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))
        x = self.Mixed_6a(x)
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))
        aux: list[torch.Tensor] = []
        if self.AuxLogits is not None and self.training:
            aux.append(self.AuxLogits(x))
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        return x, aux

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)  # pre_logits: before the dropout, as every family
        return x if pre_logits else self.fc(self.dropout(x))

    def keras_quirks(self, ran: set[str]) -> dict:
        """Where Keras's Inception v3 differs from this one (:mod:`cnnlab.analysis.keras`):
        its batch norms have no scale."""
        scale = sum(m.num_features for n, m in self.named_modules()
                    if isinstance(m, nn.modules.batchnorm._BatchNorm) and n in ran
                    and m.weight is not None)
        return {"params": (-scale, (
            f"Keras's Inception v3 batch norms have no scale (gamma): {scale:,} weights fewer "
            "(one per batch-norm channel; {accounts})."))}


@register_model(input_size=(3, 299, 299),
                reference={"torchvision:inception_v3": {"aux_logits": False},
                           "torchvision:inception_v3_aux": {"aux_logits": True}},
                data_config=torchvision_weights(342, 299))
def inception_v3(**kwargs) -> InceptionV3:
    """Inception v3 (torchvision-compatible), 299x299, auxiliary head on Mixed_6e weighted 0.4."""
    return InceptionV3(**kwargs)
