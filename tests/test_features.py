"""Multi-scale features (timm's ``features_only`` contract), checked against timm 1.0's records
in tests/reference/outputs/features.json (channels, reductions, shapes; seeded values for four
architectures) and against each model's own ``forward_features``."""

from __future__ import annotations

import json
import math
from functools import cache

import pytest
import torch
from torch import fx, nn

from cnnlab import create_model
from cnnlab.errors import InputShapeError
from cnnlab.features import FeatureListNet, expand_paths, features_model, spec_for
from cnnlab.registry import get_entry, list_models
from tests.helpers import REFERENCE_DIR
from tests.helpers.seeded_fill import seeded_fill_

FEATURES = json.loads((REFERENCE_DIR / "outputs" / "features.json").read_text())


@cache
def meta_features(name: str) -> FeatureListNet:
    with torch.device("meta"):
        return create_model(name, features_only=True)


def meta_input(name: str, batch: int = 1, size: int | None = None) -> torch.Tensor:
    c, h, w = get_entry(name).input_size
    return torch.empty(batch, c, size or h, size or w, device="meta")


# ------------------------------------------------------------------- timm's records

@pytest.mark.parametrize("name", sorted(FEATURES))
def test_channels_reductions_and_shapes_equal_timm(name):
    ref = FEATURES[name]
    net = meta_features(name)
    assert net.feature_info.channels() == ref["channels"]
    assert net.feature_info.reduction() == ref["reduction"]
    shapes = [list(f.shape[1:]) for f in net(meta_input(name, size=224))]
    assert shapes == ref["shapes_224"]


SEEDED = [n for n in sorted(FEATURES) if "seeded_sums" in FEATURES[n]]


@pytest.mark.parametrize("name", SEEDED)
def test_seeded_feature_maps_equal_timm(name):
    """Sum and largest |value| of every map, model filled as in the reference README."""
    ref = FEATURES[name]
    model = seeded_fill_(create_model(name)).eval()
    net = features_model(model)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        maps = net(x)
    assert len(maps) == len(ref["seeded_sums"])
    for f, want_sum, want_max in zip(maps, ref["seeded_sums"], ref["seeded_abs_max"],
                                     strict=True):
        f = f.double()
        # the sum cancels: compare it on the scale of sum |x| (float32 convolutions)
        assert abs(f.sum().item() - want_sum) <= 1e-5 * f.abs().sum().item() + 5e-3
        assert f.abs().max().item() == pytest.approx(want_max, rel=1e-4, abs=1e-4)


# ------------------------------------------------------------------- every registered model

# One model per model class (the trunks are declared per class); every other registered model
# runs with -m slow.
ONE_PER_CLASS = ["lenet5", "lenet5_paper", "alexnet", "alexnet_original", "vgg11_bn",
                 "allconv_c", "googlenet", "inception_v3", "resnet20", "resnet18", "resnet50_v2",
                 "densenet121", "xception", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small",
                 "shufflenet_v1", "shufflenet_v2_x0_5", "efficientnet_b0"]
ALL_MODELS = [n if n in ONE_PER_CLASS else pytest.param(n, marks=pytest.mark.slow)
              for n in list_models()]

@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_model_has_consistent_features(name):
    """Channels equal the maps' channels; each map is smaller than the one before when the
    reduction grows, and no larger than input / reduction; the deepest map at the native
    size is forward_features' output when nothing runs after the trunk."""
    with torch.device("meta"):
        model = create_model(name)
    net = features_model(model)
    info = net.feature_info
    assert len(info) >= 3 and [d["index"] for d in info] == list(range(len(info)))
    x = meta_input(name, batch=2)
    maps = net(x)
    size = x.shape[-1]
    assert [f.shape[1] for f in maps] == info.channels()
    assert all(f.shape[0] == 2 for f in maps)
    for f, r in zip(maps, info.reduction(), strict=True):
        assert f.shape[-1] <= math.ceil(size / r)
    red = info.reduction()
    for i in range(1, len(maps)):
        assert red[i] >= red[i - 1]
        assert red[i] == red[i - 1] or maps[i].shape[-1] < maps[i - 1].shape[-1]
    full_keys = set(model.state_dict())
    missing, unexpected = net.load_state_dict(model.state_dict(), strict=False, assign=True)
    assert missing == []
    # only what runs after the deepest tap is left over (classifier, head conv, final norm)
    trunk = expand_paths(model, spec_for(model).trunk)
    assert not any(k.startswith(f"{p}.") for k in unexpected for p in trunk)
    assert set(net.state_dict()) | set(unexpected) == full_keys


