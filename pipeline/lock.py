"""One writer per dataset folder: OS locks under `.state/`, and the shard writers under them.

A run holds `flock` locks for as long as it runs. The kernel releases them when their holder
exits, however it exits (SIGKILL included), so a lock is never stale; the files only say who
holds them (pid, host, start time, command and a random run token), for the one-line refusal
another writer gets.

- A whole run (`generate` without slices, `merge`, resume) holds `.state/lock` exclusively:
  nothing else may write the folder meanwhile.
- A slice run (`generate --shard-index I --num-shards N`, e.g. a SLURM array writing into one
  shared folder) holds `.state/lock` shared, so slices run side by side while no whole run can
  start, and `.state/slice-I-of-N.lock` exclusively, so one slice never runs twice at once.

Shard tasks (in worker processes, here or on a cluster) hold a shared lock on their run's
writers file (`.state/writers.lock`, or `writers-I-of-N.lock` for a slice) while they write, and
write only while their run's lock file still holds its token. A new run first takes its locks
and empties the token files of runs that can no longer be alive (a whole run: every slice's; a
slice: the whole run's), then waits until no earlier writer of the shards it will write holds
a writers lock (workers of a killed run die with it within a fraction of a second; after
`WRITERS_WAIT` seconds the run refuses with one line). A leftover writer that gets its shared
lock later finds its token gone and stops without writing, so an earlier run's leftover never
writes into a folder another run has taken over.

Training reads a dataset only while no run writes it (`media.locks.reading_dataset`): a run
refuses to start while a reader holds `.state/readers.lock`. Lock files are never opened
through a link (`media.owned`): a link planted at `.state/lock` is refused in one line.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from media.locks import (
    LOCK_NAME,
    READERS_NAME,
    FolderLocked,
    describe_holder,
    flock_within,
    holder_record,
    lock_file,
    read_holder,
    readers_busy,
    try_flock,
    write_holder,
)
from media.owned import open_owned, subfolder
from pipeline.state import STATE_DIR, state_dir

WRITERS_NAME = "writers.lock"
WRITERS_WAIT = 60.0  # seconds a new run waits for an earlier run's workers to exit


class DatasetLocked(FolderLocked):
    """The dataset folder is being written by another run, or read by training (a user error:
    exit 2)."""


class StaleRun(RuntimeError):
    """A shard task whose run no longer holds the dataset folder; it wrote nothing."""


@dataclass(frozen=True)
class RunContext:
    """What a shard task needs to know about the run that submitted it: the run's token and
    the files it is checked in, and the per-model time limit (seconds; None for none)."""

    token: str | None = None
    model_timeout: float | None = None
    lock_name: str = LOCK_NAME
    writers_name: str = WRITERS_NAME


def lock_path(out: str | Path) -> Path:
    return state_dir(out) / LOCK_NAME


def writers_path(out: str | Path) -> Path:
    return state_dir(out) / WRITERS_NAME


def slice_names(part: tuple[int, int]) -> tuple[str, str]:
    """The lock and writers file names of slice `part` = (index, count)."""
    index, count = part
    return f"slice-{index}-of-{count}.lock", f"writers-{index}-of-{count}.lock"


def _open(path: Path) -> int:
    """A lock file under the folder's `.state/` (a real folder), never opened through a link."""
    subfolder(path.parent.parent, STATE_DIR)
    return lock_file(path)


def _empty(path: Path) -> None:
    """Forget the token in a lock file whose holder cannot be alive (a link there is refused,
    never followed)."""
    try:
        fd = open_owned(path, os.O_WRONLY, "lock")
    except FileNotFoundError:
        return
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)


