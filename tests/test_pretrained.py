"""Loading weights from files: formats, containers, head and stem adaptation, refusals.

Every file is made here: torchvision- and timm-layout state_dicts from the key/shape lists in
tests/reference/ (random values), a model's own state_dict, wrapped, in half precision,
truncated, of another architecture, and a hostile pickle.
"""

from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab.errors import CheckpointError
from cnnlab.pretrained import (
    WeightsFile,
    adapt_input_conv,
    create_pretrained,
    load_pretrained,
    match_architectures,
    read_weights,
)
from tests.helpers import reference_record


def random_state(record: list[tuple[str, tuple]], dtype=torch.float32) -> dict:
    """Random tensors of the reference's keys and shapes (BN variances positive)."""
    g = torch.Generator().manual_seed(1)
    state = {}
    for key, shape in record:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = (torch.rand(shape, generator=g) + 0.5).to(dtype)
        else:
            state[key] = torch.randn(shape, generator=g).to(dtype)
    return state


def same_tensors(model: torch.nn.Module, state: dict, skip=()) -> bool:
    ours = model.state_dict()
    return all(torch.equal(ours[k], v.to(ours[k].dtype)) for k, v in state.items()
               if k not in skip)


@pytest.fixture(scope="module")
def r20(tmp_path_factory):
    """A resnet20 (10 classes) and its state_dict saved with torch.save."""
    torch.manual_seed(3)
    model = cnnlab.create_model("resnet20").eval()
    with torch.no_grad():  # non-trivial BN statistics, so that a wrong load shows
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("r20") / "resnet20.pth"
    torch.save(model.state_dict(), path)
    return model, path


# --------------------------------------------------------------------------- formats

def test_torchvision_layout_file_loads_key_for_key(tmp_path):
    rec = reference_record("torchvision:shufflenet_v2_x0_5")
    state = random_state(rec["state_dict"])
    torch.save(state, tmp_path / "shufflenetv2_x0.5.pth")
    model = cnnlab.create_model("shufflenet_v2_x0_5", weights=tmp_path / "shufflenetv2_x0.5.pth")
    assert model.num_classes == 1000 and same_tensors(model, state)
    # The same, wrapped as a DDP training script saves it.
    torch.save({"epoch": 90, "state_dict": {"module." + k: v for k, v in state.items()}},
               tmp_path / "wrapped.pth")
    wf = read_weights(tmp_path / "wrapped.pth")
    assert wf.container == '{"state_dict": state_dict}'
    assert wf.notes == [f"'module.' prefix stripped from {len(state)} keys"]
    model2 = cnnlab.create_model("shufflenet_v2_x0_5", weights=tmp_path / "wrapped.pth")
    assert same_tensors(model2, state)


@pytest.mark.parametrize("container", ["model", "model_ema", "state_dict_ema"])
def test_other_containers_are_unwrapped(r20, tmp_path, container):
    model, _ = r20
    torch.save({container: model.state_dict(), "optimizer": {}}, tmp_path / "c.pt")
    assert same_tensors(cnnlab.create_model("resnet20", weights=tmp_path / "c.pt"),
                        model.state_dict())


