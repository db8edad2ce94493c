"""Mutation-audit test for the resume guarantee (issue 21): the checkpoint's RNG state puts
NumPy's global generator (and Python's and torch's) back exactly, cached Gaussian included,
also after a trip through the checkpoint file."""

from __future__ import annotations

import random

import numpy as np
import torch

from cnnlab.training.checkpoint import rng_state, set_rng_state


def draws():
    return (np.random.rand(4).tolist(), np.random.randn(3).tolist(), random.random(),
            torch.rand(3).tolist())


def test_resume_restores_numpy_python_and_torch_global_generators(tmp_path):
    np.random.seed(7)
    random.seed(7)
    torch.manual_seed(7)
    np.random.randn(1)                    # an odd number of normals: a Gaussian is cached
    state = rng_state()
    path = tmp_path / "rng.pt"
    torch.save(state, path)
    expected = draws()
    np.random.seed(12345)                 # what a fresh process (or other code) would do
    random.seed(12345)
    torch.manual_seed(12345)
    assert draws() != expected
    set_rng_state(torch.load(path, weights_only=True))
    assert draws() == expected
