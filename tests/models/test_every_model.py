"""Tests that every registered model passes, parametrized over the registry.

A new family gets these for free: forward shape at the smallest allowed input, the
features/head split, too-small and wrong-channel inputs refused with a clear message,
`num_classes`/`in_chans` respected, one training step that changes the weights, seeded
determinism, and, for models with a reference record, the parameter count and (torchvision,
timm) every state_dict key and shape. Large models keep to small inputs; reference checks
build on the meta device, which allocates nothing.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.layers import StochasticDepth
from cnnlab.models.base import ImageClassifier, main_logits
from cnnlab.registry import get_entry
from tests.helpers import converted, reference_record
from tests.helpers.seeded_fill import (
    logits_index,
    reference_input,
    reference_logits,
    relative_error,
    seeded_fill_,
)

MODELS = cnnlab.list_models()
REFERENCE_CASES = [
    pytest.param(name, ref, kwargs, id=f"{name}-{ref}")
    for name in MODELS for ref, kwargs in get_entry(name).references
]


def small_size(model: ImageClassifier) -> tuple[int, int]:
    """The smallest input the model accepts, but at least 32 x 32."""
    h, w = model.min_input_size
    return max(h, 32), max(w, 32)


@pytest.fixture(scope="module", params=MODELS)
def built(request) -> ImageClassifier:
    """Each model built once (seeded, 7 classes, eval mode) for the read-only tests below.

    A module-scoped parametrized fixture makes pytest run all tests of one model together,
    so the large models are built once here instead of once per test.
    """
    torch.manual_seed(0)
    model = cnnlab.create_model(request.param, num_classes=7).eval()
    yield model
    del model


@pytest.mark.parametrize("name,ref,kwargs", REFERENCE_CASES)
def test_parameters_and_state_dict_match_reference(name, ref, kwargs):
    rec = reference_record(ref)
    with torch.device("meta"):
        model = cnnlab.create_model(name, **kwargs)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert params == rec["params"], f"{name}{kwargs}: {params:,}, {ref}: {rec['params']:,}"
    if rec["state_dict"] is not None:
        ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        theirs = dict(rec["state_dict"])
        missing = sorted(set(theirs) - set(ours))
        extra = sorted(set(ours) - set(theirs))
        assert not missing and not extra, f"missing {missing[:5]}..., unexpected {extra[:5]}..."
        wrong = {k: (ours[k], theirs[k]) for k in theirs if ours[k] != theirs[k]}
        assert not wrong, f"shapes differ (ours, reference): {dict(list(wrong.items())[:5])}"


def test_contract_attributes(built):
    model, name = built, built.model_name
    assert isinstance(model, ImageClassifier)
    assert model.num_classes == 7
    assert model.in_chans == get_entry(name).input_size[0]
    assert model.num_features > 0
    h, w = model.min_input_size
    c, H, W = get_entry(name).input_size
    assert h <= H and w <= W, f"{name}: native input {H}x{W} is below its own minimum {h}x{w}"


def test_forward_at_smallest_input(built):
    model = built
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


def test_too_small_input_is_refused_with_the_sizes(built):
    model, name = built, built.model_name
    h, w = model.min_input_size
    with pytest.raises(cnnlab.InputShapeError) as err:
        model(torch.randn(1, model.in_chans, h - 1, w))
    msg = str(err.value)
    assert name in msg and f"at least {h}x{w}" in msg and f"got {h - 1}x{w}" in msg


def test_wrong_channel_count_is_refused(built):
    model = built
    h, w = small_size(model)
    wrong = model.in_chans + 2
    expected = f"{model.in_chans}-channel input, got {wrong}"
    with pytest.raises(cnnlab.InputShapeError, match=expected):
        model(torch.randn(1, wrong, h, w))


@pytest.mark.parametrize("name", MODELS)
def test_one_training_step_changes_every_parameter(name):
    torch.manual_seed(0)
    model = cnnlab.create_model(name, num_classes=4).train()
    for m in model.modules():  # a branch dropped for the whole batch gets zero gradients
        if isinstance(m, StochasticDepth):
            m.p = 0.0
    h, w = small_size(model)
    x, y = torch.randn(2, model.in_chans, h, w), torch.tensor([0, 3])
    # Every trainable parameter (lenet5_paper's RBF centres are fixed: requires_grad=False).
    before = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    out = model(x)
    loss = nn.functional.cross_entropy(main_logits(out), y)
    if isinstance(out, cnnlab.AuxOutput):
        for aux, weight in zip(out.aux_logits, out.aux_weights, strict=True):
            loss = loss + weight * nn.functional.cross_entropy(aux, y)
    loss.backward()
    assert torch.isfinite(loss)
    no_grad = [k for k, p in model.named_parameters() if p.grad is None and k in before]
    assert not no_grad, f"parameters that got no gradient: {no_grad[:5]}"
    # A batch-norm shift that reaches the loss only through linear layers and another batch
    # norm in training mode (the linear bottleneck of MobileNet v2 / MBConv: projection BN ->
    # residual -> 1x1 conv -> BN) has zero gradient in exact arithmetic: the next BN subtracts
    # it again. With 1x1 maps and batch 2 the float gradient is exactly zero too.
    cancelled = {f"{mn}.bias" for mn, m in model.named_modules()
                 if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.bias is not None
                 and not m.bias.grad.any()}
    opt.step()
    changed = {k for k, p in model.named_parameters()
               if k in before and not torch.equal(before[k], p)}
    assert changed == set(before) - cancelled, f"unchanged: {sorted(set(before) - changed)[:5]}"


@pytest.mark.parametrize("name", MODELS)
def test_seeded_build_is_deterministic_and_takes_num_classes_and_in_chans(name):
    in_chans, num_classes = 5, 3
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = cnnlab.create_model(name, num_classes=num_classes, in_chans=in_chans).eval()
        first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
        assert first_conv.in_channels == in_chans
        h, w = small_size(model)
        torch.manual_seed(7)
        with torch.no_grad():
            outs.append(model(torch.randn(1, in_chans, h, w)))
        del model
    assert outs[0].shape == (1, num_classes)
    assert torch.equal(outs[0], outs[1])


# --- head API: num_features, head_hidden_size, get_classifier, classifier_keys, reset -------


def test_head_hidden_size_is_the_width_of_the_pre_logits(built):
    model = built
    h, w = model.min_input_size
    with torch.no_grad():
        pre = model.forward_head(model.forward_features(torch.randn(2, model.in_chans, h, w)),
                                 pre_logits=True)
    assert pre.shape == (2, model.head_hidden_size)


def test_classifier_keys_are_exactly_the_keys_that_depend_on_num_classes(built):
    """Independent check: build the model for 5 classes on the meta device (no memory) and
    compare shapes with the 7-class one; the keys that differ are the classifiers' keys."""
    model, name = built, built.model_name
    with torch.device("meta"):
        other = cnnlab.create_model(name, num_classes=5)
    ours = {k: v.shape for k, v in model.state_dict().items()}
    theirs = {k: v.shape for k, v in other.state_dict().items()}
    assert ours.keys() == theirs.keys()
    differ = sorted(k for k in ours if ours[k] != theirs[k])
    assert sorted(model.classifier_keys()) == differ
    assert model.classifier_names()[0] == model.classifier_name
    classifier = model.get_classifier()
    assert classifier is model.get_submodule(model.classifier_name)
    assert isinstance(classifier, (nn.Linear, nn.Conv2d))
    assert classifier.weight.shape[0] == 7
    assert classifier.weight.reshape(7, -1).shape[1] == model.head_hidden_size


