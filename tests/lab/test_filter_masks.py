"""The masks as the course slides print them, and the one naming difference stated."""

from __future__ import annotations

import numpy as np
import pytest

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


# moved from tests/test_hardening.py (issue 13)
@pytest.mark.parametrize("name", ["sobel", "prewitt"])
def test_y_mask_is_the_transpose_of_x(name):
    from cnnlab.lab.filters import get_kernel

    gx, gy = get_kernel(f"{name}-x"), get_kernel(f"{name}-y")
    np.testing.assert_array_equal(gy, gx.T)
    # by hand: x weights the middle row 2 (Sobel) or 1 (Prewitt); y the middle column
    mid = 2.0 if name == "sobel" else 1.0
    np.testing.assert_array_equal(gx, [[-1, 0, 1], [-mid, 0, mid], [-1, 0, 1]])
    np.testing.assert_array_equal(gy, [[-1, -mid, -1], [0, 0, 0], [1, mid, 1]])


def test_sobel_y_on_a_horizontal_edge_by_hand():
    from cnnlab.lab.filters import apply_filter

    img = np.zeros((5, 5))
    img[3:] = 10.0  # rows 0-2 dark, rows 3-4 bright: a horizontal edge
    gy = apply_filter(img, "sobel-y", op="correlate", mode="valid")
    # rows 1..3 centred: windows over rows 0-2 (0), 1-3 ((1+2+1) * 10 = 40), 2-4 (40)
    np.testing.assert_array_equal(gy, [[0, 0, 0], [40, 40, 40], [40, 40, 40]])
    gx = apply_filter(img, "sobel-x", op="correlate", mode="valid")
    np.testing.assert_array_equal(gx, np.zeros((3, 3)))
