"""Mutation-audit tests for the explorer's probes (issue 21): a max-pool's padding is -inf
(never the winner), not 0, and a convolution's window follows its dilation, both in the
windows Python embeds in the page and in the page's own JavaScript (headless Chromium).

The network is small on purpose: a dilated convolution whose outputs are all negative, then
a padded 3x3/2 max-pool whose every output window reaches into the padding (0 would win)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.explore.page import explore_data, render_html
from tests.helpers.browser import browse, f32, need_chromium


class DilatedThenPadded(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=2, dilation=2)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.fc = nn.Linear(2 * 2 * 2, 3)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.conv(x)), 1))


@pytest.fixture(scope="module")
def probe_page():
    torch.manual_seed(0)
    model = DilatedThenPadded().eval()
    with torch.no_grad():
        model.conv.bias.fill_(-5.0)            # every conv output below 0
    x = torch.rand(1, 1, 3, 3)        # conv 3x3, pool 2x2: every window reaches the pad
    data = explore_data(model, x, model_name="dilated-then-padded", classes=["a", "b", "c"],
                        image=x[0], source={"what": "a test network"})
    ops = {n["name"]: n["op"] for n in data["nodes"] if n.get("op")}
    with torch.no_grad():
        y = model.conv(x)
    assert (y < 0).all()
    return data, ops, model, x, y


def test_conv_probe_windows_follow_the_dilation(probe_page):
    _, ops, model, _, _ = probe_page
    op = ops["conv"]
    assert op["dil"] == [2, 2] and op["probes"]
    w = f32(op["W"]).reshape(op["kc"], op["cin_g"], *op["k"]).astype(np.float64)
    for p in op["probes"]:
        win = f32(p["win"]).reshape(op["cin_g"], *op["k"])
        got = float((w[p["co"]] * win).sum() + f32(op["b"])[p["co"]])
        assert got == pytest.approx(p["v"], rel=1e-5, abs=1e-5), p


def test_max_pool_probe_windows_are_padded_with_minus_infinity(probe_page):
    _, ops, _, _, y = probe_page
    op = ops["pool"]
    assert op["pad"] == [1, 1] and op["probes"]
    for p in op["probes"]:
        win = f32(p["win"])
        assert (win <= -1e38).any(), p          # every window of this pool reaches the pad
        assert float(win.max()) == pytest.approx(p["v"], rel=1e-6), p
        assert p["v"] < 0


def test_page_recomputes_dilated_conv_and_padded_max_pool_in_chromium(probe_page, tmp_path):
    need_chromium()
    data, ops, _, _, _ = probe_page
    assert "x" in ops["conv"] and "x" in ops["pool"]  # the page computes the windows itself
    path = tmp_path / "probe.html"
    path.write_text(render_html(data), encoding="utf-8")
    dom, console = browse(path, "layer=pool&px=1,0,0")
    assert console == [] and dom.body.get("data-ready") == "1"
    k, n = (int(v) for v in dom.body["data-selfcheck"].split("/"))
    assert k == n >= 2 * len(ops["conv"]["probes"])  # probe and whole-input path, dilated
    texts = [t.strip() for t in dom.texts if t.strip()]
    assert "How pool computes channel 1, pixel (0, 0)" in " ".join(texts)
    shown = texts[texts.index("max") + 1]
    torch_value = texts[texts.index("value PyTorch computed") + 1]
    assert shown == torch_value and float(shown) < 0
