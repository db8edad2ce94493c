"""Mutation-audit test for ``cnnlab.weights.atomic_write`` (issue 21): the temporary file is
fsync'ed before it is renamed into place (``durable=True``, the default, also for
checkpoints), and not with ``durable=False``."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from cnnlab.training.checkpoint import save_checkpoint
from cnnlab.weights import atomic_write, atomic_write_bytes


@pytest.fixture
def calls(monkeypatch):
    """Record os.fsync (with the name of the file behind the descriptor) and os.replace."""
    seen = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        seen.append(("fsync", os.fstat(fd).st_ino, os.fstat(fd).st_size))
        return real_fsync(fd)

    def replace(src, dst):
        seen.append(("replace", os.stat(src).st_ino, str(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return seen


def test_the_data_is_synced_to_disk_before_the_rename(tmp_path, calls):
    path = tmp_path / "model.safetensors"
    atomic_write_bytes(path, b"x" * 1000)
    assert [c[0] for c in calls] == ["fsync", "replace"]
    (_, synced, size), (_, renamed, dst) = calls
    assert synced == renamed == path.stat().st_ino    # the file synced is the file renamed
    assert size == 1000 and dst == str(path)           # ... after all its bytes were written


def test_durable_false_skips_the_fsync_but_not_the_rename(tmp_path, calls):
    path = tmp_path / "plot.png"
    with atomic_write(path, durable=False) as f:
        f.write(b"png")
    assert [c[0] for c in calls] == ["replace"] and path.read_bytes() == b"png"


def test_checkpoints_are_durable(tmp_path, calls):
    save_checkpoint(tmp_path / "checkpoint.pt", {"model": {"w": torch.zeros(2)}})
    assert [c[0] for c in calls] == ["fsync", "replace"]


# moved from tests/test_hardening2.py (issue 22)
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


# moved from tests/test_hardening2.py (issue 22)
def test_errors_name_the_users_file_not_the_temporary_one(tmp_path):
    from cnnlab.weights import atomic_write_bytes

    (tmp_path / "config.json").mkdir()  # a folder where the file should go
    with pytest.raises(OSError) as err:
        atomic_write_bytes(tmp_path / "config.json", b"{}")
    assert ".tmp" not in str(err.value) and str(tmp_path / "config.json") in str(err.value)
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temporary file left
