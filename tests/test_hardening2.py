"""Issue 22, the second hardening pass: each case of the newcomer's sweep, through the real
entry point (``cnnlab.cli.main`` in this process). Every test here failed on the code before
the fix (run against the previous ``src``)."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import torch

import cnnlab

from .test_hardening import one_line_error
from .test_images import run_main


def parse_error(capsys, *argv):
    """A command-line mistake: the exit code and stderr of ``main`` (argparse exits)."""
    from cnnlab.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    return exc.value.code, capsys.readouterr().err


# ------------------------------------------------------------- sizes that cannot fit


def test_train_input_size_too_large_is_refused_before_allocating(capsys, tmp_path):
    res = run_main(capsys, "train", "lenet5", "--input-size", "3x100000x100000", "--epochs", "1",
                   "--runs-dir", tmp_path / "runs")
    one_line_error(res, "training lenet5 at 3x100000x100000, batch 16 needs at least",
                   "available", "--input-size")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("width", ["1e9", "100"])
def test_train_width_mult_too_large_is_refused(capsys, tmp_path, width):
    res = run_main(capsys, "train", "mobilenet_v1", "--model-arg", f"width_mult={width}",
                   "--epochs", "1", "--runs-dir", tmp_path / "runs")
    one_line_error(res, "training mobilenet_v1", "needs", "available", "--model-arg")


def test_training_estimate_counts_parameters_and_activations(monkeypatch):
    """The refusal comes from the traced shapes: LeNet-5 at its size, batch 16, needs its
    3 copies of the parameters plus one batch's conv/linear outputs; 1 byte less than that
    lower bound is refused, the bound itself is not."""
    from cnnlab import memory
    from cnnlab.errors import ResourceError

    model = cnnlab.create_model("lenet5")
    params = sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())
    acts = 16 * (6 * 28 * 28 + 16 * 10 * 10 + 120 + 84 + 10)
    needed = 4 * (3 * params + 16 * 32 * 32 + acts)
    monkeypatch.setattr(memory, "available_bytes", lambda: needed)
    memory.check_training_fits("lenet5", {}, (1, 32, 32), 16)
    monkeypatch.setattr(memory, "available_bytes", lambda: needed - 1)
    with pytest.raises(ResourceError, match="needs at least"):
        memory.check_training_fits("lenet5", {}, (1, 32, 32), 16)


def test_compare_batch_too_large_is_refused(capsys):
    res = run_main(capsys, "compare", "lenet5", "--batch", "100000000")
    one_line_error(res, "running lenet5 on a batch of 100000000 at 1x32x32 needs at least",
                   "available", "--batch")


def test_filter_kernel_too_large_is_refused(capsys, tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "photo.png")
    res = run_main(capsys, "filter", tmp_path / "photo.png", "--kernel", "box", "--size",
                   "100001", "-o", tmp_path / "out.png")
    one_line_error(res, "a 100001x100001 box kernel needs at least", "available", "--size")
    assert not (tmp_path / "out.png").exists()


def _huge_numpy(*args, **kwargs):
    return np.empty((10**8, 10**8))  # numpy's _ArrayMemoryError: 72 PiB


def _huge_torch(*args, **kwargs):
    return torch.empty(10**16, dtype=torch.uint8)  # "you tried to allocate ..."


def _memory_error(*args, **kwargs):
    raise MemoryError


@pytest.mark.parametrize("fail", [_huge_numpy, _huge_torch, _memory_error])
def test_allocation_failure_that_still_happens_is_one_line(capsys, tmp_path, monkeypatch, fail):
    from PIL import Image

    from cnnlab.lab import filters

    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "photo.png")
    monkeypatch.setattr(filters, "apply_filter", fail)
    argv = ["filter", tmp_path / "photo.png", "--kernel", "box", "-o", tmp_path / "o.png"]
    res = run_main(capsys, *argv)
    one_line_error(res, "cnnlab filter: error: not enough memory")
    res = run_main(capsys, *argv, "--debug")  # the traceback, then the same line and code
    assert res.returncode == 2 and "Traceback" in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("cnnlab filter: error: not enough")


# ---------------------------------------------------------------------------- threads


@pytest.mark.parametrize("argv", [["train", "lenet5", "--epochs", "1"],
                                  ["scratch", "train", "--epochs", "1"],
                                  ["scale-search", "--quick"]], ids=lambda a: a[0])
def test_threads_above_the_usable_cores_are_refused(capsys, tmp_path, argv):
    from cnnlab.training.config import usable_cores

    n = usable_cores()
    res = run_main(capsys, *argv, "--threads", 100000, *(
        ["--runs-dir", tmp_path / "runs"] if argv[0] == "train" else []))
    one_line_error(res, f"--threads 100000 is more than the {n} usable cores",
                   f"give at most {n}")
    with pytest.raises(ValueError, match="usable cores"):
        cnnlab.training.config.TrainConfig(model="lenet5", threads=n + 1).validate()


# ------------------------------------------------------------- command-line mistakes


@pytest.mark.parametrize("argv,prog", [
    (["train", "lenet5", "--epochs", "x"], "cnnlab train"),
    (["filter", "x.png", "--bogus", "y.png"], "cnnlab filter"),  # -o is an option now
    (["scratch", "train", "--bogus"], "cnnlab scratch train"),
    (["nosuchcommand"], "cnnlab"),
])
def test_argparse_mistake_is_one_line_with_the_help_to_read(capsys, argv, prog):
    code, err = parse_error(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and "usage:" not in err, err
    assert err.startswith(f"{prog}: error: ") and err.rstrip().endswith(f"see '{prog} --help'")


# ------------------------------------------------------------- nothing overwritten


def test_scratch_train_refuses_an_out_folder_with_a_saved_model(capsys, tmp_path):
    out = tmp_path / "np"
    out.mkdir()
    (out / "scratch_lenet5.npz").write_bytes(b"mine")
    res = run_main(capsys, "scratch", "train", "--epochs", "1", "--limit", "20", "-o", out,
                   "--no-progress")
    one_line_error(res, f"{out} already holds a saved model (scratch_lenet5.npz)",
                   "--overwrite")
    assert (out / "scratch_lenet5.npz").read_bytes() == b"mine"
    assert not (out / "scratch_config.json").exists()
    res = run_main(capsys, "scratch", "train", "--epochs", "1", "--limit", "20", "-o", out,
                   "--no-progress", "--overwrite")
    assert res.returncode == 0, res.stderr
    assert (out / "scratch_lenet5.npz").read_bytes() != b"mine"


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_atomic_write_honours_the_umask(tmp_path, mask):
    from cnnlab.weights import atomic_write_bytes

    old = os.umask(mask)
    try:
        atomic_write_bytes(tmp_path / "config.json", b"{}", durable=False)
        with open(tmp_path / "plain.json", "w") as f:
            f.write("{}")
    finally:
        os.umask(old)
    got = stat.S_IMODE((tmp_path / "config.json").stat().st_mode)
    assert got == 0o666 & ~mask == stat.S_IMODE((tmp_path / "plain.json").stat().st_mode)


# ------------------------------------------------------------- a run stopped early


def test_resume_of_a_run_stopped_before_its_first_checkpoint_starts_it_again(capsys, tmp_path):
    """The folder such a run leaves (config.json, empty metrics, no checkpoint) was a dead end:
    --resume said "nothing to resume" and the name stayed taken."""
    import json

    from cnnlab.training.config import TrainConfig
    from cnnlab.training.trainer import Trainer

    runs = tmp_path / "runs"
    cfg = TrainConfig(model="lenet5", data="synthetic:classes=2,size=1x8x8,train=32,val=8,test=8",
                      epochs=1, runs_dir=str(runs), name="k", plots=False, batch_size=8,
                      threads=1, lr=0.01)
    trainer = Trainer(cfg, log=lambda *a: None, progress=False)
    with trainer.open():
        trainer.run.write_config(trainer.config)  # what fit() writes first; then killed
    assert sorted(p.name for p in (runs / "k").iterdir() if not p.name.startswith(".")) == [
        "config.json"]
    argv = ["train", "lenet5", "--runs-dir", runs, "--name", "k"]
    res = run_main(capsys, *argv, "--data", cfg.data)
    one_line_error(res, "already exists", "--resume starts it again from the beginning")
    res = run_main(capsys, *argv, "--resume", "--epochs", "2")
    assert res.returncode == 0, res.stderr
    assert "stopped before its first checkpoint: starting it again" in res.stdout
    assert (runs / "k" / "checkpoint.pt").is_file()
    config = json.loads((runs / "k" / "config.json").read_text())
    assert config["train"]["epochs"] == 2 and config["train"]["lr"] == 0.01  # saved settings
    assert config["train"]["batch_size"] == 8 and "resumed" not in config


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


# ------------------------------------------------------------- messages that misled


def _photos(root, n=4, size=(48, 40), colour=True):
    """An image folder of two classes of small photos (JPEG)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = (size[1], size[0], 3) if colour else (size[1], size[0])
            Image.fromarray((rng.random(shape) * 255).astype(np.uint8)).save(
                root / c / f"{i}.jpg", quality=90)
    return root


