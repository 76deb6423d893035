"""Process-group setup for torchrun, and the few collectives the loop needs.

Launched by ``torchrun``, each process finds RANK/WORLD_SIZE/LOCAL_RANK in its
environment; launched alone, it is rank 0 of 1 and every collective is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Cluster:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_cluster() -> Cluster:
    """The rank layout torchrun set in the environment (rank 0 of 1 without it)."""
    return Cluster(
        rank=int(os.environ.get("RANK", 0)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
    )


def init_process_group(cluster: Cluster, device: torch.device) -> None:
    """NCCL between CUDA devices, gloo otherwise (CPU tests, Apple machines)."""
    if cluster.distributed and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def destroy_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over ranks in place (returns the tensor for chaining)."""
    if dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_flags(flags: list[bool], device: torch.device) -> list[bool]:
    """Rank 0's decisions (stop on Ctrl-C, time budget spent), seen by every rank."""
    if not dist.is_initialized():
        return flags
    values = torch.tensor([1 if f else 0 for f in flags], device=device)
    dist.broadcast(values, src=0)
    return [bool(v) for v in values.tolist()]
