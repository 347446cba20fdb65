"""The PNG bytes thagen writes (ISA-L deflate) and reads back (training.fastpng): standard PNGs,
the same bytes in any process, and damaged bytes refused with a reason."""

from __future__ import annotations

import hashlib
import io
import struct
import subprocess
import sys
import zlib
from importlib import metadata

import numpy as np
import pytest
from PIL import Image

from pipeline.manifest import versions
from pipeline.png import PngEncoder, deflate_library, encode_png
from training.fastpng import PngError, read_rgba
from training.images import decode_png, decode_png_rgba

pytest.importorskip("torch")


def picture(height: int = 40, width: int = 56, seed: int = 0) -> np.ndarray:
    """An RGBA image with smooth gradients, flat areas and a transparent border, like a render."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[..., 0] = (x * 255 // width).astype(np.uint8)
    rgba[..., 1] = (y * 255 // height).astype(np.uint8)
    rgba[..., 2] = rng.integers(0, 255, (height, width), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[:4] = 0
    return rgba


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 8
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        out.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]))
        pos += 12 + n
    return out


def png(kind_data: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(
        struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
        for k, d in kind_data
    )
    return b"\x89PNG\r\n\x1a\n" + body


@pytest.mark.numeric  # PNG round trips: numpy filters rows, ISA-L deflates
@pytest.mark.parametrize("level", range(10))
def test_every_level_is_a_standard_png_both_readers_decode(level):
    rgba = picture()
    data = encode_png(rgba, level)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), rgba)
    assert np.array_equal(read_rgba(data), rgba)
    assert [k for k, _ in chunks(data)] == [b"IHDR", b"IDAT", b"IEND"]
    assert deflate_library(level).split()[0] == ("isal" if level in (1, 2, 3) else "zlib")


@pytest.mark.numeric
def test_the_same_pixels_give_the_same_bytes_in_another_process():
    rgba = picture(64, 64, seed=3)
    encoder = PngEncoder(1)
    first = encoder.encode(rgba)
    assert encoder.encode(rgba.copy()) == first  # the reused row buffer leaves no trace
    assert encoder.encode(picture(64, 64, seed=4)) != first
    code = (
        "import hashlib, sys; sys.path.insert(0, '.');"
        "from tests.test_png import picture; from pipeline.png import encode_png;"
        "print(hashlib.sha256(encode_png(picture(64, 64, seed=3), 1)).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == hashlib.sha256(first).hexdigest()


def test_dataset_json_records_the_deflate_library():
    assert versions([])["isal"] == metadata.version("isal")
    assert deflate_library(1) == f"isal {metadata.version('isal')}"


@pytest.mark.numeric
def test_other_pngs_go_through_pillow_with_the_same_values():
    rgba = picture()
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG", compress_level=6)  # adaptive
    data = buffer.getvalue()
    assert read_rgba(data) is None  # Sub/Paeth rows: not the fast kind
    assert np.array_equal(decode_png_rgba(data), rgba)
    buffer = io.BytesIO()
    Image.fromarray(rgba[..., :3], "RGB").save(buffer, format="PNG")
    assert read_rgba(buffer.getvalue()) is None
    with pytest.raises(ValueError, match="PNG mode is RGB, expected RGBA"):
        decode_png(buffer.getvalue(), name="x.png")
    # Rows filtered "None" take the fast road too.
    header, _, end = chunks(encode_png(rgba, 1))
    rows = np.concatenate([np.zeros((40, 1), np.uint8), rgba.reshape(40, -1)], axis=1)
    plain = png([header, (b"IDAT", zlib.compress(rows.tobytes())), end])
    assert np.array_equal(read_rgba(plain), rgba)
    assert decode_png(encode_png(rgba, 1), size=20).shape == (4, 20, 20)  # resized by Pillow


def test_damaged_bytes_are_refused_with_the_reason():
    good = encode_png(picture(), 1)
    header, idat, end = chunks(good)
    flipped = bytearray(good)
    flipped[60] ^= 0x10  # inside IDAT: its CRC no longer matches
    cases = {
        "fails its CRC": bytes(flipped),
        "runs past the end": good[:-20],
        "no IEND": png([header, idat]),
        "broken zlib stream": png([header, (b"IDAT", b"\x78\x9c\xff\xff\xff")]),
        "is incomplete": png([header, (b"IDAT", idat[1][: len(idat[1]) // 2]), end]),
        "inflates past": png([header, (b"IDAT", zlib.compress(bytes(40 * 225 + 500))), end]),
        "image data is": png([header, (b"IDAT", zlib.compress(bytes(100))), end]),
    }
    for reason, data in cases.items():
        with pytest.raises(PngError, match=reason):
            read_rgba(data)
        with pytest.raises(ValueError, match=f"bad.png: not a readable PNG .*{reason}"):
            decode_png(data, name="bad.png")
    # A zlib bomb stops at the image's size instead of inflating all of it.
    bomb = png([header, (b"IDAT", zlib.compress(bytes(20_000_000), 9)), end])
    with pytest.raises(PngError, match="inflates past"):
        read_rgba(bomb)
