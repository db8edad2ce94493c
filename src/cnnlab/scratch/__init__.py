"""The NumPy engine: a CNN from scratch that trains LeNet-5 (no torch in here).

Readable first, vectorised second. Each layer has ``forward(x)`` (caching what backward needs)
and ``backward(delta)`` (returns the input gradient, fills ``grads``); see
:mod:`cnnlab.scratch.layers` for the formulas in the course's notation.
"""

from .gradcheck import check_layer, check_network, numerical_grad, rel_error
from .im2col import col2im, im2col
from .layers import (
                     AvgPool2D,
                     Conv2D,
                     Dense,
                     Flatten,
                     Layer,
                     MaxPool2D,
                     ReLU,
                     Sigmoid,
                     Tanh,
                     conv2d_naive,
)
from .losses import log_softmax, softmax, softmax_cross_entropy
from .model import Sequential, lenet5
from .optim import SGD

__all__ = [
    "AvgPool2D", "Conv2D", "Dense", "Flatten", "Layer", "MaxPool2D", "ReLU", "SGD", "Sequential",
    "Sigmoid", "Tanh", "check_layer", "check_network", "col2im", "conv2d_naive", "im2col",
    "lenet5", "log_softmax", "numerical_grad", "rel_error", "softmax", "softmax_cross_entropy",
]
