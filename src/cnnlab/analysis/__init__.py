"""Inspection and comparison: summary, MACs, receptive fields, convolution cost, benchmarks.

The names are loaded on first use (PEP 562), so that ``cnnlab.analysis.cost`` (pure
arithmetic) can be imported without torch.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "ConvCost": ".cost",
    "conv_cost": ".cost",
    "MacCount": ".macs",
    "count_macs": ".macs",
    "trace": ".macs",
    "receptive_field": ".receptive_field",
    "ModelSummary": ".summary",
    "summary": ".summary",
}

__all__ = ["ConvCost", "MacCount", "ModelSummary", "conv_cost", "count_macs",
           "receptive_field", "summary", "trace"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
