"""This process's place in a torchrun launch: rank 0 of 1 without one."""

from __future__ import annotations

import datetime
import gc
import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun launch (rank 0 of 1 without one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        """Leave the process group. Call it once nothing holds the group (DDP does): a group
        still alive at interpreter exit can abort the process from gloo's threads."""
        if self.world_size > 1 and torch.distributed.is_initialized():
            gc.collect()  # DDP's reducer sits in reference cycles
            torch.distributed.destroy_process_group()


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group torchrun describes in the environment: gloo on CPU, NCCL on GPU."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not torch.distributed.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(local_rank)
        # Rank 0 alone collects and evaluates while the others wait: allow it time.
        torch.distributed.init_process_group(
            "nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(hours=2)
        )
    return Distributed(torch.distributed.get_rank(), world_size, local_rank)
