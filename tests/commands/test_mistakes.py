"""A user's mistakes on the command line (issue 22's sweep): too many threads or workers,
argparse mistakes, options named in their errors, outputs not replaced without --overwrite,
misleading messages. Through the real entry point (``cnnlab.cli.main`` in this process).
Every test here failed on the code before the fix (run against the previous ``src``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cnnlab
from tests.helpers import one_line_error, run_main


def parse_error(capsys, *argv):
    """A command-line mistake: the exit code and stderr of ``main`` (argparse exits)."""
    from cnnlab.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    return exc.value.code, capsys.readouterr().err


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


def test_filter_output_without_an_image_extension_is_one_line(capsys, tmp_path):
    """``filter -o FOLDER`` (no extension): PIL's "unknown file extension" escaped as a bug
    after the -o spelling came in (found by the fuzz test from a fresh clone)."""
    from PIL import Image

    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "photo.png")
    (tmp_path / "a folder").mkdir()
    res = run_main(capsys, "filter", tmp_path / "photo.png", "--kernel", "box", "--figure",
                   "none", "-o", tmp_path / "a folder")
    one_line_error(res, "give a file name ending in .png")
