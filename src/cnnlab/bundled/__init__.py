"""Weights that ship inside cnnlab, by name: ``create_model("lenet5", weights="digits")``.

``lenet5_digits/`` is a cnnlab run folder (``model.safetensors``, ``config.json``,
``results.json``): LeNet-5 trained on the bundled 8x8 digits scaled to 32x32 by
``PYTHONPATH=src python benchmarks/make_bundled_lenet5.py`` (``cnnlab train lenet5 --epochs 30
--optimizer adam --lr 0.002 --seed 0 --threads 1``): test accuracy 97.21% on the 359 test
digits, 248 KB. ``cnnlab explore lenet5`` and ``cnnlab predict lenet5 digit.png`` use it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# (model, weights name) -> folder inside this package; DEFAULT: what a bare model name uses
BUNDLED = {("lenet5", "digits"): "lenet5_digits"}
DEFAULT = {"lenet5": "digits"}


def bundled_path(model: str, weights) -> Path | None:
    """The run folder of the bundled weights ``weights`` of ``model``, or None when
    ``weights`` is not a bundled name (a file path, a folder, None)."""
    if not isinstance(weights, str) or (model, weights) not in BUNDLED:
        return None
    if Path(weights).exists():  # a file or folder of that name in the working directory wins
        return None
    return Path(str(resources.files(__name__) / BUNDLED[model, weights]))


def resolve(model: str, weights):
    """``weights`` with a bundled name replaced by its folder (anything else unchanged)."""
    return bundled_path(model, weights) or weights


def default_weights(model: str) -> Path | None:
    """The bundled weights a bare model name stands for (``lenet5``: the digits), or None."""
    name = DEFAULT.get(model)
    return bundled_path(model, name) if name else None


def for_command(target: str, weights):
    """A command's ``--weights`` for ``target``: given weights (a bundled name resolved), or
    the bundled default of a model name that is not also a path on disk, or None."""
    if weights is not None:
        return resolve(target, weights)
    return None if Path(target).exists() else default_weights(target)


__all__ = ["BUNDLED", "bundled_path", "default_weights", "for_command", "resolve"]
