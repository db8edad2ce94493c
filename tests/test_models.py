"""Tests that every registered model passes, parametrized over the registry.

A new family gets these for free: forward shape at the smallest allowed input, the
features/head split, too-small and wrong-channel inputs refused with a clear message,
`num_classes`/`in_chans` respected, one training step that changes the weights, seeded
determinism, and, for models with a reference record, the parameter count and (torchvision,
timm) every state_dict key and shape. Large models keep to small inputs; reference checks
build on the meta device, which allocates nothing.
"""

from __future__ import annotations

from functools import lru_cache

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.layers import StochasticDepth
from cnnlab.models.base import ImageClassifier, main_logits
from cnnlab.registry import get_entry

from .conftest import reference_record

MODELS = cnnlab.list_models()
REFERENCE_CASES = [
    pytest.param(name, ref, kwargs, id=f"{name}-{ref}")
    for name in MODELS for ref, kwargs in get_entry(name).references
]


def small_size(model: ImageClassifier) -> tuple[int, int]:
    """The smallest input the model accepts, but at least 32 x 32."""
    h, w = model.min_input_size
    return max(h, 32), max(w, 32)


@lru_cache(maxsize=4)
def built(name: str) -> ImageClassifier:
    torch.manual_seed(0)
    model = cnnlab.create_model(name, num_classes=7).eval()
    return model


@pytest.mark.parametrize("name,ref,kwargs", REFERENCE_CASES)
def test_parameters_and_state_dict_match_reference(name, ref, kwargs):
    rec = reference_record(ref)
    with torch.device("meta"):
        model = cnnlab.create_model(name, **kwargs)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert params == rec["params"], f"{name}{kwargs}: {params:,} params, {ref} has {rec['params']:,}"
    if rec["state_dict"] is not None:
        ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        theirs = dict(rec["state_dict"])
        missing = sorted(set(theirs) - set(ours))
        extra = sorted(set(ours) - set(theirs))
        assert not missing and not extra, f"missing {missing[:5]}..., unexpected {extra[:5]}..."
        wrong = {k: (ours[k], theirs[k]) for k in theirs if ours[k] != theirs[k]}
        assert not wrong, f"shapes differ (ours, reference): {dict(list(wrong.items())[:5])}"


@pytest.mark.parametrize("name", MODELS)
def test_contract_attributes(name):
    model = built(name)
    assert isinstance(model, ImageClassifier)
    assert model.num_classes == 7
    assert model.in_chans == get_entry(name).input_size[0]
    assert model.num_features > 0
    h, w = model.min_input_size
    c, H, W = get_entry(name).input_size
    assert h <= H and w <= W, f"{name}: native input {H}x{W} is below its own minimum {h}x{w}"


@pytest.mark.parametrize("name", MODELS)
def test_forward_at_smallest_input(name):
    model = built(name)
    h, w = model.min_input_size
    x = torch.randn(2, model.in_chans, h, w)
    with torch.no_grad():
        feats = model.forward_features(x)
        pre = model.forward_head(feats, pre_logits=True)
        out = model(x)
    assert feats.dim() == 4 and feats.shape[:2] == (2, model.num_features)
    assert pre.dim() == 2 and pre.shape[0] == 2
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", MODELS)
def test_too_small_input_is_refused_with_the_sizes(name):
    model = built(name)
    h, w = model.min_input_size
    with pytest.raises(cnnlab.InputShapeError) as err:
        model(torch.randn(1, model.in_chans, h - 1, w))
    msg = str(err.value)
    assert name in msg and f"at least {h}x{w}" in msg and f"got {h - 1}x{w}" in msg


@pytest.mark.parametrize("name", MODELS)
def test_wrong_channel_count_is_refused(name):
    model = built(name)
    h, w = small_size(model)
    wrong = model.in_chans + 2
    with pytest.raises(cnnlab.InputShapeError, match=f"{model.in_chans}-channel input, got {wrong}"):
        model(torch.randn(1, wrong, h, w))


@pytest.mark.parametrize("name", MODELS)
def test_in_chans_and_num_classes_are_respected(name):
    in_chans = 5
    model = cnnlab.create_model(name, num_classes=3, in_chans=in_chans).eval()
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == in_chans
    h, w = small_size(model)
    with torch.no_grad():
        assert model(torch.randn(1, in_chans, h, w)).shape == (1, 3)


@pytest.mark.parametrize("name", MODELS)
def test_one_training_step_changes_every_parameter(name):
    torch.manual_seed(0)
    model = cnnlab.create_model(name, num_classes=4).train()
    for m in model.modules():  # a branch dropped for the whole batch gets zero gradients
        if isinstance(m, StochasticDepth):
            m.p = 0.0
    h, w = small_size(model)
    x, y = torch.randn(2, model.in_chans, h, w), torch.tensor([0, 3])
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    out = model(x)
    loss = nn.functional.cross_entropy(main_logits(out), y)
    if isinstance(out, cnnlab.AuxOutput):
        for aux, weight in zip(out.aux_logits, out.aux_weights):
            loss = loss + weight * nn.functional.cross_entropy(aux, y)
    loss.backward()
    assert torch.isfinite(loss)
    no_grad = [k for k, p in model.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters that got no gradient: {no_grad[:5]}"
    # A batch-norm shift that reaches the loss only through linear layers and another batch
    # norm in training mode (the linear bottleneck of MobileNet v2 / MBConv: projection BN ->
    # residual -> 1x1 conv -> BN) has zero gradient in exact arithmetic: the next BN subtracts
    # it again. With 1x1 maps and batch 2 the float gradient is exactly zero too.
    cancelled = {f"{mn}.bias" for mn, m in model.named_modules()
                 if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.bias is not None
                 and not m.bias.grad.any()}
    opt.step()
    changed = {k for k, p in model.named_parameters() if not torch.equal(before[k], p)}
    assert changed == set(before) - cancelled, f"unchanged: {sorted(set(before) - changed)[:5]}"


@pytest.mark.parametrize("name", MODELS)
def test_seeded_construction_is_deterministic(name):
    x = torch.randn(1, get_entry(name).input_size[0], 64, 64)
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = cnnlab.create_model(name, num_classes=5).eval()
        h, w = small_size(model)
        with torch.no_grad():
            outs.append(model(nn.functional.interpolate(x, size=(h, w))))
    assert torch.equal(outs[0], outs[1])
