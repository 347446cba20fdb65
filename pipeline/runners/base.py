"""The interface every backend offers the pipeline: submit tasks, stream their outcomes, say
when a worker died, stop at once, shut down.

A task is a module-level function and picklable arguments. Its outcome is its return value or
the exception it raised; when the process running it died (a segfault in a GL driver, an
out-of-memory kill, a lost cluster node) the outcome is a `WorkerDied`, whatever the backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar

Task = Any  # a backend's handle for one submitted task (a future)


class WorkerDied(RuntimeError):
    """The process running a task died; `cause` says how when the backend knows."""

    def __init__(self, cause: str) -> None:
        super().__init__(f"worker process died ({cause})")
        self.cause = cause


class Runner(ABC):
    """A place to run tasks. `workers` is how many run at once; `threads` the llvmpipe raster
    threads each worker should use (0: rasterise in the worker's own thread)."""

    name: ClassVar[str]
    workers: int
    threads: int

    @abstractmethod
    def submit(self, fn: Callable[..., Any], *args: Any) -> Task:
        """Start `fn(*args)` on a worker."""

    @abstractmethod
    def wait_any(self, tasks: Iterable[Task], timeout: float) -> set[Task]:
        """The tasks among `tasks` that are finished, waiting up to `timeout` for the first."""

    @abstractmethod
    def outcome(self, task: Task) -> Any:
        """A finished task's result, or the exception it raised (`WorkerDied` if its process
        died); never raises."""

    @abstractmethod
    def run_alone(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one task where nothing else can kill it (a fresh process when the backend can);
        its outcome, as `outcome` gives it."""

    @abstractmethod
    def abort(self) -> None:
        """Stop now: running and queued tasks are dropped (their workers killed if need be)."""

    @abstractmethod
    def close(self) -> None:
        """Release the backend's resources after the work is done."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def map(self, fn: Callable[..., Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """(index, outcome) for `fn(item)` of every item, as they finish; Ctrl-C aborts."""
        pending = {self.submit(fn, item): i for i, item in enumerate(items)}
        try:
            while pending:
                for task in self.wait_any(pending, 0.5):
                    yield pending.pop(task), self.outcome(task)
        except BaseException:
            self.abort()
            raise
