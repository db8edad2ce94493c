"""cnnlab.resolve: one opener for a name, a run folder, model.safetensors, checkpoint.pt, a
weights file and a scratch run, and the same one-line error for the same bad spec through
every command that takes a model."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.cli import main
from cnnlab.errors import CheckpointError, UnknownModelError
from cnnlab.resolve import DeviceError, classify, open_source, usable_device

CLASSES = ["class0", "class1", "class2"]  # the synthetic data's names
SYN = "synthetic:classes=3,size=1x8x8,train=12,val=3,test=3"


def _quiet_main(argv) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A trained run (config.json, model.safetensors, checkpoint.pt), a scratch run, an image,
    a foreign weights file, a folder that is no run and a run whose config was hand-edited."""
    from PIL import Image

    root = tmp_path_factory.mktemp("resolve")
    assert _quiet_main(["train", "lenet5", "--data", SYN, "--epochs", "1", "--threads", "1",
                        "--runs-dir", root / "runs", "--name", "r", "--no-plots"]) == 0
    assert _quiet_main(["scratch", "train", "--epochs", "1", "--limit", "20", "--no-progress",
                        "-o", root / "np"]) == 0
    run = root / "runs" / "r"
    Image.fromarray((np.arange(64).reshape(8, 8) * 4).astype(np.uint8)).save(root / "img.png")
    foreign = root / "foreign.pth"
    torch.save(torch.load(run / "checkpoint.pt", weights_only=True)["model"], foreign)
    (root / "empty").mkdir()
    bad = root / "bad"
    bad.mkdir()
    (bad / "model.safetensors").write_bytes((run / "model.safetensors").read_bytes())
    cfg = json.loads((run / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps(dict(cfg, model_kwargs=[1, 2])))
    return {"root": root, "run": run, "scratch": root / "np", "image": root / "img.png",
            "foreign": foreign, "empty": root / "empty", "bad": bad}


def test_classify_names_each_kind(world):
    run = world["run"]
    assert classify("lenet5") == ("name", None)
    assert classify(str(run)) == ("run", run)
    assert classify(str(run / "model.safetensors")) == ("safetensors", run / "model.safetensors")
    assert classify(str(run / "checkpoint.pt")) == ("checkpoint", run / "checkpoint.pt")
    assert classify(str(world["foreign"])) == ("weights", world["foreign"])
    assert classify(str(world["scratch"])) == ("scratch", world["scratch"])


def test_a_run_opens_the_same_through_its_folder_file_and_checkpoint(world):
    run, x = world["run"], torch.randn(2, 1, 32, 32)
    folder = open_source(run)
    st = open_source(run / "model.safetensors")
    ck = open_source(run / "checkpoint.pt")
    assert (folder.kind, st.kind, ck.kind) == ("run", "safetensors", "checkpoint")
    for src in (folder, st, ck):
        assert src.name == "lenet5" and src.classes == CLASSES and src.trained
        assert src.data_config.input_size == (1, 32, 32) and not src.model.training
        assert src.preprocess.channels == 1
    with torch.no_grad():
        assert torch.equal(folder.model(x), st.model(x))
        ref = cnnlab.create_model("lenet5", **ck.model_kwargs).eval()
        ref.load_state_dict(torch.load(run / "checkpoint.pt", weights_only=True)["model"])
        assert torch.equal(ck.model(x), ref(x))


def test_a_checkpoint_copied_out_of_its_run_still_opens(world, tmp_path):
    import shutil

    copy = tmp_path / "best.pt"
    shutil.copy(world["run"] / "checkpoint.pt", copy)
    assert classify(str(copy))[0] == "weights"  # by its place it could be any weights file
    src = open_source(copy)  # but it is a cnnlab checkpoint: its own config comes with it
    assert src.kind == "checkpoint" and src.classes == CLASSES


def test_a_name_is_seeded_and_a_weights_file_goes_into_a_named_architecture(world):
    x = torch.randn(1, 1, 32, 32)
    a, b = open_source("lenet5"), open_source("lenet5")
    assert a.kind == "name" and not a.trained and a.weights == "random (seed 0)"
    with torch.no_grad():
        assert torch.equal(a.model(x), b.model(x))
    w = open_source("lenet5", weights=world["run"])  # a run folder given with --weights
    assert w.kind == "weights" and w.classes == CLASSES and w.config is not None
    f = open_source("lenet5", weights=world["foreign"])  # no config: indices, data_config
    assert f.kind == "weights" and f.config is None and f.classes == ["0", "1", "2"]
    with torch.no_grad():
        assert torch.equal(w.model(x), open_source(world["run"], ema=False).model(x))
        assert torch.equal(f.model(x), open_source(world["run"] / "checkpoint.pt").model(x))


def test_a_scratch_run_gives_the_numpy_networks_logits(world):
    src = open_source(world["scratch"])
    net, cfg = src.scratch
    assert src.kind == "scratch" and src.name == "lenet5"
    size = int(cfg["input_size"])
    x = np.random.default_rng(0).standard_normal((2, 1, size, size)).astype(np.float32)
    with torch.no_grad():
        got = src.model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, net.forward(x), atol=1e-4)
    assert src.input_size == (1, size, size)  # the engine's 28 (or 32), not LeNet-5's native


