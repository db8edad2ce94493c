"""cnnlab: classic convolutional networks, faithful to their papers.

Build any registered architecture with :func:`create_model`, list them with
:func:`list_models`.

The names below are loaded on first use (PEP 562 ``__getattr__``): ``import cnnlab`` costs
almost nothing and does not import torch, so that ``cnnlab --help``, ``cnnlab cost`` and the
NumPy engine start fast. ``cnnlab.create_model`` imports torch and the one family it needs
the first time it is touched; ``from cnnlab import summary`` works as before.
"""

from __future__ import annotations

from . import catalog as _catalog  # noqa: F401  (installs the registry's model loader; no torch)
from . import factory as _factory  # noqa: F401  (create_model, also as cnnlab.registry's; no torch)
from ._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> the module that defines it (relative to this package)
_LAZY = {
    "AuxOutput": ".models.base",
    "main_logits": ".models.base",
    "CnnlabError": ".errors",
    "InputShapeError": ".errors",
    "UnknownModelError": ".errors",
    "create_model": ".factory",
    "get_entry": ".registry",
    "list_models": ".registry",
    "register_model": ".registry",
    "summary": ".analysis.summary",
    "count_macs": ".analysis.macs",
    "receptive_field": ".analysis.receptive_field",
    "trace_graph": ".graph",
    "conv_cost": ".analysis.cost",
    "fuse": ".fuse",
    "load_pretrained": ".pretrained",
    "DataConfig": ".data.config",
    "data_config": ".data.config",
    "open_source": ".resolve",
}

__all__ = [
    "AuxOutput",
    "CnnlabError",
    "InputShapeError",
    "UnknownModelError",
    "create_model",
    "get_entry",
    "list_models",
    "load_pretrained",
    "main_logits",
    "register_model",
    "summary",
    "count_macs",
    "receptive_field",
    "trace_graph",
    "conv_cost",
    "DataConfig",
    "data_config",
    "fuse",
    "open_source",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
