"""OS locks (`flock`) on the folders thagen writes, and the lock records that name their holders.

The kernel releases a `flock` when its holder exits, however it exits (SIGKILL included), so a
lock is never stale; a lock file only says who holds it (pid, host, start time, command, a random
token), for the one-line refusal another process gets. Lock files are opened without following
links (`media.owned`).

- A dataset folder's writers (`pipeline.lock`: generate, merge, slices) hold `.state/lock`.
- Its readers (`thagen train`, `evaluate`) hold `.state/readers.lock` shared for as long as they
  read (`reading_dataset`). Each side then probes the other's lock: a writer refuses while any
  reader holds the readers' lock, a reader refuses while any writer holds the writers' lock. Both
  take their own lock before probing, so of a writer and a reader starting together at least
  one refuses: training never reads a dataset that is being written or rewritten.
- A training run folder has one writer (`RunLock`: `RUN/.lock`, exclusive).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path

from media.files import FileRefusedError
from media.owned import open_owned, read_owned, subfolder

STATE_DIR = ".state"  # a dataset folder's run state (pipeline.state)
LOCK_NAME = "lock"  # held by the dataset's writers: exclusive (a whole run) or shared (slices)
READERS_NAME = "readers.lock"  # held shared by the dataset's readers
RUN_LOCK_NAME = ".lock"  # a training run folder's one writer
POLL = 0.02
MAX_HOLDER_BYTES = 4096


class FolderLocked(ValueError):
    """The folder is being written (or read) by another process: a user error (exit 2)."""


def lock_file(path: str | Path) -> int:
    """A descriptor of the lock file `path` (made if missing; never through a link)."""
    return open_owned(path, os.O_RDWR | os.O_CREAT, "lock")


def try_flock(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def flock_within(fd: int, kind: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not try_flock(fd, kind):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)
    return True


def holder_record(command: str, token: str = "") -> dict:
    """What a lock file says about the process holding it."""
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
    }
    if token:
        record["token"] = token
    return record


def write_holder(fd: int, record: dict) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record, sort_keys=True).encode("utf-8"), 0)


def read_holder(path: str | Path) -> dict:
    """What a lock file says about its holder ({} when empty, unreadable or not a file)."""
    try:
        data = json.loads(read_owned(path, MAX_HOLDER_BYTES, "lock").decode("utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError, RecursionError):
        return {}


def describe_holder(holder: dict) -> str:
    if not holder:
        return "a process that left no details"
    parts = [f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"]
    if holder.get("command"):
        parts.append(f"`thagen {holder['command']}`")
    if holder.get("started"):
        parts.append(f"since {holder['started']}")
    return ", ".join(str(p)[:200] for p in parts)


def readers_busy(state: Path) -> bool:
    """Whether a reader (`thagen train`, `evaluate`) holds the dataset whose run state is the
    folder `state` (called by a writer after it has taken its own lock)."""
    path = state / READERS_NAME
    if not path.exists():
        return False
    fd = lock_file(path)
    try:
        return not try_flock(fd, fcntl.LOCK_EX)
    finally:
        os.close(fd)  # the probe is released at once


def _writers_probe(state: Path) -> str | None:
    """None when no writer holds the dataset; else who does, in words."""
    path = state / LOCK_NAME
    if not path.exists():
        return None
    fd = lock_file(path)
    try:
        if try_flock(fd, fcntl.LOCK_EX):
            return None
        exclusive = try_flock(fd, fcntl.LOCK_SH) is False
    finally:
        os.close(fd)
    if exclusive:
        return describe_holder(read_holder(path))
    slices = []
    for file in sorted(state.glob("slice-*-of-*.lock")):
        holder = read_holder(file)
        if holder:
            slices.append(f"{file.name.removesuffix('.lock')}: {describe_holder(holder)}")
    return "slices of a sliced run" + (f" ({'; '.join(slices)})" if slices else "")


@contextmanager
def reading_dataset(root: str | Path, command: str = "train") -> Iterator[None]:
    """Hold the dataset folder `root` for reading (see the module doc): refused at once, in one
    line, while `generate`, `merge` or a slice writes it. A folder where no lock can be made
    (read-only) cannot be being written by thagen, and is read without one."""
    root = Path(root)
    try:
        state = subfolder(root, STATE_DIR)
        fd = lock_file(state / READERS_NAME)
    except FileRefusedError:
        raise
    except OSError:  # a read-only dataset folder
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # only writers' probes take it exclusively, briefly
        busy = _writers_probe(state)
        if busy is not None:
            raise FolderLocked(
                f"{root}: this dataset is being written ({busy}); `thagen {command}` reads only "
                "a complete dataset: wait for the run to finish (or for `thagen merge`)"
            )
        yield
    finally:
        os.close(fd)


class RunLock:
    """The one writer of a training run folder: `RUN/.lock`, held exclusively while training
    writes its log, samples and checkpoints; a second `thagen train` into the folder (a
    `--resume` beside a run that is still going) is refused in one line naming the holder."""

    def __init__(self, folder: str | Path, command: str = "train") -> None:
        self.folder, self.command = Path(folder), command
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / RUN_LOCK_NAME
        fd = lock_file(path)
        if not try_flock(fd, fcntl.LOCK_EX):
            os.close(fd)
            raise FolderLocked(
                f"{self.folder}: another `thagen train` is writing this run folder "
                f"({describe_holder(read_holder(path))}); wait for it or stop it"
            )
        write_holder(fd, holder_record(self.command))
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            with suppress(OSError):
                os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
