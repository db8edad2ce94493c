"""EfficientNet B0-B7 and the compound scaling rule (Tan & Le 2019).

Parameter counts and torchvision state_dict keys are checked by
tests/models/test_every_model.py. Here: the scaled stage tables, multiply-adds against
torchvision (on the meta device: nothing is allocated, so B7 at 600 px costs well under a
second), the variant settings, and the compound rule, whose FLOPs should grow about 2^phi.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnlab
from cnnlab.layers import InvertedResidual, StochasticDepth
from cnnlab.models.efficientnet import (
    EFFICIENTNET_B0_TABLE,
    EFFICIENTNET_PARAMS,
    compound_scaling,
    implied_phi,
    scale_stages,
)
from cnnlab.registry import get_entry
from tests.helpers import reference_record

VARIANTS = [f"efficientnet_b{i}" for i in range(8)]


def count_macs(name: str, size: int, **kwargs) -> int:
    with torch.device("meta"):
        model = cnnlab.create_model(name, **kwargs).eval()
        x = torch.empty(1, 3, size, size)
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


def test_b0_is_table_1():
    stem, stages = scale_stages(1.0, 1.0)
    assert stem == 32
    assert [(s.expand, s.kernel, s.stride, s.out_chs, s.repeats) for s in stages] == [
        (1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
        (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
    model = cnnlab.create_model("efficientnet_b0")
    assert model.num_features == 1280
    assert sum(isinstance(m, InvertedResidual) for m in model.modules()) == 16


def test_scaling_rounds_channels_to_8_and_repeats_up():
    # B4: width 1.4 -> 32*1.4 = 44.8 -> 48; 16*1.4 = 22.4 -> 24; 24*1.4 = 33.6 -> 32;
    # 112*1.4 = 156.8 -> 160; 192*1.4 = 268.8 -> 272; 320*1.4 = 448; head 4 * 448 = 1792.
    stem, stages = scale_stages(1.4, 1.8)
    assert stem == 48
    assert [s.out_chs for s in stages] == [24, 32, 56, 112, 160, 272, 448]
    # depth 1.8: ceil(1.8 * n) for n = 1, 2, 2, 3, 3, 4, 1
    assert [s.repeats for s in stages] == [2, 4, 4, 6, 6, 8, 2]
    # B7: depth 3.1 gives 4, 7, 7, 10, 10, 13, 4 = 55 blocks; width 2.0 gives head 2 * 1280
    _, b7 = scale_stages(2.0, 3.1)
    assert [s.repeats for s in b7] == [math.ceil(3.1 * n) for *_, n in EFFICIENTNET_B0_TABLE]
    assert sum(s.repeats for s in b7) == 55
    with torch.device("meta"):
        assert cnnlab.create_model("efficientnet_b7").num_features == 2560


@pytest.mark.parametrize("name", VARIANTS)
def test_native_resolution_dropout_and_macs(name):
    width, depth, res, dropout = EFFICIENTNET_PARAMS[name[-2:]]
    assert get_entry(name).input_size == (3, res, res)
    assert res == [224, 240, 260, 300, 380, 456, 528, 600][int(name[-1])]
    with torch.device("meta"):
        model = cnnlab.create_model(name)
    assert model.classifier[0].p == dropout
    ref = reference_record(f"torchvision:{name}")
    assert ref["input"] == (3, res, res)
    assert count_macs(name, res) == ref["macs"]


def test_b2_at_torchvisions_288_crop():
    # torchvision evaluates B2 weights at a 288 crop; REFERENCE_NUMBERS.md gives _ops 1.088 there
    assert count_macs("efficientnet_b2", 288) == 1_087_529_456


def test_batch_norm_settings_follow_torchvision():
    for name, eps in [("efficientnet_b0", 1e-5), ("efficientnet_b4", 1e-5),
                      ("efficientnet_b5", 1e-3), ("efficientnet_b7", 1e-3), ("efficientnet", 1e-3)]:
        with torch.device("meta"):
            model = cnnlab.create_model(name)
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        assert {m.eps for m in bns} == {eps}, name
    with torch.device("meta"):
        model = cnnlab.create_model("efficientnet_b0", bn_eps=1e-3, bn_momentum=0.01)
    assert model.features[0][1].eps == 1e-3 and model.features[0][1].momentum == 0.01


def test_stochastic_depth_grows_linearly_to_0_2():
    model = cnnlab.create_model("efficientnet_b0")
    blocks = [m for m in model.modules() if isinstance(m, InvertedResidual)]
    assert len(blocks) == 16
    for i, b in enumerate(blocks):  # block i of N = 16 drops its branch with p = 0.2 * i / 16
        if b.use_residual:
            assert isinstance(b.stochastic_depth, StochasticDepth)
            assert b.stochastic_depth.p == pytest.approx(0.2 * i / 16)
        else:  # the first block of each stage changes width or stride: no shortcut to drop
            assert isinstance(b.stochastic_depth, nn.Identity)
    assert sum(b.use_residual for b in blocks) == 16 - 7


def test_squeeze_excite_uses_a_quarter_of_the_block_input():
    model = cnnlab.create_model("efficientnet_b0")
    block = model.features[2][0]            # 16 -> 24, expanded to 96, squeezed to 16 / 4 = 4
    assert block.block[2].fc1.out_channels == 4 and block.block[2].fc1.in_channels == 96
    assert isinstance(block.block[2].activation, nn.SiLU)


# ------------------------------------------------------------------------- compound scaling

def test_compound_scaling_factors():
    s = compound_scaling(1)
    assert (s.depth, s.width, s.resolution) == (pytest.approx(1.2), pytest.approx(1.1), 258)
    # alpha * beta^2 * gamma^2 = 1.2 * 1.21 * 1.3225 = 1.92027, the paper's "~ 2"
    assert s.flops_ratio == pytest.approx(1.2 * 1.21 * 1.3225)
    assert compound_scaling(3).flops_ratio == pytest.approx(1.92027 ** 3, rel=1e-5)
    assert compound_scaling(0) == (1.0, 1.0, 224, 1.0)
    with pytest.raises(ValueError, match="phi must be"):
        compound_scaling(-1)


def test_phi_0_is_b0():
    with torch.device("meta"):
        a = cnnlab.create_model("efficientnet")
        b = cnnlab.create_model("efficientnet_b0")
    assert {k: v.shape for k, v in a.state_dict().items()} == \
        {k: v.shape for k, v in b.state_dict().items()}
    assert sum(p.numel() for p in a.parameters()) == 5_288_548


def test_measured_macs_grow_about_2_to_the_phi():
    """MACs of efficientnet(phi) at its own resolution, relative to phi = 0 at 224.

    The rule expects (alpha beta^2 gamma^2)^phi = 1.92^phi. Tolerance: measured / 2^phi within
    [0.85, 1.35]. The measured growth is *above* the rule's, by a margin that shrinks with phi,
    for reasons the test names: repeats are rounded *up* (ceil(1.2 * n) for n = 1, 2, 2, 3, 3,
    4, 1 gives 23 blocks at phi = 1 where 1.2 * 16 = 19.2 would be exact, and the two one-block
    stages double), channels round to multiples of 8 and the resolution to whole pixels, while
    the 3-channel stem input and the classifier do not grow with width squared.
    """
    base = count_macs("efficientnet", 224, phi=0)
    assert base == 385_814_752  # = B0
    excess = []
    for phi in (1, 2, 3):
        scale = compound_scaling(phi)
        ratio = count_macs("efficientnet", scale.resolution, phi=phi) / base
        assert 0.85 <= ratio / 2 ** phi <= 1.35, (phi, ratio)
        excess.append(ratio / scale.flops_ratio)
    # the ceil-rounding excess over the rule shrinks as the repeats grow
    assert all(e > 1.0 for e in excess) and excess[0] > excess[1] > excess[2]
    _, stages = scale_stages(1.2, 1.2)
    assert sum(s.repeats for s in stages) == 23


def test_published_coefficients_are_not_the_formula():
    # B2 (width 1.1, depth 1.2, 260 px) is the rule at phi ~ 1 (258 px), not phi = 2.
    phi_w, phi_d, phi_r = implied_phi(*EFFICIENTNET_PARAMS["b2"][:3])
    assert phi_w == pytest.approx(1.0) and phi_d == pytest.approx(1.0)
    assert phi_r == pytest.approx(1.07, abs=0.01)
    # B7: width and resolution ~ phi 7, depth only ~ phi 6.2
    phi_w, phi_d, phi_r = implied_phi(*EFFICIENTNET_PARAMS["b7"][:3])
    assert (round(phi_w, 2), round(phi_d, 2), round(phi_r, 2)) == (7.27, 6.21, 7.05)
