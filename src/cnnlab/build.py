"""Building a registered model from its name: the arguments checked by signature, once.

:func:`build_model` is the plain build (no weights, no feature extractor; those are
:mod:`cnnlab.factory`'s). :func:`check_model_kwargs` is the one check of a caller's keyword
arguments, read from the signatures (:func:`inspect.signature`) of the builder and of the
class its return annotation names, where the builder passes ``**kwargs`` on:

* a name none of them takes: ``resnet20 does not take the argument 'x'; it takes ...``;
* a value whose type does not fit a simple annotation (``int``, ``float``, ``bool``,
  ``str``, unions of them with ``None``): ``'num_classes' takes an integer, got 2.5``.

Two mistakes only show when the builder runs, because a builder passes some of the class's
arguments itself (``resnet20`` its ``layers``) or forwards ``**kwargs`` deeper than its class
(ResNet to its blocks, which differ by variant). When the build raises ``TypeError``, the
builder is tried without the caller's arguments, then with each alone, on the meta device
(nothing allocated, initialisation skipped): the one that fails alone is named, as set by the
builder itself when the signatures take it, as not taken otherwise; a builder that fails
without any is a bug of its own and its ``TypeError`` is raised as it is. Exception text is
never parsed.

:func:`skipped_init` skips weight initialisation explicitly (for builds whose values are not
wanted: the meta device); it is a :class:`torch.overrides.TorchFunctionMode`, local to the
thread that enters it, so other threads initialise as usual.

No torch is imported here until a model is built.
"""

from __future__ import annotations

import inspect
import numbers
from contextlib import contextmanager

from .errors import ModelArgumentError
from .registry import get_entry

# Simple annotations whose values are checked before building: name -> (test, what it takes).
_KINDS = {
    "int": (lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool), "an integer"),
    "float": (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool), "a number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "None": (lambda v: v is None, "null"),
}
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def builder_parameters(name: str) -> tuple[dict[str, inspect.Parameter], bool]:
    """The named keyword arguments model ``name`` takes: its builder's, and, where the builder
    passes ``**kwargs`` on to the class its return annotation names, that class's; and whether
    other names may be valid too (the class, or a builder without a return class, takes
    ``**kwargs``)."""
    fn = get_entry(name).builder
    sig = inspect.signature(fn)
    params = {k: p for k, p in sig.parameters.items() if p.kind in _NAMED}
    open_ended = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    if open_ended:
        ret = sig.return_annotation
        cls = fn.__globals__.get(ret) if isinstance(ret, str) else ret
        if cls is inspect.Signature.empty or not isinstance(cls, type):
            return params, True
        init = inspect.signature(cls)
        open_ended = any(p.kind is p.VAR_KEYWORD for p in init.parameters.values())
        for k, p in init.parameters.items():
            if p.kind in _NAMED:
                params.setdefault(k, p)
    return params, open_ended


def check_model_kwargs(name: str, kwargs: dict) -> None:
    """Refuse, with :class:`ModelArgumentError`, an argument model ``name`` does not take or a
    value whose type does not fit a simple annotation; other annotations are left to the
    builder."""
    params, open_ended = builder_parameters(name)
    for key, value in kwargs.items():
        if key not in params:
            if open_ended:
                continue
            raise _not_taken(name, key, params)
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


def _not_taken(name: str, key: str, params: dict) -> ModelArgumentError:
    return ModelArgumentError(f"{name} does not take the argument {key!r}; it takes "
                              f"{', '.join(params)}")


def build_model(name: str, **kwargs):
    """Build the registered model ``name``; keyword arguments override its defaults.

    Arguments given as ``None`` are dropped, so callers can pass optional settings through.
    An argument the model does not take raises :class:`ModelArgumentError` (a ``TypeError``)
    naming the model and the argument. The model gets ``model_name = name``.
    """
    entry = get_entry(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    check_model_kwargs(name, kwargs)
    try:
        model = entry.builder(**kwargs)
    except TypeError as err:
        failed = err
    else:
        model.model_name = name
        return model
    # Outside the except clause: CPython reports "multiple values for keyword argument" as a
    # KeyError when it happens while another exception is being handled.
    culprit = _culprit(entry.builder, kwargs)
    if culprit is None:
        raise failed
    params, _ = builder_parameters(name)
    if culprit in params:
        raise ModelArgumentError(f"{name} sets {culprit!r} itself (it defines the variant); "
                                 "it cannot be given") from None
    raise _not_taken(name, culprit, params) from None


def _culprit(builder, kwargs: dict) -> str | None:
    """The caller's argument that makes ``builder`` raise ``TypeError`` on its own (tried
    one at a time on the meta device, initialisation skipped), or None: also when the
    builder raises ``TypeError`` without any of them (its own bug, not the caller's)."""
    import torch

    def fails(**kw) -> bool:
        try:
            with torch.device("meta"), skipped_init():
                builder(**kw)
        except TypeError:
            return True
        except Exception:  # noqa: BLE001  (another complaint: not the one looked for)
            return False
        return False

    if fails():
        return None
    return next((key for key, value in kwargs.items() if fails(**{key: value})), None)


# ------------------------------------------------------------------ skipping initialisation

_SKIPPED_TENSOR_METHODS = ("normal_", "uniform_", "zero_", "fill_", "bernoulli_",
                           "exponential_", "geometric_", "log_normal_", "random_", "cauchy_")


def _init_mode_class():
    import torch
    from torch import nn
    from torch.overrides import TorchFunctionMode

    skipped = {getattr(torch.Tensor, n) for n in _SKIPPED_TENSOR_METHODS}
    # nn.init's functions hand themselves to the active mode first (handle_torch_function)
    skipped |= {f for n, f in vars(nn.init).items()
                if n.endswith("_") and not n.startswith("_") and callable(f)}

    class SkipInit(TorchFunctionMode):
        """Returns a meta tensor unchanged for every initialisation function and in-place
        random fill; every other call (and every tensor with values) runs as usual."""

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in skipped:
                tensor = args[0] if args else kwargs.get("tensor")
                if isinstance(tensor, torch.Tensor) and tensor.device.type == "meta":
                    return tensor
            return func(*args, **kwargs)

    return SkipInit


_mode_class = None


@contextmanager
def skipped_init():
    """Within the block (in this thread only), ``nn.init.*`` and the in-place random fills
    (``Tensor.normal_``, ``uniform_``, ``zero_``, ``fill_``, ...) leave a meta-device tensor as
    it is: for builds whose values do not exist (the meta device), where torch's meta
    implementations of the fills cost more than building the modules. Tensors with values
    are initialised as usual."""
    global _mode_class
    if _mode_class is None:
        _mode_class = _init_mode_class()
    with _mode_class():
        yield
