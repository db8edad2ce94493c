"""Mutation-audit test for ``features_only`` (issue 21): ``out_indices`` are returned shallow
to deep whatever order they are given in, as timm's feature extractors do (``feature_info``
and the outputs agree)."""

from __future__ import annotations

import torch

from cnnlab import create_model


def test_out_indices_come_back_shallow_to_deep_in_any_order():
    torch.manual_seed(0)
    given = create_model("resnet20", features_only=True, out_indices=(2, 0)).eval()
    torch.manual_seed(0)
    ordered = create_model("resnet20", features_only=True, out_indices=(0, 2)).eval()
    assert given.feature_info.channels() == ordered.feature_info.channels() == [16, 64]
    assert given.feature_info.reduction() == sorted(given.feature_info.reduction())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        a, b = given(x), ordered(x)
    assert [t.shape[1] for t in a] == given.feature_info.channels()
    assert [t.shape[-1] for t in a] == [32 // r for r in given.feature_info.reduction()]
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
