"""Checkpoints: weights_only loading, refusal of corrupt/foreign files, and a run killed with
SIGKILL mid-epoch that, resumed, ends exactly where an uninterrupted run ends."""

import contextlib
import io
import json
import os
import signal
import time

import pytest
import torch

from cnnlab.errors import CheckpointError
from cnnlab.training.checkpoint import load_checkpoint, save_checkpoint
from cnnlab.training.trainer import TrainConfig, train
from tests.helpers import one_line_error, run_main, start_cli

SYN = "synthetic:classes=4,size=1x32x32,train=160,val=32,test=48"
ARGS = ["lenet5", "--model-arg", "activation=relu", "--data", SYN, "--epochs", "3",
        "--batch-size", "16", "--lr", "0.01", "--threads", "1", "--no-plots",
        "--checkpoint-every", "3"]


class Payload:
    pass


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    state = {"config": json.dumps({"model": "lenet5"}), "model": {"w": torch.ones(2)},
             "optimizer": {}, "epoch": 1, "batch": 0, "step": 5, "rng": {"torch": torch.zeros(3)}}
    save_checkpoint(tmp_path / "c.pt", state)
    raw = torch.load(tmp_path / "c.pt", weights_only=True)
    assert raw["format"] == "cnnlab-checkpoint" and raw["step"] == 5
    assert load_checkpoint(tmp_path / "c.pt")["config"] == {"model": "lenet5"}


class CtrlCWhenPickled:
    """Sends this process SIGINT while torch.save pickles it (a Ctrl-C in mid-write); it is
    saved as the number 5."""

    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGINT)
        return int, (5,)


def test_ctrl_c_during_a_checkpoint_write_finishes_the_file_then_interrupts(tmp_path):
    """Before: torch's zip writer was left half-way and its clean-up raised "unexpected pos"
    (a traceback, exit 1, instead of the one line that says how to resume)."""
    with python_handles_ctrl_c():
        _ctrl_c_during_a_checkpoint_write(tmp_path)


