"""Mutation-audit test for ``cnnlab.weights.atomic_write`` (issue 21): the temporary file is
fsync'ed before it is renamed into place (``durable=True``, the default, also for
checkpoints), and not with ``durable=False``."""

from __future__ import annotations

import os

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
