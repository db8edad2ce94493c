"""VGG: Table 1 of the paper as data, counts by arithmetic, shapes on the meta device."""

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.layers import LocalResponseNorm
from cnnlab.models.vgg import VGG_CFGS, Conv1x1
from tests.helpers import reference_record


def meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return cnnlab.create_model(name, **kwargs)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def convs_of(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.features if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("cfg,weight_layers", [("A", 11), ("A-LRN", 11), ("B", 13),
                                               ("C", 16), ("D", 16), ("E", 19)])
def test_table_1_depths(cfg, weight_layers):
    # Table 1's headline: "11 weight layers" ... "19 weight layers" = convs + 3 FC layers.
    convs = [v for v in VGG_CFGS[cfg] if v not in ("M", "LRN")]
    assert len(convs) + 3 == weight_layers
    assert VGG_CFGS[cfg].count("M") == 5


def vgg_params(cfg: str, bn: bool = False, num_classes: int = 1000) -> int:
    """Count a configuration by hand: k*k*c_in*c_out + c_out per conv (+2*c_out for BN)."""
    total, c_in = 0, 3
    for v in VGG_CFGS[cfg]:
        if v in ("M", "LRN"):
            continue
        c_out, k = (v.channels, 1) if isinstance(v, Conv1x1) else (v, 3)
        total += k * k * c_in * c_out + c_out + (2 * c_out if bn else 0)
        c_in = c_out
    fcs = (512 * 7 * 7 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * num_classes + num_classes)
    return total + fcs


@pytest.mark.parametrize("name,cfg,bn", [
    ("vgg11", "A", False), ("vgg13", "B", False), ("vgg16", "D", False), ("vgg19", "E", False),
    ("vgg11_bn", "A", True), ("vgg13_bn", "B", True), ("vgg16_bn", "D", True),
    ("vgg19_bn", "E", True),
])
def test_counts_by_arithmetic_equal_torchvision(name, cfg, bn):
    assert vgg_params(cfg, bn) == reference_record(f"torchvision:{name}")["params"]
    assert n_params(meta(name)) == vgg_params(cfg, bn)


def test_vgg16_is_the_seed_tables_138m():
    # 13 convs: 1,792 + 36,928 | 73,856 + 147,584 | 295,168 + 2 * 590,080 | 1,180,160
    # + 2 * 2,359,808 | 3 * 2,359,808; FC: 102,764,544 + 16,781,312 + 4,097,000.
    convs = 1_792 + 36_928 + 73_856 + 147_584 + 295_168 + 2 * 590_080 + 1_180_160 \
        + 2 * 2_359_808 + 3 * 2_359_808
    fcs = 102_764_544 + 16_781_312 + 4_097_000
    assert convs + fcs == 138_357_544 == n_params(meta("vgg16"))


def test_vgg16_c_count_by_arithmetic():
    # C is D with the third conv of blocks 3, 4, 5 a 1x1: each loses (9 - 1) * C * C weights.
    d = 138_357_544
    lost = 8 * 256 * 256 + 8 * 512 * 512 + 8 * 512 * 512
    assert n_params(meta("vgg16")) - n_params(meta("vgg16_c")) == lost == 4_718_592
    assert d - lost == 133_638_952 == vgg_params("C") == n_params(meta("vgg16_c"))
    # With BN: gamma and beta for 64*2 + 128*2 + 256*3 + 512*3 + 512*3 = 4,224 conv channels.
    bn = 2 * (64 * 2 + 128 * 2 + 256 * 3 + 512 * 3 + 512 * 3)
    assert n_params(meta("vgg16_c_bn")) - n_params(meta("vgg16_c")) == bn == 8_448
    assert n_params(meta("vgg16_c_bn")) == 133_638_952 + 8_448 == 133_647_400


def test_vgg16_c_has_1x1_convs_at_the_end_of_blocks_3_to_5():
    kernels = [c.kernel_size[0] for c in convs_of(meta("vgg16_c"))]
    # blocks: 2 + 2 + 3 + 3 + 3 convs; the last of blocks 3, 4, 5 is 1x1.
    assert kernels == [3, 3, 3, 3, 3, 3, 1, 3, 3, 1, 3, 3, 1]
    assert all(c.padding == (0, 0) for c in convs_of(meta("vgg16_c")) if c.kernel_size == (1, 1))


def test_vgg11_lrn_has_lrn_after_the_first_conv_and_the_same_count():
    model = meta("vgg11_lrn")
    kinds = [type(m) for m in model.features[:4]]
    assert kinds == [nn.Conv2d, nn.ReLU, LocalResponseNorm, nn.MaxPool2d]
    assert sum(isinstance(m, LocalResponseNorm) for m in model.features) == 1
    assert n_params(model) == 132_863_336 == n_params(meta("vgg11"))  # LRN has no parameters


@pytest.mark.parametrize("name", ["vgg11", "vgg11_lrn", "vgg16_c", "vgg19_bn"])
def test_shapes_at_224_and_at_the_32x32_minimum(name):
    model = meta(name, num_classes=10).eval()

    def x(*shape):
        return torch.empty(*shape, device="meta")

    assert model.min_input_size == (32, 32)  # five 2x2/2 pools: 32 -> 16 -> 8 -> 4 -> 2 -> 1
    assert model.forward_features(x(2, 3, 224, 224)).shape == (2, 512, 7, 7)
    assert model.forward_features(x(2, 3, 32, 32)).shape == (2, 512, 1, 1)
    assert model(x(2, 3, 32, 32)).shape == (2, 10)
    assert model.forward_head(x(2, 512, 1, 1), pre_logits=True).shape == (2, 4096)
    with pytest.raises(RuntimeError, match="too small"):  # 31 -> 15 -> 7 -> 3 -> 1 -> 0
        model.forward_features(x(1, 3, 31, 31))
    with pytest.raises(cnnlab.InputShapeError, match=f"{name} needs inputs of at least 32x32"):
        model(x(1, 3, 31, 40))


def test_bn_layout_is_torchvision_conv_bn_relu_with_conv_bias():
    model = meta("vgg11_bn")
    kinds = [type(m) for m in model.features[:4]]
    assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d]
    assert model.features[0].bias is not None


