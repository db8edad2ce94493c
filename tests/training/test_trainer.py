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
                                "mode": "bilinear (antialiased when shrinking)", "pad_from": None}
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


# ------------------------------------------------------------------ the pieces, each alone
# (issue 16 item 1; issue 13 item 12: tests that fail on the mutants the audit left alive)

def test_label_smoothing_matches_torch_and_the_formula():
    from cnnlab.training.loop import compute_loss

    torch.manual_seed(1)
    logits, y = torch.randn(6, 5), torch.tensor([0, 4, 2, 2, 1, 3])
    got = compute_loss(logits, y, label_smoothing=0.2)
    assert torch.allclose(got, F.cross_entropy(logits, y, label_smoothing=0.2))
    # by hand: (1 - e) * CE + e * mean over classes of -log p
    logp = logits.log_softmax(1)
    hand = (0.8 * -logp[range(6), y] + 0.2 * -logp.mean(1)).mean()
    assert torch.allclose(got, hand)
    assert not torch.allclose(got, F.cross_entropy(logits, y))  # smoothing is not ignored
    aux = AuxOutput(logits, (logits * 2,), (0.5,))
    assert torch.allclose(compute_loss(aux, y, 0.2), hand + 0.5 * F.cross_entropy(
        logits * 2, y, label_smoothing=0.2))


def test_a_training_step_uses_the_configured_label_smoothing():
    from cnnlab.training.loop import Learner

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x, y = torch.randn(5, 1, 2, 2), torch.tensor([0, 1, 2, 1, 0])
    expected = F.cross_entropy(model(x), y, label_smoothing=0.3).item()
    c = TrainConfig(model="x", label_smoothing=0.3)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    learner = Learner(c, model, model, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1),
                      torch.amp.GradScaler("cuda", enabled=False), torch.device("cpu"))
    loss, _, _ = learner.step(x, y, "test")
    assert loss == pytest.approx(expected, rel=1e-6)
    assert loss != pytest.approx(F.cross_entropy(model(x), y).item(), rel=1e-3)


def test_top1_top5_on_a_hand_made_example():
    from cnnlab.training.loop import EpochSums
    from cnnlab.training.metrics import topk_correct

    logits = torch.tensor([
        [9., 8, 7, 6, 5, 4, 3],   # target 0: rank 1 -> top-1 and top-5
        [9., 8, 7, 6, 5, 4, 3],   # target 4: rank 5 -> top-5 only
        [9., 8, 7, 6, 5, 4, 3],   # target 5: rank 6 -> neither
        [1., 1, 1, 1, 1, 1, 1],   # all tied: the tie counts against the target -> neither
        [0., 5, 5, 0, 0, 0, 0],   # target 2 tied for first with class 1 -> top-5, not top-1
        [0., 0, 0, 0, 0, 0, 3],   # target 6: rank 1
    ])
    y = torch.tensor([0, 4, 5, 3, 2, 6])
    assert topk_correct(logits, y) == [2, 4]
    assert topk_correct(logits, y, ks=(1, 2, 7)) == [2, 3, 6]
    nan = torch.tensor([[float("nan"), 1.0, 2.0]])
    assert topk_correct(nan, torch.tensor([0])) == [0, 0]
    # the training loop's histogram, summed over two "steps", gives the same counts
    sums = EpochSums()
    sums.add(1.0, logits[:3], y[:3])
    sums.add(2.0, logits[3:], y[3:])
    snap = sums.snapshot(elapsed=0.5)
    assert (snap["top1"], snap["top5"], snap["n"]) == (2, 4, 6)
    assert snap["loss"] == 1.0 * 3 + 2.0 * 3 and snap["time"] == 0.5
    # a snapshot restored from a checkpoint keeps counting from where it was
    again = EpochSums.from_snapshot(snap)
    again.add(0.0, logits[:1], y[:1])
    assert again.snapshot()["top1"] == 3 and again.snapshot()["top5"] == 5