def test_reset_classifier_to_0_gives_the_pre_logits_and_back(built):
    model = built
    h, w = model.min_input_size
    x = torch.randn(2, model.in_chans, h, w)
    saved = {n: model.get_submodule(n) for n in model.classifier_names()}
    saved_act = getattr(model, "act", None)
    try:
        with torch.no_grad():
            pre = model.forward_head(model.forward_features(x), pre_logits=True)
            model.reset_classifier(0)
            assert model.num_classes == 0 and model.classifier_keys() == []
            assert isinstance(model.get_classifier(), nn.Identity)
            assert torch.equal(model(x), pre)
            model.reset_classifier(3)
            assert model.num_classes == 3
            assert model(x).shape == (2, 3)
            keys = model.classifier_keys()
            assert set(keys) == {
                f"{n}.{p}" for n in saved for p, _ in saved[n].named_parameters()}
            state = model.state_dict()
            assert all(state[k].shape[0] == 3 for k in keys)
    finally:
        for n, m in saved.items():
            model.set_submodule(n, m)
        if saved_act is not None:
            model.act = saved_act
        model.num_classes = 7
    with torch.no_grad():
        assert model(x).shape == (2, 7)


@pytest.mark.parametrize("name", MODELS)
def test_num_classes_0_returns_the_pooled_pre_logits(name):
    """Built on the meta device: shapes only, nothing allocated."""
    with torch.device("meta"):
        model = cnnlab.create_model(name, num_classes=0).eval()
        h, w = small_size(model)
        out = model(torch.empty(2, model.in_chans, h, w))
    assert model.get_classifier().__class__ is nn.Identity
    assert model.classifier_keys() == []
    assert out.shape == (2, model.head_hidden_size)


def test_reset_classifier_resets_the_auxiliary_heads_too():
    torch.manual_seed(0)
    model = cnnlab.create_model("googlenet", num_classes=4)
    assert model.classifier_names() == ["fc", "aux1.fc2", "aux2.fc2"]
    model.reset_classifier(6)
    out = model.train()(torch.randn(2, 3, 32, 32))
    assert out.logits.shape == (2, 6) and [a.shape for a in out.aux_logits] == [(2, 6)] * 2
    no_aux = cnnlab.create_model("googlenet", num_classes=4, aux_logits=False)
    assert no_aux.classifier_names() == ["fc"]
    assert no_aux.classifier_keys() == ["fc.weight", "fc.bias"]
    with pytest.raises(ValueError, match="non-negative"):
        no_aux.reset_classifier(-1)



