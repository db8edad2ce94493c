"""The paper's LeNet-5 (lenet5_paper), its schedule and distortions, and LeNet-5's padded
28x28 input; the slow test trains on 5,000 MNIST images and checks the learning curve."""

import json
import math
import os
from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab.data.base import DataSplits, TensorImages
from cnnlab.data.transforms import Augment, Preprocess, pad_to, random_distortion
from cnnlab.models.lenet import (
    DIGIT_BITMAPS,
    SQUASH_A,
    SQUASH_S,
    EuclideanRBF,
    ScaledTanh,
    Subsampling,
    digit_bitmaps,
)
from cnnlab.training.config import TrainConfig
from cnnlab.training.loop import LECUN1998_FACTORS, lr_factor


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_sixty_thousand_trainable_parameters_as_the_paper_says():
    # Section II.B: C1 6 x (25 + 1); S2 6 x (coefficient + bias); C3 60 kernels x 25 + 16
    # biases (Table I); S4 16 x 2; C5 120 x (16 x 25 + 1); F6 84 x (120 + 1); the RBF output's
    # centres are fixed ("chosen by hand and kept fixed"), so not trainable.
    layers = {"c1": 6 * 26, "s2": 6 * 2, "c3": 60 * 25 + 16, "s4": 16 * 2,
              "c5": 120 * (16 * 25 + 1), "f6": 84 * 121}
    assert layers == {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164}
    model = cnnlab.create_model("lenet5_paper")
    for name, n in layers.items():
        module = getattr(model.features, name) if name != "f6" else model.f6
        assert trainable(module) == n, name
    assert trainable(model) == sum(layers.values()) == 60_000
    assert trainable(model.output) == 0 and model.output.centres.shape == (10, 84)
    assert "output.weight" in model.state_dict()  # saved with the weights, never trained
    assert sum(p.numel() for p in model.parameters()) == 60_000 + 840
    # The softmax output adds a linear layer of 84 x 10 + 10.
    assert trainable(cnnlab.create_model("lenet5_paper", output="softmax")) == 60_000 + 850


def test_scaled_tanh_maps_plus_minus_one_to_itself():
    f = ScaledTanh()
    x = torch.tensor([-1.0, 0.0, 1.0, 100.0])
    y = f(x)
    assert torch.allclose(y[:3], torch.tensor([-1.0, 0.0, 1.0]), atol=2e-4)
    assert math.isclose(float(y[3]), SQUASH_A, rel_tol=1e-6) and SQUASH_S == 2 / 3


def test_subsampling_adds_2x2_times_a_coefficient_plus_a_bias_per_map():
    s = Subsampling(2)
    with torch.no_grad():
        s.weight.copy_(torch.tensor([0.5, -2.0]))
        s.bias.copy_(torch.tensor([1.0, 0.25]))
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).view(1, 2, 4, 4)
    out = s(x)
    assert out.shape == (1, 2, 2, 2)
    block = x[0, 1, 2:4, 0:2].sum()  # map 1, bottom-left 2x2
    assert torch.isclose(out[0, 1, 1, 0], -2.0 * block + 0.25)
    assert torch.isclose(out[0, 0, 0, 0], 0.5 * x[0, 0, :2, :2].sum() + 1.0)


def test_rbf_output_is_minus_the_squared_distance_to_fixed_bitmaps():
    bitmaps = digit_bitmaps()
    assert bitmaps.shape == (10, 84) and set(bitmaps.unique().tolist()) == {-1.0, 1.0}
    assert all(len(rows) == 12 and all(len(r) == 7 for r in rows) for rows in DIGIT_BITMAPS)
    d = torch.cdist(bitmaps, bitmaps)
    assert d[~torch.eye(10, dtype=torch.bool)].min() > 6  # every two differ in >= 9 pixels
    rbf = EuclideanRBF(bitmaps)
    x = torch.randn(5, 84)
    expected = -((x[:, None, :] - bitmaps[None]) ** 2).sum(-1)
    assert torch.allclose(rbf(x), expected, atol=1e-4)
    # A bitmap itself is nearest to its own digit: logit 0, the others negative.
    logits = rbf(bitmaps)
    assert logits.argmax(1).tolist() == list(range(10)) and logits.diagonal().abs().max() == 0


