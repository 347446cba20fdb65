"""Hostile shards, built byte by byte: members of every tar type, sparse members declaring
gigabytes, huge headers, damaged or truncated archives, and examples whose JSON or PNGs lie.

A shard here is a tiny valid one (8×8 images, the THA1 schema) that a test then breaks.
"""

from __future__ import annotations

import io
import json
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from tests.shardgen import PARAMETERS, write_index

SIZE = 8
POSE = {
    "left_eye": 0.5,
    "right_eye": 0.0,
    "mouth": None,
    "head_x": -0.25,
    "head_y": 1.0,
    "neck_z": 0.0,
}


def png(size: int = SIZE, seed: int = 0) -> bytes:
    rgba = np.random.default_rng(seed).integers(0, 256, (size, size, 4), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width×height (RGBA, 8 bit) and holds one tiny, truncated IDAT:
    what a decoder sees first of a 30000² image, without writing 3.6 GB."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    idat = zlib.compress(bytes(1024))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def record(key: str, pose: dict | None = None) -> bytes:
    meta = {
        "key": key,
        "character": "synth",
        "split": "train",
        "example": 0,
        "seed": "0",
        "schema": "tha1",
        "pose": POSE if pose is None else pose,
        "lighting": {"ambient": 0.5, "directional": 0.5},
    }
    return json.dumps(meta).encode()


def example(key: str, seed: int = 0, **override: bytes) -> dict[str, bytes]:
    members = {
        "expression.png": png(seed=seed + 1),
        "json": record(key),
        "posed.png": png(seed=seed + 2),
        "rest.png": png(seed=seed),
    }
    members.update({k.replace("_", "."): v for k, v in override.items()})
    return members


def info(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.size, member.mtime, member.type = len(data), 0, kind
    return member


def tar_bytes(
    entries: list[tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.USTAR_FORMAT
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for member, data in entries:
            tar.addfile(member, io.BytesIO(data) if member.isreg() else None)
    return buffer.getvalue()


def shard_bytes(examples: list[tuple[str, dict[str, bytes]]]) -> bytes:
    return tar_bytes(
        [(info(f"{k}.{ext}", d), d) for k, ms in examples for ext, d in sorted(ms.items())]
    )


def good_shard() -> bytes:
    return shard_bytes(
        [("synth_000000", example("synth_000000")), ("synth_000001", example("synth_000001", 5))]
    )


def write_dataset(root: Path, shard: bytes, size: int = SIZE) -> Path:
    """A dataset folder holding `shard` as train-000000.tar, indexed (manifest and sidecar)."""
    root.mkdir(parents=True, exist_ok=True)
    info_json = {
        "schema": {"name": "tha1", "parameters": PARAMETERS},
        "image_size": size,
        "splits": {},
    }
    (root / "dataset.json").write_text(json.dumps(info_json), "utf-8")
    (root / "train-000000.tar").write_bytes(shard)
    return write_index(root)


def checksum(header: bytearray) -> None:
    """Recompute a 512-byte tar header's checksum in place."""
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)


def old_gnu_sparse(name: str, declared: int) -> bytes:
    """A tar whose only member is an old-GNU sparse file ('S') declaring `declared` bytes of
    which one is stored: tarfile would allocate all of it on extraction."""
    header = bytearray(512)
    header[0 : len(name)] = name.encode()
    header[100:108] = b"0000644\0"
    header[108:116] = header[116:124] = b"0000000\0"
    header[124:136] = b"%011o\0" % 512  # one block stored
    header[136:148] = b"00000000000\0"
    header[156:157] = tarfile.GNUTYPE_SPARSE
    header[257:265] = tarfile.GNU_MAGIC
    header[386:398] = b"%011o\0" % (declared - 1)  # sparse map: (offset, numbytes)
    header[398:410] = b"%011o\0" % 1
    header[483:495] = b"%011o\0" % declared  # real size
    checksum(header)
    return bytes(header) + b"x" + bytes(511) + bytes(1024)


def set_size(shard: bytes, member_index: int, size: int) -> bytes:
    """`shard` with member `member_index`'s header declaring `size` bytes (checksum fixed)."""
    data = bytearray(shard)
    at = 0
    for _ in range(member_index):
        declared = int(data[at + 124 : at + 136].rstrip(b"\0 ") or b"0", 8)
        at += 512 + (declared + 511) // 512 * 512
    header = data[at : at + 512]
    header[124:136] = b"%011o\0" % size if size < 8**11 else b"\x80" + size.to_bytes(11, "big")
    checksum(header)
    data[at : at + 512] = header
    return bytes(data)
