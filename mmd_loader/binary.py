"""A bounds-checked binary reader over an in-memory file, shared by the PMD and PMX parsers.

It subclasses pymeshio's `BinaryReader`, so pymeshio's own section readers run on it unchanged,
but every read is checked against the bytes that remain, every count is checked against what
the remaining bytes could hold before anything is allocated, and every failure is a
`FormatError` carrying the byte offset. The loader turns that into a `ModelLoadError`.
"""

from __future__ import annotations

import struct

import numpy as np
from pymeshio import common

MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_VERTICES = 4_000_000
MAX_INDICES = 16_000_000
MAX_STRING_BYTES = 64 * 1024
MAX_ITEMS = 1_000_000  # materials, bones, morphs, textures, display slots, bodies, joints
MAX_MORPH_OFFSETS = 16_000_000  # entries in one morph

_INT = {1: "<b", 2: "<h", 4: "<i"}
_UINT = {1: "<B", 2: "<H", 4: "<I"}


class FormatError(Exception):
    """The bytes do not form a valid model; `offset` is where reading went wrong."""

    def __init__(self, message: str, offset: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


class BoundedReader(common.BinaryReader):
    """Little-endian reads from `data` at `pos`, never past the end and never unbounded."""

    def __init__(self, data: bytes) -> None:  # no super().__init__: there is no stream
        self.data = data
        self.view = memoryview(data)
        self.pos = 0
        self.end = len(data)

    def __str__(self) -> str:
        return f"<BoundedReader {self.pos}/{self.end}>"

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def is_end(self) -> bool:
        return self.pos >= self.end

    def fail(self, message: str, offset: int | None = None) -> FormatError:
        """A FormatError at `offset` (default: the current position), for `raise`."""
        return FormatError(message, self.pos if offset is None else offset)

    def need(self, size: int, what: str = "data") -> None:
        if size < 0 or size > self.end - self.pos:
            raise self.fail(f"file ends inside {what}: needs {size} bytes, {self.remaining} remain")

    def skip(self, size: int, what: str = "data") -> None:
        self.need(size, what)
        self.pos += size

    def take(self, size: int, what: str = "data") -> memoryview:
        self.need(size, what)
        start = self.pos
        self.pos += size
        return self.view[start : self.pos]

    # pymeshio's readers all go through unpack/read_int/read_uint: bounding these bounds them.
    def unpack(self, fmt: str, size: int):  # type: ignore[override]
        self.need(size)
        value = struct.unpack_from("<" + fmt.lstrip("<=@"), self.data, self.pos)[0]
        self.pos += size
        return value

    def read_int(self, size: int) -> int:
        if size not in _INT:
            raise self.fail(f"invalid integer size {size}")
        return self.unpack(_INT[size], size)

    def read_uint(self, size: int) -> int:
        if size not in _UINT:
            raise self.fail(f"invalid integer size {size}")
        return self.unpack(_UINT[size], size)

    def read_floats(self, n: int) -> np.ndarray:
        return self.array(np.dtype("<f4"), n, "floats").astype(np.float32)

    def count(self, size: int, min_item: int, limit: int, what: str, unsigned: bool = False) -> int:
        """Read a `size`-byte count and check it fits the limit and the remaining bytes."""
        at = self.pos
        n = self.read_uint(size) if unsigned else self.read_int(size)
        self.check_count(n, min_item, limit, what, at)
        return n

    def check_count(self, n: int, min_item: int, limit: int, what: str, at: int) -> None:
        if n < 0:
            raise self.fail(f"negative {what} count {n}", at)
        if n > limit:
            raise self.fail(f"{what} count {n} exceeds the limit {limit}", at)
        if n * min_item > self.remaining:
            raise self.fail(
                f"{what} count {n} needs at least {n * min_item} bytes, "
                f"only {self.remaining} remain",
                at,
            )

    def array(self, dtype: np.dtype, n: int, what: str) -> np.ndarray:
        """`n` records of `dtype` straight from the buffer (a read-only view)."""
        size = n * dtype.itemsize
        self.need(size, what)
        out = np.frombuffer(self.data, dtype, n, self.pos)
        self.pos += size
        return out
