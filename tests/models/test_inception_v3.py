"""Inception v3: the 299x299 grid sizes, module widths, the auxiliary head and its weight."""

import pytest
import torch
import torch.nn.functional as F

import cnnlab
from cnnlab.models.inception_v3 import InceptionA, InceptionAux, InceptionB, InceptionD, InceptionE


def test_grid_sizes_at_299():
    with torch.device("meta"):
        model = cnnlab.create_model("inception_v3").eval()
    shapes = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape[1:])))
             for n, m in model.named_children()]
    out = model(torch.empty(1, 3, 299, 299, device="meta"))
    for h in hooks:
        h.remove()
    # 299 -> (299 - 3) // 2 + 1 = 149 -> 147 -> 147 (padded) -> pool 73 -> 73 -> 71 -> pool 35
    # -> 35 -> Mixed_6a (35 - 3) // 2 + 1 = 17 -> Mixed_7a (17 - 3) // 2 + 1 = 8
    expected = {
        "Conv2d_1a_3x3": (32, 149, 149), "Conv2d_2a_3x3": (32, 147, 147),
        "Conv2d_2b_3x3": (64, 147, 147), "maxpool1": (64, 73, 73),
        "Conv2d_3b_1x1": (80, 73, 73), "Conv2d_4a_3x3": (192, 71, 71), "maxpool2": (192, 35, 35),
        "Mixed_5b": (256, 35, 35), "Mixed_5c": (288, 35, 35), "Mixed_5d": (288, 35, 35),
        "Mixed_6a": (768, 17, 17), "Mixed_6b": (768, 17, 17), "Mixed_6e": (768, 17, 17),
        "Mixed_7a": (1280, 8, 8), "Mixed_7b": (2048, 8, 8), "Mixed_7c": (2048, 8, 8),
    }
    assert {k: shapes[k] for k in expected} == expected
    assert out.shape == (1, 1000) and model.num_features == 2048


def test_module_widths_by_arithmetic():
    assert InceptionA(192, 32).out_channels == 64 + 64 + 96 + 32 == 256
    assert InceptionA(256, 64).out_channels == 64 + 64 + 96 + 64 == 288
    assert InceptionB(288).out_channels == 384 + 96 + 288 == 768        # max pool keeps 288
    assert InceptionD(768).out_channels == 320 + 192 + 768 == 1280
    assert InceptionE(1280).out_channels == 320 + 2 * 384 + 2 * 384 + 192 == 2048


def test_aux_head_parameters_by_arithmetic():
    # conv0 1x1 768->128 + BN; conv1 5x5 128->768 + BN; linear 768->1000.
    conv0 = 768 * 128 + 2 * 128
    conv1 = 128 * 768 * 5 * 5 + 2 * 768
    fc = 768 * 1000 + 1000
    assert conv0 + conv1 + fc == 27_161_264 - 23_834_568 == 3_326_696
    with torch.device("meta"):
        head = InceptionAux(768, 1000)
    assert sum(p.numel() for p in head.parameters()) == conv0 + conv1 + fc


def test_aux_head_pools_5x5_stride_3_at_17x17_and_adapts_below():
    head = InceptionAux(768, 10).eval()
    seen = []
    head.conv0.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    x = torch.randn(1, 768, 17, 17)
    with torch.no_grad():
        assert head(x).shape == (1, 10)
        assert torch.equal(seen[-1], F.avg_pool2d(x, 5, 3))  # torchvision's head: 17 -> 5
        small = torch.randn(1, 768, 3, 3)
        assert head(small).shape == (1, 10)
        assert torch.equal(seen[-1], F.adaptive_avg_pool2d(small, 5))


def test_aux_output_in_training_only_with_weight_0_4():
    model = cnnlab.create_model("inception_v3", num_classes=6)
    assert model.min_input_size == (75, 75)
    x = torch.randn(2, 3, 75, 75)
    out = model.train()(x)
    assert isinstance(out, cnnlab.AuxOutput)
    assert out.logits.shape == (2, 6) and [a.shape for a in out.aux_logits] == [(2, 6)]
    assert out.aux_weights == [0.4]
    with torch.no_grad():
        assert isinstance(model.eval()(x), torch.Tensor)
    with pytest.raises(cnnlab.InputShapeError, match="at least 75x75, got 74x75"):
        model(torch.randn(1, 3, 74, 75))


def test_without_aux_head():
    model = cnnlab.create_model("inception_v3", num_classes=4, aux_logits=False).train()
    assert model.AuxLogits is None
    assert isinstance(model(torch.randn(2, 3, 75, 75)), torch.Tensor)


def test_transform_input_needs_three_channels():
    with pytest.raises(ValueError, match="needs in_chans=3"):
        cnnlab.create_model("inception_v3", transform_input=True, in_chans=1)