def test_predict_and_visualize_take_a_scratch_run(world, tmp_path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["predict", str(world["scratch"]), str(world["image"]), "--json"]) == 0
        (item,) = json.loads(out.getvalue())
        assert len(item["top"]) == 5 and item["top"][0]["class"] in list("0123456789")
        assert main(["visualize", str(world["scratch"]), "--filters", "--features",
                     str(world["image"]), "-o", str(tmp_path)]) == 0
    assert (tmp_path / "filters.png").is_file() and (tmp_path / "feature_maps.png").is_file()


@pytest.mark.parametrize("spec, kwargs, error, message", [
    ("{root}/no-such-run", {}, CheckpointError, "no-such-run does not exist"),
    ("{root}/w.safetensors", {}, CheckpointError, "w.safetensors does not exist"),
    ("lenet55", {}, UnknownModelError, "unknown model 'lenet55'"),
    ("{empty}", {}, CheckpointError, "is not a cnnlab run"),
    ("{foreign}", {}, CheckpointError, "is a weights file, not a cnnlab run"),
    ("lenet5", {"need_weights": ""}, CheckpointError, "lenet5 is a model name: give its weights"),
    ("{bad}", {}, CheckpointError, "config key 'model_kwargs' must be"),
    ("{bad}/model.safetensors", {}, CheckpointError, "config key 'model_kwargs' must be"),
    ("{run}", {"weights": "{foreign}"}, CheckpointError, "is a path: give a model name"),
    ("lenet5", {"sha256": "00"}, CheckpointError, "checks the file given with --weights"),
    ("lenet5", {"device": "meta"}, DeviceError, "not supported"),
])
def test_bad_specs_raise_cnnlabs_errors(world, spec, kwargs, error, message):
    fill = {k: str(v) for k, v in world.items()}
    kwargs = {k: v.format(**fill) if isinstance(v, str) else v for k, v in kwargs.items()}
    with pytest.raises(error, match=message):
        open_source(spec.format(**fill), **kwargs)


def test_usable_device_auto_and_unknown_devices():
    want = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert usable_device("auto").type == want
    with pytest.raises(DeviceError, match="use auto, cpu, cuda or mps"):
        usable_device("gpu0")


# Each command that takes a model, with {} where the spec goes.
COMMANDS = {
    "evaluate": ["evaluate", "{}"],
    "predict": ["predict", "{}", "{image}"],
    "export": ["export", "{}", "--format", "torchscript", "-o", "{out}/m.pt"],
    "explore": ["explore", "{}", "-o", "{out}/p.html", "--depth", "1"],
    "visualize": ["visualize", "{}", "--filters", "-o", "{out}"],
    "compare": ["compare", "lenet5", "--no-timing", "--checkpoint", "lenet5={}"],
    "weights inspect": ["weights", "inspect", "{}"],
    "train --resume": ["train", "lenet5", "--resume", "{}", "--runs-dir", "{out}"],
}


def _error_line(world, tmp_path, argv_template, spec) -> str:
    fill = {**{k: str(v) for k, v in world.items()}, "out": str(tmp_path)}
    argv = [a.replace("{}", spec).format(**fill) if "{" in a else a for a in argv_template]
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(argv)
    lines = err.getvalue().strip().splitlines()
    assert code == 2 and len(lines) == 1, (argv, err.getvalue())
    return lines[0].split(": error: ", 1)[1]


@pytest.mark.parametrize("which, commands", [
    ("{root}/no-such-run", list(COMMANDS)),
    ("{root}/no-such-run/checkpoint.pt", list(COMMANDS)),
    ("{bad}", ["evaluate", "predict", "export", "explore", "visualize", "compare"]),
    ("lenet55", ["evaluate", "predict", "export", "explore", "visualize", "compare",
                 "weights inspect"]),
])
def test_the_same_bad_spec_gives_the_same_line_through_every_command(world, tmp_path, which,
                                                                      commands):
    spec = which.format(**{k: str(v) for k, v in world.items()})
    lines = {name: _error_line(world, tmp_path, COMMANDS[name], spec) for name in commands}
    assert len(set(lines.values())) == 1, lines
