"""The model registry: one name, one builder.

Builders are plain functions registered with :func:`register_model`; each family module in
``cnnlab.models`` registers its variants when it is imported. ``create_model(name, **kw)``
calls the builder with the caller's keyword arguments, which override the variant's
defaults. ``list_models("res*")`` filters the names with shell-style wildcards.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from .errors import UnknownModelError


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
    ``cnnlab train`` uses for this model unless the user gives others.
    """

    name: str
    builder: Callable[..., nn.Module]
    family: str
    input_size: tuple[int, int, int]
    references: tuple[tuple[str, dict], ...]
    doc: str
    train_defaults: dict = field(default_factory=dict)


_MODELS: dict[str, ModelEntry] = {}


def register_model(
    fn: Callable[..., nn.Module] | None = None,
    *,
    input_size: tuple[int, int, int] = (3, 224, 224),
    reference: str | dict[str, dict] | None = None,
    train_defaults: dict | None = None,
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
            raise ValueError(f"duplicate model name {name!r}")
        family = f.__module__.rsplit(".", 1)[-1]
        doc = (f.__doc__ or "").strip().splitlines()[0] if f.__doc__ else ""
        _MODELS[name] = ModelEntry(name, f, family, tuple(input_size), refs, doc,
                                  dict(train_defaults or {}))
        return f

    return wrap(fn) if fn is not None else wrap


def _ensure_loaded() -> None:
    from . import models  # noqa: F401  (importing registers every family)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (``"vgg*"``, ``"*_bn"``)."""
    _ensure_loaded()
    return sorted(fnmatch.filter(_MODELS, pattern))


def get_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; raises :class:`UnknownModelError` with suggestions."""
    _ensure_loaded()
    try:
        return _MODELS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_MODELS), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}; {hint}run 'cnnlab list' to see all {len(_MODELS)} models"
        ) from None


_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'")


def create_model(name: str, *, features_only: bool = False, out_indices=None,
                 **kwargs) -> nn.Module:
    """Build the registered model ``name``; keyword arguments override its defaults.

    Arguments given as ``None`` are dropped, so callers can pass optional settings through.
    An argument the model does not take raises ``TypeError`` naming the model and argument.

    ``features_only=True`` returns the multi-scale feature extractor instead (timm's
    contract, :mod:`cnnlab.features`): its forward gives a list of feature maps, the ones
    ``out_indices`` selects (default: all; negative indices count from the deepest), and its
    ``feature_info`` gives their channels, reductions and modules.
    """
    if out_indices is not None and not features_only:
        raise ValueError("out_indices selects feature maps; it needs features_only=True")
    entry = get_entry(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        model = entry.builder(**kwargs)
    except TypeError as err:
        m = _UNEXPECTED.search(str(err))
        if m and m.group(1) in kwargs:
            raise TypeError(f"{name} does not take the argument {m.group(1)!r}") from None
        raise
    model.model_name = name
    if features_only:
        from .features import features_model

        return features_model(model, out_indices)
    return model
