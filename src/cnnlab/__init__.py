"""cnnlab: classic convolutional networks, faithful to their papers.

Build any registered architecture with :func:`create_model`, list them with
:func:`list_models`.
"""

from .analysis import conv_cost, count_macs, receptive_field, summary
from .errors import CnnlabError, InputShapeError, UnknownModelError
from .models.base import AuxOutput, main_logits
from .pretrained import load_pretrained
from .registry import create_model, get_entry, list_models, register_model

__version__ = "0.1.0"

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
    "conv_cost",
]
