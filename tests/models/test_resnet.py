"""ResNet v1 / v2: the papers' arithmetic (parameters, depth, multiply-adds), stride placement,
option A shortcuts, pre-activation order, zero-init. Large models are built on the meta device;
real forwards use the CIFAR nets or single blocks at small sizes.

torchvision / timm key-for-key checks and the forward/backward/min-size checks of every model
are in tests/models/test_every_model.py.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnlab
from cnnlab.layers import ZeroPadShortcut
from cnnlab.models.resnet import CIFAR_DEPTHS, Bottleneck, PreActBottleneck
from tests.helpers import reference_record


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_model(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return cnnlab.create_model(name, **kwargs)


def macs_at_224(model: nn.Module) -> int:
    """Multiply-accumulates of one 224x224 image (torch's FLOP counter counts 2 per MAC)."""
    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, 224, 224))
    return counter.get_total_flops() // 2


def weighted_depth(model: nn.Module) -> int:
    """The paper's depth: convolution and fully connected layers on the main path, i.e. not
    counting the 1x1 projections of the shortcuts (``downsample``)."""
    return sum(1 for name, m in model.named_modules()
               if isinstance(m, (nn.Conv2d, nn.Linear)) and "downsample" not in name)


# --- CIFAR ResNets (sec. 4.2) ---------------------------------------------------------------

def cifar_resnet_params(n: int, shortcut: str = "A", classes: int = 10) -> int:
    """Parameters of the 6n+2 CIFAR ResNet, written out: 3x3 convs without bias, BN (2 per
    channel), option A shortcuts without parameters."""
    total = 3 * 16 * 9 + 2 * 16                          # first conv 3 -> 16, BN
    c_in = 16
    for width in (16, 32, 64):
        for _ in range(n):
            total += 9 * c_in * width + 2 * width        # conv1 of the block + BN
            total += 9 * width * width + 2 * width       # conv2 + BN
            if shortcut == "B" and c_in != width:
                total += c_in * width + 2 * width        # 1x1 projection + BN
            c_in = width
    return total + 64 * classes + classes                # fc


def test_resnet20_and_resnet56_have_the_papers_parameter_counts():
    # resnet20, n = 3: 432 + 32 (first conv, BN)
    #   stage 16: 3 x (2 x 2304 + 2 x 32)                         = 14,016
    #   stage 32: (4608 + 9216 + 128) + 2 x (2 x 9216 + 128)       = 13,952 + 37,120
    #   stage 64: (18432 + 36864 + 256) + 2 x (2 x 36864 + 256)    = 55,552 + 147,968
    #   fc 64 x 10 + 10                                            = 650
    assert cifar_resnet_params(3) == 464 + 14016 + 13952 + 37120 + 55552 + 147968 + 650 == 269722
    assert n_params(cnnlab.create_model("resnet20")) == 269722
    assert round(269722 / 1e6, 2) == 0.27                     # Table 6: "0.27M"
    assert n_params(cnnlab.create_model("resnet56")) == cifar_resnet_params(9) == 853018
    assert round(853018 / 1e6, 2) == 0.85                     # Table 6: "0.85M"


@pytest.mark.parametrize("name,n", sorted(CIFAR_DEPTHS.items()))
def test_cifar_resnets_are_6n_plus_2_layers(name, n):
    model = meta_model(name)
    assert weighted_depth(model) == 6 * n + 2 == int(name.removeprefix("resnet"))
    assert n_params(model) == cifar_resnet_params(n)
    assert model.min_input_size == (1, 1)
    assert cnnlab.get_entry(name).input_size == (3, 32, 32)


def test_cifar_stage_shapes_are_32_16_8_pixels_with_16_32_64_filters():
    model = cnnlab.create_model("resnet20").eval()
    shapes = {}
    for name in ("conv1", "layer1", "layer2", "layer3"):
        getattr(model, name).register_forward_hook(
            lambda m, i, o, n=name: shapes.__setitem__(n, tuple(o.shape[1:])))
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert shapes == {"conv1": (16, 32, 32), "layer1": (16, 32, 32),
                      "layer2": (32, 16, 16), "layer3": (64, 8, 8)}


def test_option_a_shortcut_subsamples_and_pads_zeros_without_parameters():
    model = cnnlab.create_model("resnet20")
    shortcut = model.layer2[0].downsample
    assert isinstance(shortcut, ZeroPadShortcut) and n_params(shortcut) == 0
    assert model.layer1[0].downsample is None           # same shape: plain identity
    x = torch.randn(2, 16, 7, 7)
    y = shortcut(x)
    assert y.shape == (2, 32, 4, 4)                      # ceil(7 / 2) = 4, like the 3x3/2 conv
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2])
    assert torch.equal(y[:, 16:], torch.zeros(2, 16, 4, 4))
    block = model.layer2[0]
    assert block(x).shape == y.shape                     # the residual branch agrees


