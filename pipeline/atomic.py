"""Files that appear complete or not at all: written under a temporary name, then renamed.

A temporary name holds the writer's pid and a random token, so two writers (two processes, or a
killed run's leftover and its resume) never write one temporary file, and a leftover can never
rename another writer's half-written file into place. Temporaries are created with `O_EXCL |
O_NOFOLLOW` and targets that are links are refused (`media.owned`). The run holding the folder's
lock sweeps what killed writers left (`pipeline.state.sweep_temporaries`).
"""

from __future__ import annotations

import re
from pathlib import Path

from media.owned import temporary_name, write_atomic

__all__ = ["TEMPORARY", "target_of", "temporary_name", "write_bytes_atomic"]

# NAME.PID-TOKEN.tmp, and NAME.PID.tmp and NAME.tmp of earlier versions.
TEMPORARY = re.compile(r"^(?P<name>.+?)(?:\.\d+(?:-[0-9a-f]+)?)?\.tmp$")


def target_of(name: str) -> str | None:
    """The file a temporary file named `name` was going to become, or None."""
    match = TEMPORARY.match(name)
    return match["name"] if match else None


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a unique temporary name (removed if anything fails)."""
    write_atomic(path, data)
