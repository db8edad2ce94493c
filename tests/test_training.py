"""The trainer: learning, determinism, aux losses, schedules, resume == uninterrupted."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab import registry
from cnnlab.models.base import AuxOutput, ImageClassifier
from cnnlab.training.trainer import TrainConfig, compute_loss, lr_factor, train

SYN = "synthetic:classes=4,size=1x32x32,train=96,val=32,test=48,noise=0.3"


def quiet(*a, **k):
    pass


def cfg(tmp_path, **kw):
    # ReLU LeNet-5: learns the synthetic classes in a few steps (sigmoid needs many epochs)
    base = dict(model="lenet5", model_kwargs={"activation": "relu"}, data=SYN, epochs=2,
                optimizer="adam", weight_decay=0.0,  # fixed here, not the CLI defaults
                batch_size=16, lr=0.01, runs_dir=str(tmp_path),
                plots=False, threads=1)
    base.update(kw)
    return TrainConfig(**base)


class TinyAux(ImageClassifier):
    """Conv -> pool -> linear, with one auxiliary head returned in training mode."""

    def __init__(self, num_classes=10, in_chans=1, aux_weight=0.3):
        super().__init__(num_classes, in_chans, min_input_size=4)
        self.conv = nn.Conv2d(in_chans, 4, 3, padding=1)
        self.num_features = 4
        self.fc = nn.Linear(4, num_classes)
        self.aux = nn.Linear(4, num_classes)
        self.aux_weight = aux_weight

    def forward_features(self, x):
        return torch.relu(self.conv(x))

    def forward_head(self, x, pre_logits=False):
        return self.fc(x.mean((2, 3)))

    def forward(self, x):
        self.check_input(x)
        f = self.forward_features(x)
        logits = self.forward_head(f)
        if self.training:
            return AuxOutput(logits, (self.aux(f.amax((2, 3))),), (self.aux_weight,))
        return logits


@pytest.fixture
def tiny_aux(monkeypatch):
    """Register ``tiny_aux`` for the test only (the registry-wide tests never see it)."""
    def tiny_aux(**kw):
        return TinyAux(**kw)
    entry = registry.ModelEntry("tiny_aux", tiny_aux, "tests", (1, 8, 8), (), "tiny")
    monkeypatch.setitem(registry._MODELS, "tiny_aux", entry)
    return "tiny_aux"


def test_loss_with_aux_outputs_adds_weighted_aux_cross_entropy():
    logits, aux1, aux2 = torch.randn(3, 5), torch.randn(3, 5), torch.randn(3, 5)
    y = torch.tensor([0, 4, 2])
    out = AuxOutput(logits, (aux1, aux2), (0.3, 0.3))
    expected = F.cross_entropy(logits, y) + 0.3 * F.cross_entropy(aux1, y) + \
        0.3 * F.cross_entropy(aux2, y)
    assert torch.allclose(compute_loss(out, y), expected)
    assert torch.allclose(compute_loss(logits, y), F.cross_entropy(logits, y))


def test_training_a_model_with_aux_outputs(tmp_path, tiny_aux):
    c = cfg(tmp_path, model=tiny_aux, model_kwargs={},
            data="synthetic:classes=3,size=1x8x8,train=60,val=0,test=30",
            epochs=4, lr=0.05)
    res = train(c, log=quiet)
    assert res["test_top1"] > 100 / 3 + 20  # well above chance (33 %)
    config = json.loads((tmp_path / "tiny_aux-synthetic" / "config.json").read_text())
    assert config["model"] == "tiny_aux" and config["input_size"] == [1, 8, 8]


def test_lenet_learns_and_writes_the_run_folder(tmp_path):
    res = train(cfg(tmp_path, epochs=3, lr=0.005, plots=True), log=quiet)
    run = tmp_path / "lenet5-synthetic"
    names = {p.name for p in run.iterdir()}
    assert {"config.json", "model.safetensors", "checkpoint.pt", "metrics.jsonl", "metrics.csv",
            "results.json", "loss.png", "accuracy.png", "confusion.png"} <= names
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    keys = {"train_loss", "train_top1", "train_top5", "lr", "images_per_s", "time_s"}
    assert keys <= set(rows[0])
    assert res["test_top1"] > 60  # 4 classes: chance is 25 %
    results = json.loads((run / "results.json").read_text())
    assert results["test_top1"] == res["test_top1"] and "test_top5" in results
    csv_lines = (run / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,step,lr,train_loss") and len(csv_lines) == 4
    config = json.loads((run / "config.json").read_text())
    assert config["classes"] == ["class0", "class1", "class2", "class3"]
    assert len(config["mean"]) == len(config["std"]) == 1 == config["input_size"][0]


def test_two_runs_with_the_same_seed_agree_exactly(tmp_path):
    a = train(cfg(tmp_path, name="a", augment="crop+flip"), log=quiet)
    b = train(cfg(tmp_path, name="b", augment="crop+flip"), log=quiet)
    ra = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    rb = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    for x, y in zip(ra, rb, strict=True):
        assert x["train_loss"] == y["train_loss"] and x["val_top1"] == y["val_top1"]
    assert a["weights_sha256"] == b["weights_sha256"]


def test_train_n_then_resume_m_equals_train_n_plus_m(tmp_path):
    full = train(cfg(tmp_path, name="full", epochs=3, schedule="step", step_size=2), log=quiet)
    train(cfg(tmp_path, name="part", epochs=1, schedule="step", step_size=2), log=quiet)
    resumed = train(cfg(tmp_path, name="part", epochs=3), resume=True, log=quiet)
    assert resumed["weights_sha256"] == full["weights_sha256"]
    assert resumed["test_top1"] == full["test_top1"] and resumed["test_loss"] == full["test_loss"]
    lines = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]


def test_schedules_by_arithmetic():
    c = TrainConfig(model="lenet5", epochs=4, schedule="step", step_size=2, gamma=0.1)
    f = lr_factor(c, steps_per_epoch=10)
    assert [f(0), f(19), f(20), f(39)] == [1.0, 1.0, pytest.approx(0.1), pytest.approx(0.1)]
    c = TrainConfig(model="lenet5", epochs=2, schedule="cosine", warmup_epochs=1)
    f = lr_factor(c, steps_per_epoch=10)
    # warm-up: (step + 1) / 10; then cosine over the remaining 10 steps: 0.5 (1 + cos(pi t))
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(15) == pytest.approx(0.5 * (1 + math.cos(math.pi / 2)))
    c = TrainConfig(model="lenet5", epochs=10, schedule="onecycle")
    f = lr_factor(c, steps_per_epoch=10)  # 30 warm-up steps from 1/25 to 1, then down to 1e-4
    assert f(0) == pytest.approx(1 / 25 + (1 - 1 / 25) / 30) and f(29) == pytest.approx(1.0)
    assert f(100) == pytest.approx(1e-4)


@pytest.mark.parametrize("kw, message", [
    ({"batch_size": 0}, "batch size must be a positive integer"),
    ({"data": "/no/such/folder"}, "does not exist"),
    ({"input_size": (1, 16, 16)}, "lenet5 needs inputs of at least 32x32"),
    ({"optimizer": "lbfgs"}, "unknown optimizer"),
])
def test_bad_input_writes_nothing(tmp_path, kw, message):
    with pytest.raises(ValueError, match=message):
        train(cfg(tmp_path, **kw), log=quiet)
    assert not any(tmp_path.iterdir())


def test_options_channels_last_label_smoothing_clip_and_nesterov(tmp_path):
    res = train(cfg(tmp_path, epochs=1, optimizer="sgd", nesterov=True, lr=0.05, channels_last=True,
                    label_smoothing=0.1, clip_grad=1.0, amp="bf16", weight_decay=1e-4),
                log=quiet)
    assert math.isfinite(res["test_loss"])


def test_early_stopping(tmp_path):
    res = train(cfg(tmp_path, epochs=6, lr=1e-7, patience=1), log=quiet)
    assert res["stopped_early"] and res["epochs"] < 6


def test_any_model_on_any_data_rgb_model_on_gray_digits(tmp_path, tiny_aux):
    # tiny_aux built for 3 channels on 1-channel digits: converted and resized to 3x12x12
    res = train(cfg(tmp_path, model=tiny_aux, model_kwargs={}, data="digits",
                    input_size=(3, 12, 12), epochs=1,
                    batch_size=64, lr=0.05), log=quiet)
    config = json.loads((tmp_path / "tiny_aux-digits" / "config.json").read_text())
    assert config["resize"] == {"from": [1, 8, 8], "to": [3, 12, 12], "channels": "1->3",
                                "mode": "bilinear (antialiased when shrinking)"}
    assert len(config["mean"]) == 3 and res["test_images"] == 359


def test_default_recipe_learns_a_slice_of_the_digits(tmp_path):
    # The defaults of `cnnlab train lenet5`: sigmoid LeNet-5, SGD + momentum, cosine schedule.
    import dataclasses

    from cnnlab.data import load_data

    digits = load_data("digits")
    small = dataclasses.replace(digits, train=digits.train.subset(torch.arange(400)), val=None)
    c = TrainConfig(model="lenet5", epochs=8, runs_dir=str(tmp_path), plots=False, threads=1)
    assert (c.optimizer, c.momentum) == ("sgd", 0.9)
    res = train(c, data=small, log=quiet)
    rows = [json.loads(line) for line in
            (tmp_path / "lenet5-digits" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train_loss"] for r in rows]
    assert losses[-1] < 0.25 * losses[0]
    assert res["test_top1"] > 70  # 10 classes: chance is 10 %; 359 test images
