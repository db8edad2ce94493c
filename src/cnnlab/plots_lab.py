"""Deprecated path of :mod:`cnnlab.lab.plots_lab` (kept for one release; import that instead)."""

from ._lazy import moved

moved(__name__, "cnnlab.lab.plots_lab")
