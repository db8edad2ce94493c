"""MNIST from mnist.pkl.gz: tiny files of the real format (a Python 2 pickle, protocol 2, of
((x, y), (x, y), (x, y)) float32 / int64 arrays, gzipped), hostile and malformed ones."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest

from cnnlab.data import detect_format, load_data
from cnnlab.data.mnist_pickle import read_mnist_pickle
from cnnlab.errors import DataError


def _py2_string(data: bytes) -> bytes:
    """A Python 2 ``str`` the way Python 2's pickler writes it (SHORT_BINSTRING/BINSTRING)."""
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data
    return b"T" + struct.pack("<i", len(data)) + data


def _int(v: int) -> bytes:
    return b"J" + struct.pack("<i", v)


def _py2_array(a: np.ndarray) -> bytes:
    """The opcodes Python 2's NumPy wrote for an array (as in the real mnist.pkl.gz):
    _reconstruct(ndarray, (0,), 'b') then __setstate__((1, shape, dtype, False, data))."""
    kind = {np.dtype(np.float32): b"f4", np.dtype(np.int64): b"i8",
            np.dtype(np.float64): b"f8"}[a.dtype]
    out = b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n"
    out += _int(0) + b"\x85" + _py2_string(b"b") + b"\x87R"          # TUPLE1, TUPLE3, REDUCE
    out += b"(" + _int(1) + b"(" + b"".join(_int(s) for s in a.shape) + b"t"  # MARK 1 shape
    out += b"cnumpy\ndtype\n" + _py2_string(kind) + _int(0) + _int(1) + b"\x87R"
    out += (b"(" + _int(3) + _py2_string(b"<") + b"NNN" + _int(-1) + _int(-1) + _int(0)
            + b"tb")                                                   # dtype state, BUILD
    out += b"\x89" + _py2_string(np.ascontiguousarray(a).tobytes()) + b"tb"  # False, data
    return out


def py2_pickle(parts) -> bytes:
    body = b"".join(_py2_array(x) + _py2_array(y) + b"\x86" for x, y in parts)  # TUPLE2
    return b"\x80\x02" + body + b"\x87."                                # TUPLE3, STOP


