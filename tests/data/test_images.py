"""One image loader for every Pillow mode (issue 13 item 2) and the pixel limit (item 3).

Every file is written here with Pillow or by hand; the expected floats are worked out from the
stored values and the documented rule of each mode (cnnlab.data.images).
"""

from __future__ import annotations

import json
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import load_data
from cnnlab.data.images import read_image
from cnnlab.errors import DataError, ImageTooLargeError
from tests.helpers import run_cli, run_main


def png_header_only(path, width: int, height: int):
    """A valid PNG signature and IHDR declaring ``width`` x ``height`` 8-bit gray, an empty
    IDAT and IEND: a few dozen bytes that claim a huge image (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


V16 = np.array([[0, 257, 65535, 30000]], dtype=np.uint16)


def save(im: Image.Image, path):
    im.save(path)
    with Image.open(path) as back:  # the mode Pillow gives back is the one under test
        return path, back.mode


@pytest.mark.parametrize("case", ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I;16B",
                                  "I", "I-wide", "F", "PGM16"])
def test_every_mode_is_scaled_by_its_own_range(tmp_path, case):
    if case == "1":
        im = Image.fromarray(np.array([[0, 255, 0, 255]], dtype=np.uint8)).convert("1")
        path, mode = save(im, tmp_path / "a.png")
        want = np.array([[0, 1, 0, 1]], dtype=np.float32)
    elif case == "L":
        path, mode = save(Image.fromarray(np.array([[0, 51, 204, 255]], np.uint8)),
                          tmp_path / "a.png")
        want = np.array([[0, 0.2, 0.8, 1.0]])
    elif case == "LA":  # alpha dropped, not composited: a transparent pixel keeps its gray
        la = np.array([[[0, 255], [51, 0], [204, 128], [255, 0]]], dtype=np.uint8)
        path, mode = save(Image.fromarray(la, "LA"), tmp_path / "a.png")
        want = np.array([[0, 0.2, 0.8, 1.0]])
    elif case == "P":  # palette index -> colour
        im = Image.fromarray(np.array([[0, 1, 1, 0]], dtype=np.uint8), "P")
        im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
        path, mode = save(im, tmp_path / "a.png")
        want = np.array([[[1, 0, 0], [0, 0, 1], [0, 0, 1], [1, 0, 0]]]).transpose(2, 0, 1)
    elif case == "RGB":
        rgb = np.array([[[255, 0, 51], [0, 102, 255]]], dtype=np.uint8)
        path, mode = save(Image.fromarray(rgb), tmp_path / "a.png")
        want = np.array([[[1, 0, 0.2], [0, 0.4, 1]]]).transpose(2, 0, 1)
    elif case == "RGBA":  # alpha 0 does not make the pixel black or white
        rgba = np.array([[[255, 0, 51, 0], [0, 102, 255, 255]]], dtype=np.uint8)
        path, mode = save(Image.fromarray(rgba), tmp_path / "a.png")
        want = np.array([[[1, 0, 0.2], [0, 0.4, 1]]]).transpose(2, 0, 1)
    elif case == "CMYK":  # Pillow's conversion: R = 255 - C - K (clipped) ...
        cmyk = np.array([[[0, 0, 0, 0], [255, 0, 0, 0], [0, 0, 0, 255]]], dtype=np.uint8)
        path, mode = save(Image.fromarray(cmyk, "CMYK"), tmp_path / "a.tif")
        want = np.array([[[1, 1, 1], [0, 1, 1], [0, 0, 0]]]).transpose(2, 0, 1)
    elif case == "I;16":
        path, mode = save(Image.fromarray(V16), tmp_path / "a.png")
        want = V16 / 65535
    elif case == "I;16B":
        im = Image.frombytes("I;16B", (4, 1), V16.astype(">u2").tobytes())
        path, mode = save(im, tmp_path / "a.tif")
        want = V16 / 65535
    elif case == "I":  # 32-bit container of 16-bit data
        path, mode = save(Image.fromarray(V16.astype(np.int32)), tmp_path / "a.tif")
        want = V16 / 65535
    elif case == "I-wide":  # values outside 0..65535: the int32 range
        wide = np.array([[-2**31, -5, 70000, 2**31 - 1]], dtype=np.int32)
        path, mode = save(Image.fromarray(wide), tmp_path / "a.tif")
        want = (wide.astype(np.float64) + 2**31) / (2**32 - 1)
        case = "I"
    elif case == "F":  # as stored, not clipped
        f = np.array([[0.0, 0.25, 1.5, -1.0]], dtype=np.float32)
        path, mode = save(Image.fromarray(f), tmp_path / "a.tif")
        want = f
    else:  # a 16-bit PGM: Pillow opens it as mode I
        (tmp_path / "a.pgm").write_bytes(b"P5\n4 1\n65535\n" + V16.astype(">u2").tobytes())
        path, mode, case = tmp_path / "a.pgm", "I", "I"
        with Image.open(path) as im:
            mode = im.mode
        want = V16 / 65535
    assert mode == case  # the file really is in the mode under test
    got = read_image(path)
    want = np.asarray(want, dtype=np.float64)
    want = want[None] if want.ndim == 2 else want
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-6)
    # channels=3 repeats a gray image; channels=1 takes the luma of a colour one
    three = read_image(path, channels=3)
    assert three.shape == (3, *want.shape[1:])
    if want.shape[0] == 1:
        np.testing.assert_array_equal(three, np.repeat(got, 3, axis=0))
    else:
        luma = (0.299 * want[0] + 0.587 * want[1] + 0.114 * want[2])[None]
        np.testing.assert_allclose(read_image(path, channels=1), luma, atol=0.5 / 255 + 1e-6)


def test_sixteen_bit_twin_gives_the_same_floats_and_is_not_clipped(tmp_path):
    a8 = np.arange(0, 256, 5, dtype=np.uint8).reshape(4, 13)
    Image.fromarray(a8).save(tmp_path / "eight.png")
    Image.fromarray(a8.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")
    x8, x16 = read_image(tmp_path / "eight.png"), read_image(tmp_path / "sixteen.png")
    np.testing.assert_allclose(x16, x8, atol=1e-7)
    assert (x16 == 1.0).mean() < 0.05  # the bug: about 99 % of the pixels became 1.0


def test_a_folder_of_16_bit_pngs_trains_on_the_right_values(tmp_path):
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        for split_dir in (tmp_path / "d8" / c, tmp_path / "d16" / c):
            split_dir.mkdir(parents=True)
        for i in range(5):
            a8 = rng.integers(0, 256, (6, 6), dtype=np.uint8)
            Image.fromarray(a8).save(tmp_path / "d8" / c / f"{i}.png")
            Image.fromarray(a8.astype(np.uint16) * 257).save(tmp_path / "d16" / c / f"{i}.png")
    d8, d16 = load_data(str(tmp_path / "d8")), load_data(str(tmp_path / "d16"))
    assert d16.channels == 1  # 16-bit gray stays gray
    for i in range(len(d8.train)):
        np.testing.assert_allclose(d16.train[i][0].numpy(), d8.train[i][0].numpy(), atol=1e-7)


def test_float_images_with_nan_are_refused(tmp_path):
    Image.fromarray(np.array([[0.5, np.nan]], dtype=np.float32)).save(tmp_path / "nan.tif")
    with pytest.raises(DataError, match=r"nan.tif: cannot read this image \(a float image "
                                        "with NaN or infinite values"):
        read_image(tmp_path / "nan.tif")


def test_resize_keeps_16_bit_precision(tmp_path):
    a16 = np.full((8, 8), 1000, dtype=np.uint16)  # 1000/65535: between two 8-bit levels
    Image.fromarray(a16).save(tmp_path / "a.png")
    x = read_image(tmp_path / "a.png", size=(4, 4))
    assert x.shape == (1, 4, 4)
    np.testing.assert_allclose(x, 1000 / 65535, rtol=1e-5)


# ------------------------------------------------------------------ the pixel limit


def test_header_of_a_huge_image_is_refused_with_the_limit_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("CNNLAB_MAX_IMAGE_PIXELS", raising=False)
    bomb = png_header_only(tmp_path / "bomb.png", 20000, 20000)
    assert bomb.stat().st_size < 100
    with pytest.raises(ImageTooLargeError) as err:
        read_image(bomb)
    msg = str(err.value)
    # Pillow's limit: 2 x MAX_IMAGE_PIXELS = 2 x 89,478,485
    assert "20000x20000 = 400,000,000 pixels is over the limit of 178,956,970" in msg
    assert "CNNLAB_MAX_IMAGE_PIXELS=400000000" in msg
    monkeypatch.setenv("CNNLAB_MAX_IMAGE_PIXELS", "0")  # no limit: Pillow then fails to decode
    with pytest.raises(DataError, match="bomb.png: cannot read this image") as err:
        read_image(bomb)
    assert not isinstance(err.value, ImageTooLargeError)
    monkeypatch.setenv("CNNLAB_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(DataError, match="CNNLAB_MAX_IMAGE_PIXELS='lots' is not a number"):
        read_image(bomb)


def test_limit_from_the_environment_and_one_warning_line(tmp_path, capsys, monkeypatch):
    Image.new("L", (12, 12), 7).save(tmp_path / "mid.png")    # 144 pixels
    Image.new("L", (16, 16), 7).save(tmp_path / "large.png")  # 256 pixels
    monkeypatch.setenv("CNNLAB_MAX_IMAGE_PIXELS", "200")
    assert read_image(tmp_path / "mid.png").shape == (1, 12, 12)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "warning: " in err and "more than half the limit of 200" in err
    with pytest.raises(ImageTooLargeError, match="256 pixels is over the limit of 200"):
        read_image(tmp_path / "large.png")


def test_large_images_of_a_folder_are_reported_once(tmp_path, capsys, monkeypatch):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(4):
            Image.new("L", (12, 12) if i < 3 else (4, 4), 9).save(tmp_path / c / f"{i}.png")
    monkeypatch.setenv("CNNLAB_MAX_IMAGE_PIXELS", "200")  # 12x12 = 144 > 100
    d = load_data(str(tmp_path))
    for ds in (d.train, d.val, d.test):
        for i in range(len(ds)):
            ds[i]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "6 images have more than half the limit of 200" in err
    assert "a/0.png (12x12)" in err and "and 1 more" in err


@pytest.mark.parametrize("command", ["filter", "visualize", "predict", "train"])
def test_cli_huge_image_is_one_line_naming_the_limit(tmp_path, command, tiny_run, capsys,
                                                     monkeypatch):
    bomb = png_header_only(tmp_path / "bomb.png", 20000, 20000)
    if command == "filter":
        argv = ["filter", str(bomb), "--kernel", "sobel", "-o", str(tmp_path / "o.png")]
    elif command == "visualize":
        argv = ["visualize", str(tiny_run), "--features", str(bomb), "-o", str(tmp_path)]
    elif command == "predict":
        argv = ["predict", str(tiny_run), str(bomb)]
    else:
        for c in ("a", "b"):
            (tmp_path / "data" / c).mkdir(parents=True)
            for i in range(3):
                Image.new("L", (8, 8), 40 * i).save(tmp_path / "data" / c / f"{i}.png")
        os.replace(bomb, tmp_path / "data" / "a" / "bomb.png")
        argv = ["train", "lenet5", "--data", str(tmp_path / "data"), "--epochs", "1",
                "--runs-dir", str(tmp_path / "runs")]
    monkeypatch.delenv("CNNLAB_MAX_IMAGE_PIXELS", raising=False)
    res = run_main(capsys, *argv)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and res.stderr.strip().count("\n") == 0, res.stderr
    assert "bomb.png" in res.stderr and "178,956,970" in res.stderr
    assert "CNNLAB_MAX_IMAGE_PIXELS" in res.stderr


def test_cli_pillow_warning_is_one_clean_line(tmp_path):
    # 10000 x 10000 = 100,000,000 pixels: over half of Pillow's limit, under the limit. Pillow
    # would print its DecompressionBombWarning with a source line; cnnlab prints one line.
    # (The header-only file then fails to decode: a second, one-line error.)
    big = png_header_only(tmp_path / "big.png", 10000, 10000)
    # (a subprocess: in pytest's process, a leaked Python warning would be captured by pytest)
    res = run_cli("filter", str(big), "--kernel", "sobel", "-o", str(tmp_path / "o.png"),
                  env={"CNNLAB_MAX_IMAGE_PIXELS": ""})
    assert "DecompressionBomb" not in res.stderr and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("cnnlab: warning: ")
    assert "10000x10000 = 100,000,000 pixels" in lines[0]
    assert res.returncode == 2 and "cannot read this image" in lines[1]


# ------------------------------------------------------ predict, filter, visualize agree


@pytest.fixture(scope="module")
def twin_images(tmp_path_factory):
    d = tmp_path_factory.mktemp("twins")
    a8 = np.zeros((8, 8), dtype=np.uint8)
    a8[1:7, 3:5] = 255  # a "1"
    a8[6, 2:6] = 180
    Image.fromarray(a8).save(d / "eight.png")
    Image.fromarray(a8.astype(np.uint16) * 257).save(d / "sixteen.png")
    return d / "eight.png", d / "sixteen.png"


@pytest.fixture
def tiny_run(trained_runs):
    """lenet5 trained for one epoch on a tiny gray folder (with one bad file and one empty
    class folder, through --skip-bad): the shared run folder."""
    return trained_runs.skip_bad


def test_skip_bad_and_empty_class_through_train(tiny_run, trained_runs):
    stderr = trained_runs.skip_bad_output.stderr
    assert "left out 1 of 17 image files that cannot be read: left/notes.png (not an image " \
           "format Pillow recognises)" in stderr
    assert "class folder empty has no readable images and is left out; 2 classes found: " \
           "left, right" in stderr
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["classes"] == ["left", "right"]
    assert config["data"]["train"] + config["data"]["val"] + config["data"]["test"] == 16


def test_a_skip_bad_run_resumes_with_the_same_files_left_out(tiny_run, tmp_path, capsys):
    """--skip-bad is a setting of the run: the printed resume command works without it, and
    it cannot be added when resuming a run that read every file."""
    import shutil

    run = tmp_path / "runs" / "tiny"
    shutil.copytree(tiny_run, run)
    assert json.loads((run / "config.json").read_text())["train"]["skip_bad"] is True
    res = run_main(capsys, "train", "lenet5", "--resume", run, "--epochs", "2")
    assert res.returncode == 0, res.stderr
    assert "left out 1 of 17 image files that cannot be read" in res.stderr
    assert "changed on resume: epochs 1 -> 2" in res.stdout
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["skip_bad"] is True and config["classes"] == ["left", "right"]
    assert json.loads((run / "results.json").read_text())["epochs"] == 2

    good = tmp_path / "good"
    shutil.copytree(tiny_run.parent.parent / "data", good)
    (good / "left" / "notes.png").unlink()
    res = run_main(capsys, "train", "lenet5", "--data", good, "--epochs", "1", "--batch-size",
                   "4", "--no-plots", "--runs-dir", tmp_path / "runs", "--name", "good")
    assert res.returncode == 0, res.stderr
    res = run_main(capsys, "train", "lenet5", "--resume", tmp_path / "runs" / "good",
                   "--epochs", "2", "--skip-bad")
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0, res.stderr
    assert "--skip-bad True (the run's: False)" in res.stderr
    # a file that became unreadable since: the advice is not the --skip-bad that is refused
    (good / "left" / "late.png").write_text("not an image")
    res = run_main(capsys, "train", "lenet5", "--resume", tmp_path / "runs" / "good",
                   "--epochs", "2")
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0, res.stderr
    assert "cannot be read: left/late.png" in res.stderr
    assert "fix or remove them, then resume" in res.stderr and "leave them out" not in res.stderr


def test_16_bit_image_predicts_like_its_8_bit_twin(tiny_run, twin_images, capsys):
    eight, sixteen = twin_images
    res = run_main(capsys, "predict", tiny_run, eight, sixteen, "--json")
    assert res.returncode == 0, res.stderr
    a, b = json.loads(res.stdout)
    assert [t["class"] for t in a["top"]] == [t["class"] for t in b["top"]]
    for ta, tb in zip(a["top"], b["top"], strict=True):
        assert tb["probability"] == pytest.approx(ta["probability"], abs=1e-6)


def test_filter_and_visualize_read_16_bit_like_8_bit(tiny_run, twin_images, tmp_path, capsys):
    from cnnlab.commands.filter import read_grayscale
    from cnnlab.commands.visualize import load_image as vis_load

    eight, sixteen = twin_images
    g8, g16 = read_grayscale(eight), read_grayscale(sixteen)
    assert g8.dtype == np.float64 and g8.max() == 255.0  # the 0..255 scale of the masks
    np.testing.assert_allclose(g16, g8, atol=1e-9)
    from cnnlab.data import Preprocess

    pre = Preprocess(1, (32, 32), [0.5], [0.25])
    x8, _ = vis_load(eight, pre)
    x16, _ = vis_load(sixteen, pre)
    np.testing.assert_allclose(x16.numpy(), x8.numpy(), atol=1e-5)
    from cnnlab.lab import filters as F

    res = run_main(capsys, "filter", sixteen, "--kernel", "sobel-x", "-o", tmp_path / "f.npy",
                   "--figure", "none")
    assert res.returncode == 0, res.stderr
    want = F.apply_filter(g8, "sobel-x")  # the 8-bit twin's response, gray levels 0..255
    np.testing.assert_allclose(np.load(tmp_path / "f.npy"), want, atol=1e-6)


def test_evaluate_a_skip_bad_run_on_its_folder(tiny_run, capsys):
    res = run_main(capsys, "evaluate", tiny_run)
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0, res.stderr
    assert "1 of 17 image files cannot be read: left/notes.png" in res.stderr
    res = run_main(capsys, "evaluate", tiny_run, "--skip-bad", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["classes"] == ["left", "right"]


# moved from tests/test_hardening2.py (issue 22)
@pytest.mark.parametrize("value", ["-5", "inf", "nan"])
def test_a_negative_pixel_limit_is_refused(monkeypatch, value):
    from cnnlab.data.images import max_image_pixels
    from cnnlab.errors import DataError

    monkeypatch.setenv("CNNLAB_MAX_IMAGE_PIXELS", value)
    with pytest.raises(DataError, match="CNNLAB_MAX_IMAGE_PIXELS=.* is not a number of pixels"):
        max_image_pixels()
