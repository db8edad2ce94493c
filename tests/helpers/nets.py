"""Small networks for the analysis tests, with their MACs worked out by hand in the tests."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.models.base import AuxOutput


class Block(nn.Module):
    """Residual block: two 3x3 convs (+ BN), identity or 1x1 projection shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = (nn.Conv2d(cin, cout, 1, stride, bias=False)
                     if stride != 1 or cin != cout else None)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + (x if self.down is None else self.down(x)))


class TinyResNet(nn.Module):
    """3x8x8 -> stem 3x3 (8) -> block(8) -> block(16, stride 2, projection) -> pool -> fc 10."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.layer1 = Block(8, 8)
        self.layer2 = Block(8, 16, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(self.pool(x).flatten(1))


class TinyInception(nn.Module):
    """4x8x8 -> [1x1 (6) | 1x1 (4) -> depthwise 3x3 -> grouped 3x3 (8, groups 2)] -> concat 14
    -> global pool -> functional matmul with a 14x5 weight."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 6, 1)
        self.b = nn.Sequential(OrderedDict([
            ("reduce", nn.Conv2d(4, 4, 1)),
            ("dw", nn.Conv2d(4, 4, 3, padding=1, groups=4)),
            ("grouped", nn.Conv2d(4, 8, 3, padding=1, groups=2)),
        ]))
        self.w = nn.Parameter(torch.randn(14, 5))

    def forward(self, x):
        x = torch.cat([self.a(x), self.b(x)], dim=1)
        return x.mean((2, 3)) @ self.w


class AuxNet(nn.Module):
    """A net with an auxiliary classifier that only runs in training mode (AuxOutput)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.aux = nn.Linear(4, 3)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x))).mean((2, 3))
        logits = self.fc(self.drop(x))
        if self.training:
            return AuxOutput(logits, (self.aux(x),), (0.3,))
        return logits


def vgg16_features() -> nn.Sequential:
    """VGG-16's conv stack (configuration D) built from plain layers, with the paper's names."""
    layers = OrderedDict()
    cin = 3
    for block, (n, cout) in enumerate([(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)], 1):
        for i in range(1, n + 1):
            layers[f"conv{block}_{i}"] = nn.Conv2d(cin, cout, 3, padding=1)
            layers[f"relu{block}_{i}"] = nn.ReLU(inplace=True)
            cin = cout
        layers[f"pool{block}"] = nn.MaxPool2d(2, 2)
    return nn.Sequential(layers)


def vgg16() -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("features", vgg16_features()), ("flatten", nn.Flatten()),
        ("fc6", nn.Linear(512 * 7 * 7, 4096)), ("relu6", nn.ReLU()),
        ("fc7", nn.Linear(4096, 4096)), ("relu7", nn.ReLU()), ("fc8", nn.Linear(4096, 1000)),
    ]))
