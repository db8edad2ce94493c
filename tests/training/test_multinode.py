"""Training across machines, on one machine: two torchrun launchers (``--nnodes 2``, c10d
rendezvous on localhost) stand for two hosts. They train to the same replicas as one launcher
with two processes; a killed worker is restarted (``--max-restarts 1``) and the run continues
from its last checkpoint; a NaN on one rank stops every rank at once with one message."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, free_port

TRAIN = ["train", "lenet5", "--model-arg", "activation=relu", "--batch-size", "16",
         "--lr", "0.01", "--threads", "1"]
SMALL = "synthetic:classes=4,size=1x32x32,train=128,val=32,test=64"


def env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")


def node_cmd(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
            "--nproc-per-node", "1", "--rdzv-backend", "c10d",
            "--rdzv-endpoint", f"localhost:{port}", "--rdzv-id", "cnnlab-test", *extra,
            "-m", "cnnlab"]


def two_nodes(port: int, args: list[str], extra=(), **more_env) -> list[subprocess.Popen]:
    return [subprocess.Popen(node_cmd(port, *extra) + args, env=dict(env(), **more_env),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]


def results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


@pytest.mark.slow
def test_two_launchers_train_the_same_replicas_as_one_node(tmp_path):
    args = TRAIN + ["--data", SMALL, "--epochs", "3", "--runs-dir", str(tmp_path)]
    single = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "-m", "cnnlab",
         *args, "--name", "one-node"], env=env(), capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    nodes = two_nodes(free_port(), args + ["--name", "two-nodes"])
    outs = [p.communicate(timeout=300) for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    one, two = results(tmp_path / "one-node"), results(tmp_path / "two-nodes")
    assert two["world_size"] == 2
    assert two["weights_sha256"][0] == two["weights_sha256"][1]
    assert two["weights_sha256"] == one["weights_sha256"]  # bit for bit the single-node run
    assert sum("epoch   3/3" in out for out, _ in outs) == 1  # one rank printed


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


@pytest.mark.slow
def test_a_killed_worker_is_restarted_and_resumes_from_the_checkpoint(tmp_path):
    run = tmp_path / "elastic"
    data = "synthetic:classes=4,size=1x32x32,train=1024,val=32,test=64"
    args = TRAIN + ["--data", data, "--epochs", "6", "--runs-dir", str(tmp_path), "--no-plots"]
    # the same run, not interrupted: the resumed one must end with the same weights
    plain = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "-m", "cnnlab",
         *args, "--name", "plain"], env=env(), capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0, plain.stderr[-3000:]
    # a new rendezvous store each round: with the shared one (torch's default) the restarted
    # workers read the dead workers' addresses and fail (docs/training.md)
    nodes = two_nodes(free_port(), args + ["--name", "elastic"], extra=("--max-restarts", "1"),
                      TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1")
    try:
        deadline = time.time() + 240
        while not (run / "checkpoint.pt").is_file() or not (run / "metrics.jsonl").is_file():
            assert time.time() < deadline, "no checkpoint after 240 s"
            assert all(p.poll() is None for p in nodes), "a launcher ended before the kill"
            time.sleep(0.2)
        done = len((run / "metrics.jsonl").read_text().splitlines())
        assert done < 6, "training finished before the worker could be killed"
        workers = _children(nodes[1].pid)
        assert workers, "the second launcher has no worker process"
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        outs = [p.communicate(timeout=400) for p in nodes]
    finally:
        for p in nodes:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in nodes] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    res = results(run)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]
    config = json.loads((run / "config.json").read_text())
    assert config.get("resumed"), "the restarted workers did not resume the run"
    assert res["weights_sha256"] == results(tmp_path / "plain")["weights_sha256"]


NAN_ON_RANK_1 = """
import os, sys
import cnnlab.training.loop as loop
real, seen = loop.compute_loss, []
def compute_loss(out, y, label_smoothing=0.0):
    loss = real(out, y, label_smoothing)
    seen.append(1)
    if os.environ["RANK"] == "1" and len(seen) == 3:  # the third training step of rank 1
        loss = loss * float("nan")
    return loss
loop.compute_loss = compute_loss
from cnnlab.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_nan_on_one_rank_stops_every_rank_with_one_message(tmp_path):
    script = tmp_path / "nan_on_rank_1.py"
    script.write_text(NAN_ON_RANK_1)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(script),
           *TRAIN, "--data", SMALL, "--epochs", "2", "--runs-dir", str(tmp_path / "runs"),
           "--name", "nan", "--no-plots"]
    t = time.perf_counter()
    res = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=240)
    took = time.perf_counter() - t
    assert res.returncode != 0
    lines = [x for x in res.stderr.splitlines() if "cnnlab train: error" in x]
    assert len(lines) == 1, res.stderr[-3000:]
    assert "the loss became nan on rank 1 (nan) at epoch 1, step 2" in lines[0]
    assert "lower the learning rate" in lines[0]
    assert took < 120  # not torch's 30-minute collective timeout
