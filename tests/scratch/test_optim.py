"""Mutation-audit test for the NumPy engine's SGD (issue 21): weight decay pulls the weights
towards 0 (``g + wd * w``), and with momentum the steps equal torch.optim.SGD's on the same
numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab.scratch.optim import SGD


class OneParam:
    def __init__(self, w, g):
        self.params, self.grads = {"W": np.array(w, dtype=np.float64)}, {
            "W": np.array(g, dtype=np.float64)}

    def parameters(self):
        yield "layer.W", self, "W"


def test_weight_decay_alone_shrinks_the_weights_towards_zero():
    m = OneParam([1.0, -2.0, 0.5], [0.0, 0.0, 0.0])
    SGD(m, lr=0.5, momentum=0.0, weight_decay=0.1).step()
    np.testing.assert_allclose(m.params["W"], np.array([1.0, -2.0, 0.5]) * (1 - 0.5 * 0.1))


def test_steps_with_momentum_and_weight_decay_equal_torch():
    rng = np.random.default_rng(0)
    w0, grads = rng.normal(size=5), rng.normal(size=(4, 5))
    m = OneParam(w0, grads[0])
    opt = SGD(m, lr=0.1, momentum=0.9, weight_decay=0.01)
    p = torch.nn.Parameter(torch.tensor(w0))
    ref = torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    for g in grads:
        m.grads["W"] = g.copy()
        opt.step()
        p.grad = torch.tensor(g)
        ref.step()
        np.testing.assert_allclose(m.params["W"], p.detach().numpy(), rtol=1e-12, atol=1e-14)


# moved from tests/test_hardening.py (issue 13)
# ------------------------------------------------------------ mutation-audit survivors (12)


def test_numpy_sgd_decay_is_from_the_base_rate_every_epoch():
    # The trainer calls set_epoch(0), set_epoch(1), ... in turn: eta_e = lr * decay**e, not
    # compounded on the previous epoch's eta (which would give 0.1, 0.05, 0.0125, 0.0015625).
    from cnnlab.scratch.optim import SGD

    class One:
        params = {"w": np.array([1.0])}
        grads = {"w": np.array([2.0])}

    class Net:
        layer = One()

        def parameters(self):
            yield "w", self.layer, "w"

    opt = SGD(Net(), lr=0.1, momentum=0.0, decay=0.5)
    assert [opt.set_epoch(e) for e in range(4)] == [0.1, 0.05, 0.025, 0.0125]
    opt.step()  # momentum 0: w = 1 - 0.0125 * 2 = 0.975
    assert Net.layer.params["w"][0] == pytest.approx(0.975)