def make_parts(n=(30, 10, 12), seed=0, side_shape=(784,), dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [((rng.integers(0, 256, (k, *side_shape)) / 256).astype(dtype),
             (np.arange(k) % 10).astype(np.int64)) for k in n]


def write(path, payload: bytes, gz=True):
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def test_python2_pickle_loads_as_train_val_test(tmp_path):
    parts = make_parts()
    f = write(tmp_path / "mnist.pkl.gz", py2_pickle(parts))
    assert detect_format(f) == "mnist-pickle"
    d = load_data(str(f))
    assert (len(d.train), len(d.val), len(d.test)) == (30, 10, 12)
    assert d.name == "mnist" and d.classes == [str(i) for i in range(10)]
    assert d.channels == 1 and d.image_size == (28, 28)
    for split, (x, y) in zip((d.train, d.val, d.test), parts, strict=True):
        assert split.images.shape == (len(x), 1, 28, 28)
        np.testing.assert_array_equal(split.images.numpy().reshape(len(x), -1), x)
        np.testing.assert_array_equal(split.labels.numpy(), y)
    img, label = d.train[3]
    assert img.dtype.is_floating_point and 0 <= float(img.min()) <= float(img.max()) <= 1
    assert label == 3


def test_python3_pickles_and_28x28_images_load_too(tmp_path):
    parts = make_parts(side_shape=(28, 28))
    for proto in (2, 4, 5):
        f = write(tmp_path / f"p{proto}.pkl.gz", pickle.dumps(tuple(parts), protocol=proto))
        d = load_data(str(f))
        np.testing.assert_array_equal(d.test.images.numpy()[:, 0], parts[2][0])
    raw = write(tmp_path / "plain.pkl", pickle.dumps(tuple(parts), protocol=2), gz=False)
    assert len(load_data(str(raw)).val) == 10


def test_hostile_pickle_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    f = write(tmp_path / "mnist.pkl.gz", pickle.dumps(((Evil(), 1), (2, 3), (4, 5)), protocol=2))
    with pytest.raises(DataError, match=r"refused to load (posix|os|nt)\.system.*only NumPy"):
        load_data(str(f))
    assert not marker.exists()
    # A Python 2 style GLOBAL in the middle of real arrays: refused as well.
    evil = b"\x80\x02cos\nsystem\n" + _py2_string(f"touch {marker}".encode()) + b"\x85R."
    f2 = write(tmp_path / "evil2.pkl.gz", evil)
    with pytest.raises(DataError, match="refused to load os.system"):
        read_mnist_pickle(f2)
    assert not marker.exists()


@pytest.mark.parametrize("parts, message", [
    ("two", r"expected \(\(images, labels\), .*got a tuple of 2"),
    ("shape", r"the training part: images must be N x 784 .*float32 \(30, 100\)"),
    ("ints", r"the validation part: images must be N x 784 .*int64"),
    ("labels", r"the test part: label 12 at index 0 is outside 0..9"),
    ("count", r"the test part: expected 12 integer labels, got int64 \(11,\)"),
    ("range", r"the training part: pixel values must be finite and in \[0, 1\], got 0..255"),
])
def test_malformed_pickles_are_refused_with_one_line(tmp_path, parts, message):
    p = make_parts()
    if parts == "two":
        p = p[:2]
    elif parts == "shape":
        p[0] = (np.zeros((30, 100), np.float32), p[0][1])
    elif parts == "ints":
        p[1] = ((p[1][0] * 255).astype(np.int64), p[1][1])
    elif parts == "labels":
        p[2] = (p[2][0], p[2][1] + 12)
    elif parts == "count":
        p[2] = (p[2][0], p[2][1][:11])
    elif parts == "range":
        p[0] = (p[0][0] * 256, p[0][1])
    f = write(tmp_path / "mnist.pkl.gz", pickle.dumps(tuple(p), protocol=2))
    with pytest.raises(DataError, match=message) as err:
        load_data(str(f))
    assert "\n" not in str(err.value) and str(f) in str(err.value)


def test_truncated_or_foreign_files_are_refused(tmp_path):
    good = py2_pickle(make_parts())
    f = write(tmp_path / "cut.pkl.gz", good[: len(good) // 2])
    with pytest.raises(DataError, match="not a readable MNIST pickle.*corrupt or truncated"):
        load_data(str(f))
    g = tmp_path / "bad.pkl.gz"
    g.write_bytes(gzip.compress(good)[:100])
    with pytest.raises(DataError, match="cannot read it.*corrupt or truncated"):
        load_data(str(g))
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(DataError, match="is a file; .*mnist.pkl.gz"):
        load_data(str(other))


def test_cli_refuses_a_hostile_pickle_with_one_line(tmp_path, capsys):
    from cnnlab.cli import main

    marker = tmp_path / "pwned"
    evil = b"\x80\x02cposix\nsystem\n" + _py2_string(f"touch {marker}".encode()) + b"\x85R."
    f = write(tmp_path / "mnist.pkl.gz", evil)
    rc = main(["train", "lenet5", "--data", str(f), "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and not marker.exists()
    assert len(err.splitlines()) == 1 and "refused to load posix.system" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_scratch_engine_reads_the_pickle_and_pads_28x28_into_32x32(tmp_path):
    from cnnlab.scratch.runs import load_split

    parts = make_parts()
    f = write(tmp_path / "mnist.pkl.gz", py2_pickle(parts))
    data = load_split(str(f), 32, limit=20)
    x, y = data["train"]
    assert x.shape == (20, 1, 32, 32) and len(data["val"][1]) == 10 and len(data["test"][1]) == 12
    background = (0.0 - data["mean"]) / data["std"]
    border = np.concatenate([x[:, 0, :2].ravel(), x[:, 0, -2:].ravel(), x[:, 0, :, :2].ravel(),
                             x[:, 0, :, -2:].ravel()])
    np.testing.assert_allclose(border, background, rtol=1e-5)  # zeros, padded: not resized
    inner = x[:, 0, 2:30, 2:30] * data["std"] + data["mean"]
    np.testing.assert_allclose(inner, parts[0][0][:20].reshape(20, 28, 28), atol=1e-5)
    np.testing.assert_array_equal(y, parts[0][1][:20])
    assert load_split(str(f), 28)["test"][0].shape == (12, 1, 28, 28)