def test_non_ema_weights_win_when_both_are_there(r20, tmp_path):
    model, _ = r20
    ema = {k: v + 1 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save({"state_dict_ema": ema, "state_dict": model.state_dict()}, tmp_path / "b.pth")
    assert same_tensors(cnnlab.create_model("resnet20", weights=tmp_path / "b.pth"),
                        model.state_dict())


def test_timm_layout_safetensors_for_resnet50_v2_in_half_precision(tmp_path):
    from safetensors.torch import save_file

    rec = reference_record("timm:resnetv2_50")
    state = random_state(rec["state_dict"], torch.float16)
    save_file(state, tmp_path / "resnetv2_50.safetensors")
    lines = []
    model = create_pretrained("resnet50_v2", tmp_path / "resnetv2_50.safetensors",
                              log=lines.append)
    assert model.state_dict()["head.fc.weight"].dtype == torch.float32
    assert same_tensors(model, state)
    assert lines == ["resnetv2_50.safetensors: weights stored as float16, converted to float32"]


def test_loaded_model_gives_the_outputs_of_the_saved_one(r20):
    model, path = r20
    loaded = cnnlab.create_model("resnet20", weights=path).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_half_precision_state_dict_loads_rounded(r20, tmp_path):
    model, _ = r20
    half = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save(half, tmp_path / "half.pt")
    loaded = cnnlab.create_model("resnet20", weights=tmp_path / "half.pt")
    assert same_tensors(loaded, half)
    w = loaded.state_dict()["conv1.weight"]
    assert w.dtype == torch.float32 and not torch.equal(w, model.state_dict()["conv1.weight"])


def test_run_folder_and_checkpoint(tmp_path):
    from cnnlab.training.checkpoint import save_checkpoint
    from cnnlab.weights import save_run_model

    torch.manual_seed(0)
    model = cnnlab.create_model("lenet5", num_classes=4, activation="tanh").eval()
    config = {"model": "lenet5", "model_kwargs": {"num_classes": 4, "activation": "tanh"}}
    save_run_model(tmp_path / "run", model, config)
    loaded = cnnlab.create_model("lenet5", weights=tmp_path / "run")  # kwargs from config.json
    assert loaded.num_classes == 4 and same_tensors(loaded, model.state_dict())
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(model(x), loaded.eval()(x))
    save_checkpoint(tmp_path / "ckpt" / "checkpoint.pt",
                    {"config": json.dumps(config), "model": model.state_dict()})
    wf = read_weights(tmp_path / "ckpt")
    assert wf.path.name == "checkpoint.pt" and wf.run_config["model_kwargs"]["num_classes"] == 4
    assert same_tensors(cnnlab.create_model("lenet5", weights=wf), model.state_dict())


def test_old_densenet_key_names_are_renamed():
    """DenseNet's own checkpoint filter (models/densenet.py) renames them, through the generic
    convert_layout; other families leave such keys alone."""
    from cnnlab.pretrained import convert_layout

    old = {"features.denseblock1.denselayer1.norm.1.weight": torch.ones(1),
           "features.denseblock1.denselayer1.conv.2.weight": torch.ones(1),
           "features.norm5.weight": torch.ones(1)}
    with torch.device("meta"):
        densenet, resnet = cnnlab.create_model("densenet121"), cnnlab.create_model("resnet18")
    state, notes = convert_layout(old, densenet)
    assert list(state) == ["features.denseblock1.denselayer1.norm1.weight",
                           "features.denseblock1.denselayer1.conv2.weight",
                           "features.norm5.weight"]
    assert notes == ["2 DenseNet keys renamed from the old 'norm.1' form to 'norm1'"]
    assert convert_layout(old, resnet) == (old, [])


# --------------------------------------------------------------------------- refusals

class Hostile:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("how", ["torch.save", "pickle.dump"])
def test_hostile_pickle_never_runs(tmp_path, how):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    payload = {"state_dict": {"w": torch.ones(1)}, "extra": Hostile(str(marker))}
    if how == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(CheckpointError, match="refused: it needs arbitrary unpickling") as err:
        read_weights(path)
    assert not marker.exists()
    assert "\n" not in str(err.value) and "weights_only=True" in str(err.value)


def test_truncated_files_are_refused(r20, tmp_path):
    from safetensors.torch import save_file

    _, path = r20
    data = path.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable PyTorch file"):
        read_weights(tmp_path / "cut.pth")
    save_file({"a": torch.ones(1000)}, tmp_path / "full.safetensors")
    data = (tmp_path / "full.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-100])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        read_weights(tmp_path / "cut.safetensors")


def test_foreign_formats_are_named(tmp_path):
    (tmp_path / "w.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(CheckpointError, match="HDF5 \\(Keras\\) file"):
        read_weights(tmp_path / "w.h5")
    (tmp_path / "w.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="unknown file format"):
        read_weights(tmp_path / "w.txt")
    torch.save({"epoch": 3, "arch": "x"}, tmp_path / "meta.pth")
    with pytest.raises(CheckpointError, match="no state_dict found; its top-level keys are "
                                              "epoch, arch"):
        read_weights(tmp_path / "meta.pth")
    with pytest.raises(CheckpointError, match="does not exist"):
        read_weights(tmp_path / "missing.pth")


def test_another_architectures_file_names_what_it_matches(r20):
    _, path = r20
    with pytest.raises(CheckpointError) as err:
        cnnlab.create_model("resnet32", weights=path)
    msg = str(err.value)
    assert "\n" not in msg
    # 2 more blocks in each of 3 stages, 12 tensors each (2 convs, 2 BNs of 5)
    assert "does not fit resnet32: 72 missing (layer1.3.conv1.weight" in msg
    assert "resnet32 has cnnlab's own layout" in msg
    assert msg.endswith("the file matches resnet20")


def test_mismatch_message_lists_missing_unexpected_and_shapes(r20, tmp_path):
    model, _ = r20
    state = dict(model.state_dict())
    del state["layer2.0.bn1.bias"]
    state["layer9.weight"] = torch.ones(1)
    state["layer3.0.conv1.weight"] = torch.ones(64, 32, 1, 1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as err:
        load_pretrained(cnnlab.create_model("resnet20"), tmp_path / "bad.pth")
    msg = str(err.value)
    assert ("does not fit resnet20: 1 missing (layer2.0.bn1.bias); 1 unexpected (layer9.weight); "
            "1 of another shape (layer3.0.conv1.weight: file 64x32x1x1, model 64x32x3x3)") in msg
    assert msg.endswith("the file matches no registered architecture")


def test_torchvision_model_says_which_layout_it_expects(r20):
    _, path = r20
    with pytest.raises(CheckpointError, match="resnet18 expects torchvision's layout "
                                              "\\(torchvision's resnet18 weights load as they"):
        cnnlab.create_model("resnet18", weights=path)


def test_sha256_is_checked(r20):
    import hashlib

    _, path = r20
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    cnnlab.create_model("resnet20", weights=path, sha256=digest)
    cnnlab.create_model("resnet20", weights=path, sha256=digest[:8].upper())
    wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
    with pytest.raises(CheckpointError, match=f"SHA-256 is {digest}, not {wrong}"):
        cnnlab.create_model("resnet20", weights=path, sha256=wrong)
    with pytest.raises(CheckpointError, match="is not a SHA-256"):
        cnnlab.create_model("resnet20", weights=path, sha256="xyz")
    with pytest.raises(ValueError, match="give weights=PATH too"):
        cnnlab.create_model("resnet20", sha256=digest)


# --------------------------------------------------------------------------- adaptation

def test_new_head_keeps_the_fresh_init_and_says_so(r20):
    model, path = r20
    torch.manual_seed(11)
    target = cnnlab.create_model("resnet20", num_classes=4)
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    report = load_pretrained(target, path, log=None)
    assert report.replaced == ["fc.weight 10x64 -> 4x64", "fc.bias 10 -> 4"]
    assert report.notes == ["resnet20: new classifier for 4 classes, freshly initialised: "
                            "fc.weight 10x64 -> 4x64, fc.bias 10 -> 4"]
    sd = target.state_dict()
    assert torch.equal(sd["fc.weight"], fresh["fc.weight"])
    assert same_tensors(target, model.state_dict(), skip=("fc.weight", "fc.bias"))


def test_auxiliary_heads_are_replaced_too():
    torch.manual_seed(0)
    src = cnnlab.create_model("googlenet", num_classes=5)
    wf = WeightsFile(Path("googlenet5.pth"), src.state_dict(), "pytorch", "state_dict", "0" * 64,
                     0)
    target = cnnlab.create_model("googlenet", num_classes=3)
    report = load_pretrained(target, wf, log=None)
    assert [r.split()[0] for r in report.replaced] == [
        "aux1.fc2.weight", "aux1.fc2.bias", "aux2.fc2.weight", "aux2.fc2.bias",
        "fc.weight", "fc.bias"]
    assert "fc.weight 5x1024 -> 3x1024" in report.replaced
    # The aux heads' first layers are not classifiers: they come from the file.
    assert torch.equal(target.state_dict()["aux1.fc1.weight"], src.state_dict()["aux1.fc1.weight"])
    # A model built without aux heads ignores the file's (as many keys as torchvision's
    # googlenet has with them and without).
    n_aux = (len(reference_record("torchvision:googlenet_aux")["state_dict"])
             - len(reference_record("torchvision:googlenet")["state_dict"]))
    plain = cnnlab.create_model("googlenet", num_classes=5, aux_logits=False)
    report = load_pretrained(plain, wf, log=None)
    assert report.notes == [f"googlenet: ignored {n_aux} keys of auxiliary heads the model was "
                            "built without (aux_logits=False)"]


def test_a_file_without_aux_heads_builds_the_model_without_them():
    src = cnnlab.create_model("googlenet", num_classes=4, aux_logits=False)
    wf = WeightsFile(Path("g.pth"), src.state_dict(), "pytorch", "state_dict", "0" * 64, 0)
    model = create_pretrained("googlenet", wf, log=None)
    assert model.aux_logits is False and model.num_classes == 4
    assert same_tensors(model, src.state_dict())


def test_input_conv_arithmetic():
    r, g, b = 1.0, 10.0, 100.0
    w = torch.tensor([[r, g, b], [2 * r, 2 * g, 2 * b]]).view(2, 3, 1, 1)
    assert adapt_input_conv(w, 1).flatten().tolist() == [111.0, 222.0]
    assert adapt_input_conv(w, 2)[0].flatten().tolist() == [r + b / 2, g + b / 2]
    assert adapt_input_conv(w, 6)[0].flatten().tolist() == [0.5, 5.0, 50.0, 0.5, 5.0, 50.0]
    assert adapt_input_conv(w, 4)[0].flatten().tolist() == [0.75, 7.5, 75.0, 0.75]
    assert adapt_input_conv(w, 3) is w
    grey = torch.tensor([[6.0]]).view(1, 1, 1, 1)
    assert adapt_input_conv(grey, 3).flatten().tolist() == [2.0, 2.0, 2.0]
    assert adapt_input_conv(w.half(), 1).dtype == torch.float16


@pytest.mark.parametrize("in_chans", [1, 2, 6])
def test_adapted_stem_sees_a_grey_image_as_the_rgb_model_does(r20, in_chans):
    """Grey image replicated to RGB through the file's model == the same grey image in every
    channel of the adapted model (exact for 1, 2 and 6 channels: the kernels sum to R+G+B)."""
    model, path = r20
    lines = []
    adapted = cnnlab.create_model("resnet20", weights=path, in_chans=in_chans,
                                  log=lines.append).eval()
    assert lines[0].startswith(f"resnet20: conv1.weight adapted from 3 to {in_chans} input")
    grey = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        expected = model(grey.expand(-1, 3, -1, -1))
        got = adapted(grey.expand(-1, in_chans, -1, -1))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert same_tensors(adapted, model.state_dict(), skip=("conv1.weight",))


# --------------------------------------------------------------------------- matching

def test_matching_ignores_the_head_width_and_stem_channels(r20):
    model, _ = r20
    state = dict(model.state_dict())
    assert [(m.model, m.num_classes, m.in_chans) for m in match_architectures(state)] == [
        ("resnet20", 10, 3)]
    state["fc.weight"], state["fc.bias"] = torch.ones(7, 64), torch.ones(7)
    state["conv1.weight"] = torch.ones(16, 1, 3, 3)
    assert [(m.model, m.num_classes, m.in_chans) for m in match_architectures(state)] == [
        ("resnet20", 7, 1)]
    del state["fc.weight"], state["fc.bias"]
    assert [(m.model, m.num_classes) for m in match_architectures(state)] == [("resnet20", None)]


def test_every_registered_model_is_a_matching_candidate():
    """Candidates are built on the meta device without initialisation; none may be lost."""
    from cnnlab.pretrained import _signature, _variants

    lost = [(n, kw) for n in cnnlab.list_models() for kw in _variants(n)
            if _signature(n, tuple(sorted(kw.items()))) is None]
    assert lost == []
    shapes, cls, stem, model = _signature("googlenet", ())
    assert model is None  # kept only for models that convert layouts
    with torch.device("meta"):
        real = cnnlab.create_model("googlenet").state_dict()
    assert shapes == {k: tuple(v.shape) for k, v in real.items()} | {
        k: (997, *real[k].shape[1:]) for k in cls}
    assert sorted(cls) == sorted(cnnlab.create_model("googlenet").classifier_keys())
    assert stem == "conv1.conv.weight"
    # initialisation is restored after the meta builds
    assert torch.Tensor.normal_.__name__ == "normal_" and torch.nn.init.normal_.__name__ == \
        "normal_"


def test_matching_names_the_aux_configuration():
    with torch.device("meta"):
        sd = cnnlab.create_model("googlenet", aux_logits=False).state_dict()
    state = {k: torch.empty(v.shape, device="meta") for k, v in sd.items()}
    assert [(m.model, m.kwargs) for m in match_architectures(state)] == [
        ("googlenet", {"aux_logits": False})]


def test_cli_inspect(r20, capsys, tmp_path):
    from cnnlab.cli import main

    model, path = r20
    assert main(["weights", "inspect", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    sd = model.state_dict()
    assert info["tensors"] == len(sd)
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["dtypes"] == {"float32": sum(v.is_floating_point() for v in sd.values()),
                              "int64": sum(k.endswith("num_batches_tracked") for k in sd)}
    assert info["matches"] == [{"model": "resnet20", "kwargs": {}, "num_classes": 10,
                                "in_chans": 3}]
    assert info["classifier_width"] == 10 and info["container"] == "state_dict"
    import hashlib
    assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert main(["weights", "inspect", str(path)]) == 0
    assert "matches     resnet20: 10 classes, 3 input channels" in capsys.readouterr().out
    (tmp_path / "cut.pth").write_bytes(path.read_bytes()[:1000])
    assert main(["weights", "inspect", str(tmp_path / "cut.pth")]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.startswith("cnnlab weights: error: ")
    assert out.err.count("\n") == 1


def test_torchvision_reference_parameter_count(tmp_path):
    """inspect counts parameters as torchvision's metadata does (buffers aside)."""
    from cnnlab.pretrained import inspect_weights

    rec = reference_record("torchvision:shufflenet_v2_x0_5")
    state = {k: torch.zeros(s) for k, s in rec["state_dict"]}
    buf = io.BytesIO()
    torch.save(state, buf)
    (tmp_path / "s.pth").write_bytes(buf.getvalue())
    info = inspect_weights(tmp_path / "s.pth")
    assert info["parameters"] == rec["params"]
    assert [m["model"] for m in info["matches"]] == ["shufflenet_v2_x0_5"]
    assert os.path.getsize(tmp_path / "s.pth") == info["size_bytes"]


# --------------------------------------------------------------------------- fine-tuning

SYN3 = "synthetic:classes=3,size=3x32x32,train=48,val=16,test=16"


def _train(tmp_path, name, **kw):
    from cnnlab.training.trainer import TrainConfig, train

    settings = dict(model="resnet20", data=SYN3, epochs=1, batch_size=16, lr=0.05,
                    runs_dir=str(tmp_path), name=name, plots=False, threads=1)
    cfg = TrainConfig(**{**settings, **kw})
    lines = []
    results = train(cfg, log=lines.append, progress=False)
    return results, lines, tmp_path / name


def test_freeze_features_keeps_weights_and_bn_statistics_bit_for_bit(r20, tmp_path, capsys):
    import hashlib

    from safetensors.torch import load_file

    from cnnlab.cli import main

    model, path = r20
    src = model.state_dict()
    results, lines, run = _train(tmp_path, "frozen", weights=str(path), freeze="features",
                                 epochs=2)
    out = load_file(run / "model.safetensors")
    body = [k for k in src if not k.startswith("fc.")]
    assert all(torch.equal(out[k], src[k]) for k in body)  # running_mean/var, counters too
    assert out["fc.weight"].shape == (3, 64)
    assert "resnet20: new classifier for 3 classes, freshly initialised: fc.weight 10x64 -> " \
           "3x64, fc.bias 10 -> 3" in lines
    assert "--freeze features: 195 classifier parameters train, 269,072 are frozen (and their " \
           "BatchNorm statistics, in eval mode)" in lines  # 3 x 64 + 3; 269,722 - (10 x 64 + 10)
    config = json.loads((run / "config.json").read_text())
    assert config["weights"]["file"] == "resnet20.pth"
    assert config["weights"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert config["weights"]["replaced"] == ["fc.weight 10x64 -> 3x64", "fc.bias 10 -> 3"]
    # Without freezing, the same run moves the body and its BN statistics.
    _, _, run2 = _train(tmp_path, "unfrozen", weights=str(path))
    out2 = load_file(run2 / "model.safetensors")
    assert not torch.equal(out2["bn1.running_mean"], src["bn1.running_mean"])
    assert not torch.equal(out2["layer1.0.conv1.weight"], src["layer1.0.conv1.weight"])
    # evaluate uses what the run recorded.
    assert main(["evaluate", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["top1"] == pytest.approx(results["test_top1"])


def test_head_lr_gets_its_own_parameter_group(r20):
    from cnnlab.training.finetune import freeze_features
    from cnnlab.training.trainer import TrainConfig, make_optimizer

    cfg = TrainConfig(model="resnet20", lr=0.01, head_lr=0.5)
    model = cnnlab.create_model("resnet20", num_classes=3)
    groups = make_optimizer(cfg, model).param_groups
    assert [g["lr"] for g in groups] == [0.01, 0.5]
    assert [sum(p.numel() for p in g["params"]) for g in groups] == [269_722 - 650, 195]
    freeze_features(model)
    groups = make_optimizer(cfg, model).param_groups
    assert [(g["lr"], len(g["params"])) for g in groups] == [(0.5, 2)]
    plain = make_optimizer(TrainConfig(model="resnet20", lr=0.01), model).param_groups
    assert [(g["lr"], len(g["params"])) for g in plain] == [(0.01, 2)]


def test_frozen_part_stays_in_eval_mode(r20):
    from cnnlab.training.finetune import apply_frozen_modes, freeze_features

    model = cnnlab.create_model("googlenet", num_classes=3)
    freeze_features(model)
    model.train()
    apply_frozen_modes(model, True)
    training = {n for n, m in model.named_modules() if m.training}
    assert training == {"", "fc", "aux1", "aux1.fc2", "aux2", "aux2.fc2"}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias", "aux1.fc2.weight", "aux1.fc2.bias",
                         "aux2.fc2.weight", "aux2.fc2.bias"}


def test_imagenet_models_from_a_file_default_to_imagenet_normalisation(tmp_path):
    from cnnlab.training.finetune import start_from_weights
    from cnnlab.training.trainer import TrainConfig

    model = cnnlab.create_model("shufflenet_v2_x0_5", num_classes=5)
    torch.save(model.state_dict(), tmp_path / "s.pth")
    cfg = TrainConfig(model="shufflenet_v2_x0_5", weights=str(tmp_path / "s.pth"))
    fin = start_from_weights(cfg, model, 3, ((0.5,), (0.25,)))
    assert fin["mean"] == (0.485, 0.456, 0.406) and fin["std"] == (0.229, 0.224, 0.225)
    assert any("ImageNet normalisation" in n for n in fin["notes"])
    assert fin["record"]["normalisation"] == "ImageNet"
    cfg.mean, cfg.std = [0.4], [0.2]
    fin = start_from_weights(cfg, model, 3, ((0.5,), (0.25,)))
    assert (fin["mean"], fin["std"], fin["record"]["normalisation"]) == ((0.4,), (0.2,), "given")
    cfg = TrainConfig(model="shufflenet_v2_x0_5")  # no file: the data's statistics
    assert start_from_weights(cfg, model, 3, ((0.5,), (0.25,)))["mean"] == (0.5,)


@pytest.mark.parametrize("args, message", [
    (["--weights", "{tmp}/missing.pth"], "missing.pth does not exist"),
    (["--weights", "{w}", "--weights-sha256", "00000000"], "SHA-256 is"),
    (["--head-lr", "-1"], "--head-lr must be positive"),
    (["--weights-sha256", "00000000"], "--weights-sha256 checks the file given with --weights"),
])
def test_train_bad_weights_input_writes_nothing(r20, tmp_path, capsys, args, message):
    from cnnlab.cli import main

    _, path = r20
    args = [a.format(tmp=tmp_path, w=path) for a in args]
    assert main(["train", "resnet32", "--data", SYN3, "--runs-dir", str(tmp_path / "runs"),
                 *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_train_with_another_architectures_file_writes_nothing(r20, tmp_path, capsys):
    from cnnlab.cli import main

    _, path = r20
    assert main(["train", "resnet32", "--data", SYN3, "--weights", str(path),
                 "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.rstrip().endswith("the file matches resnet20")
    assert not (tmp_path / "runs").exists()


def test_resume_keeps_the_freeze_without_reading_the_file_again(r20, tmp_path):
    import shutil

    from safetensors.torch import load_file

    from cnnlab.training.trainer import TrainConfig, train

    model, path = r20
    shutil.copy(path, tmp_path / "src.pth")
    _, _, run = _train(tmp_path, "ft", weights=str(tmp_path / "src.pth"), freeze="features")
    (tmp_path / "src.pth").unlink()
    cfg = TrainConfig(model="resnet20", data=SYN3, epochs=2, runs_dir=str(tmp_path), name="ft",
                      threads=1, plots=False)
    results = train(cfg, resume=True, log=lambda *a: None, progress=False)
    assert results["epochs"] == 2
    out, src = load_file(run / "model.safetensors"), model.state_dict()
    assert all(torch.equal(out[k], src[k]) for k in src if not k.startswith("fc."))
    config = json.loads((run / "config.json").read_text())
    assert config["weights"]["file"] == "src.pth" and config["train"]["freeze"] == "features"
