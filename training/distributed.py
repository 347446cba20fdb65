"""Data-parallel training across processes: torch.distributed set up from torchrun's environment.

`torchrun --nproc_per_node N -m training morpher ...` (or `thagen train --nproc N ...`, which runs
torchrun itself) starts N processes with RANK, WORLD_SIZE and LOCAL_RANK set. Each joins one
process group — NCCL when CUDA is there, gloo on the CPU — trains a DistributedDataParallel copy
of the network on its own part of the data stream (`training.data.ShardStream` splits it by
rank), and the gradients are averaged after every backward pass: N ranks at batch B take the steps
one process takes at batch N·B. Rank 0 alone writes the run folder (log, samples, checkpoints).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Distributed:
    """This process's place in the job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """The rank that writes files and logs."""
        return self.rank == 0

    def device(self, name: str) -> torch.device:
        """The device for `name` (auto, cpu, cuda, cuda:N): one GPU per local rank."""
        if name == "auto":
            name = "cuda" if torch.cuda.is_available() else "cpu"
        device = torch.device(name)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", self.local_rank if self.active else 0)
        elif device.type == "cuda" and self.active:
            raise ValueError(
                f"--device {name}: with several processes each takes the GPU of its local rank; "
                "pass --device cuda (or auto)"
            )
        return device

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a scalar tensor over the ranks (the tensor itself when alone)."""
        if not self.active:
            return value
        value = value.detach().clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value / self.world_size

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def from_environment() -> Distributed:
    """Join the process group torchrun describes in the environment (once per process); alone
    when WORLD_SIZE is unset or 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend)
    return Distributed(rank, world, local, backend)


def shutdown() -> None:
    """Leave the process group (at the end of a run)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def launch(nproc: int, argv: list[str]) -> int:
    """Run `python -m training ARGV` in `nproc` processes on this machine through torchrun;
    returns the exit code (the first failing rank's, after every rank has stopped)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    args = get_args_parser().parse_args(
        ["--standalone", "--nproc-per-node", str(nproc), "-m", "training", *argv]
    )
    try:
        run(args)
    except ChildFailedError as error:
        codes = [f.exitcode for f in error.failures.values()]
        return next((c for c in codes if c > 0), 1)
    return 0
