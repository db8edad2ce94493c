"""The exponential moving average of the weights (cnnlab.training.ema) against its formula."""

import pytest
import torch
from torch import nn

from cnnlab.training.ema import ModelEma


def small():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(18, 3))


def test_update_is_decay_times_ema_plus_one_minus_decay_times_model():
    model = small()
    model(torch.randn(4, 1, 5, 5))  # move the BatchNorm statistics
    ema = ModelEma(model, 0.75)
    start = {k: v.clone() for k, v in ema.state_dict().items()}
    assert all(torch.equal(start[k], v) for k, v in model.state_dict().items())  # a copy
    for _ in range(3):  # move the model: weights and BatchNorm statistics
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(4, 1, 5, 5))
        before = {k: v.clone() for k, v in ema.state_dict().items()}
        ema.update(model)
        cur = model.state_dict()
        for k, v in ema.state_dict().items():
            if v.is_floating_point():
                assert torch.allclose(v, 0.75 * before[k] + 0.25 * cur[k], atol=1e-6), k
            else:  # num_batches_tracked: copied
                assert torch.equal(v, cur[k]), k
    assert not any(p.requires_grad for p in ema.module.parameters())
    assert not ema.module.training


def test_the_average_is_independent_of_the_model_and_restores_from_its_state():
    model = small()
    model(torch.randn(2, 1, 5, 5))
    ema = ModelEma(model, 0.5)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    assert not torch.equal(ema.module[0].weight, model[0].weight)  # a deep copy
    ema.update(model)
    other = ModelEma(small(), 0.5)
    other.load_state_dict(ema.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(other.state_dict().values(),
                                                 ema.state_dict().values(), strict=True))


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5, 1.5])
def test_a_decay_outside_zero_one_is_refused(decay):
    with pytest.raises(ValueError, match="between 0 and 1"):
        ModelEma(small(), decay)
