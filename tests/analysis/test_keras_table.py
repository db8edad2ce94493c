"""`cnnlab compare --keras`: the Keras Applications table in Keras's conventions, checked
against the reference files (tests/reference/, copies of ../shared/reference/)."""

from __future__ import annotations

import json
import re

import pytest

from cnnlab.analysis.keras import (
    KERAS_COUNT_PARAMS,
    KERAS_PUBLISHED,
    KERAS_TO_CNNLAB,
    analyse_keras,
    format_keras,
)
from tests.helpers import REFERENCE_DIR, _reference_file


def published_table() -> dict[str, list[str]]:
    """Section 3's first table of REFERENCE_NUMBERS.md: name -> the row's cells."""
    text = (REFERENCE_DIR / "REFERENCE_NUMBERS.md").read_text()
    sec = text[text.index("## 3. Keras Applications table"):text.index("## 4.")]
    table = sec[:sec.index("The page's own footnotes")]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[0] not in ("Model", "---") and not cells[0].startswith("-"):
            rows[cells[0]] = cells
    return rows


def test_published_figures_are_the_reference_page():
    ref = published_table()
    assert len(ref) == 33
    for name, (size, top1, top5, params, depth, cpu, gpu) in KERAS_PUBLISHED.items():
        cells = ref[name]
        assert cells[1:] == [str(size), f"{top1:.1f}%", f"{top5:.1f}%", params, str(depth),
                             f"{cpu:.1f}", f"{gpu:.1f}"], name


def test_exact_keras_counts_are_the_reference_files():
    keras = _reference_file("keras")
    for name, count in KERAS_COUNT_PARAMS.items():
        key = "MobileNet_alpha1.0" if name == "MobileNet" else name
        assert keras[key]["count_params"] == count, name


@pytest.fixture(scope="module")
def rows():
    names = ["ResNet50", "ResNet101", "ResNet152", "ResNet50V2", "ResNet101V2", "ResNet152V2",
             "InceptionV3", "Xception", "VGG16", "VGG19", "MobileNet", "MobileNetV2",
             "DenseNet121", "EfficientNetB0"]
    return {n: analyse_keras(KERAS_TO_CNNLAB[n]) for n in names}


# The issue's figures (= REFERENCE_NUMBERS.md section 3's Depth column).
KERAS_DEPTHS = {"ResNet50": 107, "ResNet101": 209, "ResNet152": 311, "ResNet50V2": 103,
                "ResNet101V2": 205, "ResNet152V2": 307, "InceptionV3": 189, "Xception": 81,
                "VGG16": 16, "VGG19": 19, "MobileNet": 55, "MobileNetV2": 105,
                "DenseNet121": 242}


@pytest.mark.parametrize("name", list(KERAS_DEPTHS))
def test_keras_depth_equals_keras(rows, name):
    assert rows[name].depth_keras == KERAS_DEPTHS[name] == int(published_table()[name][5])


def test_resnet50_depth_by_arithmetic(rows):
    # 1 stem conv + 16 blocks x 3 convs + 4 projection convs = 53 convs, as many BNs, 1 fc
    assert rows["ResNet50"].depth_keras == 53 + 53 + 1
    assert rows["ResNet50"].depth == 50          # cnnlab's own convention, its own column


@pytest.mark.parametrize("name", ["Xception", "VGG16", "MobileNetV2", "DenseNet121",
                                  "MobileNet", "VGG19"])
def test_params_equal_keras_where_the_networks_are_the_same(rows, name):
    key = "MobileNet_alpha1.0" if name == "MobileNet" else name
    assert rows[name].params_keras == _reference_file("keras")[key]["count_params"]
    assert rows[name].params_diff == 0 and not rows[name].notes


def test_inception_v3_counted_the_keras_way(rows):
    # torchvision's inception_v3 without aux head, + BN moving mean and variance; Keras's
    # non-trainable count is exactly those statistics (2 x 17,216 BN channels).
    tv = _reference_file("torchvision")["inception_v3"]["params"]
    keras = _reference_file("keras")["InceptionV3"]
    bn_channels = keras["non_trainable"] // 2
    row = rows["InceptionV3"]
    assert row.params == tv == 23_834_568
    assert row.params_keras == tv + 2 * bn_channels == 23_869_000
    # Keras has no BN scale: one weight fewer per BN channel
    assert row.params_diff == bn_channels == 23_869_000 - 23_851_784
    assert "no scale" in row.notes[0] and "17,216" in row.notes[0]
    assert "whole difference" in row.notes[0]


@pytest.mark.parametrize("name", ["ResNet50", "ResNet101", "ResNet152"])
def test_resnet_difference_is_keras_conv_biases(rows, name):
    keras = _reference_file("keras")[name]
    tv = _reference_file("torchvision")[KERAS_TO_CNNLAB[name]]["params"]
    row = rows[name]
    assert row.params == tv
    # Keras trainable - torchvision = the conv biases (REFERENCE_NUMBERS.md 2.6)
    assert -row.params_diff == keras["trainable"] - tv
    assert f"+{keras['trainable'] - tv:,}" in row.notes[0] and "whole difference" in row.notes[0]


def test_resnet_v2_and_efficientnet_differences_are_explained(rows):
    v2 = rows["ResNet50V2"]
    keras = _reference_file("keras")["ResNet50V2"]
    assert v2.params_keras == keras["count_params"] + v2.params_diff
    assert v2.params_diff == -19_008 and "timm" in v2.notes[0]
    assert "whole difference" in v2.notes[0]
    b0 = rows["EfficientNetB0"]
    assert b0.params_diff == -(3 + 3 + 1) and b0.depth_diff == -1   # Normalization layer
    assert b0.params == _reference_file("keras")["EfficientNetB0"]["trainable"]


def test_table_text_has_published_labels_and_both_depths(rows):
    text = format_keras(list(rows.values()))
    assert "Top-1 % (pub.)" in text and "PUBLISHED" in text and "not measured here" in text
    assert "Depth (Keras)" in text and "Depth (cnnlab)" in text
    assert "53 + 53 + 1 = 107" in text
    line = next(x for x in text.splitlines() if x.startswith("inception_v3"))
    assert "23,869,000" in line and "23,851,784 (-17,216)" in line and "189" in line


def test_cli_keras_json_small_model_is_timed(cli):
    res = cli("compare", "--keras", "lenet5", "mobilenet_v1", "--json", "--batch", "2",
              "--repeats", "1", "--warmup", "0")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    lenet, mobilenet = data["models"]
    assert lenet["keras_published"] is None and lenet["depth_keras"] == 5
    assert lenet["size_mb"] == round(61_706 * 4 / 2**20, 2) and lenet["ms_per_step"] > 0
    assert mobilenet["depth_keras"] == 55 and mobilenet["params_keras"] == 4_253_864
    pub = mobilenet["keras_published"]
    assert pub["top1"] == 70.4 and pub["top5"] == 89.5 and pub["depth"] == 55
    assert re.search("not measured", data["conventions"]["published"])


def test_cli_keras_refuses_options_of_the_other_table(cli):
    res = cli("compare", "--keras", "--csv")
    assert res.returncode == 2 and "--keras" in res.stderr
    res = cli("compare", "--keras", "vgg16", "--no-aux", "--no-timing")
    assert res.returncode == 2 and "--no-aux" in res.stderr  # was accepted and did nothing
