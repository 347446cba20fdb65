"""A fast reader for the PNGs thagen writes: 8-bit RGBA, not interlaced, rows filtered "None" or
"Up" (pipeline/png.py writes "Up" everywhere). Inflate runs in ISA-L and un-filtering is a running
sum down the rows in vectorised blocks, so a 256² image decodes in about 0.45 CPU ms against
Pillow's 0.96 and pyspng's 0.52 (bench/bench_decode.py). Any other PNG (palette, 16 bit,
Sub/Average/Paeth filters, interlace) returns None and the caller decodes it with Pillow.

The reader is as strict as Pillow about damage: every chunk's CRC is checked, the zlib stream's
Adler-32 too (by inflate), the inflated size must be exactly the image's, and inflating stops at
that size, so a crafted stream cannot expand without bound.
"""

from __future__ import annotations

import struct

import numpy as np
from isal import isal_zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
NONE, UP = 0, 2
MAX_SIDE = 16384


class PngError(ValueError):
    """Damaged PNG bytes (a bad CRC, a truncated chunk, a broken zlib stream, a wrong size)."""


def read_rgba(data: bytes) -> np.ndarray | None:
    """(H, W, 4) uint8 RGBA from PNG bytes of the fast kind, None for any other PNG (or bytes
    that are not a PNG: the caller's decoder says what is wrong with them)."""
    if not data.startswith(SIGNATURE) or len(data) < 33 or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", data[16:29]
    )
    if (depth, colour, compression, filtering, interlace) != (8, 6, 0, 0, 0):
        return None
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        return None
    view = memoryview(data)
    stride = 4 * width + 1
    expected = height * stride
    inflater = isal_zlib.decompressobj()
    parts: list[bytes] = []
    size, pos, ended = 0, 8, False
    while pos < len(data):
        if pos + 12 > len(data):
            raise PngError(f"truncated chunk at byte {pos}")
        (length,) = struct.unpack(">I", view[pos : pos + 4])
        kind = bytes(view[pos + 4 : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise PngError(f"chunk {kind!r} at byte {pos} runs past the end")
        (crc,) = struct.unpack(">I", view[end - 4 : end])
        if isal_zlib.crc32(view[pos + 4 : end - 4]) != crc:
            raise PngError(f"chunk {kind!r} at byte {pos} fails its CRC")
        if kind == b"IDAT":
            try:
                part = inflater.decompress(view[pos + 8 : end - 4], expected + 1 - size)
            except isal_zlib.error as error:
                raise PngError(f"broken zlib stream ({error})") from None
            size += len(part)
            parts.append(part)
            if size > expected:
                raise PngError(f"the image data inflates past {width}×{height}")
        elif kind == b"IEND":
            ended = True
            break
        pos = end
    if not ended:
        raise PngError("no IEND chunk")
    if not inflater.eof:
        raise PngError("the zlib stream is incomplete")
    if size != expected:
        raise PngError(f"the image data is {size} bytes, not {expected} for {width}×{height}")
    rows = np.frombuffer(b"".join(parts), np.uint8).reshape(height, stride)
    filters = rows[:, 0]
    up = filters == UP
    if not (up | (filters == NONE)).all():
        return None
    image = rows[:, 1:].copy()
    if up[1:].all():
        _undo_up(image)
    else:
        for y in np.flatnonzero(up[1:]) + 1:  # "Up": add the row above (row 0 has none)
            np.add(image[y], image[y - 1], out=image[y])
    return image.reshape(height, width, 4)


def _undo_up(rows: np.ndarray, block: int = 16) -> None:
    """Undo "Up" on every row after the first, in place: a running sum down the rows, mod 256.

    Row by row that is one numpy call per row; in blocks of `block` rows it is two calls per
    block: rows summed within every block at once, then each block offset by the final last row
    of the block above (0.1 ms instead of 0.23 ms at 256²)."""
    count = len(rows) // block
    start = 1
    if count >= 2:
        blocks = rows[: count * block].reshape(count, block, -1)
        for r in range(1, block):
            np.add(blocks[:, r], blocks[:, r - 1], out=blocks[:, r])
        for b in range(1, count):
            np.add(blocks[b], blocks[b - 1, block - 1], out=blocks[b])
        start = count * block
    for y in range(start, len(rows)):
        np.add(rows[y], rows[y - 1], out=rows[y])
