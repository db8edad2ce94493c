"""The evaluation transform (resize the shorter side, centre crop, normalise) and each model's
data configuration.

The reference pixels (``tests/reference/eval_transform_torchvision.npz``) are torchvision
0.28's ``ImageClassification`` preset (tensor path) on photos cut from scikit-learn's bundled
photos; ``tests/reference/make_eval_transform_reference.py`` made them. The data
configurations are checked against ``tests/reference/data_configs.json`` (a copy of
``../shared/reference/``: torchvision's weights enums and timm's pretrained cfgs).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.data.config import DataConfig, DataConfigError, data_config
from cnnlab.data.transforms import Preprocess, center_crop, resize, shorter_side_size

REF = Path(__file__).resolve().parents[1] / "reference"
TOL = 1 / 255 + 1e-6


def _photos() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images
    return {"landscape": china, "portrait": china[:, 150:431],
            "square": flower[60:361, 200:501], "small": flower[::16, ::16]}


def _reference():
    data = np.load(REF / "eval_transform_torchvision.npz")
    return {k: data[k] for k in data.files if "/" in k}


def _as_float(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255


def test_reference_covers_every_aspect_ratio():
    names = {k.split("/")[0] for k in _reference()}
    assert names == {"landscape", "portrait", "square", "small"}


@pytest.mark.parametrize("key", sorted(_reference()))
def test_equals_torchvision_preset_within_one_level(key):
    name, r, c, interp = key.split("/")
    ref = torch.from_numpy(_reference()[key]).float() / 255
    pre = Preprocess(3, (int(c), int(c)), (0.0,), (1.0,), resize=int(r), interpolation=interp)
    out = pre(_as_float(_photos()[name]))
    assert out.shape == ref.shape
    assert (out - ref).abs().max().item() <= TOL


def test_squashing_would_not_pass():
    """The check can fail: resizing straight to 224x224 (cnnlab's former transform) is far
    from torchvision's preset on a portrait photo."""
    ref = torch.from_numpy(_reference()["portrait/256/224/bilinear"]).float() / 255
    squashed = resize(_as_float(_photos()["portrait"]), (224, 224))
    assert (squashed - ref).abs().max().item() > 0.2


def test_shorter_side_truncates_the_longer_side_as_torchvision():
    assert shorter_side_size(427, 640, 256) == (256, 383)   # 383.6 -> 383
    assert shorter_side_size(427, 281, 256) == (389, 256)
    assert shorter_side_size(300, 300, 256) == (256, 256)


def test_centre_crop_offsets_round_half_to_even():
    x = torch.arange(5 * 6, dtype=torch.float32).view(1, 5, 6)
    # (5 - 2) / 2 = 1.5 -> 2; (6 - 3) / 2 = 1.5 -> 2
    assert torch.equal(center_crop(x, (2, 3)), x[:, 2:4, 2:5])
    # (5 - 4) / 2 = 0.5 -> 0 (Python rounds half to even); (6 - 1) / 2 = 2.5 -> 2
    assert torch.equal(center_crop(x, (4, 1)), x[:, 0:4, 2:3])


def test_centre_crop_pads_an_image_smaller_than_the_crop():
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    out = center_crop(x, (4, 5))
    expected = torch.zeros(1, 4, 5)
    expected[0, 1:3, 1:3] = x[0]  # pad (5-2)//2 = 1 left, 2 right; 1 above, 1 below
    assert torch.equal(out, expected)


def test_normalises_after_the_crop():
    img = _as_float(_photos()["square"])
    pre = Preprocess(3, (56, 56), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), resize=64)
    raw = Preprocess(3, (56, 56), (0.0,), (1.0,), resize=64)(img)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    assert torch.allclose(pre(img), (raw - mean) / std, atol=1e-6)


def test_small_models_are_not_resized_and_cropped():
    for name in ("lenet5", "resnet20", "allconv_c"):
        cfg = data_config(name)
        assert cfg.resize is None
        assert cfg.input_size == cnnlab.get_entry(name).input_size
    x = torch.rand(3, 28, 28)
    pre = Preprocess.from_config(data_config("resnet20"))
    assert torch.allclose(pre.geometry(x), resize(x, (32, 32)))


@pytest.mark.parametrize("name", sorted(json.loads(
    (REF / "data_configs.json").read_text())["models"]))
def test_declared_config_is_the_published_one(name):
    """torchvision's first (V1) weights where torchvision publishes the architecture, else
    timm's default cfg with resize = floor(crop / crop_pct)."""
    published = json.loads((REF / "data_configs.json").read_text())["models"][name]
    cfg = cnnlab.data_config(name)
    assert isinstance(cfg, DataConfig)
    if "torchvision" in published:
        weights, tv = next(iter(published["torchvision"].items()))
        assert weights == "IMAGENET1K_V1"
        assert cfg.resize == tv["resize_size"][0]
        assert cfg.input_size == (3, tv["crop_size"][0], tv["crop_size"][0])
        assert cfg.interpolation == tv["interpolation"]
        assert cfg.mean == tuple(tv["mean"]) and cfg.std == tuple(tv["std"])
        assert cfg.source == "torchvision IMAGENET1K_V1"
    else:
        tag, tm = next(iter(published["timm"].items()))
        _, h, w = tm["input_size"]
        assert tm["crop_mode"] == "center"
        assert cfg.input_size == (3, h, w)
        assert cfg.resize == math.floor(h / tm["crop_pct"])
        assert cfg.interpolation == tm["interpolation"]
        assert cfg.mean == tuple(tm["mean"]) and cfg.std == tuple(tm["std"])
        assert cfg.source == f"timm {tag}"
    assert cfg.num_classes == 1000


def test_models_without_published_weights_get_a_default():
    cfg = data_config("vgg11_lrn")
    assert (cfg.resize, cfg.input_size, cfg.num_classes) == (256, (3, 224, 224), None)
    assert data_config("alexnet_original").resize == math.floor(227 / 0.875)


def test_overrides():
    cfg = data_config("resnet50")
    assert cfg.override(resize=288, crop=256).resize == 288
    assert cfg.override(crop=288).resize == math.floor(288 / (224 / 256))  # keeps the fraction
    assert cfg.override(interpolation="bicubic").interpolation == "bicubic"
    assert DataConfig.from_dict(cfg.to_dict()) == cfg


def test_crop_larger_than_resize_is_one_line():
    with pytest.raises(DataConfigError, match=r"crop 256x256 is larger than the resize 224.*"
                                              r"--resize 256"):
        data_config("resnet50").override(resize=224, crop=256)
    with pytest.raises(DataConfigError, match="larger than the resize"):
        Preprocess(3, (64, 64), (0.5,), (0.5,), resize=60)


def test_unknown_interpolation_is_one_line():
    with pytest.raises(DataConfigError, match=r"unknown interpolation 'lanczos3'; choose one "
                                              r"of bilinear, bicubic, nearest"):
        data_config("resnet50").override(interpolation="lanczos3")
