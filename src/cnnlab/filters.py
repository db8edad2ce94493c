"""Deprecated path of :mod:`cnnlab.lab.filters` (kept for one release; import that instead)."""

from ._lazy import moved

moved(__name__, "cnnlab.lab.filters")
