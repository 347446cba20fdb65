"""A deterministic PNG encoder for the renderer's RGBA images.

Every row is filtered with "Up" and the rows go into one zlib stream. The deflate runs in ISA-L
(`isal.isal_zlib`, pinned in pyproject.toml) at levels 1–3: at level 1 it takes a quarter of
zlib's time on the renderer's images and is no larger (bench/bench_png.py, miku_v2 at 256²:
isal 0.35 CPU ms and 43.0 KiB per image, zlib 1.37 ms and 43.8 KiB, libdeflate 1.00 ms and
40.1 KiB, zlib-ng 0.47 ms but 57.4 KiB). Level 0 stores the rows uncompressed and levels 4–9
are zlib's, for smaller files at several times the cost. The output is a standard PNG any
decoder reads; its bytes are a function of the pixels, the level and the deflate library's
version (dataset.json records it under `versions`). ISA-L picks its code path by CPU features,
so bytes are reproduced with the same isal version on the same kind of processor; the pixels
are the same everywhere.
"""

from __future__ import annotations

import struct
import zlib
from importlib import metadata

import numpy as np
from isal import isal_zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_UP = 2  # the PNG row filter "Up": each byte minus the byte above it
ISAL_LEVELS = (1, 2, 3)  # png levels deflated by ISA-L (at the same level); the others by zlib


def deflate_library(level: int) -> str:
    """The library that deflates at `level`, with its version: e.g. 'isal 1.9.1'."""
    if level in ISAL_LEVELS:
        return f"isal {metadata.version('isal')}"
    return f"zlib {zlib.ZLIB_RUNTIME_VERSION}"


def compress(data: bytes | memoryview | np.ndarray, level: int) -> bytes:
    """A zlib stream of `data` at png `level` (0 stored, 1–3 ISA-L, 4–9 zlib)."""
    if not 0 <= level <= 9:
        raise ValueError(f"PNG compress level must be in 0..9, not {level}")
    if level in ISAL_LEVELS:
        return isal_zlib.compress(data, level)
    return zlib.compress(data, level)


def filter_up(rgba: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The PNG scanlines of an (H, W, 4) uint8 image, filtered with "Up": (H, 4W + 1) uint8,
    each row its filter byte then the bytes minus those above (into `out` when given)."""
    height, width, channels = rgba.shape
    if channels != 4 or rgba.dtype != np.uint8:
        raise ValueError(f"encode_png needs (H, W, 4) uint8, not {rgba.shape} {rgba.dtype}")
    rows = rgba.reshape(height, width * 4)
    if out is None or out.shape != (height, width * 4 + 1):
        out = np.empty((height, width * 4 + 1), np.uint8)
    out[:, 0] = PNG_UP
    out[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=out[1:, 1:])  # uint8 arithmetic wraps mod 256
    return out


class PngEncoder:
    """`encode(rgba)` → PNG bytes at one level. It keeps nothing between images (no row
    buffer, no compressor object): an image's bytes are a function of its pixels and the level
    alone, whatever the encoder, the process or the images before it."""

    def __init__(self, level: int = 1) -> None:
        if not 0 <= level <= 9:
            raise ValueError(f"PNG compress level must be in 0..9, not {level}")
        self.level = level

    def encode(self, rgba: np.ndarray) -> bytes:
        return encode_png(rgba, self.level)


def encode_png(rgba: np.ndarray, level: int) -> bytes:
    """An (H, W, 4) uint8 array as an 8-bit RGBA PNG (see the module docstring)."""
    height, width = rgba.shape[:2]
    rows = filter_up(rgba)  # this image's own buffer: nothing else reads or writes it
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8 bit RGBA
    return b"".join(
        (
            PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", compress(rows, level)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = isal_zlib.crc32(data, isal_zlib.crc32(kind))  # the same CRC-32 as zlib's, faster
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