def test_schedules_against_hand_written_values():
    steps = 4
    c = TrainConfig(model="lenet5", epochs=3, schedule="step", step_size=1, gamma=0.95)
    f = lr_factor(c, steps)
    assert [f(s) for s in (0, 3, 4, 7, 8, 11)] == pytest.approx(
        [1, 1, 0.95, 0.95, 0.9025, 0.9025])
    c = TrainConfig(model="lenet5", epochs=2, schedule="cosine")
    f = lr_factor(c, steps)  # 8 steps: 0.5 (1 + cos(pi s / 8))
    assert [f(s) for s in (0, 2, 4, 6, 8)] == pytest.approx(
        [1.0, 0.8535533905932737, 0.5, 0.14644660940672627, 0.0])
    c = TrainConfig(model="lenet5", epochs=2, schedule="constant", warmup_epochs=0.5)
    f = lr_factor(c, steps)  # 2 warm-up steps: 1/2, 2/2, then 1
    assert [f(s) for s in (0, 1, 2, 7)] == [0.5, 1.0, 1.0, 1.0]
    c = TrainConfig(model="lenet5", epochs=10, schedule="onecycle")
    f = lr_factor(c, 1)  # 3 warm-up steps from 0.04 to 1 (0.36, 0.68, 1.0), cosine to 1e-4
    assert [f(s) for s in (0, 1, 2)] == pytest.approx([0.36, 0.68, 1.0])
    assert f(10) == pytest.approx(1e-4)
    assert f(5) == pytest.approx(1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * 2 / 7)))


def test_param_groups_and_train_mode_are_single_functions():
    from cnnlab.training.loop import make_optimizer, param_groups, set_train_mode

    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Linear(2, 2))
    model[0].weight.requires_grad_(False)
    c = TrainConfig(model="x", lr=0.3)
    groups = param_groups(c, model)
    assert len(groups) == 1 and groups[0]["lr"] == 0.3
    assert len(groups[0]["params"]) == 3  # frozen weight left out
    assert make_optimizer(c, model).param_groups[0]["lr"] == 0.3
    set_train_mode(model, False)
    assert not any(m.training for m in model.modules())
    set_train_mode(model, True)
    assert all(m.training for m in model.modules())


def test_batches_indexed_from_the_cache_equal_the_dataloader():
    from torch.utils.data import DataLoader

    from cnnlab.data import Augment, Prepared, Preprocess, load_data
    from cnnlab.training.loop import in_memory, iterate_batches

    d = load_data("synthetic:classes=3,size=1x8x8,train=20,val=0,test=4")
    pre = Preprocess(1, (8, 8), d.mean, d.std)
    for aug in (None, Augment(crop_padding=2, hflip=True, fill=[0.0])):
        ds = Prepared(d.train, pre, aug, seed=3)
        ds.set_epoch(2)
        assert in_memory(ds)
        batches = [[3, 1, 7], [0, 19], [5]]
        fast = list(iterate_batches(ds, batches))
        slow = list(DataLoader(ds, batch_sampler=batches))
        for (x, y), (x2, y2) in zip(fast, slow, strict=True):
            assert torch.equal(x, x2) and torch.equal(y, y2) and y.dtype == y2.dtype


# ------------------------------------------------------------------ callbacks, each alone

def test_early_stopping_callback():
    from cnnlab.training.callbacks import EarlyStopping
    from cnnlab.training.loop import TrainState

    said = []
    es, state = EarlyStopping(patience=2, say=said.append), TrainState()
    for epoch, top1 in enumerate([50.0, 60.0, 59.0, 60.0], start=1):
        es.on_epoch_end(state, {"epoch": epoch, "val_top1": top1})
    assert es.stop and state.best == {"top1": 60.0, "epoch": 2, "bad_epochs": 2}
    assert "best 60.00% at epoch 2" in said[0]
    off = EarlyStopping(patience=None)
    off.on_epoch_end(TrainState(), {"epoch": 1, "val_top1": 1.0})
    assert not off.stop


