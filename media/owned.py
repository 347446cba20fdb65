"""Files thagen writes inside the folders it owns (a dataset folder, a run folder), never
through a link.

A dataset or run folder may hold links planted by someone else: `.state/lock` pointing at a
user's file would make a writer truncate that file; `.state` or `checkpoints` pointing at another
folder would send every write there. So inside an owned folder:

- `subfolder(root, *names)`: the folders thagen makes (`.state`, `checkpoints/step_N`,
  `samples`) must be real folders, never links (the root itself, which the user names, may be
  one: naming it is the user's choice, as in `mmd_loader.walk`).
- Files are opened with `O_NOFOLLOW` (a link is refused, `ELOOP`) and checked with `fstat` on
  the descriptor actually opened (a FIFO, device or folder is refused); nothing ever blocks on a
  FIFO (`O_NONBLOCK`).
- `write_atomic` writes a temporary file created with `O_EXCL | O_NOFOLLOW` (a link or file
  already at that name is never written through) and renames it over its target, which must be
  absent or a regular file (a link there is refused, not replaced).
- Reads of state files (`read_owned`) refuse links too and are bounded in size.

Every refusal is a `FileRefusedError` (a `ValueError`: one line, exit 2, from the CLI) naming the
path. Temporary names (`temporary_name`) hold the writer's pid and a random token and always fit
the file system's name limit, however long the target's name.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from media.files import FileRefusedError, kind_of, not_regular

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
CLOEXEC = getattr(os, "O_CLOEXEC", 0)
NONBLOCK = getattr(os, "O_NONBLOCK", 0)
NAME_MAX = 255  # bytes of one file name, where the file system does not say
LINK_REASON = "is a symbolic link; thagen never follows links inside the folders it writes"


def _refuse_kind(path: Path, mode: int, what: str) -> FileRefusedError:
    if stat.S_ISLNK(mode):
        return FileRefusedError(path, f"{LINK_REASON} (remove it)")
    return FileRefusedError(path, not_regular(mode, what))


def _os_error(path: Path, error: OSError, doing: str) -> Exception:
    """A link met by O_NOFOLLOW (ELOOP) as a refusal; other errors as OSError naming `path`."""
    if error.errno == errno.ELOOP:
        return FileRefusedError(path, f"{LINK_REASON} (remove it)")
    return OSError(error.errno, f"cannot {doing}: {error.strerror or error}", str(path))


def subfolder(root: str | Path, *names: str) -> Path:
    """`root/names...`, each level made if missing and required to be a real folder, not a link
    (the root itself may be a link: the user named it)."""
    folder = Path(root)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _os_error(folder, error, "make the folder") from None
    for name in names:
        folder = folder / name
        try:
            os.mkdir(folder)
        except FileExistsError:
            pass
        except OSError as error:
            raise _os_error(folder, error, "make the folder") from None
        info = os.lstat(folder)
        if not stat.S_ISDIR(info.st_mode):
            if stat.S_ISLNK(info.st_mode):
                raise FileRefusedError(folder, f"{LINK_REASON} (remove it)")
            raise FileRefusedError(folder, f"is {kind_of(info.st_mode)}, not a folder")
    return folder


def require_no_link(path: str | Path, what: str = "state") -> os.stat_result | None:
    """The `lstat` of `path` if it is a regular file, None if it is absent; a link or anything
    else there is refused."""
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise _os_error(path, error, "check") from None
    if not stat.S_ISREG(info.st_mode):
        raise _refuse_kind(path, info.st_mode, what)
    return info


def open_owned(path: str | Path, flags: int, what: str = "state", mode: int = 0o644) -> int:
    """A descriptor for `path` opened with `flags` | O_NOFOLLOW | O_CLOEXEC, never blocking on a
    FIFO, refused unless it is a regular file (checked on the descriptor)."""
    path = Path(path)
    try:
        fd = os.open(path, flags | NOFOLLOW | CLOEXEC | NONBLOCK, mode)
    except OSError as error:
        if error.errno == errno.ENXIO:  # a FIFO without a reader, opened for writing
            raise FileRefusedError(path, not_regular(stat.S_IFIFO, what)) from None
        raise _os_error(path, error, "open") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refuse_kind(path, info.st_mode, what)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_owned(path: str | Path, limit: int, what: str = "state") -> bytes:
    """The bytes of the regular file `path` (not a link), at most `limit` of them."""
    path = Path(path)
    fd = open_owned(path, os.O_RDONLY, what)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            reason = f"file is {size} bytes, more than the limit {limit} for {what}"
            raise FileRefusedError(path, reason)
        data = f.read(size + 1)  # never `limit` up front: the file says how much there is
        if len(data) > size and len(data) <= limit:
            data += f.read(limit + 1 - len(data))
    if len(data) > limit:
        raise FileRefusedError(path, f"file grew past the limit {limit} bytes for {what}")
    return data


def truncate_owned(path: str | Path) -> None:
    """Empty the regular file `path` (a link or anything else there is left alone); a missing
    file is nothing to do."""
    try:
        fd = open_owned(path, os.O_WRONLY)
    except (FileRefusedError, OSError):
        return
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return NAME_MAX


def temporary_name(path: str | Path) -> Path:
    """A temporary name beside `path` that no other writer uses (`NAME.PID-TOKEN.tmp`), cut to
    fit the file system's name limit: a name too long keeps its start and a hash of the rest."""
    path = Path(path)
    suffix = f".{os.getpid()}-{secrets.token_hex(4)}.tmp"
    name = os.fsencode(path.name)
    room = _name_max(path.parent) - len(suffix)
    if len(name) > room:
        digest = hashlib.sha256(name).hexdigest()[:12].encode()
        name = name[: max(room - len(digest) - 1, 1)] + b"~" + digest
    return path.with_name(os.fsdecode(name) + suffix)


@contextmanager
def atomic_file(path: str | Path, what: str = "output") -> Iterator[BinaryIO]:
    """A binary file to write `path` through: a temporary file made with O_EXCL | O_NOFOLLOW,
    renamed over `path` when the block ends without an error (removed otherwise). An existing
    `path` must be a regular file: a link there is refused, not replaced."""
    path = Path(path)
    require_no_link(path, what)
    tmp = temporary_name(path)
    fd = open_owned(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, what)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        require_no_link(path, what)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(
    path: str | Path, data: bytes | Callable[[BinaryIO], None], what: str = "output"
) -> None:
    """Write `data` (bytes, or a function writing into a binary file) to `path` through
    `atomic_file`."""
    with atomic_file(path, what) as f:
        if callable(data):
            data(f)
        else:
            f.write(data)
