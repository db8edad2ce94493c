"""Issue 13: the reproductions (through the real ``cnnlab`` entry point) and the tests that
the mutation audit found missing (each fails on the mutant it names)."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnlab
from cnnlab.data import load_data
from cnnlab.errors import CnnlabError, DataError, ModelArgumentError, TrainingDivergedError

from .test_images import run_main


def one_line_error(res, *needles: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr and res.stderr.strip().count("\n") == 0, res.stderr
    for needle in needles:
        assert needle in res.stderr, (needle, res.stderr)


# ------------------------------------------------------------------ model arguments (item 3)


@pytest.mark.parametrize("model,arg,needles", [
    ("lenet5", "nosuch=1", ["lenet5 does not take the argument 'nosuch'", "activation"]),
    ("mobilenet_v1", "width_mult=abc",
     ["mobilenet_v1's argument 'width_mult' takes a number, got 'abc'"]),
])
def test_cli_bad_model_arg_is_one_line(capsys, tmp_path, model, arg, needles):
    res = run_main(capsys, "train", model, "--model-arg", arg, "--epochs", "1", "--runs-dir",
                   tmp_path / "runs")
    one_line_error(res, "cnnlab train: error: ", *needles)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_model_argument_errors_are_user_errors_but_builder_bugs_are_not():
    with pytest.raises(ModelArgumentError, match="resnet20 does not take the argument 'x'"):
        cnnlab.create_model("resnet20", x=1)
    with pytest.raises(ModelArgumentError, match="'stem' takes a string, got 3"):
        cnnlab.create_model("resnet20", stem=3)
    with pytest.raises(ModelArgumentError, match="resnet20 sets 'layers' itself"):
        cnnlab.create_model("resnet20", layers=(1, 1, 1))
    with pytest.raises(ModelArgumentError, match="'num_classes' takes an integer, got 2.5"):
        cnnlab.create_model("lenet5", num_classes=2.5)
    assert isinstance(ModelArgumentError("x"), TypeError)  # `except TypeError` still works
    # a value of the right type that the model refuses is its own ValueError, as before
    with pytest.raises(ValueError, match="width_mult"):
        cnnlab.create_model("mobilenet_v1", width_mult=-1.0)
    # an int where a float is annotated, and a NumPy float, are accepted
    with torch.device("meta"):
        cnnlab.create_model("mobilenet_v1", width_mult=1, dropout=np.float64(0.5))

    # A TypeError raised by a builder's own code (a programming error) stays a plain
    # TypeError with its traceback: it is not a CnnlabError.
    from cnnlab import registry

    @registry.register_model(input_size=(1, 8, 8))
    def _broken_for_test(**kwargs) -> nn.Module:
        return len(5)  # TypeError: object of type 'int' has no len()

    try:
        with pytest.raises(TypeError, match="has no len") as err:
            cnnlab.create_model("_broken_for_test", num_classes=3)
        assert not isinstance(err.value, CnnlabError)
    finally:
        del registry._MODELS["_broken_for_test"]


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


# ------------------------------------------------------------ mutation-audit survivors (12)


def test_numpy_sgd_decay_is_from_the_base_rate_every_epoch():
    # The trainer calls set_epoch(0), set_epoch(1), ... in turn: eta_e = lr * decay**e, not
    # compounded on the previous epoch's eta (which would give 0.1, 0.05, 0.0125, 0.0015625).
    from cnnlab.scratch.optim import SGD

    class One:
        params = {"w": np.array([1.0])}
        grads = {"w": np.array([2.0])}

    class Net:
        layer = One()

        def parameters(self):
            yield "w", self.layer, "w"

    opt = SGD(Net(), lr=0.1, momentum=0.0, decay=0.5)
    assert [opt.set_epoch(e) for e in range(4)] == [0.1, 0.05, 0.025, 0.0125]
    opt.step()  # momentum 0: w = 1 - 0.0125 * 2 = 0.975
    assert Net.layer.params["w"][0] == pytest.approx(0.975)


@pytest.mark.parametrize("name", ["sobel", "prewitt"])
def test_y_mask_is_the_transpose_of_x(name):
    from cnnlab.lab.filters import get_kernel

    gx, gy = get_kernel(f"{name}-x"), get_kernel(f"{name}-y")
    np.testing.assert_array_equal(gy, gx.T)
    # by hand: x weights the middle row 2 (Sobel) or 1 (Prewitt); y the middle column
    mid = 2.0 if name == "sobel" else 1.0
    np.testing.assert_array_equal(gx, [[-1, 0, 1], [-mid, 0, mid], [-1, 0, 1]])
    np.testing.assert_array_equal(gy, [[-1, -mid, -1], [0, 0, 0], [1, mid, 1]])


def test_sobel_y_on_a_horizontal_edge_by_hand():
    from cnnlab.lab.filters import apply_filter

    img = np.zeros((5, 5))
    img[3:] = 10.0  # rows 0-2 dark, rows 3-4 bright: a horizontal edge
    gy = apply_filter(img, "sobel-y", op="correlate", mode="valid")
    # rows 1..3 centred: windows over rows 0-2 (0), 1-3 ((1+2+1) * 10 = 40), 2-4 (40)
    np.testing.assert_array_equal(gy, [[0, 0, 0], [40, 40, 40], [40, 40, 40]])
    gx = apply_filter(img, "sobel-x", op="correlate", mode="valid")
    np.testing.assert_array_equal(gx, np.zeros((3, 3)))


def test_pooling_other_ops_are_k_squared_per_output():
    # 1x7x7 -> conv 1->2 3x3 (no pad): 2x5x5, MACs 5*5*2*9 = 450, ReLU 50 other ops;
    # max pool 3x3 stride 2: 2x2x2 outputs, each a max over 9 values: 8 * 9 = 72 other ops;
    # avg pool 2x2 stride 1 on 2x2x2: 2x1x1 outputs of 4 values: 2 * 4 = 8 other ops.
    from cnnlab.analysis.macs import count_macs

    net = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.ReLU(), nn.MaxPool2d(3, 2),
                        nn.AvgPool2d(2, 1))
    res = count_macs(net, (1, 7, 7))
    assert res.macs == 450
    assert res.other_ops == 50 + 72 + 8


def test_mobilenet_v1_macs_by_the_papers_formula_beside_flop_counter():
    # Independent of the code: MobileNet v1 (Howard et al. 2017, Table 1) at 224x224, the
    # paper's cost D_K*D_K*M*D_F*D_F (depthwise) + M*N*D_F*D_F (pointwise) per unit, plus
    # the 3x3/2 stem (3 -> 32) and the 1024 -> 1000 FC. Table 1 reports 569 million.
    units = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1),
             (256, 512, 2)] + [(512, 512, 1)] * 5 + [(512, 1024, 2), (1024, 1024, 1)]
    size = 112
    macs = size * size * 3 * 3 * 3 * 32
    for m, n, stride in units:
        size = math.ceil(size / stride)
        macs += 3 * 3 * m * size * size + m * n * size * size
    macs += 1024 * 1000
    assert round(macs / 1e6) == 569
    from cnnlab.analysis.macs import count_macs

    with torch.device("meta"):
        model = cnnlab.create_model("mobilenet_v1").eval()
    assert count_macs(model, (3, 224, 224)).macs == macs
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, 224, 224, device="meta"))
    assert counter.get_total_flops() == 2 * macs


def test_shufflenet_v1_unit_forward_shuffles_the_channels():
    # The unit's own forward (not its parts called by hand) must shuffle: out = relu(x +
    # gconv2(dwconv(shuffle(gconv1(x))))), the shuffle written here as an index list: g=3
    # groups of 4 bottleneck channels, channel i*4 + j moves to j*3 + i.
    from cnnlab.models.shufflenet import ShuffleV1Unit

    torch.manual_seed(0)
    unit = ShuffleV1Unit(48, 48, stride=1, groups=3).eval()
    for m in unit.modules():  # BN statistics that are not the identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    order = [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]  # output position p takes channel order[p]
    x = torch.randn(2, 48, 5, 5)
    with torch.no_grad():
        mid = unit.gconv1(x)
        want = torch.relu(x + unit.gconv2(unit.dwconv(mid[:, order])))
        assert torch.allclose(unit(x), want, atol=1e-6)
        assert not torch.allclose(unit(x), torch.relu(x + unit.gconv2(unit.dwconv(mid))),
                                  atol=1e-3)


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
