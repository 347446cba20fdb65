"""Opening only regular files: a FIFO, device, socket or folder given where a file is expected
is refused at once, with the path named, instead of blocking forever or reading without end.

The file is opened with ``O_NONBLOCK`` and checked with ``fstat`` on the open descriptor (no
race between the check and the open), then switched back to blocking reads.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileTypeError(ValueError):
    """A path that is not a regular file where one is needed."""


def describe(mode: int) -> str:
    for test, name in KINDS:
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | Path, what: str = "file") -> io.BufferedReader:
    """``open(path, "rb")`` for a regular file only (FileTypeError otherwise; OSError as usual
    when it is missing or unreadable)."""
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except IsADirectoryError:
        raise FileTypeError(f"{path}: is a folder, not a {what}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FileTypeError(f"{path}: is {describe(mode)}, not a {what}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (FileTypeError beyond it)."""
    with open_regular(path, what) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise FileTypeError(f"{path}: {size} bytes is more than a {what} may have ({limit})")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise FileTypeError(f"{path}: more than {limit} bytes, more than a {what} may have")
    return data


def open_regular_text(path: str | Path, what: str = "file", encoding: str = "utf-8-sig"):
    """A text reader over ``open_regular`` (newlines left to the csv module)."""
    return io.TextIOWrapper(open_regular(path, what), encoding=encoding, newline="")


def require_regular(path: str | Path, what: str = "file") -> Path:
    """``path`` itself when it is a regular file (symlinks followed); FileTypeError/OSError
    otherwise. For APIs that open the file themselves (ffmpeg, tar readers)."""
    path = Path(path)
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise FileTypeError(f"{path}: is {describe(mode)}, not a {what}")
    return path
