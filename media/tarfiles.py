"""Reading tar shards in bounded memory: regular members only, each under a size limit.

A shard is untrusted bytes to every reader (training, merge, report, resume). `iter_members`
refuses, naming the archive and the member: members that are not regular files (links,
devices, FIFOs, folders, GNU or PAX sparse files: an old-GNU sparse member can declare 8 GiB
that the standard library would allocate), members larger than the caller's limit, and
headers (GNU long names, PAX records) that ask to read more than that limit. No read ever asks
for more bytes than the file still holds, and the member index the standard library keeps is
dropped as it goes, so memory stays flat over any number of members.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

from media.files import FileRefusedError, open_regular

REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE)
KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.DIRTYPE: "a folder",
    tarfile.FIFOTYPE: "a FIFO",
    tarfile.CONTTYPE: "a contiguous file",
    tarfile.GNUTYPE_SPARSE: "a GNU sparse file",
}
MAX_NAME = 120  # characters of a member name quoted in an error
MAX_HEADER_READ = 1 << 27  # bytes one read may ask for (the largest member data of a shard)


class TarReadError(ValueError):
    """A tar file that cannot be read safely; names the file (and member when known)."""


class _BoundedReads(io.RawIOBase):
    """A file whose reads never ask for more than the file holds, nor for more than `limit`."""

    def __init__(self, raw: io.BufferedReader, path: Path, limit: int) -> None:
        self.raw, self.path, self.limit = raw, path, limit
        self.size = os.fstat(raw.fileno()).st_size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.raw.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def read(self, size: int | None = -1) -> bytes:
        left = max(0, self.size - self.raw.tell())
        if size is None or size < 0:
            size = left
        if size > self.limit:
            raise TarReadError(
                f"{self.path}: a header or member at byte {self.raw.tell()} asks for {size} "
                f"bytes; the limit is {self.limit}"
            )
        return self.raw.read(min(size, left))

    def readinto(self, buffer) -> int:  # pragma: no cover - tarfile uses read()
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _quote(name: str) -> str:
    return repr(name if len(name) <= MAX_NAME else name[:MAX_NAME] + "…")


def check_member(path: Path, member: tarfile.TarInfo, limit: int) -> None:
    """Refuse a member that is not a plain regular file or is larger than `limit` bytes."""
    if member.type not in REGULAR or member.sparse is not None:
        kind = KINDS.get(member.type) or (
            "a PAX sparse file" if member.type in REGULAR else f"of type {member.type!r}"
        )
        raise TarReadError(f"{path}: member {_quote(member.name)} is {kind}, not a regular file")
    if not 0 <= member.size <= limit:
        raise TarReadError(
            f"{path}: member {_quote(member.name)} declares {member.size} bytes; "
            f"the limit is {limit}"
        )


def _check_end(bounded: _BoundedReads, offset: int) -> None:
    """After the last member only zeros may follow (the end-of-archive blocks and padding):
    anything else is a damaged header the standard library took for the end."""
    start = offset
    bounded.seek(offset)
    while chunk := bounded.raw.read(1 << 20):
        if chunk.count(0) != len(chunk):
            at = offset + len(chunk) - len(chunk.lstrip(b"\0"))
            raise TarReadError(f"{bounded.path}: damaged tar header at byte {at // 512 * 512}")
        offset += len(chunk)
    if offset - start < tarfile.BLOCKSIZE:
        raise TarReadError(f"{bounded.path}: truncated tar (no end-of-archive block)")


def iter_members(
    path: str | Path, limit: int | Callable[[str], int], read: bool = True
) -> Iterator[tuple[tarfile.TarInfo, bytes | None]]:
    """(member, its bytes, or None when `read` is false) for every member of the tar at `path`,
    in order; `TarReadError` for anything unsafe or damaged (OSError when it cannot be opened).

    `limit` is the largest member in bytes, or a function of the member's name giving it;
    no header may ask for more than `MAX_HEADER_READ` (or an integer `limit`, if larger)."""
    path = Path(path)
    limit_of = limit if callable(limit) else (lambda name: limit)
    cap = max(MAX_HEADER_READ, limit) if isinstance(limit, int) else MAX_HEADER_READ
    try:
        raw = open_regular(path, "tar shard")
    except FileRefusedError as error:
        raise TarReadError(str(error)) from None
    with raw:
        bounded = _BoundedReads(raw, path, cap)
        try:
            with tarfile.open(fileobj=bounded, mode="r:") as tar:  # type: ignore[arg-type]
                while True:
                    member = tar.next()
                    if member is None:
                        _check_end(bounded, tar.offset)
                        return
                    tar.members = []  # the index grows with every member; nothing needs it
                    check_member(path, member, limit_of(member.name))
                    data = None
                    if read:
                        data = tar.extractfile(member).read()  # type: ignore[union-attr]
                        if len(data) != member.size:
                            raise TarReadError(
                                f"{path}: member {_quote(member.name)} is truncated "
                                f"({len(data)} of {member.size} bytes)"
                            )
                    yield member, data
        except TarReadError:
            raise
        except (tarfile.TarError, EOFError, UnicodeError, ValueError, OverflowError) as error:
            raise TarReadError(f"{path}: unreadable tar ({error})") from None
