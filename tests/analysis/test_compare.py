"""The comparison table: numbers, formats, accuracy from run folders, chart, errors."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch

import cnnlab
from cnnlab.analysis.benchmark import check_device, time_inference
from cnnlab.analysis.compare import compare, format_rows, read_accuracy
from cnnlab.weights import save_run_model
from tests.helpers import _reference_file


def make_run(tmp_path, name="lenet5", results=None, metrics=None):
    run = tmp_path / f"run-{name}"
    model = cnnlab.create_model(name)
    # a complete config.json: the opener checks it against the run-config schema
    save_run_model(run, model, {"model": name, "model_kwargs": {}, "input_size": [1, 32, 32],
                                "classes": [str(i) for i in range(10)], "mean": [0.5],
                                "std": [0.5]})
    if results is not None:
        (run / "results.json").write_text(json.dumps(results))
    if metrics is not None:
        (run / "metrics.jsonl").write_text("\n".join(json.dumps(m) for m in metrics) + "\n")
    return run


def test_lenet5_row_without_timing():
    (row,) = compare(["lenet5"], timing=False)
    assert (row.params, row.depth, row.macs, row.input_size) == (61_706, 5, 416_520, (1, 32, 32))
    assert row.size_mb == pytest.approx(61_706 * 4 / 2**20)
    assert row.ms is None and row.top1 is None


def test_timing_is_exercised_and_leaves_the_model_alone():
    model = cnnlab.create_model("lenet5").train()
    rng = torch.get_rng_state()
    t = time_inference(model, (1, 32, 32), batch=2, repeats=2, warmup=1)
    assert t.runs == 2 and t.batch == 2 and t.median_ms > 0 and t.threads >= 1
    assert model.training and torch.equal(torch.get_rng_state(), rng)
    t = time_inference(model, (1, 32, 32), batch=1, repeats=50, warmup=1, time_budget_s=1e-9)
    assert t.runs == 1          # the budget cuts the runs, never below one


def test_accuracy_from_results_json_and_metrics(tmp_path):
    run = make_run(tmp_path, results={"test_top1": 0.975, "test_top5": 0.999})
    (row,) = compare(["lenet5"], timing=False, checkpoints={"lenet5": str(run)})
    assert row.top1 == pytest.approx(97.5) and row.top5 == pytest.approx(99.9)
    run2 = make_run(tmp_path / "b", metrics=[{"epoch": 1, "val_top1": 0.5},
                                             {"test_top1": 96.0, "test_top5": 99.5}])
    assert read_accuracy(run2) == (96.0, 99.5)
    assert read_accuracy(make_run(tmp_path / "c")) == (None, None)


def test_formats():
    (row,) = compare(["lenet5"], timing=False)
    text = format_rows([row], "text", ["header line"])
    assert text.splitlines()[0] == "header line" and "61,706" in text
    md = format_rows([row], "markdown")
    assert md.splitlines()[0].startswith("| Model | Input | Size (MB) | Params | Depth | MACs (M)")
    assert "| lenet5 | 1x32x32 | 0.24 | 61,706 | 5 | 0.42 |" in md
    rec = next(csv.DictReader(io.StringIO(format_rows([row], "csv"))))
    assert (rec["params"], rec["depth"], rec["macs"], rec["flops"]) == ("61706", "5", "416520",
                                                                      "833040")


def test_unavailable_device_is_named():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ValueError, match="not available"):
        check_device("cuda")
    with pytest.raises(ValueError, match="unknown device|not supported"):
        check_device("tpu")


def test_cli_compare_csv_with_timing_checkpoint_and_plot(cli, tmp_path):
    run = make_run(tmp_path, results={"test_top1": 0.98, "test_top5": 1.0})
    png = tmp_path / "chart.png"
    res = cli("compare", "lenet5", "--batch", "2", "--repeats", "2", "--warmup", "1", "--csv",
              "--checkpoint", f"lenet5={run}", "--plot", str(png))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert any("batch of 2" in x and "threads" in x for x in lines if x.startswith("#"))
    rec = next(csv.DictReader(x for x in lines if not x.startswith("#")))
    assert rec["model"] == "lenet5" and rec["params"] == "61706" and rec["macs"] == "416520"
    assert float(rec["ms_per_step"]) > 0 and rec["timed_runs"] == "2"
    assert float(rec["top1"]) == pytest.approx(98.0)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_model_list_and_checkpoint_mistakes(tmp_path):
    from cnnlab.analysis.compare import parse_checkpoints
    from cnnlab.commands.compare import resolve_models

    with pytest.raises(ValueError, match="name the models"):
        resolve_models([], False)
    with pytest.raises(cnnlab.UnknownModelError, match="no model matches"):
        resolve_models(["zzz*"], False)
    assert resolve_models(["lenet*", "lenet5"], False) == ["lenet5", "lenet5_paper"]
    with pytest.raises(ValueError, match="MODEL=RUN_FOLDER"):
        parse_checkpoints(["lenet5"])
    with pytest.raises(ValueError, match="not in the comparison"):
        compare([], timing=False, checkpoints={"lenet5": str(tmp_path)})
    other = make_run(tmp_path, results={"test_top1": 0.5})
    cfg = other / "config.json"
    cfg.write_text(cfg.read_text().replace('"lenet5"', '"lenet5_other"'))
    with pytest.raises(cnnlab.CnnlabError):
        compare(["lenet5"], timing=False, checkpoints={"lenet5": str(other)})


@pytest.mark.parametrize("args,message", [
    (("compare", "nosuchnet", "--no-timing"), "unknown model 'nosuchnet'"),
    (("compare", "lenet5", "--device", "cuda:7"), "not available"),
    (("compare", "lenet5", "--no-timing", "--checkpoint", "lenet5=/nonexistent/run"),
     "/nonexistent/run does not exist"),  # the one opener's message (cnnlab.resolve)
])
def test_cli_compare_errors_are_one_line(cli, args, message):
    res = cli(*args)
    assert res.returncode == 2, res.stdout
    assert res.stderr.strip().count("\n") == 0, res.stderr
    assert message in res.stderr


def test_benchmark_script_writes_its_result(tmp_path, monkeypatch):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_models.py"
    spec = importlib.util.spec_from_file_location("bench_models", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "compare_cpu.md"
    assert mod.main(["lenet5", "--repeats", "1", "--out", str(out)]) == 0
    text = out.read_text()
    assert "bench_models.py lenet5" in text and "torch " in text and "Date:" in text
    assert "| lenet5 | 1x32x32 | 0.24 | 61,706 | 5 | 0.42 |" in text
    assert out.with_suffix(".csv").is_file()


# --- --channels-last, --amp, --no-aux ------------------------------------------------------

@pytest.fixture(scope="module")
def resnet20():
    torch.manual_seed(0)
    return cnnlab.create_model("resnet20").eval()


def test_channels_last_and_bf16_outputs_match_fp32_eager(resnet20):
    from cnnlab.analysis.compare import max_diff_vs_eager, variant_outputs

    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = resnet20(x)                            # plain fp32 eager
    cl = variant_outputs(resnet20, x, channels_last=True)
    torch.testing.assert_close(cl, ref, rtol=1e-4, atol=1e-4)
    bf = variant_outputs(resnet20, x, channels_last=True, amp="bf16")
    assert bf.dtype == torch.float32
    # bf16 keeps 8 bits of mantissa: the logits agree to a few hundredths, not exactly
    scale = ref.abs().max().item()
    assert 0 < (bf - ref).abs().max().item() < 0.05 * scale
    # the top class agrees wherever fp32's margin over the runner-up exceeds bf16's error
    top2 = ref.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 2 * (bf - ref).abs().max()
    assert torch.equal(bf.argmax(1)[clear], ref.argmax(1)[clear])
    # the model is left as it was
    assert not resnet20.training
    assert all(p.is_contiguous() for p in resnet20.parameters())
    d = max_diff_vs_eager(resnet20, (3, 32, 32), amp="bf16")
    assert 0 < d < 0.05 * scale
    assert max_diff_vs_eager(resnet20, (3, 32, 32), channels_last=True) < 1e-4


def test_cli_compare_channels_last_bf16_columns(cli):
    res = cli("compare", "lenet5", "--channels-last", "--amp", "bf16", "--repeats", "1",
              "--batch", "2")
    assert res.returncode == 0, res.stderr
    assert "Precision" in res.stdout and "max |diff| vs fp32" in res.stdout
    line = next(x for x in res.stdout.splitlines() if x.startswith("lenet5"))
    assert "bf16 CL" in line
    res = cli("compare", "lenet5", "--amp", "bf16", "--no-timing", "--json")
    (row,) = json.loads(res.stdout)["models"]
    assert row["precision"] == "bf16" and not row["channels_last"]
    assert 0 < row["max_diff_vs_fp32"] < 0.1 and row["ms_per_step"] is None


def test_no_aux_leaves_out_the_auxiliary_heads():
    from cnnlab.analysis.compare import analyse

    ref = _reference_file("torchvision")
    assert analyse("inception_v3").params == ref["inception_v3_aux"]["params"]
    assert analyse("inception_v3", no_aux=True).params == ref["inception_v3"]["params"]
    assert analyse("lenet5", no_aux=True).params == 61_706
