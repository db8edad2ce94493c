"""Shared fixtures: seeded RNG, the reference records, a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import torch

REFERENCE_DIR = Path(__file__).parent / "reference"
REPO = Path(__file__).resolve().parents[1]


@cache
def _reference_file(source: str) -> dict:
    return json.loads((REFERENCE_DIR / f"{source}.json").read_text())


def reference_record(ref: str) -> dict:
    """A reference record by name (``"torchvision:resnet50"``, ``"keras:Xception"``).

    Returns ``params`` (trainable parameters), ``state_dict`` (list of (key, shape), or None),
    ``macs`` (or None) and ``input`` as (C, H, W) (or None). The files are copies of
    ``../shared/reference/`` (see tests/reference/REFERENCE_NUMBERS.md for their sources).
    """
    source, key = ref.split(":", 1)
    rec = _reference_file(source)[key]
    if source == "keras":
        params = rec.get("trainable", rec.get("count_params"))
        h, w, c = rec["input"]
        return {"params": params, "state_dict": None, "macs": None, "input": (c, h, w),
                "record": rec}
    _, c, h, w = rec["input"]
    return {"params": rec["params"], "state_dict": [(k, tuple(s)) for k, s in rec["state_dict"]],
            "macs": rec.get("macs"), "input": (c, h, w), "record": rec}


def converted(model, kind: str, x: torch.Tensor):
    """``model`` through ``torch.fx.symbolic_trace`` ("fx"), ``torch.jit.script`` ("script")
    or ``torch.export.export`` with the example input ``x`` ("export")."""
    if kind == "fx":
        return torch.fx.symbolic_trace(model)
    if kind == "script":
        return torch.jit.script(model)
    return torch.export.export(model, (x,)).module()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def run_cli(*args: str, timeout: float = 300, cwd: str | os.PathLike | None = None):
    """Run the real ``cnnlab`` entry point (``python -m cnnlab``) in a subprocess."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), COLUMNS="120")
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=cwd)


@pytest.fixture
def cli():
    return run_cli
