"""AlexNet: torchvision compatibility, the slide's stage shapes and the paper's arithmetic."""

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.layers import LocalResponseNorm
from tests.helpers import reference_record


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return cnnlab.create_model(name, **kwargs)


def conv(c_in: int, c_out: int, k: int, groups: int = 1) -> int:
    """Weights of a k x k convolution (each group sees c_in / groups maps) plus biases."""
    return c_out * (c_in // groups) * k * k + c_out


def fc(n_in: int, n_out: int) -> int:
    return n_out * n_in + n_out


def test_torchvision_alexnet_count_by_arithmetic():
    # 64-192-384-256-256 convs (11x11, 5x5, 3x3, 3x3, 3x3), then 256*6*6 -> 4096 -> 4096 -> 1000.
    convs = conv(3, 64, 11) + conv(64, 192, 5) + conv(192, 384, 3) + conv(384, 256, 3) \
        + conv(256, 256, 3)
    fcs = fc(256 * 6 * 6, 4096) + fc(4096, 4096) + fc(4096, 1000)
    assert convs + fcs == 61_100_840 == reference_record("torchvision:alexnet")["params"]
    assert n_params(meta("alexnet")) == convs + fcs


def test_torchvision_checkpoint_loads_strictly():
    # A state_dict with torchvision's keys and shapes (zeros here) loads with strict=True.
    state = {k: torch.zeros(s) for k, s in reference_record("torchvision:alexnet")["state_dict"]}
    model = cnnlab.create_model("alexnet")
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert model.features[0].weight.abs().sum() == 0


@pytest.mark.parametrize("groups,expected", [(1, 62_378_344), (2, 60_965_224)])
def test_original_count_by_arithmetic(groups, expected):
    # REFERENCE_NUMBERS.md 2.2: conv2, conv4, conv5 are split over the two GPUs when groups=2.
    per_layer = [
        conv(3, 96, 11),                 # conv1  34,944
        conv(96, 256, 5, groups),        # conv2  614,656 / 307,456
        conv(256, 384, 3),               # conv3  885,120 (sees both GPUs)
        conv(384, 384, 3, groups),       # conv4  1,327,488 / 663,936
        conv(384, 256, 3, groups),       # conv5  884,992 / 442,624
        fc(6 * 6 * 256, 4096),           # fc6    37,752,832
        fc(4096, 4096),                  # fc7    16,781,312
        fc(4096, 1000),                  # fc8    4,097,000
    ]
    if groups == 1:
        assert per_layer[1:5] == [614_656, 885_120, 1_327_488, 884_992]
    else:
        assert per_layer[1:5] == [307_456, 885_120, 663_936, 442_624]
    assert per_layer[0] == 34_944 and per_layer[5:] == [37_752_832, 16_781_312, 4_097_000]
    assert sum(per_layer) == expected
    model = meta("alexnet_original", groups=groups)
    assert n_params(model) == expected
    assert model.features.conv2.weight.shape == (256, 96 // groups, 5, 5)


def stage_shapes(model: nn.Module, size: int) -> dict[str, tuple]:
    shapes = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape[1:])))
             for n, m in model.features.named_children()]
    with torch.no_grad():
        out = model(torch.randn(1, 3, size, size))
    for h in hooks:
        h.remove()
    shapes["output"] = tuple(out.shape[1:])
    return shapes


@pytest.mark.parametrize("groups", [1, 2])
def test_original_stage_shapes_are_the_slides(groups):
    # The slide's table, as (channels, height, width): 55x55x96, 27x27x96, 27x27x256, ...
    model = cnnlab.create_model("alexnet_original", groups=groups).eval()
    shapes = stage_shapes(model, 227)
    expected = {
        "conv1": (96, 55, 55),    # (227 - 11) / 4 + 1 = 55
        "pool1": (96, 27, 27),    # (55 - 3) / 2 + 1 = 27
        "norm1": (96, 27, 27),
        "conv2": (256, 27, 27),   # 5x5 pad 2 keeps 27
        "pool2": (256, 13, 13),   # (27 - 3) / 2 + 1 = 13
        "norm2": (256, 13, 13),
        "conv3": (384, 13, 13),
        "conv4": (384, 13, 13),
        "conv5": (256, 13, 13),
        "pool5": (256, 6, 6),     # (13 - 3) / 2 + 1 = 6; 6 * 6 * 256 = 9216 into fc6
        "output": (1000,),
    }
    assert {k: shapes[k] for k in expected} == expected
    names = list(model.features._modules)
    assert names.index("norm1") == names.index("pool1") + 1  # slide order: pool, then norm


