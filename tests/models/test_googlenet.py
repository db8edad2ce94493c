"""GoogLeNet: Table 1 of the paper, the paper form's 5x5 branches, the auxiliary outputs."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnlab
from cnnlab.layers import LocalResponseNorm
from cnnlab.models.googlenet import Inception, InceptionAux, to_google_range

# Table 1 (Szegedy et al. 2014): #1x1 + #3x3 + #5x5 + pool proj = output channels per module.
TABLE1_OUTPUTS = {
    "inception3a": 64 + 128 + 32 + 32,      # 256
    "inception3b": 128 + 192 + 96 + 64,     # 480
    "inception4a": 192 + 208 + 48 + 64,     # 512
    "inception4b": 160 + 224 + 64 + 64,     # 512
    "inception4c": 128 + 256 + 64 + 64,     # 512
    "inception4d": 112 + 288 + 64 + 64,     # 528
    "inception4e": 256 + 320 + 128 + 128,   # 832
    "inception5a": 256 + 320 + 128 + 128,   # 832
    "inception5b": 384 + 384 + 128 + 128,   # 1024
}
TABLE1_SIZES = {"inception3a": 28, "inception3b": 28, "inception4a": 14, "inception4b": 14,
                "inception4c": 14, "inception4d": 14, "inception4e": 14,
                "inception5a": 7, "inception5b": 7}


def output_shapes(model, x):
    shapes = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape[1:])))
             for n, m in model.named_children()]
    with torch.no_grad():
        out = model(x)
    for h in hooks:
        h.remove()
    return shapes, out


@pytest.mark.parametrize("name", ["googlenet", "googlenet_paper"])
def test_inception_outputs_follow_table1(name):
    assert list(TABLE1_OUTPUTS.values()) == [256, 480, 512, 512, 512, 528, 832, 832, 1024]
    with torch.device("meta"):
        model = cnnlab.create_model(name).eval()
    shapes, out = output_shapes(model, torch.empty(1, 3, 224, 224, device="meta"))
    for module, channels in TABLE1_OUTPUTS.items():
        size = TABLE1_SIZES[module]
        assert shapes[module] == (channels, size, size), module
        assert getattr(model, module).out_channels == channels
    # Stem: 224 -> conv 7x7/2 -> 112 -> pool -> 56 -> conv 3x3 (192) -> pool -> 28.
    assert shapes["conv1"] == (64, 112, 112) and shapes["maxpool1"] == (64, 56, 56)
    assert shapes["conv3"] == (192, 56, 56) and shapes["maxpool2"] == (192, 28, 28)
    assert out.shape == (1, 1000) and model.num_features == 1024


def test_paper_form_has_5x5_branches_lrn_and_no_batch_norm():
    paper = cnnlab.create_model("googlenet_paper")
    tv = cnnlab.create_model("googlenet")
    modules = [m for m in paper.modules() if isinstance(m, Inception)]
    assert len(modules) == 9
    for m in modules:
        conv5 = m.branch3[1].conv
        assert conv5.kernel_size == (5, 5) and conv5.padding == (2, 2)
        assert conv5.bias is not None  # no batch norm, so the convolution has its bias
        assert m.branch2[1].conv.kernel_size == (3, 3)
    for m in (m for m in tv.modules() if isinstance(m, Inception)):
        assert m.branch3[1].conv.kernel_size == (3, 3)  # torchvision's "known bug"
    assert not any(isinstance(m, nn.BatchNorm2d) for m in paper.modules())
    assert sum(isinstance(m, LocalResponseNorm) for m in paper.modules()) == 2
    assert not any(isinstance(m, LocalResponseNorm) for m in tv.modules())
    # bvlc_googlenet's LRN: size 5, alpha 1e-4 as Caffe/PyTorch take it (divided by the size).
    assert paper.lrn1.size == 5 and paper.lrn1.alpha == pytest.approx(1e-4)
    assert paper.lrn1.beta == 0.75 and paper.lrn1.k == 1.0
    assert paper.dropout.p == 0.4 and tv.dropout.p == 0.2
    assert paper.aux1.dropout.p == 0.7


def test_paper_form_parameter_count_by_arithmetic():
    # From torchvision's 6,624,904: every conv trades its BN (2 per channel) for a bias (1 per
    # channel), and each "5x5" kernel grows from 3x3 to 5x5 (16 more weights per
    # reduce-channel x output-channel pair).
    stem = 64 + 64 + 192
    # per module: #1x1 + #3x3red + #3x3 + #5x5red + #5x5 + pool proj (Table 1)
    modules = [64 + 96 + 128 + 16 + 32 + 32, 128 + 128 + 192 + 32 + 96 + 64,
               192 + 96 + 208 + 16 + 48 + 64, 160 + 112 + 224 + 24 + 64 + 64,
               128 + 128 + 256 + 24 + 64 + 64, 112 + 144 + 288 + 32 + 64 + 64,
               256 + 160 + 320 + 32 + 128 + 128, 256 + 160 + 320 + 32 + 128 + 128,
               384 + 192 + 384 + 48 + 128 + 128]
    conv_channels = stem + sum(modules)
    assert conv_channels == 7280
    pairs_5x5 = (16 * 32 + 32 * 96 + 16 * 48 + 24 * 64 + 24 * 64 + 32 * 64 + 32 * 128
                 + 32 * 128 + 48 * 128)
    assert pairs_5x5 == 23808
    no_aux = 6_624_904 - conv_channels + 16 * pairs_5x5
    assert no_aux == 6_998_552
    # Auxiliary heads (torchvision: 6,379,984 for both): 1x1 conv 128 with BN, FC 2048->1024,
    # FC 1024->1000. The paper's 1x1 conv has a bias instead of BN: 128 fewer per head.
    aux1 = 512 * 128 + 2 * 128 + (2048 * 1024 + 1024) + (1024 * 1000 + 1000)
    aux2 = 528 * 128 + 2 * 128 + (2048 * 1024 + 1024) + (1024 * 1000 + 1000)
    assert aux1 + aux2 == 13_004_888 - 6_624_904 == 6_379_984
    with torch.device("meta"):
        without = cnnlab.create_model("googlenet_paper", aux_logits=False)
        with_aux = cnnlab.create_model("googlenet_paper")
    assert sum(p.numel() for p in without.parameters()) == no_aux
    assert sum(p.numel() for p in with_aux.parameters()) == no_aux + aux1 + aux2 - 2 * 128


@pytest.mark.parametrize("name,size", [("googlenet", 64), ("googlenet_paper", 96)])
def test_aux_outputs_only_in_training_with_weight_0_3(name, size):
    model = cnnlab.create_model(name, num_classes=5)
    x = torch.randn(2, 3, size, size)
    out = model.train()(x)
    assert isinstance(out, cnnlab.AuxOutput)
    assert out.logits.shape == (2, 5)
    assert [a.shape for a in out.aux_logits] == [(2, 5), (2, 5)]
    assert out.aux_weights == [0.3, 0.3]
    with torch.no_grad():
        assert isinstance(model.eval()(x), torch.Tensor)
    plain = cnnlab.create_model(name, num_classes=5, aux_logits=False).train()
    assert isinstance(plain(x), torch.Tensor) and plain.aux1 is None and plain.aux2 is None


def test_aux_head_reads_4a_and_4d_and_pools_to_4x4():
    for name in ("googlenet", "googlenet_paper"):
        with torch.device("meta"):
            model = cnnlab.create_model(name).train()
        seen = {}
        for head in ("aux1", "aux2"):
            getattr(model, head).conv.register_forward_hook(
                lambda m, i, o, head=head, seen=seen: seen.__setitem__(
                    head, (tuple(i[0].shape[1:]), tuple(o.shape[1:]))))
        model(torch.empty(2, 3, 224, 224, device="meta"))
        # 14x14 maps of 4a (512) and 4d (528); the paper's 5x5/3 pool: (14 - 5) // 3 + 1 = 4.
        assert seen == {"aux1": ((512, 4, 4), (128, 4, 4)), "aux2": ((528, 4, 4), (128, 4, 4))}


def test_paper_aux_pooling_is_5x5_stride_3():
    head = InceptionAux(512, 10, conv_block=nn.Identity, paper_pool=True).eval()
    head.fc1 = nn.Linear(4 * 4 * 512, 1024)
    x = torch.randn(1, 512, 14, 14)
    pooled = []
    head.conv.register_forward_hook(lambda m, i, o: pooled.append(i[0]))
    head(x)
    assert torch.allclose(pooled[0], F.avg_pool2d(x, 5, 3))


def test_transform_input_maps_imagenet_normalisation_to_google_range():
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    pixels = torch.tensor([0.0, 0.25, 0.75, 1.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    # (p - mean) / std in, (p - 0.5) / 0.5 out: 0 -> -1, 0.25 -> -0.5, 0.75 -> 0.5, 1 -> 1.
    out = to_google_range((pixels - mean) / std)
    assert torch.allclose(out, torch.tensor([-1.0, -0.5, 0.5, 1.0]).expand(1, 3, 1, 4), atol=1e-6)
    plain = cnnlab.create_model("googlenet", aux_logits=False).eval()
    shifted = cnnlab.create_model("googlenet", aux_logits=False, transform_input=True).eval()
    shifted.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(shifted(x), plain(to_google_range(x)))
    assert plain.transform_input is False


def test_smallest_inputs():
    tv = cnnlab.create_model("googlenet", num_classes=3).train()
    assert tv.min_input_size == (15, 15)
    assert isinstance(tv(torch.randn(2, 3, 15, 15)), cnnlab.AuxOutput)
    paper = cnnlab.create_model("googlenet_paper", num_classes=3).train()
    assert paper.min_input_size == (79, 79)  # 79 -> 40 -> 20 -> 10 -> 5: 4a maps of 5x5
    assert isinstance(paper(torch.randn(2, 3, 79, 79)), cnnlab.AuxOutput)
    assert cnnlab.create_model("googlenet_paper", aux_logits=False).min_input_size == (15, 15)
    with pytest.raises(cnnlab.InputShapeError, match="at least 79x79, got 78x79"):
        paper(torch.randn(2, 3, 78, 79))


def test_paper_init_biases():
    model = cnnlab.create_model("googlenet_paper")
    assert torch.all(model.conv1.conv.bias == 0.2)
    assert torch.all(model.inception5b.branch3[1].conv.bias == 0.2)
    assert torch.all(model.fc.bias == 0) and torch.all(model.aux1.fc2.bias == 0)


@pytest.mark.parametrize("kwargs,message", [
    ({"form": "caffe"}, "form must be one of"),
    ({"transform_input": True, "in_chans": 1}, "needs in_chans=3"),
])
def test_bad_options_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cnnlab.create_model("googlenet", **kwargs)
