"""Image folders (cnnlab.data.folder): every unreadable file listed at once before training,
in every split, truncated files found by the check, empty class folders named, one scandir
pass (issue 13 items 6 and 7, through the real entry point)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import load_data
from cnnlab.errors import DataError
from tests.helpers import one_line_error, run_main

# ------------------------------------------------------------ image folders (items 6 and 7)


def gray_folder(root, classes=("a", "b"), n=4):
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("L", (8, 8), 30 * i).save(root / c / f"{i}.png")
    return root


def test_cli_bad_files_are_listed_at_once_before_training(capsys, tmp_path):
    root = gray_folder(tmp_path / "data")
    for i in range(7):
        (root / "a" / f"text{i}.png").write_text("hello")
    (root / "b" / "cut.png").write_bytes((root / "b" / "0.png").read_bytes()[:40])
    res = run_main(capsys, "train", "lenet5", "--data", root, "--epochs", "1",
                   "--runs-dir", tmp_path / "runs")
    one_line_error(res, "8 of 16 image files cannot be read: a/text0.png (not an image format "
                   "Pillow recognises)", "and 3 more", "--skip-bad")
    assert not (tmp_path / "runs").exists()  # nothing was trained or written
    # the library: the bad files listed, or left out with a count
    d = load_data(str(root), skip_bad=True)
    files = d.train.files + d.val.files + d.test.files
    assert len(files) == 8 and not any("text" in f.name or f.name == "cut.png" for f in files)


def test_bad_files_of_every_split_in_one_error(tmp_path):
    for split in ("train", "val", "test"):
        gray_folder(tmp_path / "d" / split, n=2)
    (tmp_path / "d" / "train" / "a" / "x.png").write_text("x")
    (tmp_path / "d" / "test" / "b" / "y.png").write_text("y")
    with pytest.raises(DataError, match=r"d: 2 of 14 image files cannot be read: train/a/x.png "
                                        r"\(.*\); test/b/y.png"):
        load_data(str(tmp_path / "d"))
    d = load_data(str(tmp_path / "d"), skip_bad=True)
    assert (len(d.train), len(d.val), len(d.test)) == (4, 4, 4)


def test_truncated_png_is_found_by_the_check(tmp_path):
    root = gray_folder(tmp_path / "data")
    Image.fromarray(np.arange(64 * 64, dtype=np.uint8).reshape(64, 64) * 7).save(
        root / "b" / "big.png")
    raw = (root / "b" / "big.png").read_bytes()
    (root / "b" / "big.png").write_bytes(raw[:len(raw) - 30])  # data cut short
    with pytest.raises(DataError, match=r"1 of 9 image files cannot be read: b/big.png"):
        load_data(str(root))


def test_empty_class_folder_is_named_and_the_classes_counted(tmp_path, capsys):
    root = gray_folder(tmp_path / "data", classes=("cat", "dog", "emu"))
    (root / "bird").mkdir()
    (root / "bird" / "readme.txt").write_text("no images yet")
    d = load_data(str(root))
    assert d.classes == ["cat", "dog", "emu"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "class folder bird has no readable images and is left out; 3 classes found: cat, " \
           "dog, emu" in err


def test_folder_is_listed_in_one_scandir_pass(tmp_path, monkeypatch):
    # issue 16: the folder was walked twice, path by path (rglob + is_file per entry);
    # detection now stops at the first image, and loading lists each folder once.
    import os

    root = gray_folder(tmp_path / "data", n=3)
    (root / "a" / "deeper").mkdir()
    Image.new("L", (8, 8)).save(root / "a" / "deeper" / "x.png")
    (root / "a" / ".cache").mkdir()
    Image.new("L", (8, 8)).save(root / "a" / ".cache" / "hidden.png")
    calls = []
    real = os.scandir

    def counting(path="."):
        calls.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", counting)
    d = load_data(str(root))
    assert sorted(f.name for f in d.train.files + d.val.files + d.test.files) == \
        ["0.png", "0.png", "1.png", "1.png", "2.png", "2.png", "x.png"]
    listed = [os.path.relpath(c, root) for c in calls]
    full = listed[listed.index(".", 1):]  # after detection: the loading pass
    assert sorted(full) == sorted([".", "a", "b", os.path.join("a", "deeper")])
