"""`cnnlab scale-search`: the compound-scaling grid, the scaling rules, a tiny search."""

from __future__ import annotations

import json
import math

import pytest
import torch

from cnnlab.lab.scaling import (
    BASE_STAGES,
    DEFAULT_GRID,
    QUICK_GRID,
    Data,
    Recipe,
    ScaledNet,
    describe,
    grid,
    search,
)
from cnnlab.layers import make_divisible


def test_grid_points_meet_the_budget_by_arithmetic():
    points = grid(2.0, 0.08)
    assert len(points) == len(set(points)) > 5
    for a, b, g in points:
        assert min(a, b, g) >= 1 and 1.84 <= a * b * b * g * g <= 2.16
    # the paper's alpha 1.2, beta 1.1, gamma 1.15: 1.2 * 1.21 * 1.3225 = 1.920
    assert (1.2, 1.1, 1.15) in points
    # every grid point that meets the budget is there
    every = [(a, b, g) for a in DEFAULT_GRID["alpha"] for b in DEFAULT_GRID["beta"]
             for g in DEFAULT_GRID["gamma"] if abs(a * b * b * g * g - 2) <= 0.16]
    assert sorted(points) == sorted(every)
    assert sorted(grid(2.0, 0.25, QUICK_GRID)) == [(1.0, 1.0, 1.4), (1.0, 1.4, 1.0),
                                                   (2.0, 1.0, 1.0)]
    with pytest.raises(ValueError, match="no grid point"):
        grid(50.0, 0.05)
    with pytest.raises(ValueError, match="above 1"):
        grid(1.0)
    with pytest.raises(ValueError, match="finite number above 1"):
        grid(float("inf"))  # would take all 90 points and train every one
    # a budget near 1 does not list the base (1, 1, 1), which is trained anyway
    assert (1.0, 1.0, 1.0) not in grid(1.05, 0.5)


def test_scaling_rules_depth_width_resolution():
    net = ScaledNet(alpha=1.4, beta=1.3)
    # repeats: ceil(n * 1.4) for n = 1, 2, 2 -> 2, 3, 3
    assert net.repeats == [math.ceil(n * 1.4) for *_, n, _ in BASE_STAGES] == [2, 3, 3]
    assert len(net.blocks) == 8
    # widths: 16 * 1.3 = 20.8 -> 24; 24 * 1.3 = 31.2 -> 32; 40 * 1.3 = 52 -> 56 (multiples of 8)
    assert net.stem[0].out_channels == make_divisible(16 * 1.3) == 24
    outs = [b.block[-1][0].out_channels for b in net.blocks]
    assert outs == [24, 24, 32, 32, 32, 56, 56, 56]
    assert net.fc.in_features == make_divisible(128 * 1.3) == 168
    # resolution: 16 * 1.15 = 18.4 -> 18
    _, r, params, macs = describe(1.0, 1.0, 1.15)
    assert r == 18 and params == sum(p.numel() for p in ScaledNet().parameters())
    out = ScaledNet(1.4, 1.3)(torch.zeros(2, 1, 18, 18))
    assert out.shape == (2, 10)


def test_resolution_scales_the_convolutions_quadratically():
    # gamma = 2: 32x32 instead of 16x16, every map 4x the area. The convolutions' MACs grow
    # 4x; the SE blocks' 1x1 convolutions and the classifier run on pooled vectors and do
    # not, so the total grows a little less than 4x.
    _, _, _, m1 = describe(1.0, 1.0, 1.0)
    _, r2, _, m2 = describe(1.0, 1.0, 2.0)
    assert r2 == 32 and 3.9 * m1 < m2 < 4 * m1


@pytest.fixture(scope="module")
def tiny_search():
    from cnnlab.data import load_data

    torch.set_num_threads(1)
    data = Data(load_data("digits"), train_limit=64, eval_limit=60)
    res = search(data, budget=2.0, tolerance=0.25, axes=QUICK_GRID,
                 recipe=Recipe(epochs=1, batch_size=32, train_limit=64))
    torch.set_num_threads(2)
    return res


def test_tiny_search_table_and_phi(tiny_search):
    res = tiny_search
    assert len(res.trials) == 4 and res.trials[0].is_base
    assert sum(t.best for t in res.trials) == 1 and not res.trials[0].best
    best = res.best
    assert best.accuracy == max(t.accuracy for t in res.trials[1:])
    for t in res.trials:
        assert 0 <= t.accuracy <= 100 and t.seconds > 0
        assert t.macs_ratio == pytest.approx(t.macs / res.base.macs)
        assert t.target == pytest.approx(t.alpha * t.beta ** 2 * t.gamma ** 2)
    # phi = 1 is the best trial's network; MACs grow with phi, near 2^phi
    p1, p2, p3 = res.phis
    assert (p1["macs"], p1["params"]) == (best.macs, best.params)
    assert [p["target"] for p in res.phis] == [2, 4, 8]
    assert p1["macs"] < p2["macs"] < p3["macs"]
    for p in res.phis:
        assert 0.75 * p["target"] < p["macs_ratio"] < 1.25 * p["target"]
    data = res.to_dict()
    assert {"alpha", "beta", "gamma", "accuracy", "macs", "params"} <= set(data["best"])
    assert len(data["trials"]) == 4
    json.dumps(data)


def test_cli_quick_json_and_plot(cli, tmp_path):
    png = tmp_path / "search.png"
    res = cli("scale-search", "--quick", "--limit", "32", "--epochs", "1", "--json",
              "--plot", str(png))
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert set(data["best"]) >= {"alpha", "beta", "gamma"} and len(data["trials"]) == 4
    assert png.stat().st_size > 1000
    res = cli("scale-search", "--budget", "50")
    assert res.returncode == 2 and "no grid point" in res.stderr


def test_efficientnet_b0_base_scales_like_the_paper():
    # B0's stages have 1, 2, 2, 3, 3, 4, 1 blocks; depth 1.2 -> ceil: 2, 3, 3, 4, 4, 5, 2
    net, r, params, _ = describe(1.0, 1.0, 1.0, in_chans=1, num_classes=10,
                                 base="efficientnet_b0")
    assert net.repeats == [1, 2, 2, 3, 3, 4, 1] and r == 32
    net, r, _, _ = describe(1.2, 1.1, 1.15, in_chans=1, num_classes=10, base="efficientnet_b0")
    assert net.repeats == [math.ceil(n * 1.2) for n in (1, 2, 2, 3, 3, 4, 1)]
    assert r == round(32 * 1.15) == 37
    with pytest.raises(ValueError, match="--base must be one of"):
        describe(1.0, 1.0, 1.0, base="resnet50")
