"""MobileNet v1/v2/v3 and the shared InvertedResidual block: the papers' tables and arithmetic.

Parameter counts and torchvision state_dict keys are checked by
tests/models/test_every_model.py (reference records); here: multiply-adds against the papers
and torchvision, the stage tables, and the block's layouts. Multiply-adds are counted with
``torch.utils.flop_counter`` on the meta device (no memory, no compute): FLOPs / 2 = MACs of
convolutions and linear layers.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnlab
from cnnlab.layers import InvertedResidual, SqueezeExcite, StochasticDepth
from cnnlab.models.mobilenet import MOBILENET_V1_TABLE, MOBILENET_V2_TABLE
from tests.helpers import reference_record


def count_macs(name: str, size: int, **kwargs) -> int:
    with torch.device("meta"):
        model = cnnlab.create_model(name, **kwargs).eval()
        x = torch.empty(1, model.in_chans, size, size)
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


# ------------------------------------------------------------------------------- MobileNet v1

def test_v1_macs_at_224_are_the_papers_569_million():
    # Paper eq. 5 per unit: Dk*Dk*M*Df*Df (depthwise) + M*N*Df*Df (pointwise), plus the 3x3/2
    # stem on 3 channels and the 1024 x 1000 classifier; Df halves at every stride-2 layer.
    df, m = 112, 32
    total = 3 * 3 * 3 * 32 * df * df
    for stride, n in MOBILENET_V1_TABLE:
        df //= stride
        total += 3 * 3 * m * df * df + m * n * df * df
        m = n
    total += 1024 * 1000
    assert total == 568_740_352
    macs = count_macs("mobilenet_v1", 224)
    assert macs == total
    assert abs(macs - 569e6) / 569e6 < 0.01


@pytest.mark.parametrize("alpha,paper_millions,exact", [
    (0.75, 325, 325_400_448), (0.5, 149, 149_497_088), (0.25, 41, 41_030_272)])
def test_v1_width_multiplier_macs_match_paper_table_6(alpha, paper_millions, exact):
    # exact: REFERENCE_NUMBERS.md 2.8 (Keras MobileNet(alpha) counted at 224)
    macs = count_macs("mobilenet_v1", 224, width_mult=alpha)
    assert macs == exact
    assert abs(macs / 1e6 - paper_millions) / paper_millions < 0.01


@pytest.mark.parametrize("size,paper_millions", [(192, 418), (160, 290), (128, 186)])
def test_v1_resolution_multiplier_macs_match_paper_table_7(size, paper_millions):
    # The resolution multiplier is the input size: cost falls with rho^2 = (size / 224)^2.
    macs = count_macs("mobilenet_v1", size)
    assert abs(macs / 1e6 - paper_millions) / paper_millions < 0.01


def test_v1_has_the_28_layers_of_table_1():
    model = cnnlab.create_model("mobilenet_v1")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    depthwise = [c for c in convs if c.groups == c.in_channels > 1]
    assert len(convs) == 1 + 2 * 13 and len(depthwise) == 13
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == 1   # 27 conv + 1 FC
    assert [c.stride[0] for c in depthwise] == [s for s, _ in MOBILENET_V1_TABLE]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 27
    with torch.no_grad():
        assert model.eval().forward_features(torch.randn(1, 3, 224, 224)).shape == (1, 1024, 7, 7)


def test_v1_width_multiplier_thins_every_layer():
    model = cnnlab.create_model("mobilenet_v1", width_mult=0.25)
    assert model.num_features == 256 and model.features[0][0].out_channels == 8
    with pytest.raises(ValueError, match="width_mult"):
        cnnlab.create_model("mobilenet_v1", width_mult=0)


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small"])
def test_any_resolution_works_down_to_one_pixel(name):
    # Every conv pads (k-1)//2, so stride 2 maps h to ceil(h/2): 1x1 stays 1x1.
    model = cnnlab.create_model(name, num_classes=3).eval()
    assert model.min_input_size == (1, 1)
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 3, 1, 1)).shape[2:] == (1, 1)
        assert model(torch.randn(1, 3, 97, 131)).shape == (1, 3)
    with pytest.raises(cnnlab.InputShapeError, match="at least 1x1, got 0x5"):
        model(torch.randn(1, 3, 0, 5))


# ------------------------------------------------------------------------------- MobileNet v2

def test_v2_follows_table_2():
    model = cnnlab.create_model("mobilenet_v2")
    blocks = [m for m in model.features if isinstance(m, InvertedResidual)]
    assert len(blocks) == sum(n for _, _, n, _ in MOBILENET_V2_TABLE) == 17
    # residual when stride 1 and in == out: the n - 1 repeats of each row
    assert sum(b.use_residual for b in blocks) == sum(n - 1 for _, _, n, _ in MOBILENET_V2_TABLE)
    # expansion 6: block 2 (24 -> 24) expands to 144 with a 3x3 depthwise
    assert model.features[3].conv[0][0].out_channels == 24 * 6
    assert model.features[3].conv[1][0].groups == 144
    acts = {type(m) for m in model.modules() if isinstance(m, (nn.ReLU, nn.ReLU6, nn.Hardswish))}
    assert acts == {nn.ReLU6}
    assert model.num_features == 1280


def test_v2_macs_equal_torchvision():
    ref = reference_record("torchvision:mobilenet_v2")
    assert count_macs("mobilenet_v2", 224) == ref["macs"] == 300_774_272  # paper: 300 M


def test_v2_bottleneck_is_linear():
    block = cnnlab.create_model("mobilenet_v2").features[2]
    # conv.0 expand conv-BN-ReLU6, conv.1 depthwise conv-BN-ReLU6, conv.2 1x1 conv, conv.3 BN
    assert isinstance(block.conv[0][2], nn.ReLU6) and isinstance(block.conv[1][2], nn.ReLU6)
    assert isinstance(block.conv[2], nn.Conv2d) and isinstance(block.conv[3], nn.BatchNorm2d)
    assert len(block.conv) == 4


# ------------------------------------------------------------------------------- MobileNet v3

@pytest.mark.parametrize("name,blocks,se,hidden", [
    ("mobilenet_v3_large", 15, 8, 1280), ("mobilenet_v3_small", 11, 9, 1024)])
def test_v3_tables(name, blocks, se, hidden):
    model = cnnlab.create_model(name).eval()
    ir = [m for m in model.features if isinstance(m, InvertedResidual)]
    assert len(ir) == blocks
    ses = [m for m in model.modules() if isinstance(m, SqueezeExcite)]
    assert len(ses) == se
    assert all(isinstance(s.scale_activation, nn.Hardsigmoid) for s in ses)
    # squeeze width make_divisible(expanded / 4, 8): large block 4 expands to 72 -> 18 -> 24
    if name == "mobilenet_v3_large":
        assert model.features[4].block[2].fc1.out_channels == 24
    with torch.no_grad():
        pre = model.forward_head(torch.randn(2, model.num_features, 1, 1), pre_logits=True)
    assert pre.shape == (2, hidden)
    bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert (bn.eps, bn.momentum) == (1e-3, 0.01)


@pytest.mark.parametrize("name,paper_millions", [("mobilenet_v3_large", 217),
                                                 ("mobilenet_v3_small", 56)])
def test_v3_macs_equal_torchvision(name, paper_millions):
    macs = count_macs(name, 224)
    assert macs == reference_record(f"torchvision:{name}")["macs"]
    assert abs(macs / 1e6 - paper_millions) / paper_millions < 0.02


def test_v3_first_large_block_has_no_expansion_and_relu():
    block = cnnlab.create_model("mobilenet_v3_large").features[1]
    assert len(block.block) == 2  # exp 16 == in 16: depthwise and projection only
    assert isinstance(block.block[0][2], nn.ReLU) and block.use_residual


# ------------------------------------------------------------------------ InvertedResidual block

def test_inverted_residual_layouts_give_torchvision_keys():
    v2 = InvertedResidual(16, 24, 2, mid_chs=96, layout="conv")
    assert [k for k in v2.state_dict() if k.endswith("weight")] == [
        "conv.0.0.weight", "conv.0.1.weight", "conv.1.0.weight", "conv.1.1.weight",
        "conv.2.weight", "conv.3.weight"]
    mb = InvertedResidual(16, 16, 1, mid_chs=64, kernel_size=5, se_chs=4, act_layer=nn.SiLU)
    assert [k for k in mb.state_dict() if k.endswith("weight")] == [
        "block.0.0.weight", "block.0.1.weight", "block.1.0.weight", "block.1.1.weight",
        "block.2.fc1.weight", "block.2.fc2.weight", "block.3.0.weight", "block.3.1.weight"]
    assert mb.block[1][0].kernel_size == (5, 5) and mb.block[1][0].groups == 64
    assert len(mb.block[3]) == 2  # projection conv-BN, no activation: the linear bottleneck


def test_inverted_residual_shortcut_and_stochastic_depth():
    torch.manual_seed(0)
    x = torch.randn(8, 16, 5, 5)
    assert not InvertedResidual(16, 16, 2, mid_chs=32).use_residual
    assert not InvertedResidual(16, 24, 1, mid_chs=32).use_residual
    block = InvertedResidual(16, 16, 1, mid_chs=32, drop_path=0.5)
    assert block.use_residual and isinstance(block.stochastic_depth, StochasticDepth)
    block.eval()
    with torch.no_grad():
        branch = block.block(x)
        assert torch.allclose(block(x), x + branch)      # eval: no dropping, no rescaling
        block.train()
        block.block.eval()                               # keep BN fixed, drop only
        out = block(x)
    per_sample = [(torch.allclose(o, xi) or torch.allclose(o, xi + 2 * b))
                  for o, xi, b in zip(out, x, branch, strict=True)]
    assert all(per_sample)                               # dropped, or kept and scaled 1/(1-p)


def test_inverted_residual_bad_arguments():
    with pytest.raises(ValueError, match="stride must be 1 or 2, got 3"):
        InvertedResidual(8, 8, 3)
    with pytest.raises(ValueError, match="layout"):
        InvertedResidual(8, 8, 1, layout="timm")
