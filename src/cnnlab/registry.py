"""The model registry: one name, one entry (its builder and what is known before building).

Builders are plain functions registered with :func:`register_model`; each family module in
``cnnlab.models`` registers its variants when it is imported. ``list_models("res*")``
filters the names with shell-style wildcards; ``get_entry(name)`` gives the entry, or an
:class:`UnknownModelError` with suggestions.

The registry is only the store: it builds nothing and imports no model family (nor torch).
Building is :mod:`cnnlab.build` (``build_model``: the arguments checked by signature) and
:mod:`cnnlab.factory` (``create_model``: with ``weights=`` and ``features_only=``); the old
name ``cnnlab.registry.create_model`` is the factory's, set here by :mod:`cnnlab.factory`
when ``cnnlab`` is imported. The families import the registry (to register);
:mod:`cnnlab.catalog` knows where each built-in model lives and installs a *loader* here with
:func:`set_loader`. A lookup calls the loader first: for ``get_entry("lenet5")`` it imports
the one family that defines the name, for ``list_models()`` every family. The dependencies
thus all point one way::

    factory --> build --> registry.py <-- models/<family>.py
    catalog.py --> registry.py;  catalog --(imports on demand)--> models/<family>.py
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import ModelArgumentError, UnknownModelError, UsageError

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about a model before building it.

    ``input_size`` is the native (C, H, W) input of the paper or reference implementation.
    ``references`` pairs a reference record with the keyword arguments that build the matching
    configuration: ``("torchvision:googlenet", {"aux_logits": False})``. Records are
    ``"torchvision:<key>"`` (params, MACs, state_dict keys and shapes), ``"timm:<key>"`` (the
    same), ``"keras:<key>"`` (trainable weights). The registry-wide tests check every pair
    against ``tests/reference/``; models without one are checked by arithmetic in their
    family's tests. ``train_defaults`` are training settings (``TrainConfig`` fields) that
    ``cnnlab train`` uses for this model unless the user gives others. ``data_config`` is the
    evaluation transform of the published weights (a :class:`cnnlab.data.config.DataConfig`,
    declared in the family file; ``None``: no weights published, see ``data_config(name)``).
    """

    name: str
    builder: Callable[..., nn.Module]
    family: str
    input_size: tuple[int, int, int]
    references: tuple[tuple[str, dict], ...]
    doc: str
    train_defaults: dict = field(default_factory=dict)
    data_config: object | None = None


_MODELS: dict[str, ModelEntry] = {}


def register_model(
    fn: Callable[..., nn.Module] | None = None,
    *,
    input_size: tuple[int, int, int] = (3, 224, 224),
    reference: str | dict[str, dict] | None = None,
    train_defaults: dict | None = None,
    data_config=None,
):
    """Register ``fn`` under its ``__name__``. Usable bare or with keyword arguments.

    ``reference`` is one record name (checked with the default arguments) or a mapping
    ``{record: kwargs}`` for several configurations of the same builder.
    """
    if reference is None:
        refs: tuple[tuple[str, dict], ...] = ()
    elif isinstance(reference, str):
        refs = ((reference, {}),)
    else:
        refs = tuple((k, dict(v)) for k, v in reference.items())

    def wrap(f: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = f.__name__
        if name in _MODELS:
            raise UsageError(f"duplicate model name {name!r}")
        family = f.__module__.rsplit(".", 1)[-1]
        doc = (f.__doc__ or "").strip().splitlines()[0] if f.__doc__ else ""
        _MODELS[name] = ModelEntry(name, f, family, tuple(input_size), refs, doc,
                                  dict(train_defaults or {}), data_config)
        return f

    return wrap(fn) if fn is not None else wrap


_loader: Callable[[str | None], None] | None = None


def set_loader(loader: Callable[[str | None], None] | None) -> None:
    """Install the function that registers models on demand: ``loader(name)`` makes sure the
    model ``name`` is registered if it exists, ``loader(None)`` registers every model.
    :mod:`cnnlab.catalog` installs its loader when ``cnnlab`` is imported."""
    global _loader
    _loader = loader


def _ensure_loaded(name: str | None = None) -> None:
    if _loader is not None and (name is None or name not in _MODELS):
        _loader(name)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (``"vgg*"``, ``"*_bn"``)."""
    if not isinstance(pattern, str):
        raise ModelArgumentError(f"list_models' argument 'pattern' takes a string such as "
                                 f"'resnet*' (default '*': every model), got {pattern!r}")
    _ensure_loaded()
    return sorted(fnmatch.filter(_MODELS, pattern))


def get_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; raises :class:`UnknownModelError` with suggestions."""
    if not isinstance(name, str):
        raise ModelArgumentError(f"the argument 'name' takes a model name, a string such as "
                                 f"'resnet18' (see cnnlab.list_models()), got {name!r}")
    _ensure_loaded(name)
    if name not in _MODELS:
        _ensure_loaded()  # every family, for the suggestions (and models the catalog lacks)
    try:
        return _MODELS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_MODELS), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}; {hint}run 'cnnlab list' to see all {len(_MODELS)} models"
        ) from None


@contextmanager
def temporary_registrations() -> Iterator[None]:
    """Models registered inside the block are forgotten at its end (a family tried out in a
    test or a notebook); the models registered before it stay as they were."""
    _ensure_loaded()  # the built-in families first, so that they stay registered after
    saved = dict(_MODELS)
    try:
        yield
    finally:
        _MODELS.clear()
        _MODELS.update(saved)
