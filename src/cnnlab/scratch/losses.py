"""Softmax + cross-entropy, with the stable log-sum-exp."""

from __future__ import annotations

import numpy as np

from ..errors import InputShapeError, UsageError


def log_softmax(z: np.ndarray) -> np.ndarray:
    """``z - logsumexp(z)`` row-wise, with ``logsumexp(z) = m + log(sum(exp(z - m)))``,
    ``m = max(z)``: no ``exp`` of a large number ever overflows."""
    m = z.max(axis=1, keepdims=True)
    return z - (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))


def softmax(z: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(z))


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient.

    ``L = (1/N) sum_n [logsumexp(z_n) - z_n[y_n]]``; ``dL/dz = (softmax(z) - onehot(y)) / N``.
    """
    if logits.ndim != 2:
        raise InputShapeError(f"logits must be (N, classes), got shape {logits.shape}")
    labels = np.asarray(labels)
    n, k = logits.shape
    if labels.shape != (n,):
        raise InputShapeError(f"labels must have shape ({n},) to match the logits, "
                              f"got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= k:
        raise UsageError(f"labels must be integers in 0..{k - 1}, got values "
                         f"{labels.min()}..{labels.max()} of type {labels.dtype}")
    logp = log_softmax(logits)
    loss = -logp[np.arange(n), labels].mean()
    d = np.exp(logp)
    d[np.arange(n), labels] -= 1.0
    return float(loss), d / n
