"""Shared fixtures: the seeded RNG, the CLI runner, the trained runs the CLI tests share.

The helpers themselves (paths, reference records, ``run_main``, ``run_cli``,
``one_line_error``) are in ``tests/helpers/``; tests/README.md says which folder holds what.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.helpers import (
    REFERENCE_DIR,
    REPO,
    _reference_file,
    converted,
    reference_record,
    run_cli,
    run_main,
)

# The helpers that were defined here before tests/helpers/ existed, still importable from here
# for test files written then (new code imports them from tests.helpers).
__all__ = ["REFERENCE_DIR", "REPO", "_reference_file", "converted", "reference_record",
           "run_cli"]

# The synthetic data of the shared lenet5 run (3 classes of 32x32 gray images) and of the
# tiny run the fuzz test points at (2 classes of 8x8).
SYN = "synthetic:classes=3,size=1x32x32,train=48,val=0,test=30"
SYN_8X8 = "synthetic:classes=2,size=1x8x8,train=16,val=4,test=4"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@contextlib.contextmanager
def _global_state_kept():
    """torch's thread count and deterministic-algorithms switch, the random generators (torch,
    NumPy, Python) and the working folder, as they were: a command's ``--threads 1``,
    ``--deterministic`` or seeding would otherwise stay for the rest of the test or session (a
    process would have exited)."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    rng = torch.get_rng_state(), np.random.get_state(), random.getstate()
    cwd = os.getcwd()
    try:
        yield
    finally:
        os.chdir(cwd)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        torch.set_rng_state(rng[0])
        np.random.set_state(rng[1])
        random.setstate(rng[2])


@pytest.fixture
def cli(capsys, monkeypatch):
    """``cli(*args, cwd=None, env=None)``: the ``cnnlab`` command ARGS through
    ``cnnlab.cli.main`` in this process (``run_main``), from the folder ``cwd`` and with the
    extra environment variables ``env``; returns ``returncode``, ``stdout``, ``stderr`` like a
    finished process. The real process is ``tests.helpers.run_cli`` (smoke tests only)."""
    monkeypatch.setenv("COLUMNS", "120")  # as run_cli sets it: tables are not wrapped

    def call(*args, cwd=None, env=None, timeout=None):
        del timeout  # run_cli's argument; an in-process call is not killed
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        with _global_state_kept():
            if cwd is not None:
                os.chdir(cwd)
            return run_main(capsys, *args)
    return call


def _main(argv: list[str]) -> SimpleNamespace:
    """``cnnlab.cli.main(argv)`` with its output captured and the global state kept; it must
    succeed."""
    from cnnlab.cli import main

    out, err = io.StringIO(), io.StringIO()
    with _global_state_kept(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    res = SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())
    assert code == 0, f"cnnlab {' '.join(map(str, argv))} exited {code}: {res.stderr}"
    return res


class TrainedRuns:
    """The small runs the CLI tests share, each trained (in this process, through
    ``cnnlab.cli.main``) the first time a test asks for it and then kept for the session.

    Tests must not change them: a test that resumes or edits a run copies it first
    (``shutil.copytree``). Each property is a run folder; ``<name>_output`` holds what its
    training printed (``returncode``, ``stdout``, ``stderr``).
    """

    def __init__(self, root: Path):
        self.root = root

    @cached_property
    def _lenet5_synthetic(self):
        runs = self.root / "lenet5-synthetic"
        res = _main(["train", "lenet5", "--model-arg", "activation=relu", "--data", SYN,
                     "--epochs", "2", "--batch-size", "16", "--lr", "0.01",
                     "--runs-dir", runs, "--threads", "1"])
        return runs / "lenet5-synthetic", res  # the default name: model-data

    @property
    def lenet5_synthetic(self) -> Path:
        """lenet5 (ReLU), 2 epochs on ``SYN`` (3 classes, 30 test images), with plots."""
        return self._lenet5_synthetic[0]

    @property
    def lenet5_synthetic_output(self) -> SimpleNamespace:
        return self._lenet5_synthetic[1]

    @cached_property
    def _skip_bad(self):
        root = self.root / "skip-bad"
        import numpy as np
        from PIL import Image

        rng = np.random.default_rng(0)
        for c in ("left", "right"):
            (root / "data" / c).mkdir(parents=True)
            for i in range(8):
                a = rng.integers(0, 60, (8, 8), dtype=np.uint8)
                a[:, :4] += 150 if c == "left" else 0
                a[:, 4:] += 150 if c == "right" else 0
                Image.fromarray(a).save(root / "data" / c / f"{i}.png")
        (root / "data" / "left" / "notes.png").write_text("not an image")
        (root / "data" / "empty").mkdir()
        res = _main(["train", "lenet5", "--data", root / "data", "--epochs", "1",
                     "--skip-bad", "--runs-dir", root / "runs", "--name", "tiny",
                     "--no-plots", "--batch-size", "4"])
        return root / "runs" / "tiny", res

    @property
    def skip_bad(self) -> Path:
        """lenet5, 1 epoch with ``--skip-bad`` on a gray image folder (``../../data``: 2
        classes of 8 images, one file that is not an image, one empty class folder)."""
        return self._skip_bad[0]

    @property
    def skip_bad_output(self) -> SimpleNamespace:
        return self._skip_bad[1]

    @cached_property
    def lenet5_8x8(self) -> Path:
        """lenet5, 1 epoch on ``SYN_8X8`` (2 classes, 4 test images), no plots: the quickest
        run folder."""
        _main(["train", "lenet5", "--data", SYN_8X8, "--epochs", "1", "--threads", "1",
               "--runs-dir", self.root / "8x8", "--name", "r", "--no-plots"])
        return self.root / "8x8" / "r"

    @cached_property
    def scratch_digits(self) -> Path:
        """The NumPy LeNet-5 (``scratch train``), 1 epoch on the bundled digits."""
        _main(["scratch", "train", "--epochs", "1", "-o", self.root / "np-digits",
               "--no-progress"])
        return self.root / "np-digits"

    @cached_property
    def scratch_limit20(self) -> Path:
        """The NumPy LeNet-5, 1 epoch on 20 digits (``--limit 20``)."""
        _main(["scratch", "train", "--epochs", "1", "--limit", "20", "--no-progress",
               "-o", self.root / "np-20"])
        return self.root / "np-20"


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory) -> TrainedRuns:
    """The shared runs (``TrainedRuns``), trained once per session into one temporary folder."""
    return TrainedRuns(tmp_path_factory.mktemp("trained-runs"))
