"""Receptive fields: the recurrence worked out by hand for VGG-16 and LeNet-5."""

from __future__ import annotations

import torch
from torch import nn

import cnnlab
from cnnlab.analysis.receptive_field import format_fields, receptive_field
from tests.helpers.nets import TinyResNet, vgg16_features


def vgg_fields():
    with torch.device("meta"):
        return receptive_field(vgg16_features(), (3, 224, 224))


def test_vgg16_conv5_3_sees_196_pixels():
    # 3x3 convs add 2 * jump, 2x2/2 pools add 1 * jump and double it:
    # block1: 1 + 2 + 2 = 5 -> pool 6 (jump 2); block2: 6 + 4 + 4 = 14 -> pool 16 (jump 4);
    # block3: 16 + 3*8 = 40 -> pool 44 (jump 8); block4: 44 + 3*16 = 92 -> pool 100 (jump 16);
    # block5: 100 + 3*32 = 196.
    f = vgg_fields()
    sizes = {k: f[k].size[0] for k in ("conv1_2", "pool1", "conv2_2", "pool2", "conv3_3",
                                       "pool3", "conv4_3", "pool4", "conv5_3")}
    assert sizes == {"conv1_2": 5, "pool1": 6, "conv2_2": 14, "pool2": 16, "conv3_3": 40,
                     "pool3": 44, "conv4_3": 92, "pool4": 100, "conv5_3": 196}
    assert f["conv5_3"].size == (196, 196) and f["conv5_3"].jump == (16, 16)
    # padding 1 keeps 3x3 convs centred: start moves only at the pools, by half the window:
    # pool1 0.5, pool2 0.5 + 0.5*2 = 1.5, pool3 1.5 + 0.5*4 = 3.5, pool4 7.5, pool5 15.5
    assert f["conv5_3"].start == (7.5, 7.5) and f["pool5"].start == (15.5, 15.5)
    assert f["conv5_3"].output_shape == (512, 14, 14)


def test_lenet5_c5_sees_the_whole_32x32_input():
    # C1 5 (jump 1) -> S2 6 (jump 2) -> C3 6 + 4*2 = 14 -> S4 14 + 1*2 = 16 (jump 4)
    # -> C5 16 + 4*4 = 32.
    f = receptive_field(cnnlab.create_model("lenet5"), (1, 32, 32))
    assert [f[k].size[0] for k in ("features.c1", "features.s2", "features.c3", "features.s4",
                                   "features.c5")] == [5, 6, 14, 16, 32]
    assert f["features.c5"].size == (32, 32) and f["features.c5"].jump == (4, 4)
    # centre of the one C5 unit: the centre of the 32 input pixels 0..31
    assert f["features.c5"].start == (15.5, 15.5)
    assert f["f6"].size == (32, 32) and f["f6"].whole_map


def test_padding_stride_and_dilation():
    # conv 3x3 pad 1 stride 2: size 3, jump 2, start 1 - 1 = 0;
    # then conv 3x3 dilation 2 (effective 5x5), no padding: size 3 + 4*2 = 11, start 0 + 2*2 = 4
    model = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2, padding=1), nn.Conv2d(1, 1, 3, dilation=2))
    f = receptive_field(model, (1, 20, 20))
    assert (f["0"].size, f["0"].jump, f["0"].start) == ((3, 3), (2, 2), (0.0, 0.0))
    assert (f["1"].size, f["1"].jump, f["1"].start) == ((11, 11), (2, 2), (4.0, 4.0))


def test_residual_branches_take_the_larger_field():
    # stem 3; layer1: +2 +2 = 7 (the identity path has 3); layer2.conv1 stride 2: 9 (jump 2),
    # conv2: 9 + 2*2 = 13; the 1x1 projection keeps 7. The block's output: the larger, 13.
    f = receptive_field(TinyResNet(), (3, 8, 8), leaves_only=False)
    assert f["layer1"].size == (7, 7)
    assert f["layer2.conv2"].size == (13, 13) and f["layer2.down"].size == (7, 7)
    assert f["layer2"].size == (13, 13) and f["layer2"].jump == (2, 2)


def test_table_prints():
    text = format_fields(vgg_fields())
    line = next(x for x in text.splitlines() if x.startswith("conv5_3"))
    assert "196x196" in line and "16x16" in line


def test_cli_receptive_field(cli):
    res = cli("summary", "lenet5", "--receptive-field")
    assert res.returncode == 0, res.stderr
    line = next(x for x in res.stdout.splitlines() if x.startswith("features.c5"))
    assert line.split()[3:6] == ["32x32", "4x4", "15.5,15.5"]


def test_channel_shuffle_views_keep_the_field():
    from cnnlab.layers import ChannelShuffle

    # conv 3x3 (3) -> shuffle (a 5-D view and back: no change) -> conv 3x3 (5)
    model = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), ChannelShuffle(2),
                          nn.Conv2d(4, 4, 3, padding=1))
    f = receptive_field(model, (4, 8, 8))
    assert f["1"].size == (3, 3) and not f["1"].whole_map and f["2"].size == (5, 5)


def test_explicit_padding_and_lrn():
    # pad 1 on every side then conv 3x3: like padding=1: size 3, start 1 - 1 = 0;
    # LRN works across channels only: the field is unchanged.
    model = nn.Sequential(nn.ZeroPad2d(1), nn.Conv2d(2, 4, 3), nn.LocalResponseNorm(3))
    f = receptive_field(model, (2, 6, 6))
    assert (f["1"].size, f["1"].start) == ((3, 3), (0.0, 0.0))
    assert (f["2"].size, f["2"].start, f["2"].jump) == ((3, 3), (0.0, 0.0), (1, 1))
