"""Mutation-audit tests for one training step (issue 21): ``--clip-grad`` clips the gradient
by its global norm (direction kept), not each element by value; ``--amp bf16`` and
``--amp fp16`` autocast to those types."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.training.config import TrainConfig
from cnnlab.training.loop import Learner, autocast_for


def one_step(clip):
    """A linear 3 -> 2 layer, SGD lr 1 without momentum or decay: the step is -grad."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]]))
        model.bias.zero_()
    x = torch.tensor([[10.0, -4.0, 0.5], [3.0, 8.0, -6.0]])
    y = torch.tensor([1, 0])
    ref = nn.Linear(3, 2)
    ref.load_state_dict(model.state_dict())
    F.cross_entropy(ref(x), y).backward()
    grads = [ref.weight.grad.clone(), ref.bias.grad.clone()]
    cfg = TrainConfig(model="test", clip_grad=clip, weight_decay=0.0, momentum=0.0)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    learner = Learner(cfg=cfg, model=model, net=model, optimizer=opt,
                      scheduler=torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0),
                      scaler=torch.amp.GradScaler("cpu", enabled=False),
                      device=torch.device("cpu"))
    before = [p.detach().clone() for p in model.parameters()]
    learner.step(x, y, "test")
    steps = [b - p.detach() for b, p in zip(before, model.parameters(), strict=True)]
    return grads, steps


def test_clip_grad_scales_the_whole_gradient_to_the_norm():
    grads, _ = one_step(None)
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads)).item()
    clip = norm / 4                       # well below the gradient's norm
    assert max(g.abs().max().item() for g in grads) > clip > min(
        g.abs().min().item() for g in grads)  # clipping by value would change the direction
    _, steps = one_step(clip)
    for g, s in zip(grads, steps, strict=True):
        torch.testing.assert_close(s, g * (clip / norm), rtol=1e-5, atol=1e-7)
    assert torch.sqrt(sum((s ** 2).sum() for s in steps)).item() == pytest.approx(clip, rel=1e-5)


def test_clip_grad_above_the_norm_changes_nothing():
    grads, _ = one_step(None)
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads)).item()
    _, steps = one_step(norm * 2)
    for g, s in zip(grads, steps, strict=True):
        torch.testing.assert_close(s, g, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("amp", "dtype"), [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_amp_autocasts_to_the_type_named(amp, dtype):
    cfg = TrainConfig(model="test", amp=amp)
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with autocast_for(cfg, torch.device("cpu")):
        assert torch.get_autocast_dtype("cpu") == dtype
        assert torch.is_autocast_enabled("cpu")
        assert (a @ b).dtype == dtype


def test_amp_none_does_not_autocast():
    with autocast_for(TrainConfig(model="test", amp="none"), torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")
        assert (torch.randn(2, 2) @ torch.randn(2, 2)).dtype == torch.float32


def test_evaluate_puts_the_training_mode_back_when_a_batch_raises():
    """``loop.evaluate`` switches to eval mode; a forward that raises (a bad image, a shape
    mistake) must not leave a training model in eval mode (issue 21)."""
    from cnnlab.training.loop import evaluate

    class Fails(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            assert not self.training  # evaluate did switch to eval mode
            raise RuntimeError("a batch that cannot be run")

    model = Fails().train()
    ds = [(torch.zeros(3), 0), (torch.ones(3), 1)]
    with pytest.raises(RuntimeError, match="cannot be run"):
        evaluate(model, ds, 2, torch.device("cpu"), num_classes=2)
    assert model.training
