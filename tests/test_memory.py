"""Sizes that cannot fit (cnnlab.memory): refused before anything is allocated, with the
estimate and the option to change; an allocation that still fails is one line. Through the
real entry point (``cnnlab.cli.main`` in this process)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cnnlab
from tests.helpers import one_line_error, run_main

# moved from tests/test_hardening2.py (issue 22)
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
