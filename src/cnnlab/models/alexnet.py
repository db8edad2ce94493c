"""AlexNet (Krizhevsky, Sutskever & Hinton 2012, "ImageNet classification with deep
convolutional neural networks", NIPS), in two forms.

``alexnet`` is torchvision's variant (from Krizhevsky 2014, "One weird trick for
parallelizing convolutional neural networks"): 64-192-384-256-256 filters, no normalisation,
an adaptive 6x6 average pool, 224x224 input, 61,100,840 parameters. Module names and shapes are
torchvision's (``features.0`` ... ``classifier.6``), so a torchvision checkpoint loads with
``strict=True``. Initialisation is PyTorch's default, as torchvision's (which has no init loop
for AlexNet).

``alexnet_original`` is the 2012 network as the course slides give it::

    input 3@227x227
    conv1  96 11x11 stride 4      -> 55x55x96      34,944 params
    pool1  3x3 stride 2           -> 27x27x96
    norm1  LRN (k=2, n=5, alpha=1e-4, beta=0.75)
    conv2  256 5x5 pad 2          -> 27x27x256     614,656 (groups=2: 307,456)
    pool2  3x3 stride 2           -> 13x13x256
    norm2  LRN
    conv3  384 3x3 pad 1          -> 13x13x384     885,120
    conv4  384 3x3 pad 1          -> 13x13x384     1,327,488 (groups=2: 663,936)
    conv5  256 3x3 pad 1          -> 13x13x256     884,992 (groups=2: 442,624)
    pool5  3x3 stride 2           -> 6x6x256
    fc6    9216 -> 4096, fc7 4096 -> 4096, fc8 4096 -> 1000, dropout 0.5 on fc6 and fc7
                                     62,378,344 params (groups=2: 60,965,224, the paper's "60M")

``groups=2`` restores the paper's split over two GPUs: conv2, conv4 and conv5 see only the
maps of their own GPU, conv3 and the fully connected layers see both.

Differences from the paper (``alexnet_original``):

* The paper says 224x224 input; the arithmetic needs 227 (conv1: (227 - 11) / 4 + 1 = 55).
* The slides put each normalisation *after* its pooling layer; the paper (section 3.5) puts it
  before (conv -> ReLU -> LRN -> pool). ``lrn_position="before_pool"`` gives the paper's order;
  the output shapes of the stages are the same either way except norm1/norm2 themselves.
* An adaptive 6x6 average pool sits between pool5 and fc6 (as in torchvision). At 227x227 the
  map is already 6x6 and the pool is the identity; it lets other input sizes through.
* No PCA colour augmentation and no test-time 10-crop: those belong to the data pipeline.
* Initialisation is the paper's (section 5): weights N(0, 0.01), biases 1 in conv2, conv4,
  conv5, fc6 and fc7, 0 elsewhere.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..data.config import torchvision_weights
from ..errors import UsageError
from ..layers import LocalResponseNorm, smallest_input_side
from ..registry import register_model
from .base import SEQUENTIAL_FEATURES, ImageClassifier


class AlexNet(ImageClassifier):
    """torchvision's AlexNet: ``features`` (5 convs), ``avgpool`` (6x6), ``classifier``."""

    feature_spec = SEQUENTIAL_FEATURES  # the feature taps (cnnlab.features)

    classifier_name = "classifier.6"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5):
        features = nn.Sequential(
            nn.Conv2d(in_chans, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        # conv1: (n + 4 - 11) // 4 + 1, then three 3x3/2 pools: 63 -> 15 -> 7 -> 3 -> 1.
        super().__init__(num_classes, in_chans, smallest_input_side(features))
        self.features = features
        self.num_features = 256
        self.head_hidden_size = 4096
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes) if num_classes else nn.Identity(),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        c = self.classifier  # dropout, fc6, relu, dropout, fc7, relu | fc8 (torchvision's order)
        x = c[2](c[1](c[0](self.avgpool(x).flatten(1))))
        x = c[5](c[4](c[3](x)))
        return x if pre_logits else c[6](x)


class AlexNetOriginal(ImageClassifier):
    """The 2012 AlexNet with the paper's layer names (conv1 ... conv5, fc6 ... fc8)."""

    feature_spec = SEQUENTIAL_FEATURES  # the feature taps (cnnlab.features)

    classifier_name = "fc8"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5,
                 groups: int = 1, lrn_position: str = "after_pool"):
        if not isinstance(groups, int) or groups < 1 or any(c % groups for c in (96, 256, 384)):
            raise UsageError(f"groups must divide 96, 256 and 384 (1 or 2 as in the paper), "
                             f"got {groups!r}")
        if lrn_position not in ("after_pool", "before_pool"):
            raise UsageError(f"lrn_position must be 'after_pool' (slides) or 'before_pool' "
                             f"(paper), got {lrn_position!r}")

        def stage(i: int, conv: nn.Conv2d, pool: bool, norm: bool) -> list:
            layers = [(f"conv{i}", conv), (f"relu{i}", nn.ReLU(inplace=True))]
            pool_layer = [(f"pool{i}", nn.MaxPool2d(kernel_size=3, stride=2))] if pool else []
            norm_layer = [(f"norm{i}", LocalResponseNorm(n=5, alpha=1e-4, beta=0.75, k=2.0))
                          ] if norm else []
            if lrn_position == "after_pool":
                return layers + pool_layer + norm_layer
            return layers + norm_layer + pool_layer

        features = nn.Sequential(OrderedDict(
            stage(1, nn.Conv2d(in_chans, 96, 11, stride=4), pool=True, norm=True)
            + stage(2, nn.Conv2d(96, 256, 5, padding=2, groups=groups), pool=True, norm=True)
            + stage(3, nn.Conv2d(256, 384, 3, padding=1), pool=False, norm=False)
            + stage(4, nn.Conv2d(384, 384, 3, padding=1, groups=groups), pool=False, norm=False)
            + stage(5, nn.Conv2d(384, 256, 3, padding=1, groups=groups), pool=True, norm=False)
        ))
        # conv1: (n - 11) // 4 + 1, then three 3x3/2 pools: 67 -> 15 -> 7 -> 3 -> 1.
        super().__init__(num_classes, in_chans, smallest_input_side(features))
        self.groups = groups
        self.features = features
        self.num_features = 256
        self.head_hidden_size = 4096
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(OrderedDict([
            ("fc6", nn.Linear(256 * 6 * 6, 4096)), ("relu6", nn.ReLU(inplace=True)),
            ("drop6", nn.Dropout(p=dropout)),
            ("fc7", nn.Linear(4096, 4096)), ("relu7", nn.ReLU(inplace=True)),
            ("drop7", nn.Dropout(p=dropout)),
        ]))
        self.fc8 = nn.Linear(4096, num_classes) if num_classes else nn.Identity()
        self.init_weights()

    def init_weights(self) -> None:
        """Section 5 of the paper: N(0, 0.01) weights; biases 1 in conv2/4/5 and fc6/7, else 0."""
        ones = {self.features.conv2, self.features.conv4, self.features.conv5,
                self.classifier.fc6, self.classifier.fc7}
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.constant_(m.bias, 1.0 if m in ones else 0.0)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.classifier(self.avgpool(x).flatten(1))
        return x if pre_logits else self.fc8(x)


@register_model(reference="torchvision:alexnet",
                data_config=torchvision_weights(256, 224))
def alexnet(**kwargs) -> AlexNet:
    """AlexNet as torchvision builds it (64-192-384-256-256, adaptive 6x6 pool), 224 input."""
    return AlexNet(**kwargs)


@register_model(input_size=(3, 227, 227))
def alexnet_original(**kwargs) -> AlexNetOriginal:
    """AlexNet as in the 2012 paper: 96-256-384-384-256, LRN, 227 input; groups=2 for 2 GPUs."""
    return AlexNetOriginal(**kwargs)
