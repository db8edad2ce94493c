"""``cnnlab visualize``: first-layer kernels and feature maps of a run folder's model."""

import numpy as np
import pytest
from PIL import Image

import cnnlab
from cnnlab.commands.visualize import feature_maps, first_conv, load_image
from cnnlab.weights import save_run_model


@pytest.fixture
def run_dir(tmp_path):
    model = cnnlab.create_model("lenet5", c1_padding=2)
    config = {"model": "lenet5", "model_kwargs": {"num_classes": 10, "in_chans": 1,
                                                   "c1_padding": 2},
              "input_size": [1, 28, 28], "classes": [str(i) for i in range(10)],
              "mean": [0.5], "std": [0.25]}
    save_run_model(tmp_path / "run", model, config)
    return tmp_path / "run", model, config


@pytest.fixture
def digit(tmp_path):
    a = np.zeros((40, 30), dtype=np.uint8)
    a[5:35, 13:17] = 255  # a "1"
    path = tmp_path / "one.png"
    Image.fromarray(a).convert("RGB").save(path)  # RGB on purpose: it is converted to gray
    return path


def _pre(config):
    from cnnlab.data import Preprocess

    c, h, w = config["input_size"]
    return Preprocess(c, (h, w), config["mean"], config["std"])


def test_load_image_applies_the_runs_preprocessing(run_dir, digit):
    _, _, config = run_dir
    x, shown = load_image(digit, _pre(config))
    assert tuple(x.shape) == (1, 1, 28, 28) and shown.shape == (28, 28)
    # black background: (0 - 0.5) / 0.25 = -2
    assert x[0, 0, 0, 0].item() == pytest.approx(-2.0)
    assert x.max().item() == pytest.approx((1 - 0.5) / 0.25, abs=1e-6)


def test_a_photo_is_cropped_by_the_evaluation_transform_not_squashed(tmp_path):
    from cnnlab.data import Preprocess

    a = np.zeros((32, 64, 3), dtype=np.uint8)
    a[:, :8] = 255  # a white band at the left edge, outside the centre crop
    path = tmp_path / "wide.png"
    Image.fromarray(a).save(path)
    pre = Preprocess(3, (32, 32), [0.0] * 3, [1.0] * 3, resize=32)  # shorter side 32, crop 32
    x, shown = load_image(path, pre)
    assert tuple(x.shape) == (1, 3, 32, 32) and shown.shape == (32, 32)
    assert shown.max() < 1e-6  # squashed to 32x32, the band would cover the first 4 columns
    squashed, _ = load_image(path, Preprocess(3, (32, 32), [0.0] * 3, [1.0] * 3))
    assert squashed[0, :, :, :3].min() > 0.99  # (and does, without the resize)


def test_first_conv_and_feature_maps_of_lenet5(run_dir, digit):
    _, model, config = run_dir
    name, conv = first_conv(model)
    assert name == "features.c1" and tuple(conv.weight.shape) == (6, 1, 5, 5)
    x, _ = load_image(digit, _pre(config))
    layers, logits = feature_maps(model.eval(), x)
    shapes = [(n, a.shape) for n, a in layers]
    assert shapes == [("features.c1", (6, 28, 28)), ("features.s2", (6, 14, 14)),
                      ("features.c3", (16, 10, 10)), ("features.s4", (16, 5, 5)),
                      ("features.c5", (120, 1, 1)), ("logits", (10,))]
    assert not model._forward_hooks and not model.features.c1._forward_hooks  # removed again


def test_cli_visualize_filters_and_features(cli, run_dir, digit, tmp_path):
    run, _, _ = run_dir
    res = cli("visualize", str(run), "--filters", "--features", str(digit),
              "-o", str(tmp_path / "pics"))
    assert res.returncode == 0, res.stderr
    for name in ("filters.png", "feature_maps.png"):
        with Image.open(tmp_path / "pics" / name) as im:
            assert im.format == "PNG" and im.size[0] > 200


def test_cli_visualize_errors(cli, run_dir, tmp_path):
    run, _, _ = run_dir
    res = cli("visualize", str(run))
    assert res.returncode == 2 and "--filters and/or --features" in res.stderr
    res = cli("visualize", str(tmp_path / "nothing"), "--filters")
    assert res.returncode == 2 and "is not a cnnlab run" in res.stderr
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG not really")
    res = cli("visualize", str(run), "--features", str(bad))
    assert res.returncode == 2 and "cannot read" in res.stderr and "Traceback" not in res.stderr
