import json

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.errors import CheckpointError
from cnnlab.weights import load_run_model, load_weights, save_run_model, save_weights
from tests.helpers import one_line_error, run_main


def test_run_folder_round_trip(tmp_path):
    model = cnnlab.create_model("lenet5", num_classes=4).eval()
    # a complete config: the opener checks it against the run-config schema (cnnlab.resolve)
    save_run_model(tmp_path, model, {"model": "lenet5", "model_kwargs": {"num_classes": 4},
                                     "input_size": [1, 32, 32], "classes": list("abcd"),
                                     "mean": [0.5], "std": [0.5]})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    loaded, config = load_run_model(tmp_path)
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(model(x), loaded(x))
    assert config["model_kwargs"] == {"num_classes": 4}


def test_weights_that_do_not_fit_are_refused(tmp_path):
    save_weights(cnnlab.create_model("lenet5", num_classes=4), tmp_path / "w.safetensors")
    with pytest.raises(CheckpointError, match="does not fit the model"):
        load_weights(cnnlab.create_model("lenet5", num_classes=10), tmp_path / "w.safetensors")


def test_corrupt_weights_and_foreign_folders_are_refused(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    (tmp_path / "config.json").write_text(json.dumps(
        {"model": "lenet5", "input_size": [1, 32, 32], "classes": [str(i) for i in range(10)],
         "mean": [0.5], "std": [0.5]}))
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_run_model(tmp_path)
    with pytest.raises(CheckpointError, match="is not a cnnlab run"):
        load_run_model(tmp_path / "missing")


def test_load_weights_reads_pytorch_files_too(tmp_path):
    model = cnnlab.create_model("lenet5", num_classes=4).eval()
    torch.save({"state_dict": {"module." + k: v for k, v in model.state_dict().items()}},
               tmp_path / "w.pth")
    loaded = load_weights(cnnlab.create_model("lenet5", num_classes=4).eval(), tmp_path / "w.pth")
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(model(x), loaded(x))


def test_load_weights_converts_a_layout_the_family_knows(tmp_path):
    """A timm-layout VGG head (pre_logits convolutions, head.fc), here on a VGG-11 whose weights
    are the model's own: load_weights gives back the same tensors."""
    torch.manual_seed(0)
    model = cnnlab.create_model("vgg11", num_classes=3)
    names = {"classifier.0": "pre_logits.fc1", "classifier.3": "pre_logits.fc2",
             "classifier.6": "head.fc"}
    timm = {}
    for k, v in model.state_dict().items():
        module, _, leaf = k.rpartition(".")
        if module in names:
            k = f"{names[module]}.{leaf}"
            if leaf == "weight" and module != "classifier.6":  # timm's 7x7 and 1x1 convolutions
                v = v.reshape(v.shape[0], -1, *((7, 7) if module == "classifier.0" else (1, 1)))
        timm[k] = v
    assert tuple(timm["pre_logits.fc1.weight"].shape) == (4096, 512, 7, 7)
    torch.save(timm, tmp_path / "vgg11_timm.pth")
    loaded = load_weights(cnnlab.create_model("vgg11", num_classes=3), tmp_path / "vgg11_timm.pth")
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


# moved from tests/test_hardening2.py (issue 22)
# ------------------------------------------------------------- weights with NaN / inf


def test_weights_with_nan_or_inf_are_refused_unless_allowed(capsys, tmp_path):
    from cnnlab.errors import CheckpointError
    from cnnlab.weights import load_weights, save_weights

    model = cnnlab.create_model("lenet5")
    with torch.no_grad():
        model.features.c1.weight[0, 0, 0, 0] = float("nan")
        model.f6.bias[3] = float("inf")
    save_weights(model, tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match=r"2 tensors hold NaN or infinite values "
                                              r"\(features.c1.weight, f6.bias\)"):
        load_weights(cnnlab.create_model("lenet5"), tmp_path / "bad.safetensors")
    fresh = load_weights(cnnlab.create_model("lenet5"), tmp_path / "bad.safetensors",
                         allow_nonfinite=True)
    assert torch.isnan(fresh.features.c1.weight[0, 0, 0, 0])
    from PIL import Image

    from cnnlab.weights import save_run_model

    save_run_model(tmp_path / "run", model, {
        "model": "lenet5", "model_kwargs": {}, "input_size": [1, 32, 32],
        "classes": [str(i) for i in range(10)], "mean": [0.5], "std": [0.5]})
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "digit.png")
    res = run_main(capsys, "predict", tmp_path / "run", tmp_path / "digit.png")
    one_line_error(res, "2 tensors hold NaN or infinite values (features.c1.weight, f6.bias)",
                   "--allow-nonfinite")
    res = run_main(capsys, "predict", tmp_path / "run", tmp_path / "digit.png",
                   "--allow-nonfinite")
    assert res.returncode == 0, res.stderr
    res = run_main(capsys, "weights", "inspect", tmp_path / "bad.safetensors")  # shows them
    assert res.returncode == 0 and "hold NaN or infinite values (features.c1.weight" in res.stdout
