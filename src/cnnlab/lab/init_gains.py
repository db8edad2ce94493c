"""Gains of Glorot & Bengio's (2010) uniform initialisation, per activation.

Weights are drawn uniform in ``+-gain * sqrt(6 / (fan_in + fan_out))``. The gain is 4 for the
logistic sigmoid (its slope at 0 is 1/4), 1 for tanh, sqrt(2) for ReLU (He et al. 2015).

Both LeNet-5s (the PyTorch one in :mod:`cnnlab.models.lenet` and the NumPy one in
:mod:`cnnlab.scratch.model`) take their gain from here, so that they start alike; this
module imports neither torch nor NumPy, so neither side pulls in the other.
"""

from __future__ import annotations

import math

XAVIER_GAIN: dict[str, float] = {"sigmoid": 4.0, "tanh": 1.0, "relu": math.sqrt(2.0)}
