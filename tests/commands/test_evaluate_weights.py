"""``cnnlab evaluate MODEL --weights FILE --data FOLDER``, ImageNet class names in predict and
evaluate, the data configuration in ``weights inspect``, and the bad-input lines of issue 28.

The model is a seeded MobileNet v3 small (fast at 224 pixels) whose classifier is redrawn with
a large spread so that its 1000 logits differ; the photos are cut from scikit-learn's bundled
photos. Expected predictions are computed here by hand: torchvision's evaluation preset for
ResNet/MobileNet V1 weights (shorter side 256, antialiased bilinear, centre crop 224 at
``round((h - 224) / 2)``, ImageNet normalisation).
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import cnnlab
from cnnlab.data.imagenet import imagenet_names, imagenet_wnids
from tests.helpers import run_main

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def by_hand(path) -> torch.Tensor:
    """torchvision's ImageClassification(crop_size=224, resize_size=256), written out."""
    x = torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255)
    x = x.permute(2, 0, 1)[None]
    h, w = x.shape[-2:]
    size = (256, int(256 * w / h)) if h <= w else (int(256 * h / w), 256)
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    top, left = int(round((size[0] - 224) / 2)), int(round((size[1] - 224) / 2))
    return (x[:, top:top + 224, left:left + 224] - MEAN) / STD


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from sklearn.datasets import load_sample_images

    root = tmp_path_factory.mktemp("evalw")
    torch.manual_seed(0)
    model = cnnlab.create_model("mobilenet_v3_small")
    # At initialisation its features are ~1e-8 and every image gets the same logits: set the
    # BN statistics from a batch of noise, then spread the classifier.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        model.train()(torch.rand(2, 3, 224, 224))
        model.eval().classifier[-1].weight.mul_(300)
    torch.save(model.state_dict(), root / "mnv3s.pth")
    china, flower = load_sample_images().images
    photos = root / "photos"
    photos.mkdir()
    cuts = {"landscape": china, "portrait": china[:, 150:431], "square": flower[60:361, 200:501],
            "wide": flower[100:300]}
    paths = {}
    for name, img in cuts.items():
        paths[name] = photos / f"{name}.jpg"
        Image.fromarray(np.ascontiguousarray(img)).save(paths[name], quality=95)
    with torch.no_grad():
        logits = {n: model(by_hand(p)[None])[0] for n, p in paths.items()}
    return SimpleNamespace(root=root, weights=root / "mnv3s.pth", model=model, paths=paths,
                           logits=logits)


def test_predict_names_the_imagenet_classes(setup, capsys):
    res = run_main(capsys, "predict", "mobilenet_v3_small", "--weights", setup.weights,
                   setup.paths["portrait"], "--top-k", "3", "--json")
    assert res.returncode == 0, res.stderr
    item, = json.loads(res.stdout)
    probs = torch.softmax(setup.logits["portrait"], 0).topk(3)
    assert [t["index"] for t in item["top"]] == probs.indices.tolist()
    assert [t["class"] for t in item["top"]] == [imagenet_names()[i] for i in probs.indices]
    assert [t["probability"] for t in item["top"]] == pytest.approx(probs.values.tolist(),
                                                                     abs=1e-4)
    assert ("mobilenet_v3_small: evaluation transform of torchvision IMAGENET1K_V1: resize 256 "
            "(shorter side, bilinear, antialiased), centre crop 224x224") in res.stderr


def test_imagenet_class_list():
    names, wnids = imagenet_names(), imagenet_wnids()
    assert len(names) == len(set(names)) == 1000 and len(set(wnids)) == 1000
    assert wnids == sorted(wnids)
    assert (wnids[0], names[0]) == ("n01440764", "tench")
    assert (wnids[713], names[713]) == ("n03924679", "photocopier")


def _val_folder(setup, tmp_path, layout: dict[str, list[str]]):
    val = tmp_path / "val"
    for wnid, photos in layout.items():
        (val / wnid).mkdir(parents=True)
        for p in photos:
            (val / wnid / f"{p}.jpg").write_bytes(setup.paths[p].read_bytes())
    return val


