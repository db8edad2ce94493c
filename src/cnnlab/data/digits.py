"""scikit-learn's bundled handwritten digits (UCI optdigits test set): 1,797 images of 8x8
pixels with 17 grey levels (0..16), classes 0-9. No network: the file ships with sklearn.

The split is fixed and seeded (seed 0, independent of the training seed): 1,258 images for
training, 180 for validation, 359 for testing (70 / 10 / 20 %, rounded).
"""

from __future__ import annotations

import torch

from ..errors import DataError
from .base import DataSplits, TensorImages, channel_stats, split_indices

SPLIT_SEED = 0
VAL_FRACTION, TEST_FRACTION = 0.10, 0.20


def load_digits() -> DataSplits:
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:  # pragma: no cover - sklearn is a dependency
        raise DataError("the digits data set needs scikit-learn: pip install scikit-learn"
                        ) from None
    bunch = sk_load_digits()
    images = torch.from_numpy(bunch.images).float().div(16.0).unsqueeze(1)  # N x 1 x 8 x 8
    labels = torch.from_numpy(bunch.target).long()
    test_idx, val_idx, train_idx = split_indices(len(images), (TEST_FRACTION, VAL_FRACTION),
                                                 SPLIT_SEED)
    full = TensorImages(images, labels)
    train = full.subset(train_idx)
    mean, std = channel_stats(train.images)
    return DataSplits(
        name="digits", train=train, val=full.subset(val_idx), test=full.subset(test_idx),
        classes=[str(i) for i in range(10)], channels=1, image_size=(8, 8), mean=mean, std=std,
        source="digits")
