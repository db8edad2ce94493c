"""The model registry: one name, one builder.

Builders are plain functions registered with :func:`register_model`; each family module in
``cnnlab.models`` registers its variants when it is imported. ``create_model(name, **kw)``
calls the builder with the caller's keyword arguments, which override the variant's
defaults. ``list_models("res*")`` filters the names with shell-style wildcards.

The registry is only the store: it imports no model family (nor torch). The families import
the registry (to register); :mod:`cnnlab.catalog` knows where each built-in model lives and
installs a *loader* here with :func:`set_loader`. A lookup calls the loader first: for
``get_entry("lenet5")`` it imports the one family that defines the name, for
``list_models()`` every family. The dependencies thus all point one way::

    models/<family>.py --> registry.py <-- catalog.py --(imports on demand)--> models/<family>.py
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import numbers
import re
from collections.abc import Callable
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


_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'")


def create_model(name: str, weights=None, sha256: str | None = None, *,
                 features_only: bool = False, out_indices=None, **kwargs) -> nn.Module:
    """Build the registered model ``name``; keyword arguments override its defaults.

    Arguments given as ``None`` are dropped, so callers can pass optional settings through.
    An argument the model does not take raises ``TypeError`` naming the model and argument.
    ``weights`` (a safetensors/PyTorch file or a cnnlab run folder) loads existing weights,
    ``sha256`` checks the file's hash first; see :mod:`cnnlab.pretrained`.

    ``features_only=True`` returns the multi-scale feature extractor instead (timm's
    contract, :mod:`cnnlab.features`): its forward gives a list of feature maps, the ones
    ``out_indices`` selects (default: all; negative indices count from the deepest), and its
    ``feature_info`` gives their channels, reductions and modules. With ``weights`` it holds
    the loaded weights.
    """
    if out_indices is not None and not features_only:
        raise UsageError("out_indices selects feature maps; it needs features_only=True")
    if weights is not None:
        from .pretrained import create_pretrained

        model = create_pretrained(name, weights, sha256=sha256, **kwargs)
        if features_only:
            from .features import features_model

            return features_model(model, out_indices)
        return model
    if sha256 is not None:
        raise UsageError("sha256= checks a weights file: give weights=PATH too")
    entry = get_entry(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    check_model_kwargs(name, kwargs)  # ModelArgumentError (a TypeError) for a user mistake
    try:
        model = entry.builder(**kwargs)
    except TypeError as err:
        from .errors import ModelArgumentError

        m = _UNEXPECTED.search(str(err))
        if m and m.group(1) in kwargs:
            raise ModelArgumentError(f"{name} does not take the argument {m.group(1)!r}"
                                     ) from None
        m = _MULTIPLE.search(str(err))
        if m and m.group(1) in kwargs:
            raise ModelArgumentError(f"{name} sets {m.group(1)!r} itself (it defines the "
                                     "variant); it cannot be given") from None
        raise
    model.model_name = name
    if features_only:
        from .features import features_model

        return features_model(model, out_indices)
    return model


_MULTIPLE = re.compile(r"got multiple values for (?:keyword )?argument '(\w+)'")
# Simple annotations whose values are checked before building: name -> (test, what it takes).
_KINDS = {
    "int": (lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool), "an integer"),
    "float": (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool), "a number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "None": (lambda v: v is None, "null"),
}


def builder_parameters(name: str) -> tuple[dict[str, inspect.Parameter], bool]:
    """The named keyword arguments model ``name`` takes: its builder's, and, where the builder
    passes ``**kwargs`` on to the class its return annotation names, that class's; and whether
    other names may be valid too (the class, or a builder without a return class, takes
    ``**kwargs``)."""
    fn = get_entry(name).builder
    params = {}
    sig = inspect.signature(fn)
    open_ended = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    params.update({k: p for k, p in sig.parameters.items()
                   if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)})
    if open_ended:
        ret = sig.return_annotation
        cls = fn.__globals__.get(ret) if isinstance(ret, str) else ret
        if cls is inspect.Signature.empty or not isinstance(cls, type):
            return params, True
        init = inspect.signature(cls)
        open_ended = any(p.kind is p.VAR_KEYWORD for p in init.parameters.values())
        for k, p in init.parameters.items():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                params.setdefault(k, p)
    return params, open_ended


def check_model_kwargs(name: str, kwargs: dict) -> None:
    """Refuse, with :class:`ModelArgumentError`, an argument model ``name`` does not take or a
    value whose type does not fit a simple annotation (``int``, ``float``, ``bool``, ``str``,
    unions of them with ``None``); other annotations are left to the builder."""
    from .errors import ModelArgumentError

    params, open_ended = builder_parameters(name)
    for key, value in kwargs.items():
        if key not in params:
            if open_ended:
                continue
            raise ModelArgumentError(f"{name} does not take the argument {key!r}; it takes "
                                     f"{', '.join(params)}")
        ann = params[key].annotation
        if not isinstance(ann, str):
            ann = getattr(ann, "__name__", str(ann))
        kinds = [part.strip() for part in ann.split("|")]
        if not all(k in _KINDS for k in kinds):
            continue
        if not any(_KINDS[k][0](value) for k in kinds):
            takes = " or ".join(_KINDS[k][1] for k in kinds)
            raise ModelArgumentError(f"{name}'s argument {key!r} takes {takes}, got "
                                     f"{value!r} ({type(value).__name__})")