def test_evaluate_an_imagenet_style_folder(setup, capsys, tmp_path):
    """Folders named by WordNet id take the ImageNet index of the id: the landscape photo is
    filed under the class the model predicts for it (a hit), the others under tench (index 0)
    and under their own top-5 second class."""
    wnids = imagenet_wnids()
    pred = {n: int(v.argmax()) for n, v in setup.logits.items()}
    second = int(setup.logits["square"].topk(2).indices[1])
    layout = {wnids[pred["landscape"]]: ["landscape"], "n01440764": ["portrait"],
              wnids[second]: ["square"]}
    if len(layout) < 3 or pred["portrait"] == 0:
        pytest.skip("the seeded predictions collide")
    val = _val_folder(setup, tmp_path, layout)
    res = run_main(capsys, "evaluate", "mobilenet_v3_small", "--weights", setup.weights,
                   "--data", val, "--batch-size", "2", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["images"] == 3
    assert out["top1"] == pytest.approx(100 / 3)
    rank_portrait = int((setup.logits["portrait"] >= setup.logits["portrait"][0]).sum())
    top5_hits = 1 + 1 + (rank_portrait <= 5)
    assert out["top5"] == pytest.approx(100 * top5_hits / 3)
    assert out["per_class"] == {wnids[pred["landscape"]]: 100.0, "n01440764": 0.0,
                                wnids[second]: 0.0}
    assert out["data_config"]["resize"] == 256 and out["data_config"]["input_size"] == [3, 224,
                                                                                         224]
    assert len(out["classes"]) == 1000 and "confusion" not in out
    assert {"true": "tench", "predicted": imagenet_names()[pred["portrait"]],
            "count": 1} in out["most_confused"]

    text = run_main(capsys, "evaluate", "mobilenet_v3_small", "--weights", setup.weights,
                    "--data", val)
    assert text.returncode == 0
    assert "(3 images): top-1 33.33%" in text.stdout
    assert re.search(r"^n01440764 +tench +1 +0\.00%$", text.stdout, re.M)
    assert "most confused (of 1000 classes)" in text.stdout


def test_resize_and_crop_override(setup, capsys, tmp_path):
    val = _val_folder(setup, tmp_path, {"n01440764": ["square", "wide"]})
    res = run_main(capsys, "evaluate", "mobilenet_v3_small", "--weights", setup.weights,
                   "--data", val, "--resize", "240", "--crop", "200", "--interpolation",
                   "bicubic", "--json")
    assert res.returncode == 0, res.stderr
    dc = json.loads(res.stdout)["data_config"]
    assert (dc["resize"], dc["input_size"], dc["interpolation"]) == (240, [3, 200, 200],
                                                                     "bicubic")


def _one_line(res, *needles):
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    for n in needles:
        assert n in lines[0]


def test_bad_input_is_one_line(setup, capsys, tmp_path):
    base = ["evaluate", "mobilenet_v3_small", "--weights", setup.weights, "--data"]
    bad = tmp_path / "bad"
    (bad / "n99999999").mkdir(parents=True)
    (bad / "n99999999" / "a.jpg").write_bytes(setup.paths["square"].read_bytes())
    _one_line(run_main(capsys, *base, bad), "n99999999 is not one of the 1000 ImageNet-1k")

    ten = tmp_path / "ten"
    for c in "abcdefghij":
        (ten / c).mkdir(parents=True)
        (ten / c / "x.jpg").write_bytes(setup.paths["square"].read_bytes())
    _one_line(run_main(capsys, *base, ten), "the model has 1000 outputs but",
              "has 10 classes", "cnnlab train MODEL --weights FILE --data FOLDER")

    val = _val_folder(setup, tmp_path, {"n01440764": ["square"]})
    _one_line(run_main(capsys, *base, val, "--resize", "200", "--crop", "224"),
              "the crop 224x224 is larger than the resize 200", "--resize 224")
    _one_line(run_main(capsys, *base, val, "--interpolation", "lanczos"),
              "unknown interpolation 'lanczos'; choose one of bilinear, bicubic, nearest")
    _one_line(run_main(capsys, "predict", "mobilenet_v3_small", "--weights", setup.weights,
                       setup.paths["square"], "--crop", "300", "--resize", "256"),
              "larger than the resize")
    _one_line(run_main(capsys, "evaluate", "mobilenet_v3_small", "--weights", setup.weights),
              "--data FOLDER")
    _one_line(run_main(capsys, "evaluate", "mobilenet_v3_small", "--data", val),
              "is a model name")


def test_weights_inspect_prints_the_evaluation_transform(setup, capsys):
    res = run_main(capsys, "weights", "inspect", setup.weights)
    assert res.returncode == 0, res.stderr
    line = next(li for li in res.stdout.splitlines() if li.startswith("evaluation"))
    assert ("mobilenet_v3_small: resize 256 (shorter side, bilinear, antialiased), centre crop "
            "224x224") in line and "(torchvision IMAGENET1K_V1)" in line
    info = json.loads(run_main(capsys, "weights", "inspect", setup.weights, "--json").stdout)
    assert info["data_config"]["mobilenet_v3_small"] == cnnlab.data_config(
        "mobilenet_v3_small").to_dict()


def test_photo_folders_train_with_the_evaluation_transform():
    from cnnlab.data.config import photo_transform

    photos = SimpleNamespace(image_size=None)
    assert photo_transform("resnet18", photos, (224, 224)) == {"resize": 256,
                                                                "interpolation": "bilinear"}
    assert photo_transform("inception_v3", photos, (299, 299)) == {"resize": 342,
                                                                    "interpolation": "bilinear"}
    assert photo_transform("efficientnet_b0", photos, (128, 128)) == {
        "resize": 146, "interpolation": "bicubic"}  # 128 / (224 / 256)
    assert photo_transform("resnet18", SimpleNamespace(image_size=(32, 32)), (224, 224)) == {}
    assert photo_transform("resnet20", photos, (32, 32)) == {}
