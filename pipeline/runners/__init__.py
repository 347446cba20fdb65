"""Backends that run the pipeline's tasks, behind one interface (`Runner`), by name.

`local` (the default) runs worker processes on this machine; `dask` submits to a Dask
distributed cluster. A SLURM array runs the local backend on slices of the shards
(`--shard-index I --num-shards N`, then `thagen merge`).
"""

from __future__ import annotations

from typing import Any

from pipeline.runners.base import Runner, WorkerDied
from pipeline.runners.local import LocalRunner

RUNNERS = ("local", "dask")


def make_runner(
    name: str = "local",
    *,
    workers: int = 0,
    scheduler: Any = None,
    devices: list[int] | None = None,
) -> Runner:
    """The backend `name` (`local`: `workers` processes, on the EGL `devices` round robin;
    `dask`: the cluster at `scheduler`)."""
    if name == "local":
        return LocalRunner(workers, devices)
    if devices:
        raise ValueError(
            "--gpus binds local workers; on a Dask cluster start each worker with "
            "THAGEN_EGL_DEVICE=N in its environment instead"
        )
    if name == "dask":
        from pipeline.runners.dask import DaskRunner

        return DaskRunner(scheduler)
    raise ValueError(f"unknown runner {name!r}; runners are {', '.join(RUNNERS)}")


__all__ = ["RUNNERS", "LocalRunner", "Runner", "WorkerDied", "make_runner"]
