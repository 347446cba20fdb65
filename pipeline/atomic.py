"""Files that appear complete or not at all: written under a temporary name, then renamed.

A temporary name holds the writer's pid and a random token, so two writers (two processes, or a
killed run's leftover and its resume) never write one temporary file, and a leftover can never
rename another writer's half-written file into place. The run holding the folder's lock sweeps
what killed writers left (`pipeline.state.sweep_temporaries`).
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

# NAME.PID-TOKEN.tmp, and NAME.PID.tmp and NAME.tmp of earlier versions.
TEMPORARY = re.compile(r"^(?P<name>.+?)(?:\.\d+(?:-[0-9a-f]+)?)?\.tmp$")


def temporary_name(path: Path) -> Path:
    """A temporary name beside `path` that no other writer uses."""
    return path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def target_of(name: str) -> str | None:
    """The file a temporary file named `name` was going to become, or None."""
    match = TEMPORARY.match(name)
    return match["name"] if match else None


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a unique temporary name (removed if anything fails)."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
