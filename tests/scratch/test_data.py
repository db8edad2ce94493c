"""`cnnlab scratch train --data`: the NumPy LeNet-5 on IDX files and image folders (the lab's
own 28x28 grey digits), percentages printed like the rest of the tool."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from cnnlab.scratch.runs import load_split


def write_idx(path, array: np.ndarray) -> None:
    """LeCun's IDX: 0, 0, type 0x08 (ubyte), ndim, big-endian sizes, the bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def digits_like(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """28x28 images of 0..255 whose class is a bright square's position: learnable."""
    y = rng.integers(0, 4, n)
    x = rng.integers(0, 40, (n, 28, 28))
    for i, c in enumerate(y):
        r, col = divmod(int(c), 2)
        x[i, 4 + 12 * r:12 + 12 * r, 4 + 12 * col:12 + 12 * col] = 250
    return x.astype(np.uint8), y.astype(np.uint8)


@pytest.fixture(scope="module")
def idx_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(0)
    for stem, n in (("train", 120), ("t10k", 40)):
        x, y = digits_like(n, rng)
        write_idx(folder / f"{stem}-images-idx3-ubyte", x)
        write_idx(folder / f"{stem}-labels-idx1-ubyte", y)
    return folder


def test_idx_files_become_the_engines_arrays(idx_folder):
    data = load_split(str(idx_folder), 28, limit=50)
    x, y = data["train"]
    assert x.shape == (50, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    # normalised with the training images' mean and standard deviation
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-3
    assert data["test"][0].shape == (40, 1, 28, 28)
    assert "50 train" in data["name"] and "40 test" in data["name"]
    # 32x32 for the paper's input
    assert load_split(str(idx_folder), 32)["val"][0].shape[2:] == (32, 32)


def test_image_folder_in_colour_becomes_grey(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(6):
            value = 30 if label == "a" else 220
            rgb = np.full((20, 20, 3), value, np.uint8) + rng.integers(0, 5, (20, 20, 3),
                                                                        dtype=np.uint8)
            Image.fromarray(rgb).save(tmp_path / label / f"{i}.png")
    data = load_split(str(tmp_path), 28)
    n = sum(len(data[k][1]) for k in ("train", "val", "test"))
    assert n == 12 and data["train"][0].shape[1:] == (1, 28, 28)
    x, y = data["train"]
    # class b is brighter than class a after grey conversion
    assert x[y == 1].mean() > x[y == 0].mean()


def test_cli_scratch_train_on_idx_files(cli, idx_folder, tmp_path):
    res = cli("scratch", "train", "--data", str(idx_folder), "--epochs", "2", "--batch-size",
              "16", "-o", str(tmp_path / "run"))
    assert res.returncode == 0, res.stderr
    assert str(idx_folder) in res.stdout and "108 train" in res.stdout
    line = next(x for x in res.stdout.splitlines() if x.startswith("test loss"))
    acc = float(line.split("test accuracy ")[1].split(" %")[0])
    assert 0 <= acc <= 100 and "acc 0." not in res.stdout
    res = cli("scratch", "train", "--data", str(tmp_path / "nothing"))
    assert res.returncode == 2 and "does not exist" in res.stderr


def test_a_run_trained_on_a_relative_folder_shows_from_anywhere(cli, idx_folder, tmp_path):
    """The run records the data folder as an absolute path (as `cnnlab train` does), so
    `scratch show` from another working directory finds it."""
    import json

    res = cli("scratch", "train", "--data", idx_folder.name, "--epochs", "1", "-o",
              str(tmp_path / "run"), cwd=idx_folder.parent)
    assert res.returncode == 0, res.stderr
    config = json.loads((tmp_path / "run" / "scratch_config.json").read_text())
    assert config["data"] == str(idx_folder.resolve())
    res = cli("scratch", "show", str(tmp_path / "run"), "-o", str(tmp_path / "pics"),
              cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "pics" / "feature_maps.png").is_file()
