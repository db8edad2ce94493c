"""The digits split of ``cnnlab train`` without PyTorch.

:mod:`cnnlab.data.digits` splits scikit-learn's 1,797 digits with ``torch.randperm`` (seed 0).
The NumPy engine must not import torch, so it draws the same permutation here: PyTorch's CPU
``randperm`` is a Fisher-Yates shuffle driven by 32-bit outputs of the Mersenne Twister
MT19937, and NumPy's legacy ``RandomState(seed)`` is the same generator with the same
seeding. ``tests/test_scratch_train.py`` checks that both splits are identical, so a change in
either library shows up there.
"""

from __future__ import annotations

import numpy as np

SPLIT_SEED = 0                            # as cnnlab.data.digits
VAL_FRACTION, TEST_FRACTION = 0.10, 0.20  # as cnnlab.data.digits


def randperm(n: int, seed: int) -> np.ndarray:
    """``torch.randperm(n, generator=torch.Generator().manual_seed(seed))`` on the CPU."""
    raw = np.random.RandomState(seed).randint(0, 2**32, size=max(n - 1, 0), dtype=np.uint64)
    perm = np.arange(n)
    for i in range(n - 1):                # swap position i with a random one in [i, n)
        j = i + int(raw[i] % (n - i))
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def split_indices(n: int, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """As :func:`cnnlab.data.base.split_indices`: parts of the given fractions, rest last."""
    perm, parts, start = randperm(n, seed), [], 0
    for f in fractions:
        k = int(round(n * f))
        parts.append(np.sort(perm[start:start + k]))
        start += k
    parts.append(np.sort(perm[start:]))
    return parts


def load_digits_arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train"|"val"|"test": (images, labels)}``: images (N, 8, 8) float64 in [0, 1] (the
    float32 values of :mod:`cnnlab.data.digits`), labels int64."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images.astype(np.float32) / np.float32(16.0)).astype(np.float64)
    labels = bunch.target.astype(np.int64)
    test, val, train = split_indices(len(images), (TEST_FRACTION, VAL_FRACTION), SPLIT_SEED)
    return {k: (images[idx], labels[idx]) for k, idx in
            (("train", train), ("val", val), ("test", test))}
