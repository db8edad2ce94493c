"""Photo recipes (cnnlab.data.augment) against their definitions (torchvision's RandomResizedCrop,
TrivialAugmentWide, RandAugment and RandomErasing; timm's mixup / cutmix), and training with all
of them on: seeded, and resumed after a kill bit for bit."""

import json
import math
import os
import signal
import time

import numpy as np
import pytest
import torch

from cnnlab.data import augment as A
from cnnlab.training.trainer import TrainConfig, train
from tests.helpers import start_cli

SYN = "synthetic:classes=3,size=3x40x40,train=48,val=16,test=24,noise=0.3"
ALL_ON = dict(augment="trivial", mixup=0.2, cutmix=1.0, random_erase=0.5, ema=0.9)


def quiet(*a, **k):
    pass


# --------------------------------------------------------------------------- random-resized crop

def test_rrc_area_and_aspect_follow_their_distributions():
    g = torch.Generator().manual_seed(0)
    # every draw fits (area <= 0.5, ratio <= 4/3): no redraws, so the raw distributions show
    boxes = [A.rrc_params(1000, 1000, (0.1, 0.5), (3 / 4, 4 / 3), g) for _ in range(4000)]
    area = np.array([h * w / 1e6 for _, _, h, w in boxes])
    log_aspect = np.log([w / h for _, _, h, w in boxes])
    assert area.min() >= 0.1 - 2e-3 and area.max() <= 0.5 + 2e-3
    assert area.mean() == pytest.approx(0.3, abs=0.01)            # uniform(0.1, 0.5)
    assert area.std() == pytest.approx(0.4 / math.sqrt(12), abs=0.01)
    lo, hi = math.log(3 / 4), math.log(4 / 3)                     # log-uniform aspect w/h
    assert log_aspect.min() >= lo - 0.01 and log_aspect.max() <= hi + 0.01
    assert log_aspect.mean() == pytest.approx(0.0, abs=0.01)
    assert log_aspect.std() == pytest.approx((hi - lo) / math.sqrt(12), abs=0.01)
    for top, left, h, w in boxes:
        assert 0 <= top and top + h <= 1000 and 0 <= left and left + w <= 1000
    # default range on a photo: inside the image, area fraction within 0.08..1
    for _ in range(500):
        top, left, h, w = A.rrc_params(375, 500, g=g)
        assert 0 <= top <= 375 - h and 0 <= left <= 500 - w
        assert 0.08 - 0.01 <= h * w / (375 * 500) <= 1.0