@pytest.mark.parametrize("extra,needles", [
    (["--mean", "0.5", "0.5", "0.5"], ["--mean has 3 values, but lenet5 takes 1-channel input"]),
    (["--std", "0.2", "0.2"], ["--std has 2 values, but lenet5 takes 1-channel input"]),
    (["--format", "cifar10"], ["--format cifar10 reads files from a folder", "--data PATH"]),
    (["--lr", "inf"], ["--lr must be a finite number, got inf"]),
    (["--weight-decay", "nan"], ["--weight-decay must be a finite number, got nan"]),
    (["--momentum", "inf"], ["--momentum must be a finite number"]),
])
def test_train_option_mistakes_name_the_option(capsys, tmp_path, extra, needles):
    res = run_main(capsys, "train", "lenet5", "--epochs", "1", "--runs-dir", tmp_path / "runs",
                   *extra)
    one_line_error(res, *needles)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_scratch_does_not_advise_the_skip_bad_it_lacks(capsys, tmp_path):
    root = _photos(tmp_path / "photos", colour=False)
    (root / "a" / "broken.png").write_bytes(b"not a png")
    res = run_main(capsys, "scratch", "train", "--data", root, "--epochs", "1")
    one_line_error(res, "broken.png", "fix or remove them")
    assert "--skip-bad" not in res.stderr


