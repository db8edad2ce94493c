"""Inspection and comparison: summary, MACs, receptive fields, convolution cost, benchmarks.

The names are loaded on first use (PEP 562), so that ``cnnlab.analysis.cost`` (pure
arithmetic) can be imported without torch.
"""

from __future__ import annotations

import importlib
import sys
import types

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


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """Two public functions share their module's name (``summary``, ``receptive_field``).
    Importing such a submodule makes Python set the package attribute to the *module*, which
    would hide the function from ``__getattr__`` above; this keeps the function there, as the
    eager ``from .summary import summary`` did."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == f".{name}":
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
