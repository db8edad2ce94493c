"""The seeded weight fill of tests/reference/outputs/README.md, for comparing forward passes.

Reference implementations (torchvision 0.28, timm 1.0) computed logits and feature maps with
their state_dict filled by this procedure; a cnnlab model whose state_dict has the same keys
and shapes gets the same numbers, so a forward-order bug (a ReLU before a BN, a skipped
channel shuffle, a wrong branch order in a concatenation) shows as a different output.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import torch
from torch import nn

OUTPUTS_DIR = Path(__file__).resolve().parents[1] / "reference" / "outputs"


def seeded_fill_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Overwrite every floating state_dict entry of ``model`` in place, in sorted key order."""
    state = model.state_dict()
    with torch.no_grad():
        for key, new in seeded_values(state, seed):
            state[key].copy_(new)
    return model


def seeded_values(state: dict, seed: int = 0):
    """(key, drawn tensor) for each floating entry of ``state`` (tensors, possibly on the meta
    device), in sorted key order: the README's procedure, step 2."""
    g = torch.Generator().manual_seed(seed)
    for key in sorted(state):
        t = state[key]
        if not t.is_floating_point():  # num_batches_tracked
            continue
        if key.endswith("running_var"):
            new = 0.75 + 0.5 * torch.rand(t.shape, generator=g)
        elif key.endswith("running_mean"):
            new = 0.1 * torch.randn(t.shape, generator=g)
        elif t.dim() > 1:  # conv / linear weight
            new = torch.randn(t.shape, generator=g) * (2 / t[0].numel()) ** 0.5
        elif key.endswith("weight"):  # norm scale
            new = 1 + 0.1 * torch.randn(t.shape, generator=g)
        else:  # biases, norm shifts
            new = 0.1 * torch.randn(t.shape, generator=g)
        yield key, new


def reference_input(shape, seed: int = 1) -> torch.Tensor:
    """The README's input: ``torch.randn(shape, generator=torch.Generator().manual_seed(1))``."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@cache
def logits_index() -> dict:
    """``index.json``: per model its source, input shape, aux_logits setting."""
    return json.loads((OUTPUTS_DIR / "index.json").read_text())["models"]


@cache
def reference_logits() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(OUTPUTS_DIR / "logits.safetensors")


def relative_error(y: torch.Tensor, ref: torch.Tensor) -> float:
    """The README's comparison: largest absolute difference over the largest reference value."""
    return ((y - ref).abs().max() / ref.abs().max()).item()
