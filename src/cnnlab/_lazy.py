"""Lazy exports (PEP 562), the one mechanism of cnnlab's packages.

``__getattr__, __dir__ = lazy_exports(__name__, {"summary": ".summary", ...})`` in a package's
``__init__`` imports each public name from its module on first use, then keeps it as a plain
attribute; so ``import cnnlab`` (and ``cnnlab.analysis``, ``cnnlab.data``, ``cnnlab.training``)
costs almost nothing and imports no torch. No torch here.
"""

from __future__ import annotations

import importlib
import sys
import types


class _Package(types.ModuleType):
    """A package whose lazy name equals its own submodule's (``cnnlab.analysis.summary``, the
    function in ``analysis/summary.py``). Importing that submodule makes Python set the
    package attribute to the *module*, which would hide the function from ``__getattr__``;
    this keeps the function, as an eager ``from .summary import summary`` did."""

    def __setattr__(self, name: str, value) -> None:
        names = self.__dict__.get("_lazy_names", {})
        if isinstance(value, types.ModuleType) and names.get(name) == f".{name}":
            value = getattr(value, name)
        super().__setattr__(name, value)


def lazy_exports(package: str, names: dict[str, str]):
    """``(__getattr__, __dir__)`` for ``package``; ``names`` maps each public name to the module
    that defines it, relative to the package (``".base"``)."""
    module = sys.modules[package]
    vars(module)["_lazy_names"] = dict(names)
    module.__class__ = _Package

    def __getattr__(name: str):
        if name in names:
            value = getattr(importlib.import_module(names[name], package), name)
            vars(module)[name] = value  # the next access is a plain module attribute
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | set(names))

    return __getattr__, __dir__


def moved(old: str, new: str) -> None:
    """Make the module ``old`` (running this from its own body) an alias of ``new``: one
    DeprecationWarning at the importer's line, then ``sys.modules[old]`` is ``new`` itself, so
    ``import old``, ``from old import name`` and ``from package import old`` all give the
    moved module (not a copy). The old paths of :mod:`cnnlab.lab`'s modules use it for one
    release."""
    import warnings

    warnings.warn(f"{old} moved to {new}; import it from there (the old path goes in the "
                  "next release)", DeprecationWarning, stacklevel=3)
    sys.modules[old] = importlib.import_module(new)
