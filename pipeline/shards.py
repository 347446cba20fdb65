"""Writing WebDataset tar shards reproducibly and atomically.

Like webdataset's `TarWriter`, the writer encodes members by their extension: a numpy image for
`*.png` becomes a PNG (`pipeline.png`), a mapping for `json` becomes sorted, compact UTF-8 JSON;
bytes are stored as they are. Members get fixed headers (USTAR, mtime 0, uid/gid 0, empty
user/group names, mode 0644), each example's members are adjacent and sorted by extension, and a
shard is written to `NAME.tar.tmp` then renamed, so a `.tar` on disk is always complete. Its size
and sha256 go into a sidecar (`ShardWriter.digest`) that resume checks.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from pipeline.png import PngEncoder

KEY_PATTERN = re.compile(r"^[0-9a-z_]+$")
MAX_JSON_BYTES = 16384  # per-example record, for the byte bound of a shard


class _HashingFile:
    """A write-only file that hashes and counts what passes through."""

    def __init__(self, raw: io.BufferedWriter) -> None:
        self.raw, self.sha, self.size = raw, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.raw.write(data)

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
        self._png = PngEncoder(png_level)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.count = 0
        self.digest: dict | None = None

    def __enter__(self) -> ShardWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.tmp, "wb")  # closed in __exit__
        self._hashing = _HashingFile(self._file)
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
            return self._png.encode(value)
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
            self._tar.close()
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()
        if kind is not None:
            self.tmp.unlink(missing_ok=True)
            return
        os.replace(self.tmp, self.path)
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
    """Example keys of a shard in order (raises tarfile.TarError on a damaged file)."""
    keys: list[str] = []
    with tarfile.open(path, mode="r:") as tar:
        for info in tar:
            key = info.name.split(".", 1)[0]
            if not keys or keys[-1] != key:
                keys.append(key)
    return keys


def png_bound(size: int) -> int:
    """An upper bound on a size×size RGBA PNG: raw rows + filter bytes + deflate/chunk overhead."""
    raw = size * (size * 4 + 1)
    return raw + 5 * (raw // 16383 + 1) + 12 * (raw // 8192 + 1) + 1024


def example_bound(size: int, images: int = 3) -> int:
    """An upper bound on one example's bytes in a tar (headers and padding included)."""
    return images * (png_bound(size) + 1024) + MAX_JSON_BYTES + 1024
