"""Tasks on a Dask distributed cluster (`tcp://HOST:PORT`, or a `distributed.Client`).

Every worker must see the dataset folder at the same path (a shared file system). Each Dask
worker's thread count is passed on as llvmpipe's raster threads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pipeline.runners.base import Runner, Task, WorkerDied


class DaskRunner(Runner):
    name = "dask"

    def __init__(self, scheduler: str | Any) -> None:
        from distributed import Client

        if scheduler is None:
            raise ValueError("the dask runner needs --scheduler tcp://HOST:PORT")
        self.client = scheduler if not isinstance(scheduler, str) else Client(scheduler)
        self._owns = isinstance(scheduler, str)
        info = self.client.scheduler_info()["workers"].values()
        self.workers = max(1, len(info))
        self.threads = max(1, min(w.get("nthreads", 1) for w in info) if info else 1)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Task:
        return self.client.submit(fn, *args, pure=False)

    def wait_any(self, tasks: Iterable[Task], timeout: float) -> set[Task]:
        from distributed import wait

        try:
            return set(wait(list(tasks), timeout=timeout, return_when="FIRST_COMPLETED").done)
        except TimeoutError:
            return set()

    def outcome(self, task: Task) -> Any:
        from distributed.comm import CommClosedError
        from distributed.scheduler import KilledWorker

        try:
            return task.result()
        except KilledWorker as error:
            return WorkerDied(f"Dask KilledWorker: {error}")
        except CommClosedError as error:
            return WorkerDied(f"lost the connection to a worker: {error}")
        except Exception as error:
            return error

    def run_alone(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.outcome(self.submit(fn, *args))

    def abort(self) -> None:
        self.client.cancel(list(self.client.futures.values()), force=True)

    def close(self) -> None:
        if self._owns:
            self.client.close()
