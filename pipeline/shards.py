"""Writing WebDataset tar shards reproducibly and atomically.

Like webdataset's `TarWriter`, the writer encodes members by their extension: a numpy image for
`*.png` becomes a PNG (`pipeline.png`), a mapping for `json` becomes sorted, compact UTF-8 JSON;
bytes are stored as they are. Members get fixed headers (USTAR, mtime 0, uid/gid 0, empty
user/group names, mode 0644), each example's members are adjacent and sorted by extension, and a
shard is written to a temporary name unique to its writer (`NAME.tar.PID-TOKEN.tmp`) then
renamed, so a `.tar` on disk is always complete and no other writer's leftover can be renamed
over it. Its size and sha256 go into a sidecar (`ShardWriter.digest`) that resume checks.

A failing write (disk full, quota, read-only or lost file system) raises `OutputError`, an
`OSError` naming the file: it stops the run and is never taken for a character's failure.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import tarfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from media.owned import open_owned, require_no_link
from media.tarfiles import iter_members
from pipeline.atomic import temporary_name
from pipeline.png import encode_png

KEY_PATTERN = re.compile(r"^[0-9a-z_]+$")
MAX_JSON_BYTES = 16384  # per-example record, for the byte bound of a shard
MAX_MEMBER_BYTES = 1 << 27  # any member a reader accepts: above a 4096² PNG's bound (67 MB)


class OutputError(OSError):
    """Writing the dataset failed (disk full, quota, read-only file system): the run stops,
    complete shards are kept. `str()` is one line naming the file."""

    def __str__(self) -> str:
        return f"{self.filename}: cannot write: {self.strerror}"


def output_error(error: OSError, path: Path) -> OutputError:
    return OutputError(error.errno, error.strerror or str(error), str(path))


class _HashingFile:
    """A write-only file that hashes and counts what passes through."""

    def __init__(self, raw: io.BufferedWriter, path: Path) -> None:
        self.raw, self.path, self.sha, self.size = raw, path, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        try:
            return self.raw.write(data)
        except OSError as error:
            raise output_error(error, self.path) from None

    def tell(self) -> int:
        return self.size


class ShardWriter:
    """`with ShardWriter(path) as w: w.add(key, {"json": {...}, "rest.png": rgba, ...})`.

    On a clean exit the temporary file is flushed, fsynced and renamed to `path`; on an exception
    it is removed. `digest` is `{"bytes", "sha256", "examples"}` after the rename. `png_level` is
    the zlib level of the PNGs it encodes.
    """

    def __init__(self, path: str | Path, png_level: int = 1) -> None:
        self.path = Path(path)
        self.png_level = png_level
        self.tmp = temporary_name(self.path)
        self.count = 0
        self.digest: dict | None = None

    def __enter__(self) -> ShardWriter:
        require_no_link(self.path, "shard")  # a link at the shard's name is refused, not followed
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = open_owned(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, "shard")
            self._file = os.fdopen(fd, "wb")  # closed in __exit__
        except OSError as error:
            raise output_error(error, self.tmp) from None
        self._hashing = _HashingFile(self._file, self.tmp)
        self._tar = tarfile.open(fileobj=self._hashing, mode="w", format=tarfile.USTAR_FORMAT)
        return self

    def add(self, key: str, members: Mapping[str, Any]) -> None:
        """Append one example: `members` maps an extension (`json`, `rest.png`, …) to bytes or
        to what `encode` turns into bytes."""
        if not KEY_PATTERN.match(key):
            raise ValueError(f"example key {key!r} must match [0-9a-z_]+")
        for ext in sorted(members):
            data = self.encode(ext, members[ext])
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            self._tar.addfile(info, io.BytesIO(data))
        self.count += 1

    def encode(self, ext: str, value: Any) -> bytes:
        """A member's bytes: PNG for an image array under `*.png`, JSON for a mapping."""
        if isinstance(value, bytes):
            return value
        if ext.endswith("png") and isinstance(value, np.ndarray):
            return encode_png(value, self.png_level)
        if ext.endswith("json") and isinstance(value, Mapping):
            return json.dumps(value, ensure_ascii=False, sort_keys=True).encode("utf-8")
        raise TypeError(f"cannot encode {type(value).__name__} as .{ext}")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            try:
                self._tar.close()
                self._file.flush()
                os.fsync(self._file.fileno())
            finally:
                self._file.close()
            if kind is None:
                require_no_link(self.path, "shard")
                os.replace(self.tmp, self.path)
        except OSError as error:
            self.tmp.unlink(missing_ok=True)
            if kind is not None:
                return  # the error that is already on its way says more
            raise output_error(error, self.tmp) from None
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        if kind is not None:
            self.tmp.unlink(missing_ok=True)
            return
        self.digest = {
            "bytes": self._hashing.size,
            "sha256": self._hashing.sha.hexdigest(),
            "examples": self.count,
        }


def file_sha256(path: str | Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def read_keys(path: str | Path) -> list[str]:
    """Example keys of a shard in order (`media.tarfiles.TarReadError` on a damaged or unsafe
    file: members that are not regular files or exceed MAX_MEMBER_BYTES)."""
    keys: list[str] = []
    for info, _ in iter_members(path, MAX_MEMBER_BYTES, read=False):
        key = info.name.split(".", 1)[0]
        if not keys or keys[-1] != key:
            keys.append(key)
    return keys


def verify_shard(path: str | Path, size: int, sha256: str | None = None) -> bool:
    """Whether `path` is a regular file of `size` bytes (and, given `sha256`, with that digest:
    every byte read, at about 1.8 GB/s here)."""
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode) or info.st_size != size:
        return False
    return sha256 is None or file_sha256(path) == sha256


def png_bound(size: int) -> int:
    """An upper bound on a size×size RGBA PNG: raw rows + filter bytes + deflate/chunk overhead."""
    raw = size * (size * 4 + 1)
    return raw + 5 * (raw // 16383 + 1) + 12 * (raw // 8192 + 1) + 1024


def example_bound(size: int, images: int = 3) -> int:
    """An upper bound on one example's bytes in a tar (headers and padding included)."""
    return images * (png_bound(size) + 1024) + MAX_JSON_BYTES + 1024
