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
                   "100001", "--out", tmp_path / "out.png")
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

    from cnnlab import filters

    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "photo.png")
    monkeypatch.setattr(filters, "apply_filter", fail)
    argv = ["filter", tmp_path / "photo.png", "--kernel", "box", "--out", tmp_path / "o.png"]
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
    (["filter", "x.png", "-o", "y.png"], "cnnlab filter"),
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
    res = run_main(capsys, "scratch", "train", "--epochs", "1", "--limit", "20", "--out", out,
                   "--no-progress")
    one_line_error(res, f"{out} already holds a saved model (scratch_lenet5.npz)",
                   "--overwrite")
    assert (out / "scratch_lenet5.npz").read_bytes() == b"mine"
    assert not (out / "scratch_config.json").exists()
    res = run_main(capsys, "scratch", "train", "--epochs", "1", "--limit", "20", "--out", out,
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
