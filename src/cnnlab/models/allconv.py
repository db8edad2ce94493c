"""All-CNN (Springenberg, Dosovitskiy, Brox & Riedmiller 2014, "Striving for simplicity: the
all convolutional net", ICLR 2015 workshop), for 32x32 CIFAR-10/100 input.

Only convolutions: each max pool of a base model is replaced by a 3x3 convolution with
stride 2 of the same width, and the dense layers by a 1x1 convolution to the classes followed
by a global average. Tables 1 and 2 of the paper, as rows of :data:`ALLCONV_CFGS` (``"P"`` marks
the two pooling positions)::

    A: conv5-96,          P, conv5-192,            P, conv3-192, conv1-192, conv1-classes
    B: conv5-96, conv1-96, P, conv5-192, conv1-192, P, conv3-192, conv1-192, conv1-classes
    C: conv3-96, conv3-96, P, conv3-192, conv3-192, P, conv3-192, conv1-192, conv1-classes

and ``pooling`` says what ``P`` is (Table 2 for model C):

* ``"allconv"`` (All-CNN): a 3x3 conv with stride 2 and the width of the layer before;
* ``"convpool"`` (ConvPool-CNN): that same 3x3 conv at stride 1, then a 3x3/2 max pool (same
  parameters as All-CNN, the paper's control for the extra layer);
* ``"strided"`` (Strided-CNN): no pool; the conv before it gets stride 2;
* ``"maxpool"`` (the base models): a 3x3/2 max pool.

Every convolution is followed by a ReLU except, by default, the 1x1 conv to the classes (Table 1
has one there too: ``final_relu=True``; see below);
dropout is the paper's: 20% on the input image, 50% after each pooling layer or the layer that
replaces it. ``allconv_c`` is the course notebook's Keras model: 9 convolutions, 'same' padding,
1,369,738 parameters for 10 classes, an 8x8 map before the global average (output shapes and
counts of every layer match reference/keras.json ``AllConvolutional_course_notebook``).

Parameters for 10 classes: All-CNN-A 1,254,250; All-CNN-B 1,300,618; All-CNN-C 1,369,738;
ConvPool-CNN-C 1,369,738; Strided-CNN-C 954,730.

Differences from the paper and choices:

* Padding: by default every convolution keeps the size ('same', as in the course notebook),
  so the global average runs over 8x8. The paper's Table 1 says "global averaging over 6x6",
  i.e. the 3x3 conv 192 after the second reduction is unpadded: ``layout="paper"`` gives that
  (same parameters, 6x6 final map, inputs of at least 9x9).
* PyTorch pads a stride-2 3x3 conv by 1 on each side; Keras 'same' pads 0 before and 1 after
  on even sizes. The output sizes are equal (32 -> 16 -> 8); the sampled positions differ by
  one pixel, which matters only when porting Keras weights.
* Initialisation: He et al.'s (Kaiming normal, fan-in), the rule for ReLU networks;
  ``init="glorot"`` gives Keras' default, as the notebook. The paper does not state its own.
* Training: the paper used SGD + momentum with ZCA-whitened CIFAR; on the small digits set
  ``cnnlab train`` uses Adam (lr 3e-4) by default for these models (see ``init_weights``).
* No ZCA whitening or augmentation here: they belong to the data pipeline.
* The class maps are linear by default (``final_relu=False``). With Table 1's ReLU on them, a
  step that pushes every class map below zero leaves all logits at 0 and every gradient at 0
  for good: measured on the digits, Adam (lr 1e-3) left ``allconv_c`` at loss ln 10 = 2.3026
  from the second epoch on, for 19 epochs. ``final_relu=True`` restores the table's layer.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..errors import UsageError
from ..layers import ConvNormAct, smallest_input_side
from ..registry import register_model
from .base import SEQUENTIAL_FEATURES, ImageClassifier

# Plain SGD stays at chance for several epochs on these normalisation-free ReLU stacks (see
# AllConvNet.init_weights); `cnnlab train` uses Adam for them unless told otherwise.
TRAIN_DEFAULTS = {"optimizer": "adam", "lr": 3e-4, "weight_decay": 0.0}

# (kernel, filters) per conv, "P" where the base model has a 3x3/2 max pool.
ALLCONV_CFGS: dict[str, tuple] = {
    "A": ((5, 96), "P", (5, 192), "P", (3, 192), (1, 192)),
    "B": ((5, 96), (1, 96), "P", (5, 192), (1, 192), "P", (3, 192), (1, 192)),
    "C": ((3, 96), (3, 96), "P", (3, 192), (3, 192), "P", (3, 192), (1, 192)),
}
POOLINGS = ("allconv", "convpool", "strided", "maxpool")


class AllConvNet(ImageClassifier):
    """Springenberg et al.'s models A/B/C with the pooling replaced as ``pooling`` says."""

    feature_spec = SEQUENTIAL_FEATURES  # the feature taps (cnnlab.features)

    classifier_name = "classifier"

    def __init__(self, model: str = "C", pooling: str = "allconv", num_classes: int = 10,
                 in_chans: int = 3, input_dropout: float = 0.2, dropout: float = 0.5,
                 layout: str = "same", final_relu: bool = False, init: str = "kaiming"):
        if init not in ("kaiming", "glorot"):
            raise UsageError(f"init must be 'kaiming' or 'glorot', got {init!r}")
        if model not in ALLCONV_CFGS:
            raise UsageError(f"model must be one of {sorted(ALLCONV_CFGS)}, got {model!r}")
        if pooling not in POOLINGS:
            raise UsageError(f"pooling must be one of {list(POOLINGS)}, got {pooling!r}")
        if layout not in ("same", "paper"):
            raise UsageError(f"layout must be 'same' (course notebook) or 'paper' (6x6 global "
                             f"average), got {layout!r}")
        cfg = ALLCONV_CFGS[model]
        units: list[tuple[str, nn.Module]] = [("drop_in", nn.Dropout(input_dropout))]
        chans, n_pool, after_pools = in_chans, 0, 0

        def conv(k: int, out: int, stride: int = 1, padding: int | None = None) -> nn.Module:
            return ConvNormAct(chans, out, k, stride, padding=padding, norm_layer=None,
                               act_layer=nn.ReLU, names=("conv", "act"))

        for i, item in enumerate(cfg):
            if item == "P":
                n_pool += 1
                if pooling == "allconv":
                    units.append((f"reduce{n_pool}", conv(3, chans, stride=2)))
                elif pooling == "convpool":
                    units.append((f"conv_extra{n_pool}", conv(3, chans)))
                    units.append((f"pool{n_pool}", nn.MaxPool2d(3, stride=2, padding=1)))
                elif pooling == "maxpool":
                    units.append((f"pool{n_pool}", nn.MaxPool2d(3, stride=2, padding=1)))
                # "strided": the conv before has already been built with stride 2
                units.append((f"drop{n_pool}", nn.Dropout(dropout)))
                continue
            k, out = item
            stride = 2 if pooling == "strided" and i + 1 < len(cfg) and cfg[i + 1] == "P" else 1
            # The first conv after the second reduction is the paper's unpadded 3x3 conv 192.
            padding = 0 if layout == "paper" and n_pool == 2 and after_pools == 0 else None
            after_pools += n_pool == 2
            units.append((f"conv{i + 1 - n_pool}", conv(k, out, stride, padding)))
            chans = out
        features = nn.Sequential(OrderedDict(units))
        super().__init__(num_classes, in_chans, smallest_input_side(features.modules()))
        self.model, self.pooling, self.layout = model, pooling, layout
        self.final_relu = final_relu
        self.features = features
        self.num_features = self.head_hidden_size = chans
        self.classifier = nn.Conv2d(chans, num_classes, 1) if num_classes else nn.Identity()
        self.act = nn.ReLU(inplace=True) if final_relu and num_classes else nn.Identity()
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.init_weights(init)

    def make_classifier(self, in_features: int, num_classes: int) -> nn.Module:
        """The 1x1 convolution to the class maps (before the global average)."""
        return nn.Conv2d(in_features, num_classes, 1) if num_classes else nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        super().reset_classifier(num_classes)
        self.act = nn.ReLU(inplace=True) if self.final_relu and num_classes else nn.Identity()

    def init_weights(self, init: str = "kaiming") -> None:
        """``"kaiming"``: He et al. 2015 normal init for ReLU (std sqrt(2 / fan_in)), zero biases.
        ``"glorot"``: Keras' default, as the course notebook (Glorot-uniform, zero biases).

        Nine ReLU convolutions without normalisation, with dropout, are hard to start: on the
        digits (3 epochs, constant learning rate) SGD + momentum at lr 0.01 and Adam at lr 1e-3
        stayed on the loss plateau at ln 10 = 2.30 with either rule; Adam at lr 3e-4 with He's
        rule left it in the third epoch. The registry therefore recommends Adam, lr 3e-4, for
        these models (``train_defaults``), which ``cnnlab train`` uses unless told otherwise.
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                if init == "kaiming":
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                else:
                    nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """1x1 conv to the classes, ReLU, global average (``pre_logits``: the averaged map)."""
        if pre_logits:
            return self.global_pool(x).flatten(1)
        return self.global_pool(self.act(self.classifier(x))).flatten(1)


def _allconv(model: str, pooling: str, kwargs: dict) -> AllConvNet:
    return AllConvNet(**dict(dict(model=model, pooling=pooling), **kwargs))


@register_model(input_size=(3, 32, 32), train_defaults=TRAIN_DEFAULTS)
def allconv_a(**kwargs) -> AllConvNet:
    """All-CNN-A (Springenberg et al. 2014): model A with stride-2 convs instead of pools."""
    return _allconv("A", "allconv", kwargs)


@register_model(input_size=(3, 32, 32), train_defaults=TRAIN_DEFAULTS)
def allconv_b(**kwargs) -> AllConvNet:
    """All-CNN-B (Springenberg et al. 2014): model B with stride-2 convs instead of pools."""
    return _allconv("B", "allconv", kwargs)


@register_model(input_size=(3, 32, 32), reference="keras:AllConvolutional_course_notebook",
                train_defaults=TRAIN_DEFAULTS)
def allconv_c(**kwargs) -> AllConvNet:
    """All-CNN-C (Springenberg et al. 2014): 9 convs, stride-2 convs instead of pools, GAP."""
    return _allconv("C", "allconv", kwargs)


@register_model(input_size=(3, 32, 32), train_defaults=TRAIN_DEFAULTS)
def strided_cnn_c(**kwargs) -> AllConvNet:
    """Strided-CNN-C (Springenberg et al. 2014): model C, pools removed, the conv before strided."""
    return _allconv("C", "strided", kwargs)


@register_model(input_size=(3, 32, 32), train_defaults=TRAIN_DEFAULTS)
def convpool_cnn_c(**kwargs) -> AllConvNet:
    """ConvPool-CNN-C (Springenberg et al. 2014): model C, an extra 3x3 conv before each pool."""
    return _allconv("C", "convpool", kwargs)
