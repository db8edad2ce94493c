"""Deprecated path of :mod:`cnnlab.lab.init_gains` (kept for one release; import that instead)."""

from ._lazy import moved

moved(__name__, "cnnlab.lab.init_gains")
