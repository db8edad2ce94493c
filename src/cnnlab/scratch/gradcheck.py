"""Numerical gradients (central differences) and the relative error used to compare them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """``||a - b|| / (||a|| + ||b||)`` (0 when both are 0): one number per array, robust to the
    entries where both gradients are tiny."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    den = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if den == 0 else float(np.linalg.norm(a - b) / den)


def numerical_grad(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6,
                   indices=None) -> np.ndarray:
    """``df/dx`` by central differences ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)``.

    ``x`` is changed in place and restored; ``f`` reads it. With ``indices`` (flat indices)
    only those entries are computed, the others are left at 0. Use float64."""
    if x.dtype != np.float64:
        raise TypeError(f"numerical gradients need float64, got {x.dtype}")
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in (range(x.size) if indices is None else indices):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return g


def check_layer(layer, x: np.ndarray, seed: int = 0, eps: float = 1e-6) -> dict[str, float]:
    """Relative errors of a layer's analytic gradients (input and every parameter) against
    central differences, for the loss ``L = sum(layer(x) * R)`` with a fixed random ``R``."""
    rng = np.random.default_rng(seed)
    r = rng.standard_normal(layer.forward(x).shape)
    loss = lambda: float(np.sum(layer.forward(x) * r))  # noqa: E731
    layer.forward(x)
    dx = layer.backward(r)
    errors = {"x": rel_error(dx, numerical_grad(loss, x, eps))}
    analytic = {k: g.copy() for k, g in layer.grads.items()}
    for k, p in layer.params.items():
        errors[k] = rel_error(analytic[k], numerical_grad(loss, p, eps))
    return errors


def check_network(net, x: np.ndarray, y: np.ndarray, samples: int = 20, seed: int = 0,
                  eps: float = 1e-4) -> dict[str, float]:
    """Relative errors for every parameter of a Sequential with the softmax cross-entropy
    loss, on ``samples`` random entries of each parameter array (all when it is smaller).

    ``eps`` is larger than for one layer: the gradients of the first layers of a sigmoid
    network are small (~1e-4), and with eps = 1e-6 the rounding error of the loss
    (~1e-16 / eps) dominates them; with 1e-4 the truncation error (~eps^2) is still tiny."""
    from .losses import softmax_cross_entropy

    rng = np.random.default_rng(seed)
    net.loss_and_grads(x, y)
    errors = {}
    for name, layer, key in net.parameters():
        p, g = layer.params[key], layer.grads[key].copy()
        idx = np.arange(p.size) if p.size <= samples else rng.choice(p.size, samples, False)
        num = numerical_grad(lambda: softmax_cross_entropy(net.forward(x), y)[0], p, eps, idx)
        errors[name] = rel_error(g.reshape(-1)[idx], num.reshape(-1)[idx])
    return errors