def test_option_b_adds_two_projections():
    # 16 -> 32 and 32 -> 64: 1x1 convs (16 x 32 and 32 x 64) with BN (2 x 32 and 2 x 64).
    extra = (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    model = cnnlab.create_model("resnet20", shortcut="B")
    projections = [m.downsample for m in model.modules()
                   if getattr(m, "downsample", None) is not None]
    assert len(projections) == 2
    assert sum(n_params(p) for p in projections) == extra == 2752
    assert n_params(model) == 269722 + extra == cifar_resnet_params(3, shortcut="B")


# --- ImageNet ResNet v1 -------------------------------------------------------------------

@pytest.mark.parametrize("name,blocks,per_block", [
    ("resnet18", (2, 2, 2, 2), 2), ("resnet34", (3, 4, 6, 3), 2),
    ("resnet50", (3, 4, 6, 3), 3), ("resnet101", (3, 4, 23, 3), 3),
    ("resnet152", (3, 8, 36, 3), 3),
])
def test_imagenet_depth_is_the_name(name, blocks, per_block):
    # Table 1: conv1 + (layers per block) x (blocks) + fc; e.g. resnet50 = 1 + 3 x 16 + 1.
    depth = 1 + per_block * sum(blocks) + 1
    assert depth == int(name.removeprefix("resnet"))
    model = meta_model(name)
    assert weighted_depth(model) == depth
    assert [len(getattr(model, f"layer{i}")) for i in (1, 2, 3, 4)] == list(blocks)
    # The shortcut projections: one per stage where shape changes (all four for bottlenecks).
    assert sum(1 for n, _ in model.named_modules() if n.endswith("downsample")) == (
        4 if per_block == 3 else 3)


def test_stride_is_in_the_3x3_by_default_and_in_the_first_1x1_on_request():
    v15, v1 = meta_model("resnet50"), meta_model("resnet50", stride_in_1x1=True)
    for stage in ("layer2", "layer3", "layer4"):
        a, b = getattr(v15, stage)[0], getattr(v1, stage)[0]
        assert (a.conv1.stride, a.conv2.stride) == ((1, 1), (2, 2))
        assert (b.conv1.stride, b.conv2.stride) == ((2, 2), (1, 1))
    # Same parameters and keys: a checkpoint of one loads into the other.
    assert {k: v.shape for k, v in v15.state_dict().items()} == \
        {k: v.shape for k, v in v1.state_dict().items()}


def test_stride_placement_gives_torchvision_and_paper_multiply_adds():
    # torchvision (v1.5) resnet50: 4,089,184,256 MACs (tests/reference/torchvision.json).
    # The paper's placement is what Keras' ResNet50/101 build: 3,857,973,248 and 7,570,194,432
    # MACs (REFERENCE_NUMBERS.md, Keras table), the paper's "3.8" and "7.6 x 10^9 FLOPs".
    assert macs_at_224(meta_model("resnet50")) == reference_record("torchvision:resnet50")["macs"]
    assert macs_at_224(meta_model("resnet50", stride_in_1x1=True)) == 3_857_973_248
    assert macs_at_224(meta_model("resnet101", stride_in_1x1=True)) == 7_570_194_432


def test_init_follows_torchvision_and_zero_init_residual_makes_blocks_identities():
    torch.manual_seed(0)
    model = cnnlab.create_model("resnet50").eval()
    conv = model.layer4[0].conv2                          # 512 -> 512, 3x3: fan_out 4608
    assert conv.weight.std().item() == pytest.approx((2 / (512 * 9)) ** 0.5, rel=0.02)
    assert torch.equal(model.bn1.weight, torch.ones(64))
    zero = cnnlab.create_model("resnet50", zero_init_residual=True).eval()
    bottlenecks = [m for m in zero.modules() if isinstance(m, Bottleneck)]
    assert len(bottlenecks) == 16 and all(not b.bn3.weight.any() for b in bottlenecks)
    x = torch.randn(2, 256, 8, 8)
    with torch.no_grad():
        assert torch.equal(zero.layer1[1](x), torch.relu(x))   # F(x) = 0: relu(x + 0)
        assert not torch.equal(model.layer1[1](x), torch.relu(x))


def test_one_pixel_is_the_smallest_input():
    # Every stride-2 step maps h to ceil(h / 2) and the pooling is adaptive, so 1x1 goes
    # through (even in training mode with 2 images, BN sees 2 values per channel); 0 does not.
    model = cnnlab.create_model("resnet18", num_classes=3).train()
    assert model.min_input_size == (1, 1)
    assert model(torch.randn(2, 3, 1, 1)).shape == (2, 3)
    assert model.forward_features(torch.randn(2, 3, 5, 5)).shape == (2, 512, 1, 1)
    with pytest.raises(RuntimeError):
        model.forward_features(torch.randn(2, 3, 0, 1))


@pytest.mark.parametrize("name,kwargs,error,message", [
    ("resnet20", {"shortcut": "C"}, ValueError, "shortcut must be one of"),
    ("resnet18", {"stride_in_1x1": True}, TypeError,
     "resnet18 does not take the argument 'stride_in_1x1'"),
    ("resnet50", {"stem": "deep"}, ValueError, "stem must be 'imagenet' or 'cifar'"),
])
def test_bad_options_are_named(name, kwargs, error, message):
    with pytest.raises(error, match=message):
        meta_model(name, **kwargs)


# --- ResNet v2 (pre-activation), timm's resnetv2 --------------------------------------------

def resnet_v2_params(blocks: tuple[int, ...], classes: int = 1000) -> int:
    """timm resnetv2 parameters, written out: stem conv without BN, pre-activation
    bottlenecks (BN before each conv, so BN on the block input), projections without BN, a
    final BN and a 1x1-conv classifier."""
    total, c_in = 3 * 64 * 49, 64
    for planes, depth in zip((64, 128, 256, 512), blocks, strict=True):
        out = 4 * planes
        for i in range(depth):
            total += 2 * c_in + c_in * planes            # norm1, conv1 1x1
            total += 2 * planes + 9 * planes * planes    # norm2, conv2 3x3
            total += 2 * planes + planes * out           # norm3, conv3 1x1
            if i == 0:
                total += c_in * out                      # projection, no BN
            c_in = out
    return total + 2 * 2048 + 2048 * classes + classes


def test_v2_parameters_match_timm_and_the_arithmetic_predicts_152():
    assert resnet_v2_params((3, 4, 6, 3)) == reference_record("timm:resnetv2_50")["params"]
    assert resnet_v2_params((3, 4, 23, 3)) == reference_record("timm:resnetv2_101")["params"]
    assert resnet_v2_params((3, 4, 6, 3)) == 25_549_352
    model = meta_model("resnet152_v2")
    assert n_params(model) == resnet_v2_params((3, 8, 36, 3)) == 60_185_128
    assert weighted_depth(model) == 1 + 3 * (3 + 8 + 36 + 3) + 1 == 152


def test_v2_multiply_adds_equal_timm():
    assert macs_at_224(meta_model("resnet50_v2")) == reference_record("timm:resnetv2_50")["macs"]


def test_v2_blocks_are_preactivated_and_the_sum_is_not_rectified():
    torch.manual_seed(0)
    block = PreActBottleneck(256, 64).eval()
    assert block.downsample is None and block.norm1.num_features == 256  # BN on the input
    x = torch.randn(2, 256, 6, 6)
    with torch.no_grad():
        y = block(x)
        residual = block.conv3(block.act3(block.norm3(
            block.conv2(block.act2(block.norm2(block.conv1(block.act1(block.norm1(x)))))))))
    assert torch.allclose(y, x + residual)               # x + F(x), no ReLU after the sum
    assert (y < 0).any()
    # The first block of a stage projects the *pre-activated* input (BN-ReLU(x)).
    first = PreActBottleneck(256, 128, stride=2).eval()
    with torch.no_grad():
        pre = torch.relu(first.norm1(x))
        assert torch.allclose(first(x) - first.conv3(first.act3(first.norm3(first.conv2(
            first.act2(first.norm2(first.conv1(pre))))))), first.downsample(pre), atol=1e-6)
    assert first.conv2.stride == (2, 2) and first.downsample.conv.stride == (2, 2)


def test_v2_features_end_with_bn_relu_and_zero_init_gives_identity_blocks():
    model = cnnlab.create_model("resnet50_v2", zero_init_residual=True).eval()
    x = torch.randn(2, 256, 4, 4)
    with torch.no_grad():
        assert torch.equal(model.stages[0].blocks[1](x), x)
        feats = model.forward_features(torch.randn(2, 3, 33, 33))
        assert feats.shape == (2, 2048, 2, 2) and (feats >= 0).all()
        assert model.forward_head(feats, pre_logits=True).shape == (2, 2048)
        assert model.forward_head(feats).shape == (2, 1000)
    assert model.head.fc.weight.std().item() == pytest.approx(0.01, rel=0.02)
