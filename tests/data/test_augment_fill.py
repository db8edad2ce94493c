"""Mutation-audit test for the training augmentation (issue 21): the random crop's padding is
black in the original image, so after normalisation it is ``(0 - mean) / std``: the value
the preprocessing gives a black pixel, not ``+mean/std``."""

from __future__ import annotations

import torch

from cnnlab.data.base import DataSplits
from cnnlab.data.transforms import Preprocess
from cnnlab.training.config import TrainConfig
from cnnlab.training.trainer import augment_for


def test_crop_padding_is_black_after_normalisation():
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)
    pre = Preprocess(3, (8, 8), mean, std)
    data = DataSplits(name="test", train=None, val=None, test=None, classes=["a", "b"],
                      channels=3, image_size=(8, 8), mean=mean, std=std)
    aug = augment_for(TrainConfig(model="test", augment="crop"), data, pre)
    assert aug.crop_padding > 0
    black = pre(torch.zeros(3, 8, 8))[:, 0, 0]
    white = pre(torch.ones(3, 8, 8))
    gen = torch.Generator().manual_seed(0)
    shifted = 0
    for _ in range(20):
        out = aug(white, gen)
        border = (out != white).any(0)             # pixels the crop brought in from the pad
        if border.any():
            shifted += 1
            torch.testing.assert_close(out[:, border], black[:, None].expand(3, int(border.sum())))
    assert shifted > 0
