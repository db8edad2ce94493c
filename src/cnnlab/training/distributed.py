"""Several processes: ``torchrun --nproc_per_node N -m cnnlab train ...``.

torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init_distributed` reads them and joins the process group (``nccl`` on CUDA, ``gloo`` on
the CPU). Without them the trainer runs as a single process (rank 0 of 1). Only rank 0
writes files and prints; metrics are summed over ranks with :func:`all_reduce_sum`.

Across machines (``torchrun --nnodes 2 --rdzv-backend c10d ...``) nothing changes here: the
launchers agree on the ranks; see docs/training.md. A NaN loss on any rank stops every rank
at the same step (:func:`nonfinite_losses`); a worker group that torchrun restarts continues
the run from its last checkpoint (:func:`elastic_restart_resumes`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str = "cpu") -> DistInfo:
    """Join the process group torchrun prepared; a plain process gets rank 0 of 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local)


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def nonfinite_losses(value: float, info: DistInfo, device=None) -> list[tuple[int, float]]:
    """``[(rank, loss)]`` of the ranks whose loss this step is not finite, the same list on every
    rank. Every rank calls it each step: one all-reduce of ``world_size`` numbers. Without it a
    rank that stopped on a NaN left the others waiting in backward's gradient all-reduce until
    torch's collective timeout (30 minutes by default)."""
    t = torch.zeros(info.world_size, dtype=torch.float64, device=device)
    t[info.rank] = value
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)  # a NaN or inf anywhere stays NaN / inf
    return [(r, v) for r, v in enumerate(t.tolist()) if not math.isfinite(v)]


def elastic_restart_resumes(runs_dir, name) -> bool:
    """True in a worker that torchrun restarted (``--max-restarts``; ``TORCHELASTIC_RESTART_COUNT``
    above 0) when the run it started, ``runs_dir/name``, has a checkpoint: the restarted
    command then continues that run as ``--resume`` would, instead of refusing the taken
    name. Before the first checkpoint there is nothing to continue and the restart fails
    (``--checkpoint-every STEPS`` writes checkpoints within the first epoch)."""
    from pathlib import Path

    if int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) < 1 or not name:
        return False
    return (Path(runs_dir) / name / "checkpoint.pt").is_file()


def broadcast_object(obj, info: DistInfo):
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj, info: DistInfo) -> list:
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
