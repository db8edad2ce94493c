"""``create_model``: the one way to open a model by name, above the registry.

:mod:`cnnlab.registry` is only the store (names -> entries); :func:`cnnlab.build.build_model`
builds an entry with the caller's arguments, checked by signature. This layer adds what a
caller asks of the built model: existing weights (``weights=``, :mod:`cnnlab.pretrained`) and
the multi-scale feature extractor (``features_only=``, :mod:`cnnlab.features`). The imports
go one way::

    factory --> pretrained --> build --> registry <-- models/<family>
            --> features   --> models/base

``cnnlab.registry.create_model`` (the name's old home) is this function: it is set there
when ``cnnlab`` is imported, so that the registry itself imports nothing above it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import bundled, registry
from .build import build_model
from .errors import UsageError

if TYPE_CHECKING:
    from torch import nn


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
    weights = bundled.resolve(name, weights)  # "digits" -> the LeNet-5 cnnlab ships
    if weights is not None:
        from .pretrained import create_pretrained  # torch: imported when weights are asked

        model = create_pretrained(name, weights, sha256=sha256, **kwargs)
    elif sha256 is not None:
        raise UsageError("sha256= checks a weights file: give weights=PATH too")
    else:
        model = build_model(name, **kwargs)
    if features_only:
        from .features import features_model  # torch.fx: imported when features are asked

        return features_model(model, out_indices)
    return model


registry.create_model = create_model  # the old name keeps working (see the docstring)
