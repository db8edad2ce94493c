"""cnnlab predict with a weights file: no run folder, folders in batches, class names,
streaming, channels_last and bf16 autocast against fp32 eager."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.cli import main
from cnnlab.data.config import IMAGENET_MEAN, IMAGENET_STD


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    torch.manual_seed(0)
    model = cnnlab.create_model("resnet20").eval()
    torch.save({"model": model.state_dict()}, root / "r20.pth")
    rng = np.random.default_rng(0)
    (root / "imgs" / "sub").mkdir(parents=True)
    paths = []
    for i in range(5):
        p = root / "imgs" / ("sub" if i == 4 else "") / f"im{i}.png"
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    (root / "imgs" / "notes.txt").write_text("not an image")
    return root, model, paths


def expected_probs(model, paths):
    """By hand: pixels / 255, ImageNet normalisation (resnet20 has no published weights: its
    default data configuration, no resize for 32x32 images), softmax."""
    x = torch.stack([torch.from_numpy(np.asarray(Image.open(p), dtype=np.float32) / 255)
                     .permute(2, 0, 1) for p in paths])
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        return torch.softmax(model((x - mean) / std), dim=1)


def test_folder_in_batches_without_a_run(setup, capsys):
    root, model, paths = setup
    assert main(["predict", "resnet20", "--weights", str(root / "r20.pth"), str(root / "imgs"),
                 "--batch-size", "2", "--top-k", "3", "--json"]) == 0
    out = capsys.readouterr()
    items = json.loads(out.out)
    assert [it["image"] for it in items] == [str(p) for p in paths]  # sorted, recursive
    probs = expected_probs(model, paths)
    for it, p in zip(items, probs, strict=True):
        top = p.topk(3)
        assert [t["index"] for t in it["top"]] == top.indices.tolist()
        assert [t["class"] for t in it["top"]] == [str(i) for i in top.indices.tolist()]
        assert [t["probability"] for t in it["top"]] == pytest.approx(top.values.tolist(),
                                                                       abs=1e-5)
    assert "resnet20: evaluation transform of default (no published weights" in out.err
    assert "resize to 32x32 (bilinear), mean [0.485, 0.456, 0.406]" in out.err


def test_class_names_file(setup, capsys, tmp_path):
    root, model, paths = setup
    names = [f"thing{i}" for i in range(10)]
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n")
    assert main(["predict", "resnet20", "--weights", str(root / "r20.pth"), str(paths[0]),
                 "--classes", str(tmp_path / "names.txt"), "--top-k", "1"]) == 0
    best = int(expected_probs(model, paths[:1])[0].argmax())
    assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["1.", f"thing{best}"]
    (tmp_path / "short.txt").write_text("a\nb\n")
    assert main(["predict", "resnet20", "--weights", str(root / "r20.pth"), str(paths[0]),
                 "--classes", str(tmp_path / "short.txt")]) == 2
    err = capsys.readouterr().err
    assert "names 2 classes, the model has 10" in err and err.count("\n") == 1


@pytest.mark.parametrize("args, message", [
    (["resnet20", "x.png"], "resnet20 is a model name: give its weights with --weights"),
    (["resnet20", "--weights", "nope.pth", "x.png"], "nope.pth does not exist"),
    (["resnet20", "--weights", "{w}", "{root}/missing.png"], "no such image or folder"),
    (["resnet20", "--weights", "{w}", "{root}/imgs", "--batch-size", "0"],
     "--batch-size must be at least 1"),
    (["resnet32", "--weights", "{w}", "{root}/imgs"], "the file matches resnet20"),
])
def test_bad_input(setup, capsys, args, message):
    root, _, _ = setup
    args = [a.format(w=root / "r20.pth", root=root) for a in args]
    assert main(["predict", *args]) == 2
    out = capsys.readouterr()
    assert message in out.err and out.err.count("\n") == 1 and out.out == ""


def test_prediction_streams_batch_by_batch(setup):
    from cnnlab.commands.predict import predict_batches
    from cnnlab.data import Preprocess

    root, model, paths = setup
    taken = []

    def files():
        for i in range(1000):
            taken.append(i)
            yield paths[i % len(paths)]

    pre = Preprocess(3, (32, 32), IMAGENET_MEAN, IMAGENET_STD)
    stream = predict_batches(model, pre, files(), 4, "cpu")
    got, probs = next(stream)
    assert len(got) == 4 and len(taken) == 4   # nothing read beyond the first batch
    torch.testing.assert_close(probs, expected_probs(model, paths[:4]))
    stream.close()


def test_channels_last_and_bf16_against_fp32_eager(setup):
    from cnnlab.commands.predict import predict_batches
    from cnnlab.data import Preprocess

    root, model, paths = setup
    pre = Preprocess(3, (32, 32), IMAGENET_MEAN, IMAGENET_STD)
    ref = expected_probs(model, paths)
    m = cnnlab.create_model("resnet20", weights=root / "r20.pth", log=None).eval()
    (_, cl), = predict_batches(m, pre, paths, 8, "cpu", channels_last=True)
    torch.testing.assert_close(cl, ref, rtol=1e-4, atol=1e-5)
    (_, bf), = predict_batches(m, pre, paths, 8, "cpu", channels_last=True, amp="bf16")
    assert bf.dtype == torch.float32
    assert (bf - ref).abs().max() < 0.03   # bf16 keeps ~3 significant digits
    assert not torch.equal(bf, ref)        # autocast really ran in bf16
