"""Tensor transforms: channel conversion, resize, crop, flip, normalisation."""

import pytest
import torch

from cnnlab.data.transforms import (
    Augment,
    Preprocess,
    center_crop,
    convert_channels,
    hflip,
    normalize,
    pad,
    random_crop,
    resize,
    stats_for_channels,
)


def test_gray_to_rgb_repeats_and_rgb_to_gray_uses_luma():
    g = torch.rand(1, 4, 4)
    rgb = convert_channels(g, 3)
    assert rgb.shape == (3, 4, 4) and torch.equal(rgb[0], rgb[2])
    pixel = torch.tensor([1.0, 0.5, 0.0]).view(3, 1, 1)
    # 0.299 * 1 + 0.587 * 0.5 + 0.114 * 0 = 0.5925
    assert convert_channels(pixel, 1).item() == pytest.approx(0.5925)
    with pytest.raises(ValueError, match="cannot convert 2-channel"):
        convert_channels(torch.rand(2, 4, 4), 3)


def test_statistics_follow_the_channel_conversion():
    assert stats_for_channels([0.5], [0.25], 3) == ((0.5,) * 3, (0.25,) * 3)
    mean, std = stats_for_channels([1.0, 0.0, 0.0], [0.2, 0.2, 0.2], 1)
    assert mean[0] == pytest.approx(0.299) and std[0] == pytest.approx(0.2)


def test_resize_keeps_a_constant_image_constant_and_changes_the_size():
    x = torch.full((1, 8, 8), 0.25)
    y = resize(x, (32, 32))
    assert y.shape == (1, 32, 32) and torch.allclose(y, torch.full_like(y, 0.25))
    assert resize(torch.rand(2, 3, 64, 48), (16, 12)).shape == (2, 3, 16, 12)


def test_crops_flip_pad_and_normalize():
    x = torch.arange(16.0).view(1, 4, 4)
    assert torch.equal(center_crop(x, (2, 2)), torch.tensor([[[5.0, 6.0], [9.0, 10.0]]]))
    assert torch.equal(hflip(x)[0, 0], torch.tensor([3.0, 2.0, 1.0, 0.0]))
    p = pad(x, 1, fill=[-1.0])
    assert p.shape == (1, 6, 6) and p[0, 0, 0] == -1 and p[0, 1, 1] == 0
    # (x - 2) / 4 for a constant 6 is 1
    assert torch.equal(normalize(torch.full((1, 2, 2), 6.0), [2.0], [4.0]), torch.ones(1, 2, 2))
    g = torch.Generator().manual_seed(0)
    crops = {tuple(random_crop(x, (4, 4), padding=2, generator=g).flatten().tolist())
             for _ in range(30)}
    assert len(crops) > 5  # the position varies
    for c in crops:  # and every crop is a window of the padded image
        assert len(c) == 16


def test_augment_is_reproducible_from_its_generator():
    aug = Augment(crop_padding=2, hflip=True)
    x = torch.rand(3, 8, 8)
    a = aug(x, torch.Generator().manual_seed(5))
    b = aug(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == x.shape
    assert not Augment().active


def test_preprocess_converts_resizes_and_normalises():
    pre = Preprocess(3, (16, 16), [0.5], [0.5])
    y = pre(torch.ones(1, 8, 8))
    # (1 - 0.5) / 0.5 = 1 in each of the three channels
    assert y.shape == (3, 16, 16) and torch.allclose(y, torch.ones_like(y))
    with pytest.raises(ValueError, match="std must be positive"):
        Preprocess(1, (8, 8), [0.0], [0.0])
