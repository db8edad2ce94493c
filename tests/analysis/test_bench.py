"""cnnlab bench: backends timed side by side, agreement with eager, the peak, the pick."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from cnnlab.analysis import backends as B
from tests.helpers import run_main


def test_cheap_backends_on_lenet5_json(capsys):
    code, out, err = run_main(capsys, "bench", "lenet5", "--batch", "4", "--repeats", "2",
                              "--images", "8", "--backends",
                              "eager,channels_last,fused,bf16", "--peak", "--pick", "--json")
    assert code == 0, err
    doc = json.loads(out)
    rows = {r["backend"]: r for r in doc["results"]}
    assert list(rows) == ["eager", "channels_last", "fused", "bf16"]
    for r in rows.values():
        assert r["error"] is None and r["ms"] > 0 and r["runs"] == 2 and r["batch"] == 4
        assert r["images_per_s"] == pytest.approx(4e3 / r["ms"])
        assert r["macs"] > 0 and r["peak"] > 0
    # eager agrees with itself; fp32 variants of the same arithmetic agree on all 8 images
    assert rows["eager"]["agreement"] == rows["fused"]["agreement"] == 1.0
    assert rows["channels_last"]["agreement"] == 1.0
    assert doc["pick"]["lenet5@4"] in rows
    # the logits' relative error: 0 for eager itself, float32 rounding for fp32 variants,
    # bf16's about 2^-8 (8 bits of mantissa), never 0
    assert rows["eager"]["logit_error"] == 0.0
    assert rows["fused"]["logit_error"] < 1e-5 and rows["channels_last"]["logit_error"] < 1e-5
    assert 1e-5 < rows["bf16"]["logit_error"] < 0.05
    assert all(r["random_weights"] for r in rows.values())
    assert any(line.startswith("CPU features: AVX2") for line in doc["header"])


def test_the_help_lists_every_backend():
    from cnnlab.commands.bench import ALL

    assert ALL.split(",") == list(B.BACKENDS)
    assert set(B.PRECISION) == set(B.DESCRIPTION) == set(B.BACKENDS)


def test_unknown_backend_and_bad_batch_are_one_line(capsys):
    code, out, err = run_main(capsys, "bench", "lenet5", "--backends", "eager,tensorrt")
    assert code == 2 and "unknown backend 'tensorrt'" in err and "eager" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run_main(capsys, "bench", "lenet5", "--batch", "0")
    assert code == 2 and "--batch" in err


def test_missing_onnxruntime_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
    with pytest.raises(B.BackendError, match=r"pip install 'cnnlab\[onnx\]'"):
        B.prepare("ort", model, torch.randn(2, 1, 2, 2))


def test_missing_torchao_names_the_extra(monkeypatch):
    for name in ("torchao", "torchao.quantization.pt2e.quantizer.x86_inductor_quantizer",
                 "torch.ao.quantization.quantizer.x86_inductor_quantizer"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(B.BackendError, match=r"cnnlab\[int8\]"):
        B.quantization_api()


def test_bf16_without_native_support_says_why(monkeypatch):
    feats = dict(B.cpu_features(), **{"native bf16": False})
    monkeypatch.setattr(B, "cpu_features", lambda: feats)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten()).eval()
    _, _, note = B.prepare("bf16", model, torch.randn(2, 1, 5, 5))
    assert "no native bf16" in note and "slower" in note


def test_pick_takes_the_fastest_that_keeps_top1():
    R = B.Result
    rs = [R("m", 8, "eager", "fp32", ms=10, agreement=1.0, accuracy=90.0),
          R("m", 8, "int8", "int8", ms=3, agreement=0.9, accuracy=89.9),       # flips top-1
          R("m", 8, "ort_int8", "int8", ms=4, agreement=1.0, accuracy=89.0),   # drops 1 point
          R("m", 8, "fused", "fp32", ms=8, agreement=1.0, accuracy=90.0),
          R("m", 8, "compile", "fp32", error="no compiler")]
    best = B.pick(rs)
    assert best[("m", 8)].backend == "fused"
    assert B.pick(rs, min_agreement=0.85, max_accuracy_drop=2)[("m", 8)].backend == "int8"


def test_pick_says_when_random_weights_failed_a_faster_backend():
    R = B.Result
    rs = [R("m", 8, "eager", "fp32", ms=10, agreement=1.0, logit_error=0.0,
            random_weights=True),
          R("m", 8, "ort", "fp32", ms=5, agreement=1.0, logit_error=1e-7, random_weights=True),
          R("m", 8, "int8", "int8", ms=2, agreement=0.75, logit_error=0.04,
            random_weights=True),
          R("m", 8, "bf16", "bf16", ms=7, agreement=0.8, logit_error=0.004,
            random_weights=True)]   # slower than the pick: not named
    best = B.pick(rs)
    assert best[("m", 8)].backend == "ort"
    (line,) = B.pick_caveats(rs, best)
    assert "random weights" in line and "int8 (75%, logit err 4.0e-02)" in line
    assert "bf16" not in line and "trained run" in line
    trained = [R(**{**r.__dict__, "random_weights": False}) for r in rs]
    assert B.pick_caveats(trained, B.pick(trained)) == []


def test_peak_kernels_measure_each_precision():
    peaks = B.measure_peaks(("fp32", "int8"), repeats=1)
    assert set(peaks) <= {"fp32", "int8"} and peaks["fp32"] > 1e8


def test_int8_error_names_the_layer():
    model = torch.nn.Sequential()
    model.add_module("stem", torch.nn.Conv2d(1, 1, 1))
    err = RuntimeError("cannot quantize node stem with dtype int4")
    assert B._layer_in(err, model) == " (layer stem)"
    assert B._layer_in(RuntimeError("something else"), model) == ""


def test_compare_takes_its_ms_column_from_a_backend(capsys):
    code, out, err = run_main(capsys, "compare", "lenet5", "--backend", "fused", "--batch", "2",
                              "--repeats", "1", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["models"][0]["backend"] == "fused" and doc["models"][0]["ms_per_step"] > 0
    code, _, err = run_main(capsys, "compare", "lenet5", "--backend", "nope", "--batch", "2")
    assert code == 2 and "unknown backend 'nope'" in err


@pytest.mark.slow
def test_int8_and_onnxruntime_on_a_small_resnet(capsys):
    pytest.importorskip("torchao")
    pytest.importorskip("onnxruntime")
    code, out, err = run_main(capsys, "bench", "resnet20", "--batch", "8", "--repeats", "1",
                              "--images", "16", "--backends", "eager,int8,ort,ort_int8",
                              "--json")
    assert code == 0, err
    rows = {r["backend"]: r for r in json.loads(out)["results"]}
    for b in ("int8", "ort", "ort_int8"):
        assert rows[b]["error"] is None, rows[b]["error"]
        assert rows[b]["ms"] > 0 and rows[b]["setup_s"] > 0
        assert rows[b]["agreement"] >= 0.75
    assert rows["ort"]["agreement"] == 1.0
    assert "int8" in rows["int8"]["note"]


def test_backend_auto_takes_the_pick(monkeypatch):
    R = B.Result
    fake = [R("m", 4, "eager", "fp32", ms=10, runs=3, agreement=1.0),
            R("m", 4, "int8", "int8", ms=2, runs=3, agreement=0.5),
            R("m", 4, "ort", "fp32", ms=4, runs=3, agreement=1.0)]
    seen = {}

    def bench(names, **kw):
        seen.update(kw, names=names)
        return fake

    monkeypatch.setattr(B, "bench", bench)
    assert B.timed_with_backend("m", "auto", batch=4) == ("ort", 4, 3)
    assert seen["backends"] == list(B.BACKENDS) and seen["batches"] == [4]
    assert B.timed_with_backend("m", "int8", batch=4) == ("int8", 2, 3)


@pytest.mark.slow
def test_compiled_backends_agree_with_eager(capsys):
    if B._c_compiler() is None:
        pytest.skip("torch.compile needs a C++ compiler")
    # batch 1, then 4, of LeNet-5's one channel (a tensor both contiguous and channels-last)
    # in one process made inductor's stride check fail when the weights were channels-last
    code, out, err = run_main(capsys, "bench", "lenet5", "--batch", "1,4", "--repeats", "1",
                              "--images", "8", "--backends", "eager,compile,compile_bf16",
                              "--json")
    assert code == 0, err
    rows = {r["backend"]: r for r in json.loads(out)["results"] if r["batch"] == 4}
    for b in ("compile", "compile_bf16"):
        assert rows[b]["error"] is None, rows[b]["error"]
        assert "freezing" in rows[b]["note"] and rows[b]["setup_s"] > 0
    assert rows["compile"]["agreement"] == 1.0
    assert rows["compile_bf16"]["precision"] == "bf16"
    assert rows["compile_bf16"]["agreement"] >= 0.75  # bf16 rounding may flip a close call


# --- on a GPU (none in CI): what can be checked without one


@pytest.mark.parametrize("backend", B.CPU_ONLY)
def test_cpu_only_backends_refuse_another_device_in_one_line(backend):
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten()).eval()
    with pytest.raises(B.BackendError, match="CPU only.*--device cpu"):
        B.prepare(backend, model, torch.randn(2, 1, 5, 5, device="meta"))


def test_gpu_timing_waits_for_the_device_and_the_header_names_it(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    B._synchronizer("cpu")()
    assert calls == []
    B._synchronizer("cuda:1")()
    assert calls == [torch.device("cuda:1")]

    class Props:
        name, total_memory, major, minor = "NVIDIA H200", 141 * 2**30, 9, 0

    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: Props)
    lines = B.machine_lines("cuda")
    assert lines[-1].startswith("GPU: NVIDIA H200; 141 GiB; compute capability 9.0; CUDA")
    assert not any(line.startswith("GPU") for line in B.machine_lines("cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_bench_on_a_missing_gpu_is_one_line(capsys):
    code, _, err = run_main(capsys, "bench", "lenet5", "--device", "cuda")
    assert code == 2 and "CUDA is not available" in err and "--device cpu" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("device, message", [
    ("mps", "bench times the CPU or a CUDA GPU, not --device mps"),
    ("gpu0", "unknown device 'gpu0'"),
])
def test_bench_refuses_other_devices_in_one_line(capsys, device, message):
    code, _, err = run_main(capsys, "bench", "lenet5", "--device", device)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