# --- torch.fx, TorchScript, torch.export: the eager output, every model ---------------------

# Scripted and exported in the default run: one model per family and per distinct block or
# option (LRN, option-A shortcuts, SE, both InvertedResidual layouts); every model with
# ``-m slow``. DenseNet's smallest registered model takes half a minute to script and export;
# tests/models/test_interop.py runs its code (dense layers, blocks, transitions) in a small
# configuration instead.
SCRIPT_EXPORT_DEFAULT = {
    "lenet5", "alexnet", "alexnet_original", "vgg11_lrn", "vgg11_bn", "allconv_c",
    "strided_cnn_c", "googlenet", "inception_v3", "resnet20", "resnet50", "resnet50_v2",
    "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "shufflenet_v1_g3",
    "shufflenet_v2_x0_5", "efficientnet_b0", "xception",
}
SMALL_CONFIG_IN_TEST_INTEROP = {"densenet"}


def test_every_family_is_scripted_and_exported_in_the_default_run():
    families = {get_entry(n).family for n in MODELS}
    covered = {get_entry(n).family for n in SCRIPT_EXPORT_DEFAULT}
    assert covered | SMALL_CONFIG_IN_TEST_INTEROP == families
    assert SCRIPT_EXPORT_DEFAULT <= set(MODELS)


def assert_same_as_eager(model: ImageClassifier, kind: str) -> None:
    """Trace / script / export ``model`` (eval mode) and compare with eager, batch 2."""
    h, w = small_size(model)
    x = torch.randn(2, model.in_chans, h, w)
    other = converted(model, kind, x)
    with torch.no_grad():
        ref, out = model(x), other(x)
    assert out.shape == ref.shape == (2, 7)
    err = ((out - ref).abs().max() / ref.abs().max()).item()
    assert err <= 1e-5, f"{model.model_name} {kind}: relative difference {err:.2e}"


def test_fx_symbolic_trace_gives_the_eager_output(built):
    assert_same_as_eager(built, "fx")


@pytest.mark.parametrize("kind", ["script", "export"])
def test_script_and_export_give_the_eager_output(built, kind):
    if built.model_name not in SCRIPT_EXPORT_DEFAULT:
        pytest.skip("scripted and exported with -m slow")
    assert_same_as_eager(built, kind)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["script", "export"])
def test_script_and_export_give_the_eager_output_all_models(built, kind):
    if built.model_name in SCRIPT_EXPORT_DEFAULT:
        pytest.skip("in the default run")
    assert_same_as_eager(built, kind)


# --- reference logits: torchvision / timm outputs under a seeded weight fill ----------------

LOGIT_MODELS = sorted(logits_index())
# efficientnet_b7's logits under the seeded fill are chaotic, not a test of the forward order:
# with the same cnnlab model, float64 and float32 disagree by 37%, one thread and two by 39%,
# and an input scaled by (1 + 1e-7) moves the logits by 41% (the relative error between
# float32 and float64 grows from 1e-5 after stage 4 to 3e-3 after stage 5 and 0.28 after
# stage 6). No float32 implementation that sums in another order can match it to 1e-4.
# b0-b6 (same code, smaller scales) match to about 3e-6.
CHAOTIC_LOGITS = {"efficientnet_b7"}
LOGIT_CASES = [
    pytest.param(n, marks=pytest.mark.skip(reason="numerically chaotic under the fill"))
    if n in CHAOTIC_LOGITS else n for n in LOGIT_MODELS
]


def test_reference_logits_cover_registered_models():
    assert sorted(reference_logits()) == LOGIT_MODELS
    assert set(LOGIT_MODELS) <= set(MODELS)


@pytest.mark.parametrize("name", LOGIT_CASES)
def test_seeded_logits_equal_the_reference_implementation(name):
    """The README's procedure: built on the meta device (no init cost), filled in sorted key
    order, eval mode, the seeded input; relative error below 1e-4."""
    info = logits_index()[name]
    kwargs = {} if info["aux_logits"] is None else {"aux_logits": info["aux_logits"]}
    with torch.device("meta"):
        model = cnnlab.create_model(name, **kwargs)
    model.to_empty(device="cpu")
    # Every buffer is filled (to_empty leaves anything outside the state_dict undefined).
    state = model.state_dict(keep_vars=True)
    assert {id(b) for b in model.buffers()} <= {id(t) for t in state.values()}
    seeded_fill_(model).eval()
    with torch.no_grad():
        y = model(reference_input(info["input"]))
    err = relative_error(y, reference_logits()[name])
    assert err < 1e-4, f"{name}: relative difference {err:.2e} from {info['source']}"
