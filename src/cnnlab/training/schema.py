"""The schema of a run's ``config.json``, checked whenever a run is opened.

``evaluate``, ``predict`` and ``--resume`` read a run's configuration from ``config.json`` or
from its checkpoint; a hand-edited file with a wrong type (``model_kwargs`` a list, ``model`` a
number, ``input_size`` "abc", a ``mean`` of the wrong length, fewer ``classes`` than the model
has outputs) must give one line naming the key, not a traceback from deep inside the model
builder. :data:`RUN_CONFIG_SCHEMA` declares the keys; :func:`validate_run_config` checks them.
"""

from __future__ import annotations

import dataclasses
import math
from numbers import Real

from ..errors import CheckpointError


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v)


# key: (required, what it must be, check(value, config) -> bool)
RUN_CONFIG_SCHEMA = {
    "model": (True, "a registered model name (a string)", lambda v, c: isinstance(v, str)),
    "model_kwargs": (False, "an object of builder arguments (KEY: VALUE)",
                     lambda v, c: isinstance(v, dict) and all(isinstance(k, str) for k in v)),
    "input_size": (True, "a list of three positive integers [C, H, W]",
                   lambda v, c: isinstance(v, list) and len(v) == 3
                   and all(_is_int(x) and x > 0 for x in v)),
    "classes": (True, "a non-empty list of class names (strings)",
                lambda v, c: isinstance(v, list) and len(v) > 0
                and all(isinstance(x, str) for x in v)),
    "mean": (True, "a list of numbers, one per input channel",
             lambda v, c: isinstance(v, list) and all(_is_num(x) for x in v)
             and len(v) == _channels(c)),
    "std": (True, "a list of positive numbers, one per input channel",
            lambda v, c: isinstance(v, list) and all(_is_num(x) and x > 0 for x in v)
            and len(v) == _channels(c)),
    "data": (False, "an object", lambda v, c: isinstance(v, dict)),
    "data_config": (False, "an object with resize (a positive integer or null) and "
                    "interpolation (bilinear, bicubic, nearest)",
                    lambda v, c: isinstance(v, dict) and (v.get("resize") is None or (
                        _is_int(v["resize"]) and v["resize"] > 0))
                    and v.get("interpolation", "bilinear") in ("bilinear", "bicubic", "nearest")),
    "train": (False, "an object of training settings", lambda v, c: isinstance(v, dict)),
}


def _channels(config: dict):
    size = config.get("input_size")
    return size[0] if isinstance(size, list) and size else None


def validate_run_config(config, where) -> dict:
    """Check ``config`` against :data:`RUN_CONFIG_SCHEMA` (and its ``train`` settings against
    :class:`~cnnlab.training.config.TrainConfig`'s field types); returns it unchanged.

    Raises :class:`~cnnlab.errors.CheckpointError` naming ``where``, the key and what it must be.
    """
    if not isinstance(config, dict):
        raise CheckpointError(f"{where}: the run's config is not a JSON object")
    for key, (required, what, ok) in RUN_CONFIG_SCHEMA.items():
        if key not in config:
            if required:
                raise CheckpointError(f"{where}: its config has no {key!r}; not a cnnlab "
                                      "training run")
            continue
        if not ok(config[key], config):
            raise CheckpointError(f"{where}: config key {key!r} must be {what}, got "
                                  f"{_short(config[key])}; repair or re-create config.json")
    n = config.get("model_kwargs", {}).get("num_classes")
    if n is not None and n != len(config["classes"]):
        raise CheckpointError(f"{where}: the model has {n} outputs (model_kwargs.num_classes) "
                              f"but the config names {len(config['classes'])} classes")
    if "train" in config:
        _check_train_settings(config["train"], where)
    return config


def check_model_outputs(model, config: dict, where) -> None:
    """The model built from a config must have one output per class name."""
    n = getattr(model, "num_classes", None)
    if _is_int(n) and n != len(config["classes"]):
        raise CheckpointError(f"{where}: the model has {n} outputs but the config names "
                              f"{len(config['classes'])} classes")


def _check_train_settings(train: dict, where) -> None:
    from .config import TrainConfig

    types = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
             "dict": (dict,)}
    for f in dataclasses.fields(TrainConfig):
        if f.name not in train or train[f.name] is None:
            continue
        v = train[f.name]
        kind = str(f.type).split(" ")[0].split("[")[0]
        if f.name == "input_size":
            good = isinstance(v, list) and len(v) == 3 and all(_is_int(x) for x in v)
        elif kind in types:
            good = isinstance(v, types[kind]) and (kind == "bool" or not isinstance(v, bool))
        else:
            continue
        if not good:
            raise CheckpointError(f"{where}: training setting {f.name!r} must be {kind}, got "
                                  f"{_short(v)}")


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."
