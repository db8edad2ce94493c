"""Mutation-audit test for ``cnnlab compare --keras`` (issue 21): EfficientNet's Keras count
includes its Normalization layer (mean and variance of the 3 input channels and a count: 7
weights), and the row says that this accounts for the whole difference."""

from __future__ import annotations

import re

from cnnlab.analysis.keras import KERAS_COUNT_PARAMS, analyse_keras


def test_efficientnet_normalization_weights_are_counted_and_explained():
    row = analyse_keras("efficientnet_b0")
    c = row.input_size[0]
    assert c == 3
    assert KERAS_COUNT_PARAMS["EfficientNetB0"] - row.params_keras == 2 * c + 1 == 7
    note = next(n for n in row.notes if "Normalization layer holding" in n)
    weights = int(re.search(r"a count: ([\d,]+) weights", note).group(1).replace(",", ""))
    assert weights == 2 * c + 1 == -row.params_diff
    assert "(this is the whole difference)" in note
