"""VGG (Simonyan & Zisserman 2014, "Very deep convolutional networks for large-scale image
recognition", ICLR 2015): configurations A, A-LRN, B, C, D and E of the paper's Table 1.

Every configuration is one row of :data:`VGG_CFGS`, read left to right as the paper's table
column top to bottom: a number is a 3x3 convolution (stride 1, pad 1) with that many filters
and a ReLU, :class:`Conv1x1` a 1x1 convolution (config C), ``"LRN"`` local response
normalisation, ``"M"`` a 2x2 max pool with stride 2. One builder (:class:`VGG`) turns a row
into layers; the classifier is FC-4096, FC-4096, FC-classes with dropout 0.5 after the first
two, as in the paper.

The layout follows torchvision (``features.N``, ``avgpool``, ``classifier.N``), so
``vgg11/13/16/19`` and their ``_bn`` variants take torchvision checkpoints with
``strict=True``. Initialisation is torchvision's loop: Kaiming-normal (fan_out) convolutions
with zero bias, batch-norm weight 1 and bias 0, linear layers N(0, 0.01) with zero bias.

Parameters (no BN / torchvision-style BN, which adds gamma and beta per conv channel)::

    A   vgg11      132,863,336 / 132,868,840
    A-LRN vgg11_lrn 132,863,336 (LRN has no parameters)
    B   vgg13      133,047,848 / 133,053,736
    C   vgg16_c    133,638,952 / 133,647,400
    D   vgg16      138,357,544 / 138,365,992
    E   vgg19      143,667,240 / 143,678,248

Differences from the paper:

* An adaptive 7x7 average pool sits before the classifier (as in torchvision). At 224x224 the
  map is already 7x7 and the pool is the identity; at other sizes it replaces the paper's
  "dense evaluation" (fully connected layers turned into convolutions at test time). Inputs
  need at least 32x32 (five 2x2 pools: 32 -> 16 -> 8 -> 4 -> 2 -> 1).
* The ``_bn`` variants (batch norm after every convolution, conv bias kept) are torchvision's,
  not the paper's; the paper predates batch normalisation.
* The paper trains deeper nets starting from the weights of A; here every net is initialised
  from scratch with the scheme above (the paper itself notes, in its section 3.1, that Glorot
  initialisation works without pre-training).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..data.config import torchvision_weights
from ..errors import UsageError
from ..layers import LocalResponseNorm, init_weights
from ..registry import register_model
from .base import SEQUENTIAL_FEATURES, ImageClassifier


class Conv1x1(NamedTuple):
    """A 1x1 convolution with ``channels`` filters (the "conv1-256/512" layers of config C)."""

    channels: int


# Table 1 of the paper, one row per configuration.
VGG_CFGS: dict[str, tuple] = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "A-LRN": (64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "B": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "C": (64, 64, "M", 128, 128, "M", 256, 256, Conv1x1(256), "M",
          512, 512, Conv1x1(512), "M", 512, 512, Conv1x1(512), "M"),
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "E": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
          512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}


def make_layers(cfg: tuple, in_chans: int = 3, batch_norm: bool = False) -> nn.Sequential:
    """One configuration row -> the numbered ``features`` of torchvision's VGG."""
    layers: list[nn.Module] = []
    chans = in_chans
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        elif v == "LRN":
            layers.append(LocalResponseNorm(n=5, alpha=1e-4, beta=0.75, k=2.0))
        else:
            out, k = (v.channels, 1) if isinstance(v, Conv1x1) else (v, 3)
            layers.append(nn.Conv2d(chans, out, kernel_size=k, padding=k // 2))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            chans = out
    return nn.Sequential(*layers)


# timm's layout (timm/models/vgg.py): the same ``features.N``; the first two fully connected
# layers are convolutions, ``pre_logits.fc1`` (7x7 on the 512 x 7 x 7 map) and
# ``pre_logits.fc2`` (1x1), and the last is ``head.fc``. A 7x7 convolution on a 7x7 map is the
# linear layer on the flattened map (C, H, W order, as ``flatten``), so the weights are reshaped.
TIMM_HEAD = {"pre_logits.fc1": "classifier.0", "pre_logits.fc2": "classifier.3",
             "head.fc": "classifier.6"}


def checkpoint_filter(state: dict, model: nn.Module) -> tuple[dict, list[str]]:
    """A timm VGG state_dict in this layout, and what the conversion means (the
    checkpoint-filter hook that :mod:`cnnlab.pretrained` calls); other states come back as
    they are. The outputs equal timm's for inputs up to 255 x 255 (a feature map up to 7 x 7,
    which both pool to 7 x 7); from 256 on timm slides ``fc1`` over the larger map and
    averages after ``fc2``, where torchvision's layout average-pools to 7 x 7 first."""
    if not any(k.startswith(tuple(TIMM_HEAD)) for k in state):
        return state, []
    out = {}
    for key, value in state.items():
        module, _, leaf = key.rpartition(".")
        if module in TIMM_HEAD:
            key = f"{TIMM_HEAD[module]}.{leaf}"
            value = value.flatten(1) if value.dim() == 4 else value
        out[key] = value
    return out, ["converted from timm's layout (pre_logits.fc1/fc2 convolutions, head.fc -> "
                 "classifier.0/3/6 linear layers); outputs equal timm's for inputs below "
                 "256 x 256, where timm's head differs (it slides fc1 over maps above 7 x 7)"]


class VGG(ImageClassifier):
    """VGG from a configuration of :data:`VGG_CFGS`: ``features``, ``avgpool``, ``classifier``."""

    feature_spec = SEQUENTIAL_FEATURES  # the feature taps (cnnlab.features)

    classifier_name = "classifier.6"
    checkpoint_filter = staticmethod(checkpoint_filter)

    def __init__(self, cfg: str = "D", num_classes: int = 1000, in_chans: int = 3,
                 dropout: float = 0.5, batch_norm: bool = False):
        if cfg not in VGG_CFGS:
            raise UsageError(f"cfg must be one of {sorted(VGG_CFGS)}, got {cfg!r}")
        pools = VGG_CFGS[cfg].count("M")
        super().__init__(num_classes, in_chans, min_input_size=2 ** pools)  # 2x2/2 pools
        self.cfg = cfg
        self.features = make_layers(VGG_CFGS[cfg], in_chans, batch_norm)
        self.num_features = 512
        self.head_hidden_size = 4096
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes) if num_classes else nn.Identity(),
        )
        init_weights(self, linear_std=0.01)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        c = self.classifier  # fc6, relu, dropout, fc7, relu, dropout | fc8 (torchvision's order)
        x = c[2](c[1](c[0](self.avgpool(x).flatten(1))))
        x = c[5](c[4](c[3](x)))
        return x if pre_logits else c[6](x)


