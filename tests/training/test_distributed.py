"""Two processes with torchrun (gloo on the CPU): training works, the replicas stay identical,
only rank 0 writes."""

import json
import os
import subprocess
import sys

from tests.helpers import REPO, free_port


def test_torchrun_two_processes_gloo(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
           "-m", "cnnlab", "train", "lenet5", "--model-arg", "activation=relu",
           "--data", "synthetic:classes=4,size=1x32x32,train=128,val=32,test=64",
           "--epochs", "3", "--batch-size", "16", "--lr", "0.01", "--runs-dir", str(tmp_path),
           "--name", "ddp", "--threads", "1"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("epoch   3/3") == 1  # only rank 0 prints
    results = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert results["world_size"] == 2
    digests = results["weights_sha256"]
    assert len(digests) == 2 and digests[0] == digests[1]  # replicas identical
    assert results["test_images"] == 64  # every test image counted once across the ranks
    rows = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert results["test_top1"] > 50  # 4 classes: chance is 25 %
    # only rank 0 wrote: one run folder, no stray temporary files (the lock file stays; its
    # owner file goes when the run ends)
    assert [p.name for p in tmp_path.iterdir()] == ["ddp"]
    assert [p.name for p in (tmp_path / "ddp").iterdir() if p.name.startswith(".")] == [".lock"]


def test_under_torchrun_a_user_error_is_printed_once(tmp_path):
    (tmp_path / "afile").write_text("x")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
           "-m", "cnnlab", "train", "lenet5", "--runs-dir", str(tmp_path / "afile")]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode != 0
    lines = [x for x in res.stderr.splitlines() if "cnnlab train: error:" in x]
    assert len(lines) == 1, res.stderr[-3000:]
    assert "is a file, not a folder" in lines[0]


def test_an_error_only_another_rank_met_is_printed_after_its_wait(capsys):
    """Ranks other than 0 wait for torchrun to end them (rank 0 prints the shared error); an
    error that rank 0 did not meet still reaches the user, naming the rank."""
    from cnnlab.commands.train import _leave_the_error_to_rank_0

    assert _leave_the_error_to_rank_0(ValueError("no GPU 3 on this host"), 3, wait=0.0) == 2
    assert capsys.readouterr().err == "cnnlab train: error on rank 3: no GPU 3 on this host\n"
