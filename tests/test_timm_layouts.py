"""timm's own layouts of MobileNet v2/v3, EfficientNet and VGG load, with timm's outputs.

``tests/reference/timm_layouts/`` holds what timm 1.0.31 itself gave (recorded once by the script
there, in a throwaway environment; cnnlab never imports timm): the state_dict keys and shapes of
timm's models, and their logits under the seeded weight fill of
``tests/reference/outputs/README.md``. A test fills timm's keys by that procedure, writes the file
with ``torch.save`` as timm would, loads it through cnnlab's weights path, and compares the
outputs with timm's. The conversions are the families' own (``checkpoint_filter`` in
``models/mobilenet.py``, ``models/efficientnet.py``, ``models/vgg.py``).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab.errors import CheckpointError
from cnnlab.pretrained import convert_layout, create_pretrained, match_architectures
from tests.helpers.seeded_fill import (
    logits_index,
    reference_input,
    reference_logits,
    relative_error,
    seeded_fill_,
    seeded_values,
)

TIMM_DIR = Path(__file__).parent / "reference" / "timm_layouts"
RECORD = json.loads((TIMM_DIR / "keys.json").read_text())
TIMM = RECORD["models"]
TWINS = {n: r["cnnlab"] for n, r in TIMM.items() if r["cnnlab"]}
# In the default run (under a second each); the others are @slow (large models).
FAST = {"mobilenetv2_100", "mobilenetv3_large_100", "mobilenetv3_small_100", "efficientnet_b0"}
ROUND_TRIP_FAST = {"mobilenetv2_100", "mobilenetv3_small_100"}


@pytest.fixture(autouse=True)
def _one_thread():
    """timm's logits were recorded with one thread; on a busy 2-core machine one thread is also
    the fastest (two spin against each other: 20x slower forward passes, measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@cache
def timm_logits() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(TIMM_DIR / "logits.safetensors")


def meta_state(name: str) -> dict[str, torch.Tensor]:
    """timm's keys and shapes of ``name`` as meta tensors, in timm's order."""
    return {k: torch.empty(s, device="meta", dtype=torch.long if k.endswith(
        "num_batches_tracked") else torch.float32) for k, s in TIMM[name]["state_dict"]}


def timm_state(name: str, **shapes) -> dict[str, torch.Tensor]:
    """timm's state_dict of ``name`` filled as timm's was when its logits were recorded
    (``shapes`` changes some shapes, e.g. another class count)."""
    meta = meta_state(name)
    meta.update({k: torch.empty(s, device="meta") for k, s in shapes.items()})
    values = dict(seeded_values(meta))
    return {k: values.get(k, torch.tensor(0)) for k in meta}


def shapes_of(state: dict) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in state.items()}


def on_meta(model_name: str, **kwargs) -> torch.nn.Module:
    with torch.device("meta"):
        return cnnlab.create_model(model_name, **kwargs)


