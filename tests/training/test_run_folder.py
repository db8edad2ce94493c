"""The run folder's lock (issue 13 item 1) and Ctrl-C (item 11): the run that is locked and
interrupted is a real process (``python -m cnnlab train``); the other calls go through the
entry point in this process."""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cnnlab.training.run import RunFolder, RunLockedError
from tests.helpers import REPO, start_cli

SYN = "synthetic:classes=3,size=1x32x32,train=64,val=0,test=12"
ARGS = ["lenet5", "--model-arg", "activation=relu", "--data", SYN, "--batch-size", "16",
        "--lr", "0.01", "--threads", "1", "--no-plots"]


def _start(*args, delay="0.05"):
    # PYTHONFAULTHANDLER: a SIGABRT makes the process print where every thread is (see
    # _communicate), should it ever hang
    return start_cli("train", *args, env={"CNNLAB_DEBUG_STEP_DELAY": delay,
                                          "PYTHONFAULTHANDLER": "1"})


def _communicate(proc, timeout=60) -> tuple[str, str]:
    """``proc.communicate``; a process still running after ``timeout`` seconds fails the test
    with the traceback of each of its threads (faulthandler, on SIGABRT)."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"the process did not end within {timeout} s; where it was:\n{err[-6000:]}"
                    f"\nits output ended with:\n{out[-1500:]}")


def _wait_for(path: Path, proc, timeout=120):
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_second_writer_is_refused_then_ctrl_c_says_how_to_resume(cli, tmp_path):
    runs = ["--runs-dir", str(tmp_path)]
    a = _start(*ARGS, *runs, "--name", "same", "--epochs", "200", "--checkpoint-every", "2",
               delay="0.3")
    try:
        _wait_for(tmp_path / "same" / "checkpoint.pt", a)
        owner = json.loads((tmp_path / "same" / ".lock.owner").read_text())
        assert owner["pid"] == a.pid
        # a second run with the same name, and a --resume of the running run: both refused
        for extra in ([], ["--resume"]):
            b = cli("train", *ARGS, *runs, "--name", "same", "--epochs", "3", "--seed", "2",
                    *extra)
            assert b.returncode == 2, b.stderr
            line = b.stderr.strip()
            assert "\n" not in line and "Traceback" not in line
            assert f"run {tmp_path / 'same'} is being written by another process (PID " \
                   f"{a.pid} on" in line
        assert json.loads((tmp_path / "same" / "config.json").read_text())["train"]["seed"] == 0
        # Ctrl-C: one line that gives the command to resume
        a.send_signal(signal.SIGINT)
        _, err = _communicate(a)
    finally:
        if a.poll() is None:
            a.kill()
    assert a.returncode == 130
    assert err.strip().count("\n") == 0, err
    m = re.fullmatch(r"cnnlab train: interrupted; resume with: (cnnlab train .*)", err.strip())
    assert m, err
    assert not (tmp_path / "same" / ".lock.owner").exists()  # released
    # the printed command works (with fewer epochs: --epochs may change on resume)
    done_epochs = torch.load(tmp_path / "same" / "checkpoint.pt", weights_only=True)["epoch"]
    cmd = shlex.split(m.group(1))[1:]
    done = cli(*cmd, "--epochs", str(done_epochs + 1))
    assert done.returncode == 0, done.stderr
    assert f"changed on resume: epochs 200 -> {done_epochs + 1}" in done.stdout
    config = json.loads((tmp_path / "same" / "config.json").read_text())
    assert config["resumed"][0]["changed"] == {"epochs": [200, done_epochs + 1]}


def test_a_lock_left_by_a_dead_process_does_not_block(tmp_path):
    # A process that held the lock and died (its owner file remains): the OS released the lock.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    run = tmp_path / "stale"
    run.mkdir()
    (run / ".lock").write_text("")
    (run / ".lock.owner").write_text(json.dumps({"pid": int(dead), "host": "h", "command": ""}))
    with RunFolder(run) as folder:
        assert json.loads((run / ".lock.owner").read_text())["pid"] == os.getpid()
        assert not folder.is_used()


def test_lock_held_by_another_process_names_its_pid(tmp_path):
    code = ("import sys, time; sys.path.insert(0, sys.argv[2]);"
            "from cnnlab.training.run import RunFolder;"
            "r = RunFolder(sys.argv[1]).lock(); print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "r"),
                               str(REPO / "src")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=f"PID {holder.pid} on"):
            RunFolder(tmp_path / "r").lock()
    finally:
        holder.kill()
        holder.wait()
    RunFolder(tmp_path / "r").lock().unlock()  # free once the holder is gone


def test_runs_dir_that_is_a_file_is_one_line(cli, tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    res = cli("train", "lenet5", "--runs-dir", str(f / "sub"), "--epochs", "1")
    assert res.returncode == 2
    assert res.stderr.strip() == (f"cnnlab train: error: --runs-dir {f / 'sub'}: {f} is a file, "
                                  "not a folder; give a folder for the runs")
