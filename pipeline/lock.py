"""One writer per dataset folder: an OS lock on `.state/lock`, and the shard writers under it.

`generate`, `merge` and resume hold an exclusive `flock` on `OUT/.state/lock` for as long as
they run. The kernel releases it when its holder exits, however it exits (SIGKILL included), so
a lock is never stale; the file itself only says who holds it (pid, host, start time, command
and a random run token) for the one-line refusal a second writer gets.

Shard tasks (in worker processes, here or on a cluster) hold a shared `flock` on
`OUT/.state/writers.lock` while they write, and write only while `.state/lock` still names the
run that submitted them (its token). A new run first takes `.state/lock`, writes its own token,
and then waits until no writer of an earlier run holds `writers.lock` (workers of a killed run
die with it within a fraction of a second; after `WRITERS_WAIT` seconds the run refuses with
one line). A writer that gets its shared lock later sees the new token and stops without
writing, so an earlier run's leftover can never write into a folder another run has taken over.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pipeline.state import state_dir

LOCK_NAME = "lock"
WRITERS_NAME = "writers.lock"
WRITERS_WAIT = 60.0  # seconds a new run waits for an earlier run's workers to exit
POLL = 0.02
MAX_HOLDER_BYTES = 4096


class DatasetLocked(ValueError):
    """The dataset folder is being written by another run (a user error: exit 2)."""


class StaleRun(RuntimeError):
    """A shard task whose run no longer holds the dataset folder; it wrote nothing."""


@dataclass(frozen=True)
class RunContext:
    """What a shard task needs to know about the run that submitted it: the run's lock token
    and the per-model time limit (seconds; None for none)."""

    token: str | None = None
    model_timeout: float | None = None


def lock_path(out: str | Path) -> Path:
    return state_dir(out) / LOCK_NAME


def writers_path(out: str | Path) -> Path:
    return state_dir(out) / WRITERS_NAME


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def read_holder(path: Path) -> dict:
    """What the lock file says about its holder ({} when empty or unreadable)."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read(MAX_HOLDER_BYTES).decode("utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def describe_holder(holder: dict) -> str:
    if not holder:
        return "a process that left no details"
    parts = [f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"]
    if holder.get("command"):
        parts.append(f"`thagen {holder['command']}`")
    if holder.get("started"):
        parts.append(f"since {holder['started']}")
    return ", ".join(str(p) for p in parts)


def _try_flock(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _flock_within(fd: int, kind: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not _try_flock(fd, kind):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)
    return True


class DatasetLock:
    """The exclusive lock of one dataset folder, held by this process (see the module doc).

    `acquire` refuses at once with `DatasetLocked` when another run holds it, and waits up to
    `writers_wait` seconds for shard writers of an earlier run to exit."""

    def __init__(self, out: str | Path, command: str, writers_wait: float = WRITERS_WAIT) -> None:
        self.out, self.command, self.writers_wait = Path(out), command, writers_wait
        self.token = secrets.token_hex(8)
        self.fd: int | None = None

    def acquire(self) -> DatasetLock:
        path = lock_path(self.out)
        fd = _open(path)
        if not _try_flock(fd, fcntl.LOCK_EX):
            os.close(fd)
            holder = describe_holder(read_holder(path))
            raise DatasetLocked(
                f"{self.out}: another thagen run is writing this dataset ({holder}); "
                "wait for it to finish or stop it"
            )
        self.fd = fd
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": self.command,
            "token": self.token,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder, sort_keys=True).encode("utf-8"), 0)
        try:
            self._wait_for_writers()
        except BaseException:
            self.release()
            raise
        return self

    def _wait_for_writers(self) -> None:
        fd = _open(writers_path(self.out))
        try:
            if not _flock_within(fd, fcntl.LOCK_EX, self.writers_wait):
                raise DatasetLocked(
                    f"{self.out}: shard writers of an earlier run are still writing after "
                    f"{self.writers_wait:g} s (see `fuser {writers_path(self.out)}`); stop "
                    "them and run again"
                )
        finally:
            os.close(fd)  # releases the probe at once: this run's own writers take it shared

    def release(self) -> None:
        """Release the lock; the file is emptied (its holder is gone), never removed (a removed
        lock file would let two runs lock two different files)."""
        if self.fd is None:
            return
        with suppress(OSError):
            os.ftruncate(self.fd, 0)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> DatasetLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


_HELD: dict[Path, tuple[DatasetLock, int]] = {}


@contextmanager
def holding(out: str | Path, command: str) -> Iterator[DatasetLock]:
    """The folder's lock for the duration of the block; re-entrant within one process (the CLI
    takes it before scanning, `generate()` inside it finds it held)."""
    key = Path(out).resolve()
    if key in _HELD:
        lock, depth = _HELD[key]
        _HELD[key] = (lock, depth + 1)
        try:
            yield lock
        finally:
            lock, depth = _HELD[key]
            _HELD[key] = (lock, depth - 1)
        return
    with DatasetLock(out, command) as lock:
        _HELD[key] = (lock, 1)
        try:
            yield lock
        finally:
            del _HELD[key]


@contextmanager
def writing(out: str | Path, run: RunContext | None) -> Iterator[None]:
    """Around one shard task's writes: a shared lock on `writers.lock`, and a check that the run
    which submitted the task still holds the folder (else `StaleRun`, nothing written)."""
    if run is None or run.token is None:
        yield
        return
    fd = _open(writers_path(out))
    try:
        if not _flock_within(fd, fcntl.LOCK_SH, WRITERS_WAIT):
            raise StaleRun(f"{out}: could not join the writers of this run")
        if read_holder(lock_path(out)).get("token") != run.token:
            raise StaleRun(f"{out}: another run has taken over this dataset folder")
        yield
    finally:
        os.close(fd)