def _vgg(cfg: str, batch_norm: bool, kwargs: dict) -> VGG:
    return VGG(**dict(dict(cfg=cfg, batch_norm=batch_norm), **kwargs))


@register_model(reference="torchvision:vgg11",
                data_config=torchvision_weights(256, 224))
def vgg11(**kwargs) -> VGG:
    """VGG configuration A: 8 conv + 3 FC layers (VGG-11)."""
    return _vgg("A", False, kwargs)


@register_model
def vgg11_lrn(**kwargs) -> VGG:
    """VGG configuration A-LRN: A with local response normalisation after the first conv."""
    return _vgg("A-LRN", False, kwargs)


@register_model(reference="torchvision:vgg13",
                data_config=torchvision_weights(256, 224))
def vgg13(**kwargs) -> VGG:
    """VGG configuration B: 10 conv + 3 FC layers (VGG-13)."""
    return _vgg("B", False, kwargs)


@register_model
def vgg16_c(**kwargs) -> VGG:
    """VGG configuration C: 16 layers, the last conv of blocks 3-5 is 1x1."""
    return _vgg("C", False, kwargs)


@register_model(reference="torchvision:vgg16",
                data_config=torchvision_weights(256, 224))
def vgg16(**kwargs) -> VGG:
    """VGG configuration D: 13 conv + 3 FC layers (VGG-16)."""
    return _vgg("D", False, kwargs)


@register_model(reference="torchvision:vgg19",
                data_config=torchvision_weights(256, 224))
def vgg19(**kwargs) -> VGG:
    """VGG configuration E: 16 conv + 3 FC layers (VGG-19)."""
    return _vgg("E", False, kwargs)


@register_model(reference="torchvision:vgg11_bn",
                data_config=torchvision_weights(256, 224))
def vgg11_bn(**kwargs) -> VGG:
    """VGG-11 (A) with batch norm after every conv (torchvision)."""
    return _vgg("A", True, kwargs)


@register_model(reference="torchvision:vgg13_bn",
                data_config=torchvision_weights(256, 224))
def vgg13_bn(**kwargs) -> VGG:
    """VGG-13 (B) with batch norm after every conv (torchvision)."""
    return _vgg("B", True, kwargs)


@register_model
def vgg16_c_bn(**kwargs) -> VGG:
    """VGG-16 C with batch norm after every conv (torchvision-style BN)."""
    return _vgg("C", True, kwargs)


@register_model(reference="torchvision:vgg16_bn",
                data_config=torchvision_weights(256, 224))
def vgg16_bn(**kwargs) -> VGG:
    """VGG-16 (D) with batch norm after every conv (torchvision)."""
    return _vgg("D", True, kwargs)


@register_model(reference="torchvision:vgg19_bn",
                data_config=torchvision_weights(256, 224))
def vgg19_bn(**kwargs) -> VGG:
    """VGG-19 (E) with batch norm after every conv (torchvision)."""
    return _vgg("E", True, kwargs)
