"""Decode the texture files MMD models ship to RGBA arrays.

The format is sniffed from the file's first bytes, never from its extension: `.spa`/`.sph` sphere
maps are usually BMP and sometimes PNG. Sizes are checked from the header before any pixel is
decoded, so a decompression bomb costs a header read: `image_info` reads only the header (format
and declared size), and `read_image` checks the declared size against its limits first. A pixel
budget (`max_pixels`) either refuses a larger image (`ImageBudgetError`) or, with `fit=True`,
decodes it reduced by a power of two until it fits (JPEG decodes at the reduced scale directly;
other formats are decoded once and box-filtered, premultiplied, by Pillow's `reduce`). Running
out of memory while decoding is an `ImageReadError` like any other failure.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from media.files import read_regular

MAX_DIMENSION = 8192  # pixels per side
MAX_FILE_BYTES = 256 * 1024 * 1024
# Default texture budgets (the renderer's `RenderSettings` can change them): 4096² pixels per
# texture, 64 Mpx (4 × 4096²) per model. The real models in ../shared/mmd use at most 11 Mpx.
MAX_TEXTURE_PIXELS = 4096 * 4096
MAX_MODEL_TEXTURE_PIXELS = 64 * 1024 * 1024
_HEADER_BYTES = 64  # enough for every header field read here (BMP's compression at 30)

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


class ImageBudgetError(ImageReadError):
    """An image whose declared size is over a pixel budget (refused before decoding)."""


@dataclass(frozen=True)
class ImageInfo:
    """What an image's header declares."""

    format: str  # Pillow's name: BMP, PNG, JPEG, TGA, DDS, GIF
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def reduction(width: int, height: int, max_pixels: int) -> int:
    """The smallest power-of-two factor that brings width × height within `max_pixels` (sides
    rounded up, as Pillow's `reduce` does)."""
    factor = 1
    while -(-width // factor) * -(-height // factor) > max(int(max_pixels), 1):
        factor *= 2
    return factor


def image_info(path: Path, max_bytes: int = MAX_FILE_BYTES) -> ImageInfo:
    """The format and declared size of the image at `path`, from its header only.

    Raises `ImageReadError` for a file that is not a regular file, is too big, or whose header
    is unrecognised or corrupt. No pixel is decoded (Pillow opens lazily; 32-bit BMPs are read
    from their own header).
    """
    path = Path(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the read forever
            raise ImageReadError(path, "not a regular file")
        if info.st_size > max_bytes:
            raise ImageReadError(
                path, f"file is {info.st_size} bytes, more than the limit {max_bytes}"
            )
        with open(path, "rb") as file:
            return _header_info(path, file)
    except OSError as error:
        raise ImageReadError(path, f"cannot read: {error.strerror or error}") from error


def _header_info(path: Path, file) -> ImageInfo:
    head = file.read(_HEADER_BYTES)
    fmt = sniff_format(head)
    if fmt is None:
        raise ImageReadError(path, f"unrecognised image format (starts with {head[:8].hex()})")
    if fmt == "BMP" and _bmp_bits(head) == 32 and _bmp_compression(head) == 0:
        width, height = struct.unpack_from("<ii", head, 18)
        return ImageInfo(fmt, width, abs(height))
    file.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(file, formats=[fmt]) as image:
                return ImageInfo(fmt, image.width, image.height)
    except Image.DecompressionBombError as error:
        raise ImageReadError(path, f"image too large, over the pixel limit: {error}") from error
    except Exception as error:  # Pillow raises many kinds on corrupt headers
        raise ImageReadError(path, f"cannot read the {fmt} header: {error}") from error


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
    path: Path,
    max_dimension: int = MAX_DIMENSION,
    max_bytes: int = MAX_FILE_BYTES,
    *,
    max_pixels: int | None = None,
    fit: bool = False,
) -> np.ndarray:
    """The image at `path` as (H, W, 4) uint8 RGBA, straight alpha, first row = top of the image.

    `max_pixels`: a budget for width × height, checked on the declared size before decoding. An
    image over it raises `ImageBudgetError`, or with `fit=True` is decoded reduced by the
    smallest power of two that fits (see `reduction`).

    Raises `ImageReadError` for a missing, oversized, unrecognised or corrupt file, and when
    memory runs out while decoding.
    """
    path = Path(path)
    data = read_regular(path, "image", max_bytes, error=ImageReadError)  # no FIFO, device, dir
    fmt = sniff_format(data[:32])
    if fmt is None:
        raise ImageReadError(path, f"unrecognised image format (starts with {data[:8].hex()})")
    budget = _Budget(max_dimension, max_pixels, fit)
    try:
        if fmt == "BMP" and _bmp_bits(data) == 32 and _bmp_compression(data) == 0:
            return _decode_bmp32(path, data, budget)
        return _decode_with_pillow(path, data, fmt, budget)
    except MemoryError as error:
        raise ImageReadError(path, f"out of memory while decoding the {fmt} image") from error


@dataclass(frozen=True)
class _Budget:
    max_dimension: int
    max_pixels: int | None
    fit: bool

    def factor(self, path: Path, width: int, height: int) -> int:
        """Check the declared size; the reduction factor to decode it with (1: full size)."""
        _check_size(path, width, height, self.max_dimension)
        if self.max_pixels is None or width * height <= self.max_pixels:
            return 1
        if not self.fit:
            raise ImageBudgetError(
                path,
                f"image is {width}x{height} = {width * height} pixels, over the budget of "
                f"{self.max_pixels} pixels per texture",
            )
        return reduction(width, height, self.max_pixels)


def _check_size(path: Path, width: int, height: int, max_dimension: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageReadError(path, f"invalid size {width}x{height}")
    if width > max_dimension or height > max_dimension:
        raise ImageReadError(
            path, f"image is {width}x{height}, larger than the limit {max_dimension} per side"
        )


def _decode_with_pillow(path: Path, data: bytes, fmt: str, budget: _Budget) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as image:
                width, height = image.width, image.height
                factor = budget.factor(path, width, height)
                if factor > 1 and fmt == "JPEG":  # DCT scaling: decode at 1/2, 1/4 or 1/8
                    image.draft(image.mode, (-(-width // factor), -(-height // factor)))
                image.load()
                if fmt in _ZERO_ALPHA_IS_OPAQUE and _alpha_is_zero(image):
                    image.putalpha(255)
                if factor > 1:  # what JPEG's draft left to do; reduced before any copy
                    factor = reduction(image.width, image.height, budget.max_pixels)
                    return _to_rgba(_reduced(image, factor))
                return _to_rgba(image)
    except (ImageReadError, MemoryError):
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


def _alpha_is_zero(image: Image.Image) -> bool:
    return image.mode == "RGBA" and image.getchannel("A").getextrema() == (0, 0)


def _reduced(image: Image.Image, factor: int) -> Image.Image:
    """`image` box-filtered by `factor` (RGBA premultiplied, so transparent texels do not bleed
    into the rest)."""
    if factor <= 1:
        return image
    if image.mode not in ("L", "LA", "RGB", "RGBA"):
        image = Image.fromarray(_to_rgba(image), "RGBA")  # 16-bit grey scaled, palettes expanded
    return image.reduce(factor)


def _finish(rgba: np.ndarray, fmt: str, factor: int) -> np.ndarray:
    """MMD's reading of an all-zero alpha (opaque, for BMP and TGA), then the reduction by
    `factor` (box filter, premultiplied, so transparent texels do not bleed into the rest)."""
    if fmt in _ZERO_ALPHA_IS_OPAQUE and not rgba[..., 3].any():
        rgba[..., 3] = 255
    if factor <= 1:
        return rgba
    return np.array(_reduced(Image.fromarray(rgba, "RGBA"), factor), dtype=np.uint8)


def _decode_bmp32(path: Path, data: bytes, budget: _Budget) -> np.ndarray:
    """32-bit uncompressed BMP with its fourth byte as alpha (Pillow drops it as padding)."""
    offset = struct.unpack_from("<I", data, 10)[0]
    width, height = struct.unpack_from("<ii", data, 18)
    factor = budget.factor(path, width, abs(height))
    end = offset + width * abs(height) * 4
    if end > len(data):
        raise ImageReadError(path, f"BMP pixel data ends at byte {len(data)}, expected {end}")
    bgra = np.frombuffer(data, np.uint8, width * abs(height) * 4, offset)
    bgra = bgra.reshape(abs(height), width, 4)
    if height > 0:  # bottom-up rows
        bgra = bgra[::-1]
    return _finish(np.ascontiguousarray(bgra[..., [2, 1, 0, 3]]), "BMP", factor)