def test_rrc_falls_back_to_a_centre_crop_clamped_to_the_ratio():
    g = torch.Generator().manual_seed(0)
    # 10 x 1000: no box of 90-100 % of the area has an aspect within 3/4..4/3
    assert A.rrc_params(10, 1000, (0.9, 1.0), (3 / 4, 4 / 3), g) == (0, (1000 - 13) // 2, 10, 13)
    assert A.rrc_params(1000, 10, (0.9, 1.0), (3 / 4, 4 / 3), g) == ((1000 - 13) // 2, 0, 13, 10)


def test_recipe_output_is_normalised_model_size_and_seeded():
    r = A.PhotoRecipe("trivial", 3, (32, 32), (0.5,) * 3, (0.25,) * 3, erase=0.5)
    img = torch.randint(0, 256, (3, 75, 100), dtype=torch.uint8)
    a = r(img, torch.Generator().manual_seed(3))
    b = r(img, torch.Generator().manual_seed(3))
    assert a.shape == (3, 32, 32) and a.dtype == torch.float32 and torch.equal(a, b)
    # rrc alone, crop = the whole image, no flip: the plain resize, normalised
    whole = A.PhotoRecipe("rrc", 1, (8, 8), (0.5,), (0.5,), scale=(1, 1), ratio=(1, 1),
                          hflip=False)
    x = torch.rand(1, 16, 16)
    expected = (A.resized_crop(x, (0, 0, 16, 16), (8, 8)) - 0.5) / 0.5
    assert torch.allclose(whole(x, torch.Generator().manual_seed(0)), expected)


def test_8_bit_images_are_resized_as_uint8_within_one_level_of_the_float_resize():
    r = A.PhotoRecipe("rrc", 3, (24, 24), (0.0,) * 3, (1.0,) * 3)
    img = torch.randint(0, 256, (3, 75, 100), dtype=torch.uint8)
    for seed in range(20):
        fast = r(img, torch.Generator().manual_seed(seed))
        slow = r(img.float() / 255, torch.Generator().manual_seed(seed))  # the float path
        assert (fast - slow).abs().max() <= 1 / 255 + 1e-6
    gray = A.PhotoRecipe("rrc", 3, (24, 24), (0.0,) * 3, (1.0,) * 3)(
        img[:1], torch.Generator().manual_seed(0))
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[0], gray[2])  # gray -> RGB


# --------------------------------------------------------------------------- policy operations

def u8(rows):
    t = torch.tensor(rows, dtype=torch.uint8)
    return t.unsqueeze(0) if t.dim() == 2 else t


def test_colour_operations_by_hand():
    assert A.brightness(u8([[100, 200]]), 0.5).tolist() == [[[150, 255]]]   # 1.5 x, clipped
    # contrast: blend with the mean gray (100) by 0.5
    assert A.contrast(u8([[0, 100], [200, 100]]), -0.5).tolist() == [[[50, 100], [150, 100]]]
    rgb = torch.tensor([200, 100, 0], dtype=torch.uint8).view(3, 1, 1)
    gray = int(0.2989 * 200 + 0.587 * 100)                                   # 118
    assert A.color(rgb, -1.0).flatten().tolist() == [gray] * 3              # saturation 0
    assert A.color(rgb, 1.0).flatten().tolist() == [255, 200 - gray, 0]     # 2x - gray
    assert A.posterize(u8([[0b10110111]]), 4).tolist() == [[[0b10110000]]]
    assert A.solarize(u8([[100, 200]]), 128.0).tolist() == [[[100, 55]]]
    assert A.autocontrast(u8([[50, 100, 150]])).tolist() == [[[0, 127, 255]]]
    assert A.autocontrast(u8([[7, 7]])).tolist() == [[[7, 7]]]              # flat: unchanged
    ch = torch.tensor([0] * 255 + [10] * 255, dtype=torch.uint8).view(1, 17, 30)
    eq = A.equalize(ch)                       # two equal bins: 0 -> 0, 10 -> 255
    assert set(eq.unique().tolist()) == {0, 255} and int((eq == 255).sum()) == 255
    dot = torch.zeros(1, 3, 3, dtype=torch.uint8)
    dot[0, 1, 1] = 255
    blurred = round(5 * 255 / 13)        # smoothing kernel [[1,1,1],[1,5,1],[1,1,1]] / 13
    assert A.sharpness(dot, -1.0)[0, 1, 1] == blurred                       # factor 0
    assert A.sharpness(dot, 1.0).tolist() == dot.tolist()                   # 2*255-98 clipped


def test_geometric_operations_by_hand():
    img = torch.arange(16, dtype=torch.uint8).view(1, 4, 4) + 1
    assert torch.equal(A.rotate(img, 90.0), torch.rot90(img, 1, (1, 2)))     # counter-clockwise
    assert torch.equal(A.rotate(img, -90.0), torch.rot90(img, -1, (1, 2)))
    t = A.translate_x(img, 1.9)                                             # int(1.9) = 1 px
    assert torch.equal(t[..., 1:], img[..., :-1]) and t[..., 0].eq(0).all()
    t = A.translate_y(img, -1.0)
    assert torch.equal(t[:, :-1], img[:, 1:]) and t[:, -1].eq(0).all()
    # shear about the top-left corner: row y reads the input at x + m (y + 1/2)
    m = 2 / 3
    s = A.shear_x(img, m)
    for y in range(4):
        shift = round(m * (y + 0.5))
        for x in range(4):
            want = img[0, y, x + shift] if x + shift < 4 else 0
            assert s[0, y, x] == want, (y, x)
    assert torch.equal(A.shear_y(img.transpose(1, 2), m).transpose(1, 2), s)


def test_trivial_augment_wide_space_and_draws():
    space = A.trivial_wide_space()
    assert list(space) == ["Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate",
                           "Brightness", "Color", "Contrast", "Sharpness", "Posterize",
                           "Solarize", "AutoContrast", "Equalize"]
    ends = {k: (round(float(v[0][0]), 4), round(float(v[0][-1]), 4))
            for k, v in space.items() if v[0].ndim}
    assert ends == {"ShearX": (0.0, 0.99), "ShearY": (0.0, 0.99), "TranslateX": (0.0, 32.0),
                    "TranslateY": (0.0, 32.0), "Rotate": (0.0, 135.0),
                    "Brightness": (0.0, 0.99), "Color": (0.0, 0.99), "Contrast": (0.0, 0.99),
                    "Sharpness": (0.0, 0.99), "Posterize": (8.0, 2.0), "Solarize": (255.0, 0.0)}
    assert all(len(v[0]) == 31 for v in space.values() if v[0].ndim)
    ta, g = A.TrivialAugmentWide(), torch.Generator().manual_seed(0)
    img = torch.zeros(3, 8, 8, dtype=torch.uint8)
    draws = [ta.draw(img, g) for _ in range(7000)]
    counts = {n: sum(d[0] == n for d in draws) for n in space}
    assert all(abs(c / 7000 - 1 / 14) < 0.015 for c in counts.values()), counts
    rot = [m for n, m in draws if n == "Rotate"]
    assert min(rot) < 0 < max(rot) and all(abs(m) <= 135 for m in rot)
    assert {m for n, m in draws if n == "Posterize"} <= {8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0}


def test_randaugment_uses_bin_m_of_torchvisions_ranges():
    ra, g = A.RandAugment(2, 9), torch.Generator().manual_seed(1)
    img = torch.zeros(3, 40, 60, dtype=torch.uint8)
    draws = [ra.draw(img, g) for _ in range(3000)]
    mags = {}
    for n, m in draws:
        mags.setdefault(n, set()).add(abs(m))
    assert len(mags) == 14
    one = {n: (len(v), v.pop()) for n, v in mags.items()}      # one magnitude per operation
    assert one["Rotate"] == (1, pytest.approx(9.0))              # 30 * 9 / 30
    assert one["ShearX"] == (1, pytest.approx(0.09))
    assert one["TranslateX"] == (1, pytest.approx(150 / 331 * 60 * 9 / 30))   # of the width
    assert one["TranslateY"] == (1, pytest.approx(150 / 331 * 40 * 9 / 30))
    assert one["Posterize"] == (1, float(8 - round(9 / 7.5)))
    assert one["Solarize"] == (1, pytest.approx(255 - 255 * 9 / 30))
    out = ra(torch.randint(0, 256, (3, 40, 60), dtype=torch.uint8), g)
    assert out.shape == (3, 40, 60) and out.dtype == torch.uint8


# --------------------------------------------------------------------------- random erasing

def test_random_erasing_area_and_aspect_ranges():
    er, g = A.RandomErasing(1.0, value=7.0), torch.Generator().manual_seed(0)
    fracs, aspects = [], []
    for _ in range(2000):
        x = er(torch.zeros(3, 64, 96), g)
        mask = x[0] == 7.0
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        if not len(rows):
            continue
        h, w = len(rows), len(cols)
        assert int(mask.sum()) == h * w and torch.equal(x[1] == 7.0, mask)   # one rectangle
        fracs.append(h * w / (64 * 96))
        aspects.append(h / w)
    assert len(fracs) > 1800                                  # p = 1: nearly always fits
    assert min(fracs) >= 0.02 - 0.005 and max(fracs) <= 1 / 3 + 0.01
    assert min(aspects) >= 0.3 - 0.05 and max(aspects) <= 3.3 + 0.35
    assert not A.RandomErasing(0.0)(torch.zeros(3, 8, 8), g).any()
    hits = sum(A.RandomErasing(0.5).params(3, 64, 96, g) is not None for _ in range(2000))
    assert 0.45 < hits / 2000 < 0.55
    noisy = A.RandomErasing(1.0)(torch.zeros(3, 64, 96), torch.Generator().manual_seed(1))
    assert 0.5 < noisy[noisy != 0].std() < 1.5                # per-pixel N(0, 1) (timm 'pixel')


# --------------------------------------------------------------------------- mixup / cutmix

def test_mixup_and_cutmix_targets_sum_to_one_and_match_the_images():
    x = torch.rand(6, 3, 16, 16)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    for seed in range(20):
        xm, t = A.MixCut(0.4, 0.0, 3)(x, y, seed)
        assert torch.allclose(t.sum(1), torch.ones(6))
        lam = float(t[0, 0])                      # y[0] = 0, its reverse y[5] = 2
        assert torch.allclose(xm, lam * x + (1 - lam) * x.flip(0), atol=1e-6)
        xc, tc = A.MixCut(0.0, 1.0, 3)(x, y, seed)
        assert torch.allclose(tc.sum(1), torch.ones(6))
        pasted = (xc != x).any(1)[0].float().mean().item()    # share of pixels from the reverse
        assert 1 - float(tc[0, 0]) == pytest.approx(pasted, abs=1e-6)
    lams = [A.MixCut(1.0, 0.0, 3).params(np.random.default_rng(s))[0] for s in range(2000)]
    assert np.mean(lams) == pytest.approx(0.5, abs=0.02)      # Beta(1, 1)
    both = [A.MixCut(0.2, 1.0, 3).params(np.random.default_rng(s))[1] for s in range(2000)]
    assert 0.45 < np.mean(both) < 0.55                        # switch probability 1/2


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("args, needle", [
    (["--mixup", "-0.1"], "--mixup alpha must be a number >= 0"),
    (["--cutmix", "nan"], "--cutmix alpha must be a number >= 0"),
    (["--random-erase", "1.5"], "--random-erase is a probability in [0, 1]"),
    (["--ema", "1"], "--ema decay must be between 0 and 1"),
    (["--ema", "0"], "--ema decay must be between 0 and 1"),
    (["--crop-scale", "0.5", "0.2"], "--crop-scale 0.5..0.2 is an empty range"),
    (["--crop-scale", "0.5", "1.5"], "--crop-scale 0.5..1.5 is an empty range"),
    (["--crop-ratio", "2", "1"], "--crop-ratio 2..1 is an empty range"),
    (["--augment", "crop", "--random-erase", "0.2"], "belong to the photo recipes"),
])
def test_bad_recipe_settings_are_one_line(tmp_path, capsys, args, needle):
    from cnnlab.cli import main

    code = main(["train", "lenet5", "--runs-dir", str(tmp_path / "runs"), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and needle in err and "\n" not in err, err
    assert not (tmp_path / "runs").exists()


# --------------------------------------------------------------------------- training

def cfg(tmp_path, **kw):
    base = dict(model="lenet5", model_kwargs={"activation": "relu"}, data=SYN, epochs=2,
                input_size=(3, 32, 32), optimizer="adam", weight_decay=0.0, batch_size=8,
                lr=0.005, runs_dir=str(tmp_path), plots=False, threads=1, num_workers=0)
    base.update(kw)
    return TrainConfig(**base)


def test_training_with_every_recipe_on_resumes_bit_for_bit(tmp_path):
    # a constant schedule: the first, 1-epoch part must not end its own cosine
    full = train(cfg(tmp_path, name="full", epochs=3, schedule="constant", **ALL_ON), log=quiet)
    train(cfg(tmp_path, name="part", epochs=1, schedule="constant", **ALL_ON), log=quiet)
    part = train(cfg(tmp_path, name="part", epochs=3, num_workers=1, **ALL_ON), resume=True,
                 log=quiet)
    assert part["weights_sha256"] == full["weights_sha256"]
    for key in ("test_loss", "test_ema_loss", "test_ema_top1", "val_ema_top1"):
        assert part[key] == full[key], key
    ema = [(tmp_path / n / "model_ema.safetensors").read_bytes() for n in ("full", "part")]
    assert ema[0] == ema[1]
    rows = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert all("val_ema_top1" in r for r in rows)
    config = json.loads((tmp_path / "full" / "config.json").read_text())
    assert config["augment"]["recipe"] == "trivial" and config["augment"]["ema"] == 0.9
    assert config["workers"] == {"used": 0, "chosen": "--workers"}


def test_validation_is_not_mixed_and_evaluate_predict_use_the_ema(tmp_path, cli):
    from cnnlab.data import Prepared
    from cnnlab.training.loop import evaluate
    from cnnlab.training.runs import open_run

    res = train(cfg(tmp_path, name="r", epochs=1, **ALL_ON), log=quiet)
    run = tmp_path / "r"
    row = json.loads((run / "metrics.jsonl").read_text())
    model, config, pre = open_run(run, ema=False)
    from cnnlab.data import load_data
    data = load_data(SYN)
    v = evaluate(model, Prepared(data.val, pre), 64, torch.device("cpu"))
    assert v["top1"] == row["val_top1"] and v["loss"] == pytest.approx(row["val_loss"])
    ema_model, ema_config, _ = open_run(run)
    assert "EMA" in ema_config["weights_used"] and "weights_used" not in config
    e = evaluate(ema_model, Prepared(data.test, pre), 64, torch.device("cpu"))
    assert e["loss"] == pytest.approx(res["test_ema_loss"])
    out = cli("evaluate", str(run))
    assert out.returncode == 0 and "using the EMA weights (model_ema.safetensors)" in out.stdout
    _, raw_config, _ = open_run(run / "model.safetensors")      # the file named is used
    assert "weights_used" not in raw_config
    _, named, _ = open_run(run / "model_ema.safetensors")
    assert "EMA" in named["weights_used"]


def photo_folder(root):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(10):
            a = (rng.random((30 + i, 40, 3)) * 255).astype("uint8")
            Image.fromarray(a).save(root / c / f"{i}.jpg")
    return root


def test_a_run_from_before_the_recipes_resumes_with_what_auto_meant_then(tmp_path):
    from cnnlab.training.checkpoint import load_checkpoint, save_checkpoint

    data = str(photo_folder(tmp_path / "photos"))
    kw = dict(data=data, schedule="constant", augment="flip")
    full = train(cfg(tmp_path, name="full", epochs=2, **kw), log=quiet)
    train(cfg(tmp_path, name="old", epochs=1, **kw), log=quiet)
    ck = tmp_path / "old" / "checkpoint.pt"      # make it an 'auto' run of the old kind
    state = load_checkpoint(ck)
    state["config"]["train"]["augment"] = "auto"
    state["config"] = json.dumps(state["config"])
    save_checkpoint(ck, {k: v for k, v in state.items() if k not in ("format", "version")})
    old = train(cfg(tmp_path, name="old", epochs=2, data=data), resume=True, log=quiet)
    assert old["weights_sha256"] == full["weights_sha256"]      # flip, not rrc


def test_default_for_a_colour_folder_is_rrc_and_workers_are_chosen(tmp_path):
    photo_folder(tmp_path / "photos")
    c = cfg(tmp_path, data=str(tmp_path / "photos"), epochs=1, num_workers=None, cache=True,
            name="f")
    train(c, log=quiet)
    config = json.loads((tmp_path / "f" / "config.json").read_text())
    assert config["augment"]["recipe"] == "rrc" and config["augment"]["hflip"] is True
    assert config["workers"]["chosen"].startswith("auto: ")
    assert config["workers"]["used"] == min(8, len(os.sched_getaffinity(0)) - 1)
    assert config["train"]["num_workers"] is None


def test_sigkill_mid_epoch_with_every_recipe_on_then_resume(tmp_path):
    args = ["lenet5", "--model-arg", "activation=relu", "--data", SYN, "--input-size",
            "3x32x32", "--epochs", "2", "--batch-size", "8", "--lr", "0.005", "--optimizer",
            "adam", "--weight-decay", "0", "--threads", "1", "--no-plots", "--checkpoint-every",
            "2", "--augment", "randaugment", "--mixup", "0.2", "--cutmix", "1.0",
            "--random-erase", "0.5", "--ema", "0.9", "--workers", "0", "--runs-dir", str(tmp_path)]
    proc = start_cli("train", *args, "--name", "killed", env={"CNNLAB_DEBUG_STEP_DELAY": "0.05"})
    ckpt, killed = tmp_path / "killed" / "checkpoint.pt", False
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists():
            try:
                state = torch.load(ckpt, weights_only=True)
            except Exception:  # caught mid-rename
                continue
            if state["epoch"] >= 1 and state["batch"] > 0:
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
                break
        time.sleep(0.01)
    proc.wait(timeout=30)
    assert killed, proc.stderr.read()
    resumed = start_cli("train", "--resume", "--name", "killed", *args)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0 and "resuming" in out, err
    # the uninterrupted run in this process: the same settings as the command line's
    b = train(cfg(tmp_path, name="full", epochs=2, batch_size=8, checkpoint_every=2,
                  augment="randaugment", mixup=0.2, cutmix=1.0, random_erase=0.5, ema=0.9),
              log=quiet)
    a = json.loads((tmp_path / "killed" / "results.json").read_text())
    assert a["weights_sha256"] == b["weights_sha256"]
    for key in ("test_loss", "test_top1", "test_ema_loss", "val_ema_top1"):
        assert a[key] == b[key], key