def test_a_truncated_jpeg_is_caught_by_the_check_and_skipped(capsys, tmp_path):
    root = _photos(tmp_path / "photos")
    data = (root / "a" / "0.jpg").read_bytes()
    (root / "a" / "0.jpg").write_bytes(data[:len(data) // 2])
    argv = ["train", "lenet5", "--data", root, "--epochs", "1", "--runs-dir", tmp_path / "runs",
            "--no-plots", "--threads", "1"]
    res = run_main(capsys, *argv)
    one_line_error(res, "a/0.jpg", "truncated", "--skip-bad")
    res = run_main(capsys, *argv, "--skip-bad")
    assert res.returncode == 0, res.stderr
    assert "left out 1 of 8 image files" in res.stderr
    # and the console says how the photos are resized (a fine-tune at 224 said nothing)
    assert "input: images of 48x40 pixels (width x height) resized to 32x32" in res.stdout
    assert "top-5" in res.stdout and "n/a" in res.stdout  # 2 classes: top-5 means nothing


def test_a_symbolic_link_loop_is_named_without_the_raw_errno(capsys, tmp_path):
    root = _photos(tmp_path / "photos")
    (root / "a" / "loop.png").symlink_to(root / "a" / "loop.png")
    res = run_main(capsys, "train", "lenet5", "--data", root, "--epochs", "1",
                   "--runs-dir", tmp_path / "runs")
    one_line_error(res, "loop.png: a loop of symbolic links", "fix or remove it")
    assert "Errno" not in res.stderr


def test_idx_labels_with_an_images_magic_are_named_as_such(capsys, tmp_path):
    import struct

    def idx(path, ndim, dims, payload):
        path.write_bytes(struct.pack(">BBBB", 0, 0, 8, ndim)
                         + b"".join(struct.pack(">I", d) for d in dims) + payload)

    for pre in ("train", "t10k"):
        idx(tmp_path / f"{pre}-images-idx3-ubyte", 3, (4, 28, 28), bytes(4 * 28 * 28))
        # a 1-D label file whose magic says 3 dimensions: reported as "truncated" before
        idx(tmp_path / f"{pre}-labels-idx1-ubyte", 3, (4,), bytes(4))
    res = run_main(capsys, "train", "lenet5", "--data", tmp_path, "--epochs", "1",
                   "--runs-dir", tmp_path / "runs")
    one_line_error(res, "train-labels-idx1-ubyte: expected a 1-D label file (magic 00000801)",
                   "announces 3 dimensions")
    assert "truncated" not in res.stderr


def test_errors_name_the_users_file_not_the_temporary_one(tmp_path):
    from cnnlab.weights import atomic_write_bytes

    (tmp_path / "config.json").mkdir()  # a folder where the file should go
    with pytest.raises(OSError) as err:
        atomic_write_bytes(tmp_path / "config.json", b"{}")
    assert ".tmp" not in str(err.value) and str(tmp_path / "config.json") in str(err.value)
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temporary file left


@pytest.mark.parametrize("value", ["-5", "inf", "nan"])
def test_a_negative_pixel_limit_is_refused(monkeypatch, value):
    from cnnlab.data.images import max_image_pixels
    from cnnlab.errors import DataError

    monkeypatch.setenv("CNNLAB_MAX_IMAGE_PIXELS", value)
    with pytest.raises(DataError, match="CNNLAB_MAX_IMAGE_PIXELS=.* is not a number of pixels"):
        max_image_pixels()


@pytest.mark.parametrize("text,value", [("aux_logits=False", False), ("aux_logits=True", True),
                                        ("aux_logits=false", False), ("dropout=None", None)])
def test_model_arg_takes_python_spellings(text, value):
    from cnnlab.commands.train import _model_arg

    assert _model_arg(text) == (text.split("=")[0], value)
    with torch.device("meta"):  # the builder takes it
        cnnlab.create_model("inception_v3", **dict([_model_arg("aux_logits=False")]))


def test_model_arg_nan_is_refused_as_not_a_number(capsys, tmp_path):
    res = run_main(capsys, "train", "mobilenet_v1", "--model-arg", "width_mult=NaN",
                   "--runs-dir", tmp_path / "runs")
    one_line_error(res, "'width_mult' takes a number, got 'NaN'")


def test_evaluate_says_top5_is_meaningless_with_few_classes(capsys, tmp_path):
    from cnnlab.training.config import TrainConfig
    from cnnlab.training.trainer import train

    data = "synthetic:classes=3,size=1x8x8,train=24,val=6,test=6"
    train(TrainConfig(model="lenet5", data=data, epochs=1, runs_dir=str(tmp_path), name="r",
                      plots=False, threads=1), log=lambda *a: None, progress=False)
    res = run_main(capsys, "evaluate", tmp_path / "r")
    assert res.returncode == 0, res.stderr
    assert "top-5 n/a (5 classes or fewer)" in res.stdout


def test_catalog_describes_where_resnet50_puts_its_stride():
    from cnnlab._catalog_data import MODELS

    for name in ("resnet50", "resnet101", "resnet152"):
        doc = MODELS[name]["doc"]
        assert "stride in the 3x3" in doc and "stride_in_1x1=True: the paper's" in doc, doc
    block = cnnlab.create_model("resnet50").layer2[0]
    assert block.conv1.stride == (1, 1) and block.conv2.stride == (2, 2)  # what it says


@pytest.mark.parametrize("call,needle", [
    (lambda: cnnlab.create_model(None), "the argument 'name' takes a model name"),
    (lambda: cnnlab.list_models(123), "list_models' argument 'pattern' takes a string"),
])
def test_python_api_names_the_argument(call, needle):
    from cnnlab.errors import ModelArgumentError

    with pytest.raises(ModelArgumentError, match=needle):
        call()


def test_an_output_file_that_exists_is_not_replaced_without_overwrite(capsys, tmp_path):
    """``-o photo.png`` replaced the photo; every file a command is told to write is now
    refused when it exists (before any work), unless --overwrite."""
    from PIL import Image

    noise = np.random.default_rng(0).integers(0, 255, (16, 16), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "photo.png")
    mine = (tmp_path / "photo.png").read_bytes()
    argv = ["filter", tmp_path / "photo.png", "--kernel", "box", "--figure", "none",
            "-o", tmp_path / "photo.png"]
    res = run_main(capsys, *argv)
    one_line_error(res, "photo.png already exists; -o does not replace", "--overwrite")
    assert (tmp_path / "photo.png").read_bytes() == mine
    assert run_main(capsys, *argv, "--overwrite").returncode == 0
    assert (tmp_path / "photo.png").read_bytes() != mine
    (tmp_path / "chart.png").write_bytes(b"mine")
    res = run_main(capsys, "compare", "lenet5", "--no-timing", "--plot", tmp_path / "chart.png")
    one_line_error(res, "chart.png already exists; --plot does not replace")
    assert (tmp_path / "chart.png").read_bytes() == b"mine"


def test_workers_far_above_the_cores_are_refused(capsys, tmp_path):
    from cnnlab.training.config import usable_cores

    res = run_main(capsys, "train", "lenet5", "--workers", 10**12, "--runs-dir", tmp_path)
    one_line_error(res, f"give at most {4 * usable_cores()}")


def test_compare_keras_says_how_long_and_shows_each_model(capsys):
    """It ran 61 minutes with no output until the end: now an estimate up front, a line per
    model with what is left, and --quick (batch 1, 3 runs)."""
    res = run_main(capsys, "compare", "--keras", "--quick", "mobilenet_v1", "mobilenet_v2")
    assert res.returncode == 0, res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines[0].startswith("timing 2 models at batch 1, 4 runs each: about "), lines
    assert lines[1].startswith("[1/2] mobilenet_v1: ") and lines[1].endswith(" left)")
    assert lines[2].startswith("[2/2] mobilenet_v2: ")
    assert "a batch of 1" in res.stdout
    res = run_main(capsys, "compare", "lenet5", "--quick")
    one_line_error(res, "--quick shortens the Keras table: use it with --keras")


def test_data_path_that_is_a_link_loop_is_one_line(capsys, tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    res = run_main(capsys, "train", "lenet5", "--data", tmp_path / "loop", "--runs-dir",
                   tmp_path / "runs")
    one_line_error(res, "loop: a loop of symbolic links", "fix or remove it")
