"""Cost arithmetic of standard vs depthwise-separable convolutions; the slide's example."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.analysis.cost import SLIDE_FIGURES, conv_cost, slide_explanation
from cnnlab.analysis.macs import count_macs


def test_slide_example_correct_figures():
    # 100x100x3 input, 128 maps, 3x3, 'same' padding: 100*100 = 10,000 output positions.
    c = cnnlab.conv_cost(100, 100, 3, 128, 3)
    assert (c.out_height, c.out_width, c.padding) == (100, 100, 1)
    assert c.standard_weights == 3 * 3 * 3 * 128 == 3_456
    assert c.standard_mults == 10_000 * 3_456 == 34_560_000
    assert c.depthwise_weights == 3 * 3 * 3 == 27 and c.depthwise_mults == 270_000
    assert c.pointwise_weights == 3 * 128 == 384 and c.pointwise_mults == 3_840_000
    assert c.separable_weights == 411 and c.separable_mults == 4_110_000
    assert c.ratio == pytest.approx(1 / 128 + 1 / 9) == c.formula_ratio
    # the slide's 16,380,000 and 3,930,000 are 1,638 and 9 + 384 per position, times the
    # 10,000 positions the code computes; the explanation prints exactly that product
    positions = c.out_height * c.out_width
    s = SLIDE_FIGURES
    assert s["standard_mults"] == s["standard_per_position"] * positions == 1_638 * 10_000
    assert s["separable_mults"] == (s["depthwise_per_position"] + s["pointwise_per_position"]) \
        * positions == (9 + 384) * 10_000
    text = " ".join(slide_explanation(c))
    assert "1,638 x 10,000 = 16,380,000" in text and "(9 + 384) x 10,000 = 3,930,000" in text
    assert "3x3x3x128 = 3,456" in text and "3x3x3 = 27" in text


@pytest.mark.parametrize("h,w,c,n,k,s,p", [(32, 32, 16, 64, 3, 1, "same"), (15, 17, 8, 24, 5, 2, 2),
                                             (7, 7, 32, 32, 3, 1, "valid")])
def test_matches_counted_layers(h, w, c, n, k, s, p):
    cost = conv_cost(h, w, c, n, k, s, p)
    pad = cost.padding
    standard = nn.Conv2d(c, n, k, s, pad, bias=False)
    separable = nn.Sequential(nn.Conv2d(c, c, k, s, pad, groups=c, bias=False),
                              nn.Conv2d(c, n, 1, bias=False))
    assert cost.standard_mults == count_macs(standard, (c, h, w)).macs
    assert cost.separable_mults == count_macs(separable, (c, h, w)).macs
    assert cost.standard_weights == standard.weight.numel()
    assert cost.separable_weights == sum(p.numel() for p in separable.parameters())
    assert cost.ratio == pytest.approx(1 / n + 1 / k**2)
    out = standard(torch.zeros(1, c, h, w))
    assert (cost.out_height, cost.out_width) == tuple(out.shape[2:])


@pytest.mark.parametrize("kwargs,message", [
    ({"height": 0}, "height must be a positive integer"),
    ({"out_channels": -4}, "out_channels must be"),
    ({"padding": "full"}, "padding must be"),
    ({"kernel": 7, "height": 3, "padding": 0}, "does not fit"),
])
def test_bad_values_are_named(kwargs, message):
    args = dict(height=10, width=10, in_channels=3, out_channels=8, kernel=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        conv_cost(**args)


def test_cli_prints_correct_and_slide_figures_with_the_reason(cli):
    res = cli("cost")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    for needle in ["34,560,000", "4,110,000", "16,380,000", "3,930,000", "3,456", "411",
                   "1/128 + 1/9", "0.1189", "2 x 3^2 x 7 x 13", "single input map", "0.240"]:
        assert needle in out, needle


def test_cli_json_and_other_layers(cli):
    res = cli("cost", "--input", "112x112x32", "--maps", "64", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["standard_mults"] == 112 * 112 * 9 * 32 * 64
    assert data["separable_mults"] == 112 * 112 * (9 * 32 + 32 * 64)
    assert "slide" not in data


def test_cli_error_is_one_line(cli):
    res = cli("cost", "--input", "100x100", "--maps", "0")
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0
    assert "HxWxC" in res.stderr and "Traceback" not in res.stderr


# --- grouped convolution, strides that do not fit ---------------------------------------

def test_grouped_convolution_by_hand():
    # AlexNet's conv2 on one GPU pair: 27x27x96 -> 256 maps, 5x5, padding 2, G = 2.
    # Each of the 256 filters sees 96/2 = 48 maps: 5*5*48*256 = 307,200 weights, and
    # 27*27 = 729 positions * 5*5*48*256 = 223,948,800 multiplications: half the ungrouped.
    c = conv_cost(27, 27, 96, 256, 5, 1, 2, groups=2)
    assert c.grouped_weights == 5 * 5 * 48 * 256 == 307_200
    assert c.grouped_mults == 729 * 5 * 5 * 48 * 256 == 223_948_800
    assert c.standard_weights == 2 * c.grouped_weights
    conv = nn.Conv2d(96, 256, 5, 1, 2, groups=2, bias=False)
    assert c.grouped_weights == conv.weight.numel()
    assert c.grouped_mults == count_macs(conv, (96, 27, 27)).macs
    # G = C = N is the depthwise convolution
    dw = conv_cost(10, 10, 8, 8, 3, groups=8)
    assert dw.grouped_weights == dw.depthwise_weights and dw.grouped_mults == dw.depthwise_mults
    with pytest.raises(ValueError, match="groups=3 must divide"):
        conv_cost(10, 10, 8, 8, 3, groups=3)


def test_stride_that_does_not_fit_warns():
    # AlexNet conv1: 11x11, stride 4, no padding. (227 - 11) / 4 + 1 = 55 exactly;
    # (224 - 11) / 4 + 1 = 213 / 4 + 1 = 54.25.
    assert conv_cost(227, 227, 3, 96, 11, 4, 0).warnings == []
    c = conv_cost(224, 224, 3, 96, 11, 4, 0)
    assert c.exact_out == (54.25, 54.25) and c.out_height == 54
    (w,) = c.warnings
    assert "54.25" in w and "227" in w and "55" in w and "last 1 input pixel" in w


def test_cli_groups_and_stride_warning(cli):
    res = cli("cost", "--input", "27x27x96", "--maps", "256", "--kernel", "5", "--padding", "2",
              "--groups", "2")
    assert res.returncode == 0, res.stderr
    assert "grouped conv, G=2" in res.stdout and "223,948,800" in res.stdout
    assert "1/G = 1/2" in res.stdout
    res = cli("cost", "--input", "224x224x3", "--maps", "96", "--kernel", "11", "--stride", "4",
              "--padding", "valid")
    assert "warning:" in res.stdout and "54.25" in res.stdout and "227" in res.stdout
    res = cli("cost", "--input", "224x224x3", "--maps", "96", "--kernel", "11", "--stride", "4",
              "--padding", "valid", "--json")
    assert json.loads(res.stdout)["exact_out"] == [54.25, 54.25] and "54.25" in res.stderr
    res = cli("cost", "--groups", "5")
    assert res.returncode == 2 and "groups=5 must divide" in res.stderr
