"""cnnlab.fuse: batch norm folded into the convolution before it, over the whole registry.

Each model (the whole registry with ``-m slow``; one or two per family by default) is built
seeded with 7 classes at its smallest input (at least 32 x 32); every batch
norm gets seeded running statistics and affine parameters far from the identity (a freshly
built batch norm is mean 0, variance 1, gamma 1, beta 0, which folding leaves almost as it
was), then the fused copy must give the unfused model's outputs within 1e-5 relative.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.fuse import FuseError, fuse_with_report
from tests.helpers.seeded_fill import relative_error

# one or two of each family in the default run (seconds); the whole registry under -m slow
QUICK = ("lenet5", "resnet20", "resnet18", "resnet50_v2", "densenet121", "mobilenet_v1",
         "mobilenet_v2", "mobilenet_v3_small", "shufflenet_v1_g3", "shufflenet_v2_x0_5",
         "efficientnet_b0", "googlenet", "vgg11_bn", "allconv_c")
MODELS = [pytest.param(n, marks=() if n in QUICK else pytest.mark.slow)
          for n in cnnlab.list_models()]
# batch norms that do not directly follow a convolution, by design of the architecture:
# pre-activation ResNet v2 (BN-ReLU-conv) and DenseNet (BN-ReLU-conv on a concatenation)
KEEPS_SOME = ("resnet50_v2", "resnet101_v2", "resnet152_v2", "densenet121", "densenet161",
              "densenet169", "densenet201")


def seed_batch_norms(model: nn.Module, seed: int = 0) -> int:
    gen = torch.Generator().manual_seed(seed)
    n = 0
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.5)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.25)
                if m.affine:
                    m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                    m.bias.copy_(torch.randn(c, generator=gen) * 0.2)
                n += 1
    return n


def small_input(model) -> torch.Tensor:
    h, w = (max(s, 32) for s in model.min_input_size)
    return torch.randn(2, model.in_chans, h, w, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", MODELS)
def test_fused_model_gives_the_same_outputs(name):
    torch.manual_seed(0)
    model = cnnlab.create_model(name, num_classes=7).eval()
    n_bn = seed_batch_norms(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused, report = fuse_with_report(model)
    x = small_input(model)
    with torch.inference_mode():
        ref, out = model(x), fused(x)
    assert relative_error(out, ref) < 1e-5
    # the original is untouched: same modules, same values
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert type(fused) is type(model) and fused is not model
    left = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in fused.modules())
    assert len(report.folded) + left == n_bn
    assert sorted(report.kept + report.not_run) == sorted(
        n for n, m in fused.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    if n_bn and name not in KEEPS_SOME:
        assert not report.kept, f"{name}: BN kept although it follows a convolution"
    if name in KEEPS_SOME:
        assert report.folded and report.kept
    # every model here has 2-D convolutions: their weights are stored channels-last
    convs = [m for m in fused.modules() if isinstance(m, nn.Conv2d)]
    assert report.channels_last and convs
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)


def test_fuse_refuses_training_mode_and_keeps_methods():
    model = cnnlab.create_model("resnet20", num_classes=5)
    with pytest.raises(FuseError, match="eval"):
        cnnlab.fuse(model)
    model.eval()
    seed_batch_norms(model)
    fused = cnnlab.fuse(model)
    x = torch.randn(3, 3, 32, 32)
    with torch.inference_mode():
        feats, ref = fused.forward_features(x), model.forward_features(x)
    assert relative_error(feats, ref) < 1e-5
    assert fused.fuse_report.line().startswith("fused 19 batch norm")
    # a conv without bias gains one; the folded BN is an Identity
    assert model.conv1.bias is None and fused.conv1.bias is not None
    assert isinstance(fused.bn1, nn.Identity)


def test_linear_followed_by_batchnorm1d_is_folded_and_shared_output_is_not():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 4)
            self.bn = nn.BatchNorm1d(4)
            self.conv = nn.Conv2d(3, 4, 3)
            self.bn2 = nn.BatchNorm2d(4)

        def forward(self, x, v):
            y = self.conv(x)
            z = self.bn2(y) + y  # the conv's output is read twice: no folding
            return self.bn(self.fc(v)), z

    net = Net().eval()
    seed_batch_norms(net)
    fused, report = fuse_with_report(net)
    assert report.folded == [("fc", "bn")] and report.kept == ["bn2"]
    x, v = torch.randn(2, 3, 8, 8), torch.randn(5, 6)
    for a, b in zip(fused(x, v), net(x, v), strict=True):
        assert relative_error(a, b) < 1e-5


def test_untraceable_model_is_one_line():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 1)

        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
                return self.conv(x)
            return x

    with pytest.raises(FuseError, match="torch.fx"):
        cnnlab.fuse(Branchy().eval())


def test_export_fuse_writes_a_model_without_batch_norm(capsys, tmp_path):
    from cnnlab.cli import main

    out = tmp_path / "r20.pt"
    code = main(["export", "resnet20", "--format", "torchscript", "-o", str(out), "--input-size",
                 "3x32x32", "--fuse"])
    assert code == 0, capsys.readouterr().err
    keys = torch.jit.load(str(out)).state_dict().keys()
    assert not any("running_mean" in k for k in keys) and "conv1.bias" in keys
    plain = tmp_path / "plain.pt"
    assert main(["export", "resnet20", "--format", "torchscript", "-o", str(plain), "--input-size",
                 "3x32x32"]) == 0
    assert any("running_mean" in k for k in torch.jit.load(str(plain)).state_dict())


def test_compare_fuse_times_the_fused_model(capsys):
    from cnnlab.cli import main

    code = main(["compare", "resnet20", "--fuse", "--batch", "1", "--repeats", "1", "--json"])
    assert code == 0
    assert '"ms_per_step"' in capsys.readouterr().out


def test_channels_last_false_folds_only_and_keeps_the_layout():
    model = cnnlab.create_model("resnet20", num_classes=5).eval()
    seed_batch_norms(model)
    folded, report = fuse_with_report(model, channels_last=False)
    assert not report.channels_last and "channels-last" not in report.line()
    assert all(m.weight.is_contiguous() for m in folded.modules() if isinstance(m, nn.Conv2d))
    fused = cnnlab.fuse(model)
    assert fused.fuse_report.line().endswith("weights stored channels-last")
    x = torch.randn(3, 3, 32, 32)  # an ordinary NCHW input
    with torch.inference_mode():
        ref, a, b = model(x), folded(x), fused(x)
        feats = fused.forward_features(x)
    assert relative_error(a, ref) < 1e-5 and relative_error(b, ref) < 1e-5
    # the layout carries through the network: the feature maps come out channels-last
    assert feats.is_contiguous(memory_format=torch.channels_last) and not feats.is_contiguous()
    # a model without 2-D convolutions is left in its layout, the report says nothing of it
    mlp = nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4)).eval()
    assert not fuse_with_report(mlp)[1].channels_last


def test_evaluate_and_predict_fuse_agree_with_unfused(trained_runs, cli, tmp_path):
    from PIL import Image

    run = trained_runs.lenet5_synthetic
    plain = json.loads(cli("evaluate", str(run), "--json").stdout)
    res = cli("evaluate", str(run), "--json", "--fuse")
    assert res.returncode == 0, res.stderr
    # what was done is said on stderr (LeNet-5 has no batch norm; its weights go channels-last)
    assert "--fuse: fused 0 batch norm(s)" in res.stderr and "channels-last" in res.stderr
    fused = json.loads(res.stdout)
    assert fused["top1"] == plain["top1"] and fused["confusion"] == plain["confusion"]
    images = []
    for i, shade in enumerate((40, 128, 220)):
        images.append(tmp_path / f"{i}.png")
        Image.new("L", (20, 20), shade).save(images[-1])
    a = json.loads(cli("predict", str(run), *map(str, images), "--json").stdout)
    res = cli("predict", str(run), *map(str, images), "--json", "--fuse")
    assert res.returncode == 0 and "--fuse: fused" in res.stderr, res.stderr
    b = json.loads(res.stdout)
    assert [p["top"][0]["class"] for p in a] == [p["top"][0]["class"] for p in b]
    for p, q in zip(a, b, strict=True):
        assert q["top"][0]["probability"] == pytest.approx(p["top"][0]["probability"], rel=1e-5)