def run(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(reference_input(RECORD["input"]))


def cases(names):
    return [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in names]


def test_the_record_covers_the_families():
    assert set(timm_logits()) == set(TWINS)
    vggs = {f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")}
    assert {t["model"] for t in TWINS.values()} == {
        "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
        *(f"efficientnet_b{i}" for i in range(8)), *vggs}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_timm_keys_convert_to_the_architecture_key_for_key(name):
    twin = TWINS[name]
    model = on_meta(twin["model"], **twin["kwargs"])
    state = meta_state(name)
    converted, notes = convert_layout(state, model)
    assert shapes_of(converted) == shapes_of(model.state_dict())
    assert f"{len(state)} keys converted from timm's" in notes[0] or name.startswith("vgg")


@pytest.mark.parametrize("name", cases(sorted(TWINS)))
def test_timm_file_gives_timms_outputs(name, tmp_path):
    """Written as timm's torch.save(model.state_dict()), loaded by name: the logits are timm's
    (relative difference below 1e-5; most are bit for bit the same)."""
    twin = TWINS[name]
    torch.save(timm_state(name), tmp_path / f"{name}.pth")
    lines: list[str] = []
    model = create_pretrained(twin["model"], tmp_path / f"{name}.pth", log=lines.append,
                              **twin["kwargs"])
    err = relative_error(run(model), timm_logits()[name])
    assert err < 1e-5, f"{name}: {err:.2e} from timm's output"
    assert "converted from timm's" in lines[0]


def torchvision_names():
    """(timm name, cnnlab name) where torchvision's seeded logits exist for the default
    configuration (timm's eps aside: the weights are torchvision's here)."""
    index = logits_index()
    return [(n, t["model"]) for n, t in sorted(TWINS.items())
            if t["model"] in index and set(t["kwargs"]) <= {"bn_eps", "bn_momentum"}]


@pytest.mark.parametrize("timm_name, name", [
    p if p[0] in ROUND_TRIP_FAST else pytest.param(*p, marks=pytest.mark.slow)
    for p in torchvision_names()])
def test_torchvision_weights_saved_in_timms_layout_load_the_same(timm_name, name, tmp_path):
    """torchvision-layout weights (the seeded fill of the reference logits) mapped to timm's
    layout by the inverse of the family's map: the file has timm's keys and shapes exactly, and
    loads into the same model as the torchvision-layout file, with the reference logits."""
    model = on_meta(name)
    model.to_empty(device="cpu")
    seeded_fill_(model)
    state = model.state_dict()
    timm_keys = list(meta_state(timm_name))
    ours = list(convert_layout(meta_state(timm_name), on_meta(name))[0])
    inverse = dict(zip(ours, timm_keys, strict=True))
    timm_shapes = shapes_of(meta_state(timm_name))
    as_timm = {inverse[k]: v.reshape(timm_shapes[inverse[k]]) for k, v in state.items()}
    assert shapes_of(as_timm) == timm_shapes
    torch.save(as_timm, tmp_path / "timm.pth")
    y_timm = run(cnnlab.create_model(name, weights=tmp_path / "timm.pth"))
    assert relative_error(y_timm, run(model)) <= 1e-5  # the same weights, torchvision's layout
    if name != "efficientnet_b7":  # chaotic under the fill (test_models.CHAOTIC_LOGITS)
        assert relative_error(y_timm, reference_logits()[name]) < 1e-4


# --------------------------------------------------------------------------- what differs

def test_timms_batch_norm_eps_is_named_and_matters(tmp_path):
    """timm's mobilenetv3_* normalise with eps 1e-5, torchvision's (cnnlab's default) 1e-3."""
    torch.save(timm_state("mobilenetv3_small_100"), tmp_path / "m.pth")
    lines: list[str] = []
    model = create_pretrained("mobilenet_v3_small", tmp_path / "m.pth", log=lines.append)
    assert any("build it with bn_eps=1e-5" in line for line in lines)
    assert relative_error(run(model), timm_logits()["mobilenetv3_small_100"]) > 1e-3


def test_tf_variants_convert_and_say_how_they_differ(tmp_path):
    assert TIMM["tf_efficientnet_b0"]["state_dict"] == TIMM["efficientnet_b0"]["state_dict"]
    assert TIMM["tf_efficientnet_b0"]["bn_eps"] == [1e-3]
    torch.save(timm_state("tf_efficientnet_b0"), tmp_path / "tf.pth")
    lines: list[str] = []
    create_pretrained("efficientnet_b0", tmp_path / "tf.pth", log=lines.append)
    assert "tf_efficientnet_* files have the same keys but batch-norm eps 1e-3" in lines[1]
    assert "'same' padding" in lines[1]


@pytest.mark.parametrize("timm_name, model, says", [
    ("efficientnet_es", "efficientnet_b0", "blocks.0.0.conv_exp: an EdgeResidual (fused MBConv) "
                                           "block"),
    ("mobilenetv3_rw", "mobilenet_v3_large", "conv_head has no bias in this file "
                                             "(head_bias=False"),
    ("mobilenetv3_large_075", "mobilenet_v3_large", "of another shape"),
    ("mobilenetv2_100", "efficientnet_b0", "blocks.0.0 has no squeeze-and-excitation"),
])
def test_timm_variants_that_differ_are_refused_saying_what_differs(timm_name, model, says,
                                                                    tmp_path):
    torch.save(timm_state(timm_name), tmp_path / f"{timm_name}.pth")
    with pytest.raises(CheckpointError, match="does not fit") as err:
        create_pretrained(model, tmp_path / f"{timm_name}.pth", log=None)
    message = str(err.value)
    assert says in message and "\n" not in message


def test_a_timm_file_of_another_family_names_the_one_it_fits(tmp_path):
    torch.save(timm_state("mobilenetv2_100"), tmp_path / "m.pth")
    with pytest.raises(CheckpointError, match="the file matches mobilenet_v2"):
        create_pretrained("efficientnet_b0", tmp_path / "m.pth", log=None)


def test_class_count_and_input_channels_come_from_a_timm_file(tmp_path):
    state = timm_state("efficientnet_b0", **{"classifier.weight": (10, 1280),
                                             "classifier.bias": (10,),
                                             "conv_stem.weight": (32, 1, 3, 3)})
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "ft.pth")
    model = cnnlab.create_model("efficientnet_b0", weights=tmp_path / "ft.pth")
    assert (model.num_classes, model.in_chans) == (10, 1)
    assert torch.equal(model.state_dict()["classifier.1.weight"], state["classifier.weight"])
    fits = match_architectures(state, names=["efficientnet_b0", "efficientnet_b1",
                                             "mobilenet_v2", "resnet18"])
    assert [(m.model, m.num_classes, m.in_chans) for m in fits] == [("efficientnet_b0", 10, 1)]


def test_a_timm_file_without_its_head_keeps_the_fresh_classifier(tmp_path):
    state = {k: v for k, v in timm_state("mobilenetv3_small_100").items()
             if not k.startswith("classifier.")}  # timm's num_classes=0
    torch.save(state, tmp_path / "features.pth")
    lines: list[str] = []
    model = create_pretrained("mobilenet_v3_small", tmp_path / "features.pth", log=lines.append,
                              num_classes=5)
    assert model.num_classes == 5
    assert torch.equal(model.state_dict()["classifier.0.weight"],
                       state["conv_head.weight"].flatten(1))
    assert any("classifier keys are not in the file" in line for line in lines)


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
                                  "vgg11"])
def test_own_layout_passes_through_the_filters_untouched(name):
    model = on_meta(name)
    state = model.state_dict()
    assert convert_layout(state, model) == (state, [])


def test_inspect_names_the_match_and_the_conversion(tmp_path):
    from cnnlab.pretrained import inspect_weights

    torch.save(timm_state("mobilenetv3_small_100"), tmp_path / "m.pth")
    info = inspect_weights(tmp_path / "m.pth")
    assert [m["model"] for m in info["matches"]] == ["mobilenet_v3_small"]
    assert info["notes"] == ["244 keys converted from timm's MobileNet v3 layout (conv_stem, "
                             "blocks, conv_head, classifier -> features, classifier)"]
