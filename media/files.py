"""Reading only regular files, within a size limit, without ever blocking on what is not one.

A FIFO opened for reading blocks until a writer appears; a character device can stream forever;
a directory or socket cannot be read at all. Every file thagen reads on a user's say-so (models,
zips, textures, overrides and sidecars, pose sequences; pose images, videos, shards) goes
through one of these three calls:

- `require_regular_file(path, what, limit=None, error=FileRefusedError) -> os.stat_result`:
  `os.stat` only, nothing is opened. Refuses a missing path, a directory, a FIFO, a socket, a
  character or block device, and (with `limit`) a file larger than `limit` bytes. Symlinks are
  followed: which symlinks may be followed is the walker's rule (`mmd_loader.walk`), not this.
- `open_regular(path, what, limit=None, error=FileRefusedError) -> BinaryIO`: the same checks,
  then the file is opened with `O_NONBLOCK` (so a FIFO swapped in after the check cannot block
  the open) and checked again with `fstat` on the descriptor actually opened. For streaming
  readers (tar shards, CSV sequences); the caller enforces `limit` while reading, or uses:
- `read_regular(path, what, limit, error=FileRefusedError) -> bytes`: `open_regular`, then at
  most `limit` bytes are read; a file that grows past `limit` while being read is refused too.

`what` names the file's role in messages ("model", "overrides file", "image"). Every refusal
is one exception built as `error(path, reason)`: pass the caller's own error type
(`ModelLoadError`, `ImageReadError`, ...) so callers need no translation; the default
`FileRefusedError` is a `ValueError` that thagen's CLI prints as one line (exit 2). Reasons read
like "is a FIFO (named pipe), not a regular file", "file is 600000000 bytes, more than the
limit 536870912 for a model", "cannot read: Permission denied".
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

ErrorFactory = Callable[[Path, str], Exception]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_CHUNK = 1 << 20


class FileRefusedError(ValueError):
    """A path that is not a readable regular file within its limit. Names the file and why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def brief(error: object, limit: int = 200) -> str:
    """An error's text as one line of at most `limit` characters (libraries' messages may span
    lines: pyarrow's, safetensors')."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def kind_of(mode: int) -> str:
    """What a file of this `st_mode` is, in words ("a FIFO (named pipe)"), or "a regular file"."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else f"a special file (mode {mode:o})"


def not_regular(mode: int, what: str) -> str:
    """ "is a FIFO (named pipe), not a regular model file": why a file of `mode` is refused
    (`what` may end in "file" itself: "overrides file")."""
    noun = what if what.endswith("file") else f"{what} file"
    return f"is {kind_of(mode)}, not a regular {noun}"


def _check(
    path: Path, info: os.stat_result, what: str, limit: int | None, error: ErrorFactory
) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise error(path, not_regular(info.st_mode, what))
    if limit is not None and info.st_size > limit:
        raise error(path, f"file is {info.st_size} bytes, more than the limit {limit} for {what}")


def _os_reason(e: OSError) -> str:
    if isinstance(e, FileNotFoundError):
        return "cannot read: no such file"
    return f"cannot read: {e.strerror or e}"


def require_regular_file(
    path: str | Path,
    what: str = "input",
    limit: int | None = None,
    error: ErrorFactory = FileRefusedError,
) -> os.stat_result:
    """Check with `os.stat` (nothing is opened) that `path` is a regular file of at most `limit`
    bytes; raise `error(path, reason)` otherwise. Returns the stat result."""
    path = Path(path)
    try:
        info = os.stat(path)
    except (OSError, ValueError) as e:  # ValueError: an embedded NUL in the path
        reason = _os_reason(e) if isinstance(e, OSError) else f"invalid path ({e})"
        raise error(path, reason) from None
    _check(path, info, what, limit, error)
    return info


def open_regular(
    path: str | Path,
    what: str = "input",
    limit: int | None = None,
    error: ErrorFactory = FileRefusedError,
) -> BinaryIO:
    """`require_regular_file`, then open for binary reading without blocking, and check the
    opened descriptor again (a file swapped for a FIFO between the two is refused)."""
    path = Path(path)
    require_regular_file(path, what, limit, error)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as e:
        raise error(path, _os_reason(e)) from None
    try:
        _check(path, os.fstat(fd), what, limit, error)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # a regular file: reads behave as usual
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(
    path: str | Path, what: str, limit: int, error: ErrorFactory = FileRefusedError
) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them (see the module docstring)."""
    path = Path(path)
    with open_regular(path, what, limit, error) as f:
        parts, total = [], 0
        want = min(os.fstat(f.fileno()).st_size, limit) + 1  # never allocate `limit` up front
        try:
            while total <= limit and (chunk := f.read(want)):
                parts.append(chunk)
                total += len(chunk)
                want = min(_CHUNK, limit + 1 - total) or 1
        except OSError as e:
            raise error(path, _os_reason(e)) from None
    data = b"".join(parts) if len(parts) != 1 else parts[0]
    if len(data) > limit:
        raise error(path, f"file grew past the limit {limit} bytes for {what} while being read")
    return data
