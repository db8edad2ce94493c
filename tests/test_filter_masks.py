"""The masks as the course slides print them, and the one naming difference stated."""

from __future__ import annotations

import numpy as np

from cnnlab.lab import filters as F


def test_roberts_masks_are_the_slides():
    assert np.array_equal(F.get_kernel("roberts-x"), [[-1, 0], [0, 1]])
    assert np.array_equal(F.get_kernel("roberts-y"), [[0, -1], [1, 0]])
    # one bright pixel at (1, 1): correlate, valid: gx[i, j] = -x[i, j] + x[i+1, j+1],
    # gy[i, j] = -x[i, j+1] + x[i+1, j]
    img = np.zeros((3, 3))
    img[1, 1] = 1
    gx = F.correlate2d(img, F.get_kernel("roberts-x"), mode="valid")
    gy = F.correlate2d(img, F.get_kernel("roberts-y"), mode="valid")
    assert gx.tolist() == [[1, 0], [0, -1]] and gy.tolist() == [[0, 1], [-1, 0]]


def test_the_slides_plus_45_mask_is_named_in_the_list():
    rows = {name: desc for name, desc, _ in F.describe_kernels()}
    # the slide's "+45" mask: 2s from top left to bottom right
    assert np.array_equal(F.get_kernel("line-45"), [[2, -1, -1], [-1, 2, -1], [-1, -1, 2]])
    assert "the slide's '+45'" in rows["line-45"]
    assert "line-45" in rows["line+45"]
    assert "as the slide" in rows["roberts-x"] and "as the slide" in rows["roberts-y"]