def test_checkpointing_callback_saves_every_n_steps_inside_an_epoch():
    from cnnlab.training.callbacks import Checkpointing
    from cnnlab.training.loop import TrainState

    saved, weights = [], []

    class FakeRun:
        def save_checkpoint(self, state):
            saved.append((state["epoch"], state["batch"], state["step"], state["model"]))

    cb = Checkpointing(FakeRun(), lambda: {"model": "M"}, lambda: weights.append(1), every=2)
    state = TrainState()
    cb.on_epoch_start(state, 0, [[0]] * 4)
    for _ in range(4):
        state.step += 1
        state.batch += 1
        cb.on_step_end(state, 0, 1)
    assert saved == [(0, 2, 2, "M")]   # step 4 is the epoch's last batch: the epoch end saves
    state.epoch, state.batch = 1, 0
    cb.on_epoch_end(state, {})
    assert saved[-1] == (1, 0, 4, "M") and weights == [1]


def test_metrics_logger_callback(tmp_path):
    from cnnlab.training.callbacks import MetricsLogger
    from cnnlab.training.loop import TrainState
    from cnnlab.training.run import RunFolder

    run, lines, state = RunFolder(tmp_path), [], TrainState()
    run.reset_metrics([])
    log = MetricsLogger(2, run, lines.append)
    for e in (1, 2):
        log.on_epoch_end(state, {"epoch": e, "lr": 0.1, "train_loss": 1.0 / e, "train_top1": 50,
                                 "val_loss": None, "val_top1": None, "images_per_s": 10,
                                 "epoch_time_s": 1.0})
    assert [r["epoch"] for r in state.history] == [1, 2]
    assert lines[1].startswith("epoch   2/2  train loss 0.5000 acc 50.00%  val loss - acc -")
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows == state.history
    assert (tmp_path / "metrics.csv").read_text().splitlines()[2].startswith("2,,0.1,0.5,50")


def test_metrics_rewrite_is_atomic_when_the_rename_fails(tmp_path, monkeypatch):
    from cnnlab.training.metrics import MetricsWriter

    w = MetricsWriter(tmp_path)
    w.rewrite([{"epoch": 1, "train_loss": 2.0}])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def failing_replace(src, dst):
        raise OSError("disk full (injected)")

    monkeypatch.setattr("os.replace", failing_replace)
    with pytest.raises(OSError, match="injected"):
        w.rewrite([{"epoch": 1, "train_loss": 9.0}, {"epoch": 2, "train_loss": 8.0}])
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # old contents intact, no temporary file left behind


# ------------------------------------------------------------------ resume oracles

class TinyDropout(ImageClassifier):
    """Flatten -> dropout -> linear: the global RNG drives the dropout masks."""

    def __init__(self, num_classes=10, in_chans=1):
        super().__init__(num_classes, in_chans, min_input_size=4)
        self.num_features = in_chans * 64
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x):
        return x

    def forward_head(self, x, pre_logits=False):
        return self.fc(self.drop(x.flatten(1)))


@pytest.fixture
def tiny_dropout(monkeypatch):
    entry = registry.ModelEntry("tiny_dropout", lambda **kw: TinyDropout(**kw), "tests",
                                (1, 8, 8), (), "tiny")
    monkeypatch.setitem(registry._MODELS, "tiny_dropout", entry)
    return "tiny_dropout"


def test_resume_restores_the_rng_of_dropout(tmp_path, tiny_dropout, monkeypatch):
    # "step" does not depend on the number of epochs, so 1 + 2 epochs must equal 3
    kw = dict(model=tiny_dropout, model_kwargs={}, optimizer="sgd", lr=0.1, schedule="step",
              step_size=1, gamma=0.5, data="synthetic:classes=3,size=1x8x8,train=48,val=0,test=12",
              checkpoint_every=2)
    full = train(cfg(tmp_path, name="full", epochs=3, **kw), log=quiet)
    train(cfg(tmp_path, name="part", epochs=1, **kw), log=quiet)
    resumed = train(cfg(tmp_path, name="part", epochs=3, **kw), resume=True, log=quiet)
    assert resumed["weights_sha256"] == full["weights_sha256"]
    # the oracle can fail: without the RNG restore, the dropout masks differ
    from cnnlab.training import checkpoint as ckpt

    train(cfg(tmp_path, name="norng", epochs=1, **kw), log=quiet)
    monkeypatch.setattr(ckpt, "set_rng_state", lambda state: None)
    broken = train(cfg(tmp_path, name="norng", epochs=3, **kw), resume=True, log=quiet)
    assert broken["weights_sha256"] != full["weights_sha256"]


