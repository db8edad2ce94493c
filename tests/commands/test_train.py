"""cnnlab train / evaluate / predict through the real entry point (in process; one smoke test
starts the real process)."""

import json

import pytest
from PIL import Image

from tests.helpers import one_line_error, run_cli

SYN = "synthetic:classes=3,size=1x32x32,train=48,val=0,test=30"


def test_train_prints_epochs_and_a_final_table(trained_runs):
    res, run = trained_runs.lenet5_synthetic_output, trained_runs.lenet5_synthetic
    assert res.returncode == 0, res.stderr
    assert "epoch   1/2  train loss" in res.stdout and "epoch   2/2" in res.stdout
    assert "split" in res.stdout and "test accuracy" in res.stdout
    assert res.stderr == ""  # no progress bar when not a terminal
    assert run.name == "lenet5-synthetic" and (run / "results.json").is_file()


def test_evaluate_and_predict(trained_runs, cli, tmp_path):
    run = trained_runs.lenet5_synthetic
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
    lenet = config_from_args(parser.parse_args(["train", "lenet5"]))  # its own: lr, decay
    assert (lenet.optimizer, lenet.lr, lenet.momentum, lenet.weight_decay) == ("sgd", 0.05, 0.9,
                                                                            0.0)
    assert "lenet5: using its recommended training settings: lr 0.05, weight_decay 0.0" in (
        capsys.readouterr().out)
    paper = config_from_args(parser.parse_args(["train", "lenet5_paper", "--lr", "0.001"]))
    assert (paper.epochs, paper.schedule, paper.lr) == (20, "lecun1998", 0.001)
    allconv = config_from_args(parser.parse_args(["train", "allconv_c"]))
    assert (allconv.optimizer, allconv.lr, allconv.weight_decay) == ("adam", 3e-4, 0.0)
    assert "recommended training settings: optimizer adam" in capsys.readouterr().out
    mine = config_from_args(parser.parse_args(["train", "allconv_c", "--optimizer", "sgd"]))
    assert (mine.optimizer, mine.lr) == ("sgd", 3e-4)


# ------------------------------------------------------------------ issue 13, through the CLI

def test_a_diverging_run_is_a_one_line_user_error(cli, tmp_path):
    res = cli("train", "lenet5", "--model-arg", "activation=relu", "--lr", "1e6", "--data", SYN,
              "--epochs", "2", "--runs-dir", str(tmp_path), "--threads", "1", "--no-plots")
    one_line_error(res, "cnnlab train: error: the loss became", "lower the learning rate",
                    "no checkpoint was written")


@pytest.mark.smoke
def test_relative_data_path_is_stored_absolute_and_the_lr_logged_is_the_epochs(cli, tmp_path):
    # issue 13 item 4: train with --data f_ok from one folder, evaluate from another;
    # item 9: with a step schedule epoch 1 is logged at the rate it trained with (0.1).
    # The smoke test of training: the run is a real ``python -m cnnlab train`` process.
    work = tmp_path / "work"
    for c in range(2):
        (work / "f_ok" / f"c{c}").mkdir(parents=True)
        for i in range(8):
            Image.new("L", (8, 8), 40 + 150 * c + i).save(work / "f_ok" / f"c{c}" / f"{i}.png")
    res = run_cli("train", "lenet5", "--data", "f_ok", "--name", "f_ok", "--runs-dir", "runs",
                  "--epochs", "2", "--schedule", "step", "--step-size", "1", "--gamma", "0.95",
                  "--lr", "0.1", "--threads", "1", "--no-plots", cwd=work)
    assert res.returncode == 0, res.stderr
    run = work / "runs" / "f_ok"
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["spec"] == str(work / "f_ok") == config["train"]["data"]
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in rows] == [0.1, pytest.approx(0.095)]
    assert "epoch   1/2" in res.stdout and "lr 0.1  " in res.stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ev = cli("evaluate", str(run), "--json", cwd=elsewhere)
    assert ev.returncode == 0, ev.stderr
    results = json.loads((run / "results.json").read_text())
    assert json.loads(ev.stdout)["images"] == config["data"]["test"] == results["test_images"]


@pytest.fixture
def run_copy(trained_runs, tmp_path):
    import shutil

    dst = tmp_path / "copy"
    shutil.copytree(trained_runs.lenet5_synthetic, dst)
    return dst


def _edit(path, **changes):
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


@pytest.mark.parametrize("change, needle", [
    ({"model_kwargs": [1, 2]}, "config key 'model_kwargs' must be an object"),
    ({"input_size": "abc"}, "config key 'input_size' must be a list of three positive integers"),
])
def test_hand_edited_config_is_one_line_in_evaluate(cli, run_copy, change, needle):
    _edit(run_copy / "config.json", **change)
    one_line_error(cli("evaluate", str(run_copy)), "cnnlab evaluate: error:", needle)


def test_hand_edited_config_is_one_line_in_predict_and_resume(cli, run_copy, tmp_path):
    import torch

    img = tmp_path / "x.png"
    Image.new("L", (20, 20), 128).save(img)
    _edit(run_copy / "config.json", mean=[0.1, 0.2, 0.3])
    one_line_error(cli("predict", str(run_copy), str(img)), "cnnlab predict: error:",
                    "config key 'mean' must be a list of numbers, one per input channel")
    state = torch.load(run_copy / "checkpoint.pt", weights_only=True)
    state["config"] = json.dumps(dict(json.loads(state["config"]), model=5))
    torch.save(state, run_copy / "checkpoint.pt")
    one_line_error(cli("train", "lenet5", "--resume", str(run_copy)), "cnnlab train: error:",
                    "config key 'model' must be a registered model name")


@pytest.mark.parametrize("change, needle", [
    ({"model": 7}, "config key 'model' must be a registered model name (a string), got 7"),
    ({"classes": ["a", "b"]}, "the model has 3 outputs (model_kwargs.num_classes) but the "
                              "config names 2 classes"),
    ({"std": [0.0]}, "config key 'std' must be a list of positive numbers"),
])
def test_hand_edited_config_more_cases(run_copy, capsys, change, needle):
    from cnnlab.cli import main

    _edit(run_copy / "config.json", **change)
    assert main(["evaluate", str(run_copy)]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_resume_with_a_changed_option_is_refused_naming_it(cli, trained_runs):
    res = cli("train", "lenet5", "--resume", str(trained_runs.lenet5_synthetic), "--lr", "0.5",
              "--batch-size", "16", "--epochs", "3")
    one_line_error(res, "--lr 0.5 (the run's: 0.01)", "drop them, or start a new run")
    assert "--batch-size" not in res.stderr and "--epochs" not in res.stderr  # same / allowed