def test_one_model_per_class_is_listed():
    from cnnlab.features import feature_specs

    classes = set()
    for n in ONE_PER_CLASS:
        with torch.device("meta"):
            classes.add(type(create_model(n)))
    assert classes == set(feature_specs())


@cache
def trunk_model(name: str) -> nn.Module:
    """``name`` in eval mode, with seeded values in the modules forward_features uses only
    (built on the meta device: the big classifiers cost nothing and stay uninitialised)."""
    with torch.device("meta"):
        model = create_model(name).eval()
    spec = spec_for(model)
    model.to_empty(device="cpu")
    for path in expand_paths(model, spec.trunk) + expand_paths(model, spec.rest):
        seeded_fill_(model.get_submodule(path))
    return model


def small_input(model: nn.Module) -> torch.Tensor:
    side = max(32, *model.min_input_size)
    return torch.randn(2, model.in_chans, side, side, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", ONE_PER_CLASS)
def test_trunk_then_rest_is_forward_features(name):
    """The declared trunk (plus what runs after it) computes exactly forward_features, and the
    maps are the outputs of the modules feature_info names."""
    model = trunk_model(name)
    spec = spec_for(model)
    used = expand_paths(model, spec.trunk) + expand_paths(model, spec.rest)
    x = small_input(model)
    net = features_model(model)
    seen = {}
    hooks = [model.get_submodule(d["module"]).register_forward_hook(
        lambda m, i, o, key=d["module"]: seen.setdefault(key, o.clone()))
        for d in net.feature_info if d["module"] in expand_paths(model, spec.trunk)]
    with torch.no_grad():
        want = model.forward_features(x)
        for h in hooks:
            h.remove()
        maps = net(x)
        y = spec.prologue(model)(x) if spec.prologue and spec.prologue(model) else x
        for path in used:
            y = model.get_submodule(path)(y)
    torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-6)
    if not spec.rest:
        torch.testing.assert_close(maps[-1], want, rtol=1e-5, atol=1e-6)
    assert len(seen) >= len(maps) - len(spec.tap_alias)
    for f, d in zip(maps, net.feature_info, strict=True):
        if d["module"] in seen:
            torch.testing.assert_close(f, seen[d["module"]], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------- the contract

@pytest.fixture(scope="module")
def resnet18_pair():
    torch.manual_seed(0)
    model = create_model("resnet18").eval()
    return model, features_model(model)


def test_out_indices_select_maps_and_negative_indices_count_from_the_end(resnet18_pair):
    model, full = resnet18_pair
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        all_maps = full(x)
        some = create_model("resnet18", features_only=True, out_indices=(1, -1))
        some.load_state_dict(model.state_dict(), strict=False)
        some.eval()
        two = some(x)
    assert some.feature_info.channels() == [64, 512]
    assert some.feature_info.reduction() == [4, 32]
    assert some.feature_info.module_name() == ["layer1", "layer4"]
    assert [d["index"] for d in some.feature_info] == [1, 4]
    torch.testing.assert_close(two[0], all_maps[1])
    torch.testing.assert_close(two[1], all_maps[4])


def test_out_indices_up_to_a_shallow_map_keep_only_the_modules_needed():
    net = create_model("resnet18", features_only=True, out_indices=(0, 1))
    assert net.feature_info.channels() == [64, 64]
    assert not hasattr(net, "layer2")
    full = create_model("resnet18").state_dict()
    missing, unexpected = net.load_state_dict(full, strict=False)
    assert missing == []
    assert {k.split(".")[0] for k in unexpected} == {"layer2", "layer3", "layer4", "fc"}


def test_full_state_dict_loads_with_only_the_classifier_unexpected(resnet18_pair):
    model, full = resnet18_pair
    fresh = create_model("resnet18", features_only=True).eval()
    missing, unexpected = fresh.load_state_dict(model.state_dict(), strict=False)
    assert missing == [] and sorted(unexpected) == ["fc.bias", "fc.weight"]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(fresh(x), full(x), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("bad, message", [
    ((5,), "resnet18 has 5 feature maps: out_indices must be in 0..4 (or -5..-1), got 5"),
    ((0, -6), "got -6"),
    ((1, 1), "names a feature map twice"),
    ((), "out_indices is empty"),
    ((1.0,), "out_indices must be integers"),
])
def test_bad_out_indices_are_clear_errors(bad, message):
    with pytest.raises(ValueError) as err:
        create_model("resnet18", features_only=True, out_indices=bad)
    assert message in str(err.value)


def test_out_indices_without_features_only_is_an_error():
    with pytest.raises(ValueError, match="features_only=True"):
        create_model("resnet18", out_indices=(1,))


def test_input_check_keeps_the_models_message():
    net = create_model("alexnet", features_only=True)
    with pytest.raises(InputShapeError, match="alexnet needs inputs of at least 63x63, got 28x28"):
        net(torch.randn(1, 3, 28, 28))
    with pytest.raises(InputShapeError, match="3-channel input, got 1 channels"):
        net(torch.randn(1, 1, 64, 64))
    scripted = torch.jit.script(net)  # the scripted features model checks too
    with pytest.raises(Exception, match="alexnet needs inputs of at least 63x63, got 28x28"):
        scripted(torch.randn(1, 3, 28, 28))


def test_in_chans_and_transform_input_reach_the_features():
    net = create_model("resnet18", features_only=True, in_chans=1).eval()
    assert net(torch.randn(1, 1, 32, 32))[0].shape == (1, 64, 16, 16)
    torch.manual_seed(0)
    model = create_model("googlenet", transform_input=True, aux_logits=False).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(features_model(model)(x)[-1], model.forward_features(x))


# ------------------------------------------------------------------- fx, TorchScript, export

def _blocks_that_fail(model, paths, how) -> list[str]:
    bad = []
    for path in paths:
        block = model.get_submodule(path)
        if how == "fx" and fx.Tracer().is_leaf_module(block, path):
            continue  # torch.nn layers stay opaque calls in a trace
        try:
            torch.jit.script(block) if how == "script" else fx.symbolic_trace(block)
        except Exception:
            bad.append(path)
    return bad


# Scripting the deep ones takes seconds each (tests/models/test_interop.py scripts every full
# model).
SLOW_TO_SCRIPT = {"densenet121", "inception_v3", "xception", "efficientnet_b0", "googlenet"}
CONVERSIONS = [pytest.param(n, how, marks=pytest.mark.slow)
               if how == "script" and n in SLOW_TO_SCRIPT else (n, how)
               for n in ONE_PER_CLASS for how in ("script", "fx")]


@pytest.mark.parametrize("name, how", CONVERSIONS)
def test_features_script_and_fx_trace_where_the_blocks_do(name, how):
    """The features model is a GraphModule of the model's blocks: it scripts (traces) whenever
    each of those blocks does on its own, and gives the eager maps."""
    model = trunk_model(name)
    net = features_model(model)
    x = small_input(model)
    try:
        converted = torch.jit.script(net) if how == "script" else fx.symbolic_trace(net)
    except Exception:
        steps = list(net.graph.nodes)
        paths = [n.target for n in steps if n.op == "call_module"]
        bad = _blocks_that_fail(model, paths, how)
        if not bad:
            raise
        pytest.skip(f"{how}: {name}'s block {bad[0]} does not convert on its own (issue 11)")
    with torch.no_grad():
        for a, b in zip(converted(x), net(x), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["lenet5", "resnet18"])
def test_features_export(name):
    torch.manual_seed(0)
    net = create_model(name, features_only=True).eval()
    x = torch.randn(2, net.in_chans, 32, 32)
    with torch.no_grad():
        ep = torch.export.export(net, (x,))
        for a, b in zip(ep.module()(x), net(x), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_deepcopy_keeps_the_feature_info(resnet18_pair):
    import copy

    _, net = resnet18_pair
    twin = copy.deepcopy(net)
    assert isinstance(twin, FeatureListNet) and type(twin).__name__ == "FeatureListNet"
    assert twin.feature_info.channels() == net.feature_info.channels() == [64, 64, 128, 256, 512]
    assert twin.conv1.weight is not net.conv1.weight
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(twin(x), net(x), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
