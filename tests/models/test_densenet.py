"""DenseNet: the paper's channel and depth arithmetic, the smallest input, and memory-efficient
mode giving the same outputs, gradients and BN statistics as the normal mode.

torchvision key-for-key checks and the registry-wide forward/backward checks are in
tests/models/test_every_model.py.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.models.densenet import DenseNet
from tests.helpers import reference_record

CONFIGS = {  # name: (growth rate k, layers per block, stem maps), Table 1 + torchvision
    "densenet121": (32, (6, 12, 24, 16), 64),
    "densenet169": (32, (6, 12, 32, 32), 64),
    "densenet201": (32, (6, 12, 48, 32), 64),
    "densenet161": (48, (6, 12, 36, 24), 96),
}


def meta_model(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return cnnlab.create_model(name, **kwargs)


def densenet_params(k: int, blocks: tuple[int, ...], c0: int, classes: int = 1000) -> int:
    """Parameters written out: convolutions without bias, 2 per BN channel."""
    total, c = 3 * c0 * 49 + 2 * c0, c0                  # conv0 7x7, norm0
    for b, layers in enumerate(blocks):
        for _ in range(layers):
            total += 2 * c + c * 4 * k                   # norm1, conv1 1x1 -> 4k (bn_size 4)
            total += 2 * 4 * k + 9 * 4 * k * k           # norm2, conv2 3x3 -> k
            c += k
        if b < len(blocks) - 1:
            total += 2 * c + c * (c // 2)                # transition: BN, conv1x1 to c/2
            c //= 2
    return total + 2 * c + c * classes + classes         # norm5, classifier


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_depth_and_parameters_are_the_papers_arithmetic(name):
    k, blocks, c0 = CONFIGS[name]
    model = meta_model(name)
    layers = sum(1 for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    # conv0 + 2 per dense layer + one conv per transition + the classifier = the name
    assert layers == 1 + 2 * sum(blocks) + (len(blocks) - 1) + 1 == int(name[8:])
    params = sum(p.numel() for p in model.parameters())
    reference = reference_record(f"torchvision:{name}")["params"]
    assert params == densenet_params(k, blocks, c0) == reference


def test_densenet121_channels_grow_by_k_and_transitions_halve_them():
    model = meta_model("densenet121")
    f = model.features
    # 64 + 6 x 32 = 256 -> 128; 128 + 12 x 32 = 512 -> 256; 256 + 24 x 32 = 1024 -> 512;
    # 512 + 16 x 32 = 1024 features.
    assert [f.denseblock1.out_channels, f.transition1.conv.out_channels,
            f.denseblock2.out_channels, f.transition2.conv.out_channels,
            f.denseblock3.out_channels, f.transition3.conv.out_channels,
            f.denseblock4.out_channels] == [256, 128, 512, 256, 1024, 512, 1024]
    assert model.num_features == 1024
    layer = f.denseblock3.denselayer5                    # reads 256 + 4 x 32 maps
    assert (layer.conv1.in_channels, layer.conv1.out_channels, layer.conv2.out_channels) == (
        384, 128, 32)


def test_smallest_input_is_29_pixels():
    # The stem gives ceil(h / 4) (7x7/2 conv, 3x3/2 max-pool, both padded); the three 2x2
    # average pools need 8 pixels there: ceil(h / 4) >= 8, so h >= 29.
    model = cnnlab.create_model("densenet121").eval()
    assert model.min_input_size == (29, 29)
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 3, 29, 29)).shape == (1, 1024, 1, 1)
        with pytest.raises(RuntimeError, match="too small"):
            model.forward_features(torch.randn(1, 3, 28, 28))
    two_blocks = DenseNet(growth_rate=4, block_config=(1, 1), num_init_features=8)
    assert two_blocks.min_input_size == (5, 5)           # ceil(5 / 4) = 2 >= 2; ceil(4 / 4) = 1


def _train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    out = model(x)
    nn.functional.cross_entropy(out, y).backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    return out.detach(), grads


def small_densenet(**kwargs) -> DenseNet:
    """Three dense blocks (k = 8) and two transitions: the same code paths, in milliseconds."""
    return DenseNet(growth_rate=8, block_config=(3, 4, 2), num_init_features=16, num_classes=5,
                    **kwargs)


@pytest.mark.parametrize("build", [
    small_densenet,
    pytest.param(lambda **kw: cnnlab.create_model("densenet121", num_classes=5, **kw),
                 id="densenet121", marks=pytest.mark.slow),
])
def test_memory_efficient_mode_gives_the_same_outputs_gradients_and_statistics(build):
    torch.manual_seed(0)
    normal = build().train()
    efficient = build(memory_efficient=True).train()
    efficient.load_state_dict(normal.state_dict())
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    y = torch.tensor([1, 4])
    out_n, grads_n = _train_step(normal, x, y)
    out_e, grads_e = _train_step(efficient, x, y)
    assert torch.equal(out_n, out_e)
    assert grads_n.keys() == grads_e.keys()
    for key in grads_n:
        assert torch.allclose(grads_n[key], grads_e[key], rtol=1e-5, atol=1e-7), key
    # The recomputation during backward must not move the BN running averages a second time.
    state_n, state_e = normal.state_dict(), efficient.state_dict()
    assert all(torch.equal(state_n[k], state_e[k]) for k in state_n)
    assert state_e["features.denseblock1.denselayer1.norm1.num_batches_tracked"] == 1


def test_memory_efficient_mode_recomputes_the_bottleneck_during_backward():
    calls = {"normal": 0, "efficient": 0}
    x = torch.randn(2, 3, 32, 32)
    for mode in calls:
        torch.manual_seed(0)
        model = small_densenet(memory_efficient=(mode == "efficient"))
        conv = model.features.denseblock2.denselayer3.conv1
        # A pre-hook: the recomputation stops as soon as the tensors backward needs exist,
        # which is inside conv1, before a forward (post-)hook would run.
        conv.register_forward_pre_hook(
            lambda *a, mode=mode: calls.__setitem__(mode, calls[mode] + 1))
        model(x).sum().backward()
        with torch.no_grad():                            # nothing to recompute without grads
            model(x)
    assert calls == {"normal": 2, "efficient": 3}


def test_dropout_applies_to_new_maps_in_training_only():
    model = DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=16, dropout=0.5,
                     num_classes=3)
    x = torch.randn(2, 3, 16, 16)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("kwargs,message", [
    ({"block_config": ()}, "block_config needs positive layer counts"),
    ({"compression": 0.0}, "compression must be in"),
    ({"dropout": 1.0}, "dropout must be in"),
])
def test_bad_options_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        meta_model("densenet121", **kwargs)
