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

PARENT_ENV = "THAGEN_RANK_PARENT"  # the pid a `--nproc` rank dies with


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
        device = resolve_device(name)
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


def resolve_device(name: str) -> torch.device:
    """The torch device `name` names (`auto`: CUDA when available, else the CPU), checked to
    exist here: a bad name or a GPU this machine lacks is one ValueError, not a traceback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"--device {name!r:.40}: not a device (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"--device {name}: no CUDA device here (torch {torch.__version__} sees none); "
                "use --device cpu or auto"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"--device {name}: this machine has {count} CUDA device(s)")
    elif device.type != "cpu":
        try:
            torch.empty(0, device=device)
        except Exception:  # each backend raises its own kind
            raise ValueError(f"--device {name}: not available here; use cpu or auto") from None
    return device


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
    returns the exit code (the first failing rank's, after every rank has stopped).

    The ranks die with this process (`PARENT_ENV`: each calls `media.lifetime.die_with_parent`),
    so a `kill -9` of the command leaves no rank training; SIGTERM and Ctrl-C stop every rank
    and end here as KeyboardInterrupt (exit 130, no traceback)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    args = get_args_parser().parse_args(
        ["--standalone", "--nproc-per-node", str(nproc), "-m", "training", *argv]
    )
    previous = os.environ.get(PARENT_ENV)
    os.environ[PARENT_ENV] = str(os.getpid())  # inherited by the ranks
    try:
        run(args)
    except SignalException:
        raise KeyboardInterrupt from None
    except ChildFailedError as error:
        codes = [f.exitcode for f in error.failures.values()]
        if any(c in (130, -2, -15) for c in codes):
            raise KeyboardInterrupt from None
        return next((c for c in codes if c > 0), 1)
    finally:
        if previous is None:
            os.environ.pop(PARENT_ENV, None)
        else:
            os.environ[PARENT_ENV] = previous
    return 0