class DatasetLock:
    """The locks of one run on one dataset folder (see the module doc); `part` = (index,
    count) for a slice run. `acquire` refuses at once with `DatasetLocked` when another run is
    in the way, and waits up to `writers_wait` seconds for shard writers of an earlier run."""

    def __init__(
        self,
        out: str | Path,
        command: str,
        part: tuple[int, int] | None = None,
        writers_wait: float = WRITERS_WAIT,
    ) -> None:
        self.out, self.command, self.part = Path(out), command, part
        self.writers_wait = writers_wait
        self.token = secrets.token_hex(8)
        names = slice_names(part) if part is not None else (LOCK_NAME, WRITERS_NAME)
        self.lock_name, self.writers_name = names
        self.fds: list[int] = []
        self.holder_fd: int | None = None

    @property
    def state(self) -> Path:
        return state_dir(self.out)

    def context(self, model_timeout: float | None = None) -> RunContext:
        """What this run's shard tasks carry."""
        return RunContext(self.token, model_timeout, self.lock_name, self.writers_name)

    def acquire(self) -> DatasetLock:
        try:
            main = self._take(lock_path(self.out), shared=self.part is not None)
            if readers_busy(self.state):
                raise DatasetLocked(
                    f"{self.out}: this dataset is being read by `thagen train` or `evaluate` "
                    f"(see `fuser {self.state / READERS_NAME}`); wait for them to finish, or "
                    "write to another folder"
                )
            if self.part is None:
                self.holder_fd = main
                for stale in sorted(self.state.glob("slice-*-of-*.lock")):
                    _empty(stale)  # no slice can be running: their leftovers must not write
                writers = [WRITERS_NAME, *(p.name for p in self.state.glob("writers-*.lock"))]
            else:
                _empty(lock_path(self.out))  # no whole run can be running: the same
                self.holder_fd = self._take(self.state / self.lock_name, shared=False)
                writers = [WRITERS_NAME, self.writers_name]
            self._write_holder()
            for name in sorted(set(writers)):
                self._wait_for_writers(self.state / name)
        except BaseException:
            self.release()
            raise
        return self

    def _take(self, path: Path, shared: bool) -> int:
        fd = _open(path)
        if not try_flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX):
            os.close(fd)
            raise DatasetLocked(
                f"{self.out}: another thagen run is writing this dataset ({self._who(path)}); "
                "wait for it to finish or stop it"
            )
        self.fds.append(fd)
        return fd

    def _who(self, path: Path) -> str:
        """Who holds `path`: its exclusive holder, or the slices sharing the main lock."""
        if path == lock_path(self.out):
            probe = _open(path)
            try:
                held_shared = try_flock(probe, fcntl.LOCK_SH)
            finally:
                os.close(probe)
            if held_shared:  # only shared holders: slices of a sliced run
                slices = []
                for file in sorted(self.state.glob("slice-*-of-*.lock")):
                    holder = read_holder(file)
                    if holder:
                        name = file.name.removesuffix(".lock").replace("-of-", "/")
                        slices.append(f"{name}: {describe_holder(holder)}")
                return "slices of a sliced run: " + ("; ".join(slices) or "details unknown")
        return describe_holder(read_holder(path))

    def _write_holder(self) -> None:
        assert self.holder_fd is not None
        write_holder(self.holder_fd, holder_record(self.command, self.token))

    def _wait_for_writers(self, path: Path) -> None:
        fd = _open(path)
        try:
            if not flock_within(fd, fcntl.LOCK_EX, self.writers_wait):
                raise DatasetLocked(
                    f"{self.out}: shard writers of an earlier run are still writing after "
                    f"{self.writers_wait:g} s (see `fuser {path}`); stop them and run again"
                )
        finally:
            os.close(fd)  # releases the probe at once: this run's own writers take it shared

    def release(self) -> None:
        """Release the locks; this run's lock file is emptied (its holder is gone), never
        removed (a removed lock file would let two runs lock two different files)."""
        if self.holder_fd is not None:
            with suppress(OSError):
                os.ftruncate(self.holder_fd, 0)
        for fd in reversed(self.fds):
            os.close(fd)
        self.fds, self.holder_fd = [], None

    def __enter__(self) -> DatasetLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


_HELD: dict[tuple[Path, tuple[int, int] | None], tuple[DatasetLock, int]] = {}


@contextmanager
def holding(
    out: str | Path, command: str, part: tuple[int, int] | None = None
) -> Iterator[DatasetLock]:
    """The run's locks for the duration of the block; re-entrant within one process (the CLI
    takes them before scanning, `generate()` inside it finds them held)."""
    key = (Path(out).resolve(), part)
    if key in _HELD:
        lock, depth = _HELD[key]
        _HELD[key] = (lock, depth + 1)
        try:
            yield lock
        finally:
            lock, depth = _HELD[key]
            _HELD[key] = (lock, depth - 1)
        return
    with DatasetLock(out, command, part) as lock:
        _HELD[key] = (lock, 1)
        try:
            yield lock
        finally:
            del _HELD[key]


@contextmanager
def writing(out: str | Path, run: RunContext | None) -> Iterator[None]:
    """Around one shard task's writes: a shared lock on the run's writers file, and a check
    that the run which submitted the task still holds the folder (else `StaleRun`, nothing
    written)."""
    if run is None or run.token is None:
        yield
        return
    fd = _open(state_dir(out) / run.writers_name)
    try:
        if not flock_within(fd, fcntl.LOCK_SH, WRITERS_WAIT):
            raise StaleRun(f"{out}: could not join the writers of this run")
        if read_holder(state_dir(out) / run.lock_name).get("token") != run.token:
            raise StaleRun(f"{out}: another run has taken over this dataset folder")
        yield
    finally:
        os.close(fd)