@contextlib.contextmanager
def python_handles_ctrl_c():
    """SIGINT as Python sets it up in a terminal (KeyboardInterrupt): a test process started
    in the background by a shell inherits SIGINT ignored."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def _ctrl_c_during_a_checkpoint_write(tmp_path):
    state = {"config": json.dumps({"model": "lenet5"}), "model": {"w": torch.ones(1000)},
             "optimizer": {}, "epoch": 1, "batch": 0, "step": 5, "rng": {},
             "history": [CtrlCWhenPickled()], "more": {"w": torch.arange(1000.0)}}
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "c.pt", state)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    # complete, written after the Ctrl-C (weights_only=False: the test object pickles as int)
    back = torch.load(tmp_path / "c.pt", weights_only=False)
    assert back["history"] == [5] and torch.equal(back["more"]["w"], torch.arange(1000.0))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left


def test_an_error_during_a_write_is_raised_as_it_is_and_leaves_nothing(tmp_path):
    from cnnlab.weights import atomic_write

    with python_handles_ctrl_c():
        with pytest.raises(ValueError, match="disk says no"):
            with atomic_write(tmp_path / "f.bin") as f:
                f.write(b"half")
                raise ValueError("disk says no")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert list(tmp_path.iterdir()) == []


def test_corrupt_foreign_and_missing_checkpoints_are_refused(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"garbage" * 10)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"state_dict": {"w": torch.ones(1)}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a cnnlab checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    buf = io.BytesIO()
    torch.save({"format": "cnnlab-checkpoint", "version": 1, "model": {}}, buf)
    (tmp_path / "short.pt").write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError, match="incomplete: missing config"):
        load_checkpoint(tmp_path / "short.pt")
    # an arbitrary object (here a module-level class): refused by weights_only, never built
    torch.save({"format": "cnnlab-checkpoint", "obj": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="nothing to resume"):
        load_checkpoint(tmp_path / "nothing")


def test_resume_of_another_model_is_refused(tmp_path):
    train(TrainConfig(model="lenet5", data=SYN, epochs=1, runs_dir=str(tmp_path), name="r",
                      plots=False, threads=1), log=lambda *a: None)
    with pytest.raises(CheckpointError, match="checkpoint of lenet5, not"):
        train(TrainConfig(model="other", runs_dir=str(tmp_path), name="r"), resume=True)


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(cli, tmp_path):
    runs = ["--runs-dir", str(tmp_path)]
    # The killed run: slowed to ~20 ms a step so the test can catch it mid-epoch.
    proc = start_cli("train", *ARGS, *runs, "--name", "killed",
                     env={"CNNLAB_DEBUG_STEP_DELAY": "0.02"})
    ckpt = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.time() + 120
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists():
            state = torch.load(ckpt, weights_only=True)
            if state["epoch"] >= 1 and state["batch"] > 0:  # inside the second epoch
                os.kill(proc.pid, signal.SIGKILL)
                killed_at = (state["epoch"], state["batch"])
                break
        time.sleep(0.01)
    proc.wait(timeout=30)
    assert killed_at is not None, f"the run ended before it could be killed: {proc.stderr.read()}"
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "results.json").exists()

    resumed = start_cli("train", "--resume", "--name", "killed", *ARGS, *runs)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "resuming" in out

    # the uninterrupted run, in this process (the resumed one above was a fresh process)
    full = cli("train", *ARGS, *runs, "--name", "full")
    assert full.returncode == 0, full.stderr

    a = json.loads((tmp_path / "killed" / "results.json").read_text())
    b = json.loads((tmp_path / "full" / "results.json").read_text())
    assert a["weights_sha256"] == b["weights_sha256"]
    for key in ("test_loss", "test_top1", "test_top5", "val_top1", "train_top1"):
        assert a[key] == b[key], key
    ma = [json.loads(x) for x in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    mb = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in ma] == [1, 2, 3]
    for x, y in zip(ma, mb, strict=True):
        for key in ("train_loss", "val_loss", "lr"):
            assert x[key] == y[key], key


# moved from tests/test_hardening2.py (issue 22)
# ------------------------------------------------------------- a run stopped early


def test_resume_of_a_run_stopped_before_its_first_checkpoint_starts_it_again(capsys, tmp_path):
    """The folder such a run leaves (config.json, empty metrics, no checkpoint) was a dead end:
    --resume said "nothing to resume" and the name stayed taken."""
    import json

    from cnnlab.training.config import TrainConfig
    from cnnlab.training.trainer import Trainer

    runs = tmp_path / "runs"
    cfg = TrainConfig(model="lenet5", data="synthetic:classes=2,size=1x8x8,train=32,val=8,test=8",
                      epochs=1, runs_dir=str(runs), name="k", plots=False, batch_size=8,
                      threads=1, lr=0.01)
    trainer = Trainer(cfg, log=lambda *a: None, progress=False)
    with trainer.open():
        trainer.run.write_config(trainer.config)  # what fit() writes first; then killed
    assert sorted(p.name for p in (runs / "k").iterdir() if not p.name.startswith(".")) == [
        "config.json"]
    argv = ["train", "lenet5", "--runs-dir", runs, "--name", "k"]
    res = run_main(capsys, *argv, "--data", cfg.data)
    one_line_error(res, "already exists", "--resume starts it again from the beginning")
    res = run_main(capsys, *argv, "--resume", "--epochs", "2")
    assert res.returncode == 0, res.stderr
    assert "stopped before its first checkpoint: starting it again" in res.stdout
    assert (runs / "k" / "checkpoint.pt").is_file()
    config = json.loads((runs / "k" / "config.json").read_text())
    assert config["train"]["epochs"] == 2 and config["train"]["lr"] == 0.01  # saved settings
    assert config["train"]["batch_size"] == 8 and "resumed" not in config
