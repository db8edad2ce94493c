"""Deprecated path of :mod:`cnnlab.lab.errata` (kept for one release; import that instead)."""

from ._lazy import moved

moved(__name__, "cnnlab.lab.errata")
