"""The build layer (cnnlab.build, cnnlab.factory): arguments checked by signature in one
place, initialisation skipped per thread without patching torch, a registry that only
stores."""

from __future__ import annotations

import ast
import threading

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab import build, factory, registry
from cnnlab.errors import ModelArgumentError
from tests.helpers import REPO


class _Block(nn.Module):
    def __init__(self, width: int, slope: float = 0.0):
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1)
        self.slope = slope


class _Net(nn.Module):
    def __init__(self, depth: int, num_classes: int = 10, **block_kwargs):
        super().__init__()
        self.blocks = nn.Sequential(*[_Block(4, **block_kwargs) for _ in range(depth)])
        self.fc = nn.Linear(4, num_classes)


def test_arguments_are_named_by_signature_not_by_message_text():
    """A builder that sets one of its class's arguments itself, and forwards the rest one level
    deeper than its class (to the blocks): each mistake is attributed to its argument."""
    with registry.temporary_registrations():
        @registry.register_model(input_size=(4, 8, 8))
        def tiny_net(**kwargs) -> _Net:
            return _Net(2, **kwargs)

        assert cnnlab.create_model("tiny_net", slope=0.1).blocks[0].slope == 0.1
        with pytest.raises(ModelArgumentError, match="tiny_net sets 'depth' itself"):
            cnnlab.create_model("tiny_net", depth=3)
        with pytest.raises(ModelArgumentError,
                           match="tiny_net does not take the argument 'colour'; it takes "
                                 "depth, num_classes"):
            cnnlab.create_model("tiny_net", colour=3)
        with pytest.raises(ModelArgumentError, match="'num_classes' takes an integer"):
            cnnlab.create_model("tiny_net", num_classes="ten")
    assert "tiny_net" not in cnnlab.list_models()


def test_registry_is_only_a_store():
    """registry.py imports nothing of cnnlab but its errors, and builds nothing; the old name
    registry.create_model is the factory's."""
    tree = ast.parse((REPO / "src/cnnlab/registry.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level}
    assert imported == {"errors"}
    assert not any(isinstance(n, ast.FunctionDef) and n.name == "create_model"
                   for n in ast.walk(tree))
    assert registry.create_model is factory.create_model is cnnlab.create_model


def test_skipped_init_leaves_torch_unpatched_and_other_threads_alone():
    """Inside the block this thread's meta tensors are not filled; nn.init and Tensor keep
    their functions, a tensor with values is initialised, and another thread at the same time
    initialises as usual."""
    originals = (nn.init.normal_, nn.init.kaiming_uniform_, torch.Tensor.normal_,
                 torch.Tensor.zero_, torch.Tensor.fill_)
    inside, done = threading.Event(), threading.Event()
    seen = {}

    def other_thread():
        inside.wait(10)
        t = torch.zeros(1000)
        nn.init.normal_(t)
        seen["other"] = float(t.std())
        seen["filled"] = float(torch.zeros(3).fill_(2.0).sum())
        done.set()

    worker = threading.Thread(target=other_thread)
    worker.start()
    with build.skipped_init():
        assert (nn.init.normal_, nn.init.kaiming_uniform_, torch.Tensor.normal_,
                torch.Tensor.zero_, torch.Tensor.fill_) == originals
        inside.set()
        assert done.wait(10)
        meta = torch.empty(5, device="meta")
        assert nn.init.normal_(meta) is meta and meta.fill_(1.0) is meta
        values = torch.zeros(1000)
        nn.init.normal_(values)
        assert float(values.std()) > 0.5        # a tensor with values: initialised
    worker.join()
    assert seen["other"] > 0.5 and seen["filled"] == 6.0


def test_skipped_init_builds_the_same_meta_model():
    """Skipping initialisation changes nothing a meta build shows (keys, shapes, dtypes)."""
    with torch.device("meta"):
        plain = build.build_model("mobilenet_v2", num_classes=7)
        with build.skipped_init():
            fast = build.build_model("mobilenet_v2", num_classes=7)
    shapes = {k: (v.shape, v.dtype) for k, v in plain.state_dict().items()}
    assert shapes == {k: (v.shape, v.dtype) for k, v in fast.state_dict().items()}