def test_initialisation_is_torchvisions_loop():
    model = cnnlab.create_model("vgg11_bn", num_classes=10)
    first = model.features[0]
    # Kaiming normal, fan_out: std = sqrt(2 / (64 * 3 * 3)) = 0.0589.
    assert abs(first.weight.std().item() - (2 / (64 * 9)) ** 0.5) < 0.006
    assert all(torch.all(c.bias == 0) for c in convs_of(model))
    bns = [m for m in model.features if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.all(b.weight == 1) and torch.all(b.bias == 0) for b in bns)
    fc6 = model.classifier[0]
    assert abs(fc6.weight.std().item() - 0.01) < 1e-4 and torch.all(fc6.bias == 0)


def test_dropout_follows_the_first_two_fc_layers():
    kinds = [type(m) for m in meta("vgg16", dropout=0.3).classifier]
    assert kinds == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert meta("vgg16", dropout=0.3).classifier[2].p == 0.3


def test_unknown_configuration_is_named():
    from cnnlab.models.vgg import VGG

    with pytest.raises(ValueError, match="cfg must be one of"):
        VGG(cfg="F")


def test_cli_lists_every_vgg_with_its_count(cli):
    res = cli("list", "vgg*")
    assert res.returncode == 0, res.stderr
    header, *rows = res.stdout.splitlines()
    assert header.split()[:2] == ["model", "parameters"]
    lines = {line.split()[0]: line for line in rows}
    assert "133,638,952" in lines["vgg16_c"] and "138,357,544" in lines["vgg16"]
    assert "133,647,400" in lines["vgg16_c_bn"] and "132,863,336" in lines["vgg11_lrn"]
    assert len(lines) == 11