def test_paper_order_puts_the_norm_before_the_pool():
    model = cnnlab.create_model("alexnet_original", lrn_position="before_pool").eval()
    names = list(model.features._modules)
    assert names[:4] == ["conv1", "relu1", "norm1", "pool1"]
    shapes = stage_shapes(model, 227)
    assert shapes["norm1"] == (96, 55, 55) and shapes["pool5"] == (256, 6, 6)


def test_lrn_has_the_paper_constants_and_formula():
    model = meta("alexnet_original")
    norm = model.features.norm1
    assert isinstance(norm, LocalResponseNorm)
    assert (norm.size, norm.paper_alpha, norm.beta, norm.k) == (5, 1e-4, 0.75, 2.0)
    # b_i = a_i / (k + alpha * sum_{j=i-2..i+2} a_j^2)^beta on a 6-channel column.
    a = torch.tensor([1.0, -2.0, 3.0, 40.0, 5.0, -60.0]).view(1, 6, 1, 1)
    lrn = LocalResponseNorm(n=5, alpha=1e-4, beta=0.75, k=2.0)
    sq = a.flatten() ** 2
    want = [a.flatten()[i] / (2.0 + 1e-4 * sq[max(0, i - 2):i + 3].sum()) ** 0.75 for i in range(6)]
    torch.testing.assert_close(lrn(a).flatten(), torch.stack(want))


def test_groups_split_conv2_into_two_towers():
    model = cnnlab.create_model("alexnet_original", groups=2)
    conv2 = model.features.conv2
    x = torch.randn(1, 96, 27, 27, requires_grad=True)
    conv2(x)[0, :128].sum().backward()  # the first GPU's 128 maps read its own 48 input maps
    touched = x.grad[0].abs().flatten(1).sum(1) > 0
    assert touched[:48].all() and not touched[48:].any()


def test_original_initialisation_is_the_papers():
    model = cnnlab.create_model("alexnet_original")
    f, c = model.features, model.classifier
    for layer in (f.conv2, f.conv4, f.conv5, c.fc6, c.fc7):
        assert torch.all(layer.bias == 1)
    for layer in (f.conv1, f.conv3, model.fc8):
        assert torch.all(layer.bias == 0)
    assert abs(c.fc6.weight.std().item() - 0.01) < 1e-3
    assert abs(c.fc6.weight.mean().item()) < 1e-3


@pytest.mark.parametrize("name,minimum", [("alexnet", 63), ("alexnet_original", 67)])
def test_smallest_input_is_exact(name, minimum):
    # torchvision: conv1 (n + 2*2 - 11) // 4 + 1, pools (n - 3) // 2 + 1: 63 -> 15 -> 7 -> 3 -> 1.
    # original: no padding on conv1: (67 - 11) // 4 + 1 = 15 -> 7 -> 3 -> 1.
    model = cnnlab.create_model(name, num_classes=5).eval()
    assert model.min_input_size == (minimum, minimum)
    with torch.no_grad():
        assert model(torch.randn(1, 3, minimum, minimum)).shape == (1, 5)
        with pytest.raises(RuntimeError, match="too small"):
            model.forward_features(torch.randn(1, 3, minimum - 1, minimum - 1))


def test_too_small_input_message():
    model = cnnlab.create_model("alexnet")
    with pytest.raises(cnnlab.InputShapeError,
                       match="alexnet needs inputs of at least 63x63, got 28x28"):
        model(torch.randn(1, 3, 28, 28))


def test_head_split_and_headless_model():
    model = cnnlab.create_model("alexnet", num_classes=0).eval()
    with torch.no_grad():
        feats = model.forward_features(torch.randn(2, 3, 224, 224))
        assert feats.shape == (2, 256, 6, 6)
        assert model.forward_head(feats).shape == (2, 4096)
        assert model.forward_head(feats, pre_logits=True).shape == (2, 4096)


@pytest.mark.parametrize("kwargs,message", [
    ({"groups": 3}, "groups must divide 96, 256 and 384"),
    ({"lrn_position": "middle"}, "lrn_position must be"),
])
def test_bad_options_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cnnlab.create_model("alexnet_original", **kwargs)
