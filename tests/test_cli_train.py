"""cnnlab train / evaluate / predict through the real entry point."""

import json

import pytest
from PIL import Image

SYN = "synthetic:classes=3,size=1x32x32,train=48,val=0,test=30"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from tests.conftest import run_cli

    runs = tmp_path_factory.mktemp("runs")
    res = run_cli("train", "lenet5", "--model-arg", "activation=relu", "--data", SYN,
                  "--epochs", "2", "--batch-size", "16", "--lr", "0.01", "--runs-dir", str(runs),
                  "--threads", "1")
    return runs, res


def test_train_prints_epochs_and_a_final_table(trained_run):
    runs, res = trained_run
    assert res.returncode == 0, res.stderr
    assert "epoch   1/2  train loss" in res.stdout and "epoch   2/2" in res.stdout
    assert "split" in res.stdout and "test accuracy" in res.stdout
    assert res.stderr == ""  # no progress bar when not a terminal
    assert (runs / "lenet5-synthetic" / "results.json").is_file()


def test_evaluate_and_predict(trained_run, cli, tmp_path):
    runs, _ = trained_run
    run = runs / "lenet5-synthetic"
    res = cli("evaluate", str(run), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    results = json.loads((run / "results.json").read_text())
    assert out["images"] == 30 and out["top1"] == pytest.approx(results["test_top1"])
    cm = out["confusion"]
    assert sum(map(sum, cm)) == 30
    assert out["top1"] == pytest.approx(100 * sum(cm[i][i] for i in range(3)) / 30)
    text = cli("evaluate", str(run / "checkpoint.pt"))
    assert text.returncode == 0 and "confusion matrix" in text.stdout and "class0" in text.stdout

    img = tmp_path / "x.png"
    Image.new("L", (20, 20), 128).save(img)
    res = cli("predict", str(run), str(img), "--top-k", "2", "--json")
    assert res.returncode == 0, res.stderr
    top = json.loads(res.stdout)[0]["top"]
    assert len(top) == 2 and top[0]["probability"] >= top[1]["probability"]
    assert all(t["class"].startswith("class") for t in top)


@pytest.mark.parametrize("args, message", [
    (["--data", "/no/such/dir"], "does not exist"),
    (["--batch-size", "0"], "batch size must be a positive integer"),
    (["--input-size", "1x20x20"], "needs inputs of at least 32x32"),
])
def test_bad_input_is_a_one_line_error_and_writes_nothing(cli, tmp_path, args, message):
    res = cli("train", "lenet5", "--runs-dir", str(tmp_path / "runs"), *args)
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr
    assert res.stderr.strip().count("\n") == 0
    assert not (tmp_path / "runs").exists()


def test_unknown_format_and_missing_run(tmp_path):
    from cnnlab.cli import main

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "readme.txt").write_text("x")
    assert main(["train", "lenet5", "--data", str(tmp_path / "d"),
                 "--runs-dir", str(tmp_path / "runs")]) == 2
    assert not (tmp_path / "runs").exists()
    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    assert main(["predict", str(tmp_path / "nope"), "x.png"]) == 2


def test_model_recommended_training_settings_apply_unless_overridden(capsys):
    from cnnlab.cli import build_parser
    from cnnlab.commands.train import config_from_args

    parser = build_parser()
    lenet = config_from_args(parser.parse_args(["train", "lenet5"]))
    assert (lenet.optimizer, lenet.lr, lenet.momentum) == ("sgd", 0.1, 0.9)
    allconv = config_from_args(parser.parse_args(["train", "allconv_c"]))
    assert (allconv.optimizer, allconv.lr, allconv.weight_decay) == ("adam", 3e-4, 0.0)
    assert "recommended training settings: optimizer adam" in capsys.readouterr().out
    mine = config_from_args(parser.parse_args(["train", "allconv_c", "--optimizer", "sgd"]))
    assert (mine.optimizer, mine.lr) == ("sgd", 3e-4)
