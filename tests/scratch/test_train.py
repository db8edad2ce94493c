"""Training the NumPy LeNet-5: the data stand-in, the loop, and the CLI."""

import json
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.data import load_data
from cnnlab.errors import TrainingDivergedError
from cnnlab.scratch.train import TrainConfig, load_digits_split, resize_bilinear, train
from tests.helpers import run_main


def test_resize_bilinear_equals_torch_interpolate():
    x = np.random.default_rng(0).random((3, 8, 8))
    for size in (28, 32):
        ref = F.interpolate(torch.from_numpy(x)[:, None], size=(size, size), mode="bilinear",
                            align_corners=False, antialias=False)[:, 0].numpy()
        np.testing.assert_allclose(resize_bilinear(x, size), ref, atol=1e-12)


def test_digits_split_is_the_shared_one_and_disjoint():

    d = load_digits_split(28)
    sizes = {k: len(d[k][1]) for k in ("train", "val", "test")}
    assert sizes == {"train": 1258, "val": 180, "test": 359}  # 1,797 digits, as cnnlab train
    shared = load_data("digits")
    np.testing.assert_array_equal(d["test"][1], shared.test.labels.numpy())
    assert d["train"][0].shape[1:] == (1, 28, 28) and d["train"][0].dtype == np.float32
    # normalised with the training set's statistics
    assert abs(d["train"][0].mean()) < 1e-5 and d["train"][0].std() == pytest.approx(1, abs=1e-4)
    for k in ("train", "val", "test"):
        assert set(np.bincount(d[k][1], minlength=10) > 0) == {True}
    # fixed split
    np.testing.assert_array_equal(load_digits_split(28)["test"][1], d["test"][1])
    # the splits do not share images
    flat = {k: {row.tobytes() for row in d[k][0]} for k in ("train", "test")}
    assert len(flat["train"] & flat["test"]) <= 5  # the data set itself holds a few duplicates


def test_torch_free_split_draws_torch_randperm_and_the_shared_images():
    """The NumPy engine splits the digits without torch; it must be cnnlab.data's split."""
    from cnnlab.data.digits import load_digits
    from cnnlab.scratch.digits import load_digits_arrays, randperm

    for n, seed in ((1797, 0), (10, 3), (1, 0), (2, 7)):
        expected = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
        np.testing.assert_array_equal(randperm(n, seed), expected)
    ours, shared = load_digits_arrays(), load_digits()
    for k in ("train", "val", "test"):
        np.testing.assert_array_equal(ours[k][0], getattr(shared, k).images[:, 0].double().numpy())
        np.testing.assert_array_equal(ours[k][1], getattr(shared, k).labels.numpy())


def test_two_epochs_learn(capsys):
    lines = []
    _, hist = train(TrainConfig(epochs=2), progress=False, log=lines.append)
    assert len(lines) == 2 and "val loss" in lines[0]
    first, last = hist.epochs
    assert last["train_loss"] < 0.5 * first["train_loss"]
    assert first["val_loss"] < 2.0 < 2.30  # ln 10 = 2.30 at chance: it learns in one epoch
    assert last["val_acc"] > 0.5 and hist.test_acc > 0.5
    assert last["lr"] == pytest.approx(0.05 * 0.95)


def test_cli_scratch_train_and_show(cli, tmp_path):
    out = tmp_path / "run"
    res = cli("scratch", "train", "--epochs", "1", "-o", str(out), "--show", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "epoch   1" in res.stdout and "test accuracy" in res.stdout
    cfg = json.loads((out / "scratch_config.json").read_text())
    assert cfg["input_size"] == 28 and len(cfg["epochs"]) == 1
    for name in ("scratch_lenet5.npz", "c1_kernels.png", "feature_maps.png"):
        assert (out / name).stat().st_size > 0
    with np.load(out / "scratch_lenet5.npz", allow_pickle=False) as f:
        assert f["c1.W"].shape == (6, 1, 5, 5) and f["c5.W"].shape == (120, 16, 5, 5)
    res = cli("scratch", "show", str(out), "--index", "3", "-o", str(tmp_path / "pics"))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "pics" / "feature_maps.png").is_file()


def test_cli_scratch_errors(cli, tmp_path, trained_runs):
    res = cli("scratch", "show", str(tmp_path))  # the resolver's one error for a non-run
    assert res.returncode == 2 and "a 'cnnlab scratch train' folder" in res.stderr
    res = cli("scratch", "show", "lenet5")  # a model name opens, but is not a scratch run
    assert res.returncode == 2 and "model name, not a 'cnnlab scratch train" in res.stderr
    res = cli("scratch", "show", str(trained_runs.lenet5_synthetic))  # a PyTorch run
    assert res.returncode == 2 and "'cnnlab train' run folder, not a 'cnnlab scratch" in res.stderr
    res = cli("scratch", "train", "--show")
    assert res.returncode == 2 and "--show needs -o" in res.stderr


@pytest.mark.slow
def test_lenet5_from_scratch_reaches_95_percent_in_3_minutes(cli):
    start = time.perf_counter()
    res = cli("scratch", "train", "--no-progress", timeout=400)
    elapsed = time.perf_counter() - start
    assert res.returncode == 0, res.stderr
    acc = float(res.stdout.split("test accuracy")[1].split()[0])
    assert acc >= 95 and elapsed < 180, (acc, elapsed)   # printed in %


# moved from tests/test_hardening.py (issue 13)
# --------------------------------------------------------- the NumPy engine's lr (item 8)


@pytest.mark.parametrize("lr,needle", [("nan", "the learning rate must be a positive finite "
                                        "number, got nan"),
                                       ("1e6", "training diverged: the mean loss of epoch 1")])
def test_cli_scratch_train_stops_on_a_bad_learning_rate(capsys, tmp_path, lr, needle):
    res = run_main(capsys, "scratch", "train", "--lr", lr, "--epochs", "2", "--no-progress",
                   "-o", tmp_path / "out")
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.strip().count("\n") == 0 and needle in res.stderr
    assert "lower the learning rate" in res.stderr or "try --lr" in res.stderr
    assert "test accuracy" not in res.stdout and not (tmp_path / "out").exists()


def test_scratch_nan_loss_is_caught_at_the_batch():
    from cnnlab.scratch.train import TrainConfig, train

    data = {k: (np.zeros((8, 1, 28, 28), np.float32), np.arange(8) % 10)
            for k in ("train", "val", "test")}
    data["train"][0][:, 0, 5, 5] = np.nan  # a NaN pixel in every image: the first batch
    with pytest.raises(TrainingDivergedError, match="the loss became nan at epoch 1, batch 1"):
        train(TrainConfig(epochs=1, batch_size=4, seed=0), data=data, progress=False,
              log=lambda s: None)
    assert issubclass(TrainingDivergedError, FloatingPointError)
