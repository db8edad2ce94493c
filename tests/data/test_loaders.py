"""Data loaders: each format from tiny files the tests write, and one-line errors naming the
file for truncated, corrupt, mislabelled or foreign files."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data import load_data
from cnnlab.data.cifar import RestrictedUnpickler, restricted_load
from cnnlab.data.idx import read_idx
from cnnlab.errors import DataError
from tests.helpers import one_line_error, run_main


def idx_bytes(arr: np.ndarray) -> bytes:
    code = {np.uint8: 0x08, np.int32: 0x0C}[arr.dtype.type]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_mnist(folder, n_train=20, n_test=10, gz=True, labels=None):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    for stem, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        lab = (np.arange(n) % 10).astype(np.uint8) if labels is None else labels
        for kind, arr in (("images-idx3-ubyte", imgs), ("labels-idx1-ubyte", lab)):
            data = idx_bytes(arr)
            (folder / f"{stem}-{kind}{ext}").write_bytes(gzip.compress(data) if gz else data)
    return folder


def test_digits_split_is_fixed_and_complete():
    d = load_data("digits")
    assert (len(d.train), len(d.val), len(d.test)) == (1258, 180, 359)
    assert len(d.train) + len(d.val) + len(d.test) == 1797
    x, y = d.train[0]
    assert x.shape == (1, 8, 8) and 0 <= x.min() and x.max() <= 1 and 0 <= y <= 9
    again = load_data("digits")
    assert torch.equal(d.test.labels, again.test.labels)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_gz_and_raw(tmp_path, gz):
    d = load_data(str(write_mnist(tmp_path / "mnist", gz=gz)))
    assert d.name == "mnist" and d.classes == [str(i) for i in range(10)]
    # 20 training images: a seeded 10 % (2) for validation, 18 for training; 10 test images
    assert (len(d.train), len(d.val), len(d.test)) == (18, 2, 10)
    assert d.train[0][0].shape == (1, 28, 28)
    fashion = load_data(str(write_mnist(tmp_path / "fashion-mnist", gz=gz)))
    assert fashion.name == "fashion-mnist" and fashion.classes[0] == "T-shirt/top"


def test_idx_header_is_read_exactly(tmp_path):
    arr = np.arange(6, dtype=np.int32).reshape(2, 3)
    (tmp_path / "a.idx").write_bytes(idx_bytes(arr))
    assert np.array_equal(read_idx(tmp_path / "a.idx"), arr)


def test_truncated_corrupt_and_mislabelled_idx_files(tmp_path):
    f = write_mnist(tmp_path / "m", gz=False)
    img = f / "train-images-idx3-ubyte"
    img.write_bytes(img.read_bytes()[:-100])
    with pytest.raises(DataError, match="train-images-idx3-ubyte: truncated") as e:
        load_data(str(f))
    assert "\n" not in str(e.value)

    g = write_mnist(tmp_path / "g", gz=True)
    (g / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"xx")[:10])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: cannot read it"):
        load_data(str(g))

    bad = write_mnist(tmp_path / "b", gz=False, labels=np.array([3] * 9 + [12], dtype=np.uint8),
                      n_train=10)
    with pytest.raises(DataError, match="label 12 at index 9 is outside 0..9"):
        load_data(str(bad))

    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "train-images-idx3-ubyte").write_bytes(b"\x08\x03nonsense")
    with pytest.raises(DataError, match="incomplete, missing"):
        load_data(str(tmp_path / "x"))


def cifar_python_batch(n, labels_key="labels", num_classes=10, protocol=2, seed=0):
    rng = np.random.default_rng(seed)
    return pickle.dumps({b"batch_label": b"testing batch 1 of 1",
                         labels_key.encode(): [int(i % num_classes) for i in range(n)],
                         b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         b"filenames": [b"img%d.png" % i for i in range(n)]}, protocol=protocol)


def test_cifar10_python_version_with_python2_style_pickles(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for i in range(1, 6):
        raw = cifar_python_batch(4, seed=i)
        # The real files were written by Python 2 with NumPy 1: their GLOBAL is numpy.core.
        (root / f"data_batch_{i}").write_bytes(raw.replace(b"numpy._core.", b"numpy.core."))
    (root / "test_batch").write_bytes(cifar_python_batch(6, protocol=5))
    (root / "batches.meta").write_bytes(pickle.dumps(
        {b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog",
                          b"horse", b"ship", b"truck"], b"num_vis": 3072}, protocol=2))
    d = load_data(str(tmp_path))
    assert d.name == "cifar10" and d.classes[1] == "automobile"
    assert len(d.train) + len(d.val) == 20 and len(d.test) == 6
    assert d.train[0][0].shape == (3, 32, 32) and d.crop_padding == 4 and d.hflip


def test_cifar100_binary_and_cifar10_binary(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "c100"
    root.mkdir()
    for name, n in (("train", 10), ("test", 5)):
        rec = np.zeros((n, 2 + 3072), dtype=np.uint8)
        rec[:, 0] = 7  # coarse label
        rec[:, 1] = np.arange(n) * 9  # fine label 0..81
        rec[:, 2:] = rng.integers(0, 256, (n, 3072))
        (root / f"{name}.bin").write_bytes(rec.tobytes())
    d = load_data(str(root))
    assert d.name == "cifar100" and d.num_classes == 100
    assert sorted(int(y) for y in d.test.labels) == [0, 9, 18, 27, 36]
    # the pixels are the R, G, B planes in order
    assert torch.equal(d.test.images[0, 0].flatten(), torch.from_numpy(
        np.frombuffer((root / "test.bin").read_bytes(), np.uint8)[2:2 + 1024].copy()))

    c10 = tmp_path / "c10"
    c10.mkdir()
    rec = np.zeros((3, 1 + 3072), dtype=np.uint8)
    rec[:, 0] = [1, 2, 3]
    (c10 / "data_batch_1.bin").write_bytes(rec.tobytes())
    (c10 / "test_batch.bin").write_bytes(rec.tobytes()[:-5])
    with pytest.raises(DataError, match=r"test_batch.bin: 9214 bytes is not a whole number"):
        load_data(str(c10))
    rec[0, 0] = 10
    (c10 / "test_batch.bin").write_bytes(rec.tobytes())
    with pytest.raises(DataError, match="test_batch.bin: label 10 of record 0 is outside 0..9"):
        load_data(str(c10))


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_everything_but_arrays(tmp_path):
    f = tmp_path / "data_batch_1"
    f.write_bytes(pickle.dumps({"data": Evil()}))
    with pytest.raises(DataError, match="refused to load (posix|nt|os).system"):
        restricted_load(f)
    # a subclass trick: builtins.eval, or a numpy function that is not an array constructor
    for mod, name in (("builtins", "eval"), ("numpy", "load"), ("numpy.lib.npyio", "load")):
        with pytest.raises(pickle.UnpicklingError, match="refused"):
            RestrictedUnpickler(__import__("io").BytesIO(b"")).find_class(mod, name)
    # _codecs.encode is allowed for latin1 only
    payload = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R."
    f.write_bytes(payload)
    with pytest.raises(DataError, match="refused _codecs.encode with codec 'rot13'"):
        restricted_load(f)
    f.write_bytes(cifar_python_batch(2)[:50])
    with pytest.raises(DataError, match="data_batch_1: not a readable CIFAR python batch"):
        restricted_load(f)


def test_image_folder_with_and_without_splits(tmp_path):
    for split in ("train", "val"):
        for c, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
            (tmp_path / "a" / split / c).mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (12, 10), colour).save(tmp_path / "a" / split / c / f"{i}.png")
    (tmp_path / "a" / "train" / ".hidden").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "a" / "train" / ".hidden" / "x.png")
    d = load_data(str(tmp_path / "a"))
    assert d.name == "folder" and d.classes == ["cat", "dog"] and len(d.train) == 6
    x, y = d.train[0]
    assert x.shape == (3, 10, 12) and y == 0 and x[0].mean() == 1.0 and x[2].mean() == 0.0

    flat = tmp_path / "flat"
    for c in ("a", "b"):
        (flat / c).mkdir(parents=True)
        for i in range(10):
            Image.new("L", (8, 8), i * 20).save(flat / c / f"{i}.png")
    d = load_data(str(flat))
    assert d.channels == 1 and (len(d.train), len(d.val), len(d.test)) == (14, 2, 4)
    # a bad file is found before training, not when reached (issue 13 item 6)
    (flat / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"1 of 21 image files cannot be read: a/broken.png "
                                        r"\(not an image format Pillow recognises\)"):
        load_data(str(flat))
    d = load_data(str(flat), skip_bad=True)
    files = d.train.files + d.val.files + d.test.files
    assert len(files) == 20 and all(f.name != "broken.png" for f in files)


def test_unknown_paths_and_formats(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_data(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="data format not recognised"):
        load_data(str(tmp_path / "empty"))
    with pytest.raises(DataError, match="unknown data format 'tiff'"):
        load_data("digits", "tiff")
    with pytest.raises(DataError, match="bad synthetic option"):
        load_data("synthetic:colour=red")


def test_synthetic_is_seeded_and_shaped():
    a = load_data("synthetic:classes=3,size=2x5x7,train=9,val=0,test=3")
    b = load_data("synthetic:classes=3,size=2x5x7,train=9,val=0,test=3")
    assert a.train.images.shape == (9, 2, 5, 7) and a.val is None
    assert torch.equal(a.train.images, b.train.images)
    assert sorted(a.train.labels.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


# moved from tests/test_hardening.py (issue 13)
# -------------------------------------------------------- CIFAR with N class names (item 10)


def cifar_binary(root, labels_train, labels_test, names):
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, labels in (("data_batch_1.bin", labels_train), ("test_batch.bin", labels_test)):
        rec = np.zeros((len(labels), 1 + 3072), dtype=np.uint8)
        rec[:, 0] = labels
        rec[:, 1:] = rng.integers(0, 256, (len(labels), 3072))
        (root / name).write_bytes(rec.tobytes())
    (root / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    return root


def test_cli_cifar_folder_with_three_class_names_trains(capsys, tmp_path):
    root = cifar_binary(tmp_path / "c3", [0, 1, 2] * 4, [2, 1, 0], ["red", "green", "blue"])
    d = load_data(str(root))
    assert d.name == "cifar10" and d.classes == ["red", "green", "blue"] and d.num_classes == 3
    res = run_main(capsys, "train", "lenet5", "--data", root, "--epochs", "1", "--no-plots",
                   "--runs-dir", tmp_path / "runs", "--name", "c3")
    assert res.returncode == 0, res.stderr
    import json
    assert json.loads((tmp_path / "runs" / "c3" / "config.json").read_text())["classes"] == \
        ["red", "green", "blue"]


def test_cifar_label_beyond_the_names_is_refused(tmp_path):
    root = cifar_binary(tmp_path / "c3", [0, 1, 3], [0], ["red", "green", "blue"])
    with pytest.raises(DataError, match=r"data_batch_1.bin: label 3 of record 2 is outside 0..2 "
                                        r"for 3 classes \(the class names in batches.meta.txt\)"):
        load_data(str(root))
    # twelve names: labels up to 11 are fine
    root = cifar_binary(tmp_path / "c12", [0, 11], [5], [f"c{i}" for i in range(12)])
    assert load_data(str(root)).num_classes == 12


# moved from tests/test_hardening.py (issue 13)
@pytest.mark.parametrize("magic", [b"\x01\x00\x08\x01", b"\x00\x01\x08\x01",
                                   b"\x08\x00\x08\x01"])
def test_idx_magic_needs_both_leading_zero_bytes(tmp_path, magic):
    from cnnlab.data.idx import read_idx

    f = tmp_path / "labels-idx1-ubyte"
    f.write_bytes(magic + struct.pack(">I", 3) + bytes([1, 2, 3]))
    with pytest.raises(DataError, match=f"not an IDX file \\(bad magic number {magic.hex()}"):
        read_idx(f)
    f.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 3) + bytes([1, 2, 3]))
    assert read_idx(f).tolist() == [1, 2, 3]


# moved from tests/test_hardening2.py (issue 22)
def test_idx_labels_with_an_images_magic_are_named_as_such(capsys, tmp_path):
    import struct

    def idx(path, ndim, dims, payload):
        path.write_bytes(struct.pack(">BBBB", 0, 0, 8, ndim)
                         + b"".join(struct.pack(">I", d) for d in dims) + payload)

    for pre in ("train", "t10k"):
        idx(tmp_path / f"{pre}-images-idx3-ubyte", 3, (4, 28, 28), bytes(4 * 28 * 28))
        # a 1-D label file whose magic says 3 dimensions: reported as "truncated" before
        idx(tmp_path / f"{pre}-labels-idx1-ubyte", 3, (4,), bytes(4))
    res = run_main(capsys, "train", "lenet5", "--data", tmp_path, "--epochs", "1",
                   "--runs-dir", tmp_path / "runs")
    one_line_error(res, "train-labels-idx1-ubyte: expected a 1-D label file (magic 00000801)",
                   "announces 3 dimensions")
    assert "truncated" not in res.stderr
