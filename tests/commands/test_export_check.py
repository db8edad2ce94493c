"""Mutation-audit test for ``cnnlab export`` (issue 21): when the written file, loaded back,
does not give the eager model's outputs (or does not run), the command says so and exits 1.
The round trip is made to fail by replacing the loader with one that returns other numbers."""

from __future__ import annotations

import pytest
import torch

import cnnlab.commands.export as export_cmd
from cnnlab.cli import main


def export(capsys, tmp_path, *extra):
    out = tmp_path / "lenet5.pt"
    code = main(["export", "lenet5", "--format", "torchscript", "-o", str(out), *extra])
    std = capsys.readouterr()
    return code, std.out, std.err, out


def test_a_round_trip_that_gives_other_numbers_exits_1(capsys, tmp_path, monkeypatch):
    real = export_cmd.load_file

    def off_by_a_little(fmt, out):
        run = real(fmt, out)
        return lambda x: run(x) * (1 + 1e-2)       # 1 % off: far beyond the tolerance

    monkeypatch.setattr(export_cmd, "load_file", off_by_a_little)
    code, out, err, path = export(capsys, tmp_path)
    assert code == 1
    assert "check failed" in err and "differs from eager PyTorch by 1.00e-02" in err
    assert path.is_file()                          # the file stays for the user to inspect


def test_a_file_that_does_not_run_exits_1(capsys, tmp_path, monkeypatch):
    def broken(fmt, out):
        def run(x):
            raise RuntimeError("no kernel for this op")
        return run

    monkeypatch.setattr(export_cmd, "load_file", broken)
    code, _, err, _ = export(capsys, tmp_path, "--dynamic-batch")
    assert code == 1
    assert "does not run at batch" in err and "RuntimeError: no kernel for this op" in err


def test_the_same_export_with_the_real_loader_exits_0(capsys, tmp_path):
    code, out, err, _ = export(capsys, tmp_path)
    assert code == 0 and "check failed" not in err
    diff = float(out.split("largest relative difference from eager PyTorch: ")[1].split()[0])
    assert diff <= export_cmd.TOLERANCE


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
