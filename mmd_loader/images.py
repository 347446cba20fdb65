"""Decode the texture files MMD models ship to RGBA arrays.

The format is sniffed from the file's first bytes, never from its extension: `.spa`/`.sph` sphere
maps are usually BMP and sometimes PNG. Sizes are checked from the header before any pixel is
decoded, so a decompression bomb costs a header read.
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from media.files import read_regular

MAX_DIMENSION = 8192  # pixels per side
MAX_FILE_BYTES = 256 * 1024 * 1024

_MAGIC = (
    (b"BM", "BMP"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"DDS ", "DDS"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
)
# Formats whose alpha is unreliable: MMD treats an all-zero alpha channel as opaque.
_ZERO_ALPHA_IS_OPAQUE = ("BMP", "TGA")


class ImageReadError(Exception):
    """A texture file that cannot be decoded. Names the file and what is wrong."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def sniff_format(head: bytes) -> str | None:
    """Pillow's name for the format of a file starting with `head` (>= 18 bytes), or None."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return "TGA" if _looks_like_tga(head) else None


def _looks_like_tga(head: bytes) -> bool:
    """TGA has no magic number: accept a header whose fields are all plausible."""
    if len(head) < 18:
        return False
    colormap_type, image_type = head[1], head[2]
    width, height, depth, descriptor = struct.unpack_from("<HHBB", head, 12)
    if colormap_type not in (0, 1) or image_type not in (1, 2, 3, 9, 10, 11):
        return False
    if (image_type & 7 == 1) != (colormap_type == 1):
        return False
    return width > 0 and height > 0 and depth in (8, 15, 16, 24, 32) and descriptor & 0xC0 == 0


def read_image(
    path: Path, max_dimension: int = MAX_DIMENSION, max_bytes: int = MAX_FILE_BYTES
) -> np.ndarray:
    """The image at `path` as (H, W, 4) uint8 RGBA, straight alpha, first row = top of the image.

    Raises `ImageReadError` for a missing, oversized, unrecognised or corrupt file.
    """
    path = Path(path)
    data = read_regular(path, "image", max_bytes, error=ImageReadError)  # no FIFO, device, dir
    fmt = sniff_format(data[:32])
    if fmt is None:
        raise ImageReadError(path, f"unrecognised image format (starts with {data[:8].hex()})")
    if fmt == "BMP" and _bmp_bits(data) == 32 and _bmp_compression(data) == 0:
        rgba = _decode_bmp32(path, data, max_dimension)
    else:
        rgba = _decode_with_pillow(path, data, fmt, max_dimension)
    if fmt in _ZERO_ALPHA_IS_OPAQUE and not rgba[..., 3].any():
        rgba[..., 3] = 255
    return rgba


def _check_size(path: Path, width: int, height: int, max_dimension: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageReadError(path, f"invalid size {width}x{height}")
    if width > max_dimension or height > max_dimension:
        raise ImageReadError(
            path, f"image is {width}x{height}, larger than the limit {max_dimension} per side"
        )


def _decode_with_pillow(path: Path, data: bytes, fmt: str, max_dimension: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as image:
                _check_size(path, image.width, image.height, max_dimension)
                image.load()
                return _to_rgba(image)
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageReadError(path, f"image too large, over the pixel limit: {error}") from error
    except Exception as error:  # Pillow raises many kinds on corrupt files
        raise ImageReadError(path, f"cannot decode as {fmt}: {error}") from error


def _to_rgba(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        grey = np.asarray(image).astype(np.uint32)
        peak = 65535 if image.mode != "I" else max(int(grey.max()), 1)
        grey8 = (grey * 255 // peak).astype(np.uint8)
        out = np.empty((*grey8.shape, 4), np.uint8)
        out[..., :3] = grey8[..., None]
        out[..., 3] = 255
        return out
    if image.mode != "RGBA":
        image = image.convert("RGBA")
    return np.array(image, dtype=np.uint8)


def _bmp_bits(data: bytes) -> int:
    return struct.unpack_from("<H", data, 28)[0] if len(data) >= 30 else 0


def _bmp_compression(data: bytes) -> int:
    header = struct.unpack_from("<I", data, 14)[0] if len(data) >= 18 else 0
    return struct.unpack_from("<I", data, 30)[0] if header >= 40 and len(data) >= 34 else 0


def _decode_bmp32(path: Path, data: bytes, max_dimension: int) -> np.ndarray:
    """32-bit uncompressed BMP with its fourth byte as alpha (Pillow drops it as padding)."""
    offset = struct.unpack_from("<I", data, 10)[0]
    width, height = struct.unpack_from("<ii", data, 18)
    _check_size(path, width, abs(height), max_dimension)
    end = offset + width * abs(height) * 4
    if end > len(data):
        raise ImageReadError(path, f"BMP pixel data ends at byte {len(data)}, expected {end}")
    bgra = np.frombuffer(data, np.uint8, width * abs(height) * 4, offset)
    bgra = bgra.reshape(abs(height), width, 4)
    if height > 0:  # bottom-up rows
        bgra = bgra[::-1]
    return np.ascontiguousarray(bgra[..., [2, 1, 0, 3]])
