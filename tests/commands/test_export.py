"""``cnnlab export``: each format through the CLI, loaded back here at another batch size
and compared with the eager model; a trained run folder; one-line errors."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from cnnlab import create_model
from tests.helpers import run_main


@pytest.fixture
def trained_run(trained_runs):
    """The shared lenet5 run: 2 epochs on 3 classes of synthetic 32x32 images."""
    return trained_runs.lenet5_synthetic


def random_model(name: str, **kwargs):
    """The model the command exports for a registered name (seed 0, eval mode)."""
    torch.manual_seed(0)
    return create_model(name, **kwargs).eval()


def export(capsys, *argv):
    """``cnnlab export ARGV`` in this process."""
    return run_main(capsys, "export", *argv)


def rel(a, b) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def test_onnx_with_dynamic_batch_through_the_cli(cli, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "lenet5.onnx"
    res = cli("export", "lenet5", "--format", "onnx", "-o", str(out), "--dynamic-batch")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == ("lenet5: random weights (not trained); export a run folder for "
                        "trained weights")
    assert lines[1].startswith(f"wrote {out} (onnx, torch.onnx, opset ")
    assert f"{out.stat().st_size / 1000:.1f} kB" in lines[1]
    assert "loaded with onnxruntime; input Nx1x32x32 (dynamic batch)" in lines[2]
    assert "at batch 2" in lines[2] and "at batch 3" in lines[2]
    meta = json.loads((tmp_path / "lenet5.onnx.json").read_text())
    assert meta["input_size"] == [1, 32, 32] and meta["dynamic_batch"] is True
    assert meta["weights"] == "random" and meta["mean"] is None
    # a batch size the command did not try, read back independently
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = torch.randn(5, 1, 32, 32)
    y = torch.from_numpy(session.run(["logits"], {"input": x.numpy()})[0])
    with torch.no_grad():
        assert rel(y, random_model("lenet5")(x)) < 1e-5


@pytest.mark.parametrize("fmt", ["torchscript", "exported-program"])
def test_torch_formats_with_dynamic_batch(capsys, tmp_path, fmt):
    out = tmp_path / "lenet5.bin"
    code, stdout, _ = export(capsys, "lenet5", "--format", fmt, "-o", str(out),
                             "--dynamic-batch")
    assert code == 0
    assert "largest relative difference from eager PyTorch" in stdout
    how = "torch.jit.script)" if fmt == "torchscript" else "torch.export)"
    assert f"wrote {out} ({fmt}, {how}, " in stdout  # scripted, not traced
    if fmt == "torchscript":
        loaded = torch.jit.load(str(out))
    else:
        with open(out, "rb") as f:
            loaded = torch.export.load(f).module()
    x = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        assert rel(loaded(x), random_model("lenet5")(x)) < 1e-5


def test_fixed_batch_is_fixed(capsys, tmp_path):
    out = tmp_path / "lenet5.pt2"
    code, stdout, _ = export(capsys, "lenet5", "--format", "exported-program", "-o", str(out))
    assert code == 0 and "input 1x1x32x32; largest relative difference" in stdout
    with open(out, "rb") as f:
        loaded = torch.export.load(f).module()
    with torch.no_grad():
        loaded(torch.randn(1, 1, 32, 32))
        with pytest.raises(Exception):  # noqa: B017 (torch raises different types here)
            loaded(torch.randn(3, 1, 32, 32))


@pytest.mark.parametrize("name, fmt, size", [
    ("resnet20", "onnx", "3x32x32"),
    ("shufflenet_v2_x0_5", "torchscript", "3x64x64"),
    ("mobilenet_v3_small", "exported-program", "3x64x64"),
])
def test_small_registered_models(capsys, tmp_path, name, fmt, size):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    out = tmp_path / f"{name}.{fmt}"
    code, stdout, stderr = export(capsys, name, "--format", fmt, "-o", str(out), "--input-size",
                                  size, "--dynamic-batch")
    assert code == 0, stderr
    diffs = [float(t.split(" at batch")[0]) for t in stdout.split("PyTorch: ")[1].split(", ")]
    assert len(diffs) == 2 and max(diffs) < 1e-4
    assert json.loads(out.with_name(out.name + ".json").read_text())["input_size"] == [
        int(v) for v in size.split("x")]


def test_run_folder_exports_its_trained_weights_and_preprocessing(trained_run, capsys,
                                                                  tmp_path):
    from cnnlab.weights import load_run_model

    out = tmp_path / "digits.pt2"
    code, stdout, stderr = export(capsys, str(trained_run), "--format", "exported-program",
                                  "-o", str(out))
    assert code == 0, stderr
    assert stdout.splitlines()[0] == f"lenet5: trained weights from {trained_run}"
    assert "input 1x1x32x32; largest relative difference" in stdout
    meta = json.loads((tmp_path / "digits.pt2.json").read_text())
    config = json.loads((trained_run / "config.json").read_text())
    assert meta["weights"] == "trained" and meta["run"] == str(trained_run)
    assert meta["input_size"] == config["input_size"]
    assert meta["mean"] == config["mean"] and meta["std"] == config["std"]
    assert meta["classes"] == config["classes"]
    # digits are resized straight to the input size: no resize-then-crop recorded
    assert meta["data_config"]["resize"] is None
    assert meta["data_config"]["input_size"] == config["input_size"]
    assert meta["preprocess"].startswith("pixels scaled to [0, 1], resize to 32x32 (bilinear)")
    model, _ = load_run_model(trained_run)
    with open(out, "rb") as f:
        loaded = torch.export.load(f).module()
    x = torch.randn(1, *config["input_size"])
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(random_model("lenet5", num_classes=3)(x), model(x), atol=1e-3)


def test_run_folder_without_weights_is_one_line(trained_run, capsys, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(trained_run / "config.json", bare / "config.json")
    code, _, err = export(capsys, str(bare), "--format", "torchscript", "-o",
                          str(tmp_path / "x.pt"))
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("cnnlab export: error: no weights file at ")


@pytest.mark.parametrize("argv, message", [
    (["resnet_18", "--format", "torchscript"], "unknown model 'resnet_18'; did you mean"),
    (["runs/nothing-here", "--format", "torchscript"], "runs/nothing-here does not exist"),
    (["lenet5", "--format", "torchscript", "--input-size", "1x32"], "input size must be CxHxW"),
    (["lenet5", "--format", "torchscript", "--input-size", "3x32x32"],
     "lenet5 was built for 1-channel input, got 3 channels"),
    (["alexnet", "--format", "onnx", "--input-size", "3x32x32"],
     "alexnet needs inputs of at least 63x63, got 32x32"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, argv, message):
    code, out, err = export(capsys, *argv, "-o", str(tmp_path / "m.out"))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("cnnlab export: error: ") and message in err
    assert not (tmp_path / "m.out").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("fmt", ["torchscript", "exported-program"])
def test_an_output_that_cannot_be_written_is_one_line(capsys, fmt):
    """/proc refuses new files even to root (a read-only folder would not stop root): torch's
    own file writers raised a RuntimeError traceback here."""
    code, _, err = export(capsys, "lenet5", "--format", fmt, "-o", "/proc/cnnlab-model.pt")
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("cnnlab export: error: ") and "/proc/" in err


def test_output_that_is_a_folder_is_refused(capsys, tmp_path):
    code, _, err = export(capsys, "lenet5", "--format", "torchscript", "-o", str(tmp_path))
    assert code == 2 and f"-o {tmp_path} is a folder" in err


def test_onnx_without_its_packages_names_the_extra(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    code, out, err = export(capsys, "lenet5", "--format", "onnx", "-o",
                            str(tmp_path / "m.onnx"))
    assert code == 2 and out == ""
    assert err == ("cnnlab export: error: --format onnx needs onnxruntime: "
                   "pip install 'cnnlab[onnx]'\n")
    assert not (tmp_path / "m.onnx").exists()