def test_paper_initialisation_is_uniform_in_2_4_over_fan_in():
    torch.manual_seed(0)
    m = cnnlab.create_model("lenet5_paper")
    for module, fan_in in ((m.features.c1, 25), (m.features.c5, 400), (m.f6, 120)):
        bound = 2.4 / fan_in
        w = module.weight.abs().max().item()
        assert bound * 0.9 < w <= bound, (module, w, bound)
    for s in (m.features.s2, m.features.s4):
        assert s.weight.abs().max() <= 0.6 and s.bias.abs().max() <= 0.6
    c3 = m.features.c3  # per output map: 3, 4 or 6 input maps of 5x5
    out = torch.tensor(c3.out_list)
    per_map = torch.bincount(out) * 25
    bound = (2.4 / per_map.float())[out]
    assert (c3.weight.abs().amax((1, 2)) <= bound).all()
    assert c3.weight[out == 15].abs().max() <= 2.4 / 150 < 2.4 / 75
    assert c3.weight[out == 0].abs().max() > 2.4 / 150  # the 3-map ones are wider


def test_shapes_options_and_refusals():
    m = cnnlab.create_model("lenet5_paper").eval()
    out = m(torch.randn(3, 1, 32, 32))
    assert out.shape == (3, 10) and (out <= 0).all()  # minus squared distances
    assert m.forward_head(m.forward_features(torch.randn(2, 1, 32, 32)), pre_logits=True
                          ).shape == (2, 84)
    assert cnnlab.create_model("lenet5_paper", output="softmax", num_classes=5)(
        torch.randn(1, 1, 32, 32)).shape == (1, 5)
    five = cnnlab.create_model("lenet5_paper", num_classes=5).output  # random +-1 codes
    assert five.centres.shape == (5, 84) and set(five.centres.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(five.centres,
                       cnnlab.create_model("lenet5_paper", num_classes=5).output.centres)
    with pytest.raises(ValueError, match="output must be one of"):
        cnnlab.create_model("lenet5_paper", output="svm")
    m.reset_classifier(10)
    assert isinstance(m.output, EuclideanRBF)
    m.reset_classifier(3)
    assert isinstance(m.output, EuclideanRBF) and m.output.out_features == 3
    sm = cnnlab.create_model("lenet5_paper", output="softmax")
    sm.reset_classifier(3)
    assert isinstance(sm.output, torch.nn.Linear) and sm.output.out_features == 3


def test_lecun1998_schedule_is_the_papers_rates():
    paper = [0.0005] * 2 + [0.0002] * 3 + [0.0001] * 3 + [0.00005] * 4 + [0.00001] * 8
    cfg = TrainConfig(model="lenet5_paper", schedule="lecun1998", lr=0.0005, epochs=20)
    f = lr_factor(cfg, steps_per_epoch=7)
    rates = [cfg.lr * f(epoch * 7 + k) for epoch in range(20) for k in (0, 6)]
    assert rates == pytest.approx([r for r in paper for _ in (0, 6)])
    assert len(LECUN1998_FACTORS) == 13


def test_pad_to_centres_the_image_and_preprocess_pads_only_its_size():
    x = torch.rand(1, 28, 28)
    y = pad_to(x, (32, 32))
    assert y.shape == (1, 32, 32) and torch.equal(y[:, 2:30, 2:30], x)
    assert y[:, :2].abs().sum() == 0 and y[:, :, 30:].abs().sum() == 0
    with pytest.raises(ValueError, match="cannot pad a 28x28 image to the smaller 20x20"):
        pad_to(x, (20, 20))
    pre = Preprocess(1, (32, 32), (0.0,), (1.0,), pad_from=(28, 28))
    assert torch.equal(pre(x)[:, 2:30, 2:30], x)
    small = torch.ones(1, 8, 8)  # other sizes are still resized
    assert torch.allclose(pre(small), torch.ones(1, 32, 32))


def test_distortions_are_seeded_affine_and_keep_the_background():
    x = torch.zeros(1, 32, 32)
    x[:, 10:22, 14:18] = 1.0  # a bar on a black background
    fill = -0.5
    xn = x + fill  # normalised: the background is `fill`
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = random_distortion(xn, fill, g1), random_distortion(xn, fill, g2)
    assert torch.equal(a, b) and not torch.allclose(a, xn)
    assert torch.allclose(a[:, :3], torch.full((1, 3, 32), fill))  # border stays background
    ink = (a - fill).clamp_min(0)
    assert 0.8 < ink.sum() / (x.sum()) < 1.25  # scale and squeeze within +-10 %
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    cy, cx = (ink[0] * ys).sum() / ink.sum(), (ink[0] * xs).sum() / ink.sum()
    assert abs(cy - 15.5) < 4 and abs(cx - 15.5) < 5  # shifted by at most ~10 % (+ shear)
    aug = Augment(distort=True, fill=[fill])
    assert aug.active and "distort=True" in repr(aug)
    outs = {tuple(aug(xn, torch.Generator().manual_seed(s)).flatten()[::37].tolist())
            for s in range(5)}
    assert len(outs) == 5


def tiny_mnist_like(n=64) -> DataSplits:
    g = torch.Generator().manual_seed(0)
    imgs = lambda k: torch.rand(k, 1, 28, 28, generator=g)  # noqa: E731
    lab = lambda k: torch.arange(k) % 10  # noqa: E731
    return DataSplits(name="mnist", train=TensorImages(imgs(n), lab(n)),
                      val=TensorImages(imgs(20), lab(20)), test=TensorImages(imgs(20), lab(20)),
                      classes=[str(i) for i in range(10)], channels=1, image_size=(28, 28),
                      mean=(0.13,), std=(0.31,), source="tiny")


@pytest.mark.parametrize("model", ["lenet5", "lenet5_paper"])
def test_training_pads_28x28_digits_and_records_it(tmp_path, model):
    """One epoch on 64 random 28x28 images: the run pads, says so, and records it."""
    from cnnlab.training.trainer import train

    lines = []
    cfg = TrainConfig(model=model, epochs=1, threads=1, runs_dir=str(tmp_path), name="r",
                      plots=False, augment="distort" if model == "lenet5_paper" else "auto")
    train(cfg, data=tiny_mnist_like(), log=lambda *a: lines.append(" ".join(map(str, a))),
          progress=False)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["resize"]["pad_from"] == [28, 28] and "zero-padded" in config["resize"]["mode"]
    assert any("1x28x28 images converted to 1x32x32 (zero-padded, not resized" in s
               for s in lines)
    assert config["augment"]["distort"] is (model == "lenet5_paper")
    # Evaluation rebuilds the same preprocessing from config.json.
    from cnnlab.training.runs import open_run

    _, _, pre = open_run(tmp_path / "r")
    assert pre.pad_from == (28, 28)


def test_digits_are_still_resized_for_lenet5():
    from cnnlab.data import load_data
    from cnnlab.training.trainer import prepare_model_and_data, run_config

    cfg = TrainConfig(model="lenet5")
    _, kwargs, p = prepare_model_and_data(cfg, load_data("digits"))
    assert p.preprocess.pad_from is None
    resize = run_config(cfg, kwargs, p)["resize"]
    assert resize["pad_from"] is None and resize["mode"].startswith("bilinear")
    assert resize["from"] == [1, 8, 8] and resize["to"] == [1, 32, 32]
    # The lab's 28x28 LeNet-5 (C1 padded) takes MNIST as it is: nothing to pad.
    cfg = TrainConfig(model="lenet5", model_kwargs={"c1_padding": 2}, input_size=(1, 28, 28))
    _, _, p = prepare_model_and_data(cfg, tiny_mnist_like())
    assert p.preprocess.pad_from is None and p.preprocess.size == (28, 28)


MNIST_PKL = Path(os.environ.get("CNNLAB_MNIST_PKL", "/tmp/mnisthub/mnist/data/mnist.pkl.gz"))


@pytest.mark.slow
@pytest.mark.skipif(not MNIST_PKL.is_file(), reason=f"no {MNIST_PKL} (set CNNLAB_MNIST_PKL; "
                    "README: 'LeNet-5 on the full MNIST')")
@pytest.mark.parametrize("model", ["lenet5", "lenet5_paper"])
def test_learning_curve_on_5000_mnist_images(tmp_path, model):
    """Four epochs on the first 5,000 training images, validated on the 10,000: the curve's
    shape, not its end value: the training loss falls every epoch, the first epoch already
    learns (far above chance), validation accuracy rises overall and does not drop by more than
    a point between epochs, and validation follows training (no early over-fitting)."""
    import dataclasses

    from cnnlab.data import load_data
    from cnnlab.training.trainer import train

    torch.set_num_threads(1)
    d = load_data(str(MNIST_PKL))
    d = dataclasses.replace(d, train=d.train.subset(torch.arange(5000)))
    cfg = TrainConfig(model=model, epochs=4, threads=1, runs_dir=str(tmp_path), name="c",
                      plots=False)
    cfg = dataclasses.replace(cfg, **{k: v for k, v in
                                      cnnlab.registry.get_entry(model).train_defaults.items()
                                      if k != "epochs"})
    train(cfg, data=d, log=lambda *a: None, progress=False)
    rows = [json.loads(s) for s in (tmp_path / "c" / "metrics.jsonl").read_text().splitlines()]
    loss = [r["train_loss"] for r in rows]
    val = [r["val_top1"] for r in rows]
    assert all(b < a for a, b in zip(loss, loss[1:], strict=False)), loss
    assert val[0] > 50 and val[-1] > val[0], val
    assert all(b > a - 1.0 for a, b in zip(val, val[1:], strict=False)), val
    assert rows[-1]["train_top1"] - val[-1] < 5, (rows[-1]["train_top1"], val[-1])
