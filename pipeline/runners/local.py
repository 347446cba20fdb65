"""Tasks in local worker processes (joblib's loky executor), one GL context each.

loky starts each worker as a fresh interpreter (nothing of the parent's GL or thread state is
inherited). Workers die with their parent: each asks the kernel to SIGKILL it when the parent
goes (Linux's PR_SET_PDEATHSIG) and also watches its parent pid, so no worker outlives a killed
`thagen` command. Ctrl-C and SIGTERM reach only the parent, which kills the workers itself.

With `devices` (EGL device indices, from `--gpus`), each worker binds one of them for its life:
worker i of the pool renders on devices[i % len(devices)]. A starting worker claims the device
with the fewest live workers (under a file lock in the runner's own folder, so a worker that
replaces a dead one takes its place) and sets `THAGEN_EGL_DEVICE`, which `render.context` reads.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from typing import Any

from media.lifetime import die_with_parent
from pipeline.runners.base import Runner, Task, WorkerDied


def claim_device(devices: tuple[int, ...], folder: str) -> int:
    """Bind this process to the device of `devices` that the fewest live processes hold (the
    first such in order), recorded as `folder/PID.DEVICE`; sets `THAGEN_EGL_DEVICE`."""
    import fcntl

    from render.devices import DEVICE_ENV

    with open(os.path.join(folder, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        held = dict.fromkeys(devices, 0)
        for entry in os.listdir(folder):
            pid, _, device = entry.partition(".")
            if not (pid.isdigit() and device.isdigit()):
                continue
            if _alive(int(pid)) and int(device) in held:
                held[int(device)] += 1
            else:
                os.unlink(os.path.join(folder, entry))
        device = min(devices, key=lambda d: held[d])
        open(os.path.join(folder, f"{os.getpid()}.{device}"), "w").close()
    os.environ[DEVICE_ENV] = str(device)
    return device


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def init_worker(parent: int, devices: tuple[int, ...], folder: str) -> None:
    """Worker initializer: die with `parent`; bind a device when there are some."""
    die_with_parent(parent)
    if devices:
        claim_device(devices, folder)


class LocalRunner(Runner):
    """Tasks in `workers` local processes (default: one per core), each on one EGL device of
    `devices` when given (round robin)."""

    name = "local"

    def __init__(self, workers: int = 0, devices: list[int] | None = None) -> None:
        self.workers = workers if workers > 0 else (os.cpu_count() or 1)
        self.devices = tuple(devices or ())
        if any(d < 0 for d in self.devices):
            raise ValueError(f"EGL device indices must be >= 0, not {list(self.devices)}")
        self._claims = tempfile.mkdtemp(prefix="thagen-devices-") if self.devices else ""
        self._executor: Any = None
        self._broken = False

    @property
    def threads(self) -> int:
        """llvmpipe raster threads per worker: none (0), each worker rasterises in its own
        thread on one core. That is the cheapest per image (bench model, CPU per image: 12.3 ms
        with 0 threads, 13.6 ms with 1, 15.1 ms with 2), so one worker per core (the default)
        uses a machine best and adding workers scales nearly linearly."""
        return 0

    def _pool(self, workers: int) -> Any:
        from joblib.externals.loky import ProcessPoolExecutor

        return ProcessPoolExecutor(
            max_workers=workers,
            initializer=init_worker,
            initargs=(os.getpid(), self.devices, self._claims),
        )

    def submit(self, fn: Callable[..., Any], *args: Any) -> Task:
        """Submit to this runner's own pool (not loky's process-wide reusable one, which
        joblib's `Parallel` also takes over); a pool broken by a dying worker is replaced."""
        if self._executor is None or self._broken:
            if self._executor is not None:
                self._executor.shutdown(wait=False, kill_workers=True)
            self._executor, self._broken = self._pool(self.workers), False
        return self._executor.submit(fn, *args)

    def wait_any(self, tasks: Iterable[Task], timeout: float) -> set[Task]:
        done, _ = cf.wait(list(tasks), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return done

    def outcome(self, task: Task) -> Any:
        outcome = _outcome(task)
        if isinstance(outcome, WorkerDied):
            self._broken = True
        return outcome

    def run_alone(self, fn: Callable[..., Any], *args: Any) -> Any:
        executor = self._pool(1)
        try:
            return _outcome(executor.submit(fn, *args))
        finally:
            executor.shutdown(wait=True)

    def abort(self) -> None:
        """Kill this runner's workers now, without waiting for queued tasks."""
        if self._executor is not None:
            _silence_manager_thread()
            self._executor.shutdown(wait=False, kill_workers=True)
            self._executor = None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._claims:
            shutil.rmtree(self._claims, ignore_errors=True)


def _outcome(task: Task) -> Any:
    try:
        return task.result()
    except cf.process.BrokenProcessPool as error:
        return WorkerDied(_cause(error))
    except Exception as error:
        return error


def _cause(error: BaseException) -> str:
    """A short cause, e.g. 'SIGSEGV(-11)' from loky's TerminatedWorkerError message."""
    text = str(error)
    start = text.find("{")
    end = text.find("}", start)
    if ("EXIT(" in text or "SIG" in text) and 0 <= start < end:
        return text[start + 1 : end]
    return type(error).__name__


def _silence_manager_thread() -> None:
    """After workers are killed mid-run, loky's manager thread can trip over work items that
    were dropped with them (a KeyError) and print a traceback; the run is over, so drop it."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.thread is None or args.thread.name != "ExecutorManagerThread":
            previous(args)

    threading.excepthook = hook