class TinyLinear(ImageClassifier):
    """Softmax regression with zero initial weights: its SGD can be done by hand."""

    def __init__(self, num_classes=10, in_chans=1):
        super().__init__(num_classes, in_chans, min_input_size=4)
        self.num_features = in_chans * 16
        self.fc = nn.Linear(self.num_features, num_classes)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward_features(self, x):
        return x

    def forward_head(self, x, pre_logits=False):
        return self.fc(x.flatten(1))


def test_training_and_resume_equal_sgd_computed_by_hand(tmp_path, monkeypatch):
    """An oracle that is not the trainer: plain SGD on softmax regression in float64 NumPy,
    batches in the documented order (``torch.randperm`` seeded with seed + epoch)."""
    import numpy as np
    from safetensors.torch import load_file

    from cnnlab.data import load_data

    entry = registry.ModelEntry("tiny_linear", lambda **kw: TinyLinear(**kw), "tests",
                                (1, 4, 4), (), "tiny")
    monkeypatch.setitem(registry._MODELS, "tiny_linear", entry)
    spec = "synthetic:classes=3,size=1x4x4,train=24,val=0,test=6"
    kw = dict(model="tiny_linear", model_kwargs={}, data=spec, optimizer="sgd", lr=0.5,
              momentum=0.0, weight_decay=0.0, schedule="constant", batch_size=8, seed=5,
              augment="none", checkpoint_every=2)
    train(cfg(tmp_path, name="full", epochs=2, **kw), log=quiet)
    train(cfg(tmp_path, name="part", epochs=1, **kw), log=quiet)
    train(cfg(tmp_path, name="part", epochs=2, **kw), resume=True, log=quiet)

    d = load_data(spec)
    x = d.train.images.double().numpy().reshape(24, 16)
    x = x / 255.0 if d.train.images.dtype == torch.uint8 else x
    config = json.loads((tmp_path / "full" / "config.json").read_text())
    x = (x - config["mean"][0]) / config["std"][0]
    y = d.train.labels.numpy()
    w, b = np.zeros((3, 16)), np.zeros(3)
    for epoch in range(2):
        order = torch.randperm(24, generator=torch.Generator().manual_seed(5 + epoch)).numpy()
        for i in range(0, 24, 8):
            idx = order[i:i + 8]
            z = x[idx] @ w.T + b
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            p[np.arange(len(idx)), y[idx]] -= 1  # dCE/dz
            w -= 0.5 * p.T @ x[idx] / len(idx)
            b -= 0.5 * p.sum(0) / len(idx)
    for name in ("full", "part"):
        got = load_file(str(tmp_path / name / "model.safetensors"))
        assert np.allclose(got["fc.weight"].double().numpy(), w, atol=1e-5), name
        assert np.allclose(got["fc.bias"].double().numpy(), b, atol=1e-5), name
    assert np.abs(w).max() > 0.05  # it did learn something


def test_resume_refuses_changed_options_and_records_safe_ones(tmp_path):
    from cnnlab.training.trainer import ResumeOptionsError

    train(cfg(tmp_path, name="r", epochs=1), log=quiet)
    with pytest.raises(ResumeOptionsError, match=r"--lr 0\.5 \(the run's: 0\.01\)"):
        train(cfg(tmp_path, name="r", epochs=2, lr=0.5), resume=True, log=quiet,
              given={"lr", "epochs"})
    res = train(cfg(tmp_path, name="r", epochs=2), resume=True, log=quiet,
                given={"epochs", "lr", "threads"})  # same lr as the run's: accepted
    assert res["epochs"] == 2
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["train"]["epochs"] == 2
    assert config["resumed"] == [{"at_epoch": 1, "at_batch": 0, "at_step": 6,
                                  "changed": {"epochs": [1, 2]}}]
    with pytest.raises(ResumeOptionsError, match="already trained 2 epochs"):
        train(cfg(tmp_path, name="r", epochs=1), resume=True, log=quiet, given={"epochs"})
