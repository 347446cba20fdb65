"""VMD (Vocaloid Motion Data) reading, and writing for tests and benchmarks.

Layout (little-endian): a 30-byte header ("Vocaloid Motion Data 0002", or the old
"Vocaloid Motion Data file"), the model name (cp932; 20 bytes, 10 in the old format), then
sections, each a uint32 count and fixed records:

- bone keyframes, 111 bytes: name (15), frame (uint32), position (3 float), rotation quaternion
  (x, y, z, w), interpolation (64 bytes: four Bézier curves X, Y, Z, rotation, each with control
  points (x1, y1), (x2, y2) in 0..127);
- morph keyframes, 23 bytes: name (15), frame, weight (float);
- camera (61 bytes), light (28), self-shadow (9) keyframes and IK/visibility keyframes (frame,
  shown, a count, then 21 bytes per IK bone): counted and read past.

Any section may be missing at the end of the file (older exporters stop after the morphs); a
section that is there is read whole, its count checked against the bytes left first. Sections
after the morphs are never used, so a truncated one ends the file with a warning instead of an
error.

The interpolation block stores curve c's (x1, y1, x2, y2) at bytes 16c + (0, 4, 8, 12): the
64 bytes are four rows of the same 16, each shifted by one (row 0 is X1 Y1 Z1 R1 of x1, then of
y1, …). The shifted copies are read, as MMDAgent does, because MMD reuses bytes 2 and 3 of row 0
for a physics switch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmd_loader.binary import BoundedReader, FormatError
from mmd_loader.errors import MotionLoadError, quote
from mmd_loader.motion import (
    LINEAR_CURVE,
    NAME_BYTES,
    BoneKeys,
    MorphKeys,
    Motion,
    decode_name,
)

VMD_MAGIC = b"Vocaloid Motion Data "
HEADERS = {b"Vocaloid Motion Data 0002": ("0002", 20), b"Vocaloid Motion Data file": ("0001", 10)}
HEADER_BYTES = 30
MAX_KEYFRAMES = 16_000_000  # per section (the bytes bound it first: 16M bone keys are 1.8 GB)
BONE_RECORD = np.dtype(
    [
        ("name", f"S{NAME_BYTES}"),
        ("frame", "<u4"),
        ("position", "<f4", (3,)),
        ("rotation", "<f4", (4,)),
        ("interpolation", "u1", (64,)),
    ]
)
MORPH_RECORD = np.dtype([("name", f"S{NAME_BYTES}"), ("frame", "<u4"), ("weight", "<f4")])
CAMERA_BYTES, LIGHT_BYTES, SHADOW_BYTES = 61, 28, 9
IK_ENTRY_BYTES = 21  # an IK bone's name (20) and its on/off flag
# curves[c, j] = interpolation[16c + 4j]: the diagonal of the four shifted rows
_CURVE_BYTES = 16 * np.arange(4)[:, None] + 4 * np.arange(4)[None, :]


def parse_vmd(data: bytes, path: Path) -> Motion:
    """Parse VMD bytes; every failure is a MotionLoadError with its byte offset."""
    try:
        return _parse(data, path)
    except FormatError as error:
        raise MotionLoadError(path, error.message, error.offset) from None


def _parse(data: bytes, path: Path) -> Motion:
    r = BoundedReader(data)
    header = bytes(r.take(HEADER_BYTES, "the header")).split(b"\0", 1)[0]
    if header not in HEADERS:
        raise r.fail(f"unknown VMD header {quote(header.decode('latin-1'))}", 0)
    version, name_bytes = HEADERS[header]
    model_name = decode_name(bytes(r.take(name_bytes, "the model name")))
    warnings: list[str] = []

    n = r.count(4, BONE_RECORD.itemsize, MAX_KEYFRAMES, "bone keyframe", unsigned=True)
    bones = r.array(BONE_RECORD, n, "bone keyframes")
    morphs = np.zeros(0, MORPH_RECORD)
    if r.remaining:
        n = r.count(4, MORPH_RECORD.itemsize, MAX_KEYFRAMES, "morph keyframe", unsigned=True)
        morphs = r.array(MORPH_RECORD, n, "morph keyframes")
    counts = _read_tail(r, warnings)

    bone_names, bone_raw, bone_track = _names(bones["name"])
    morph_names, morph_raw, morph_track = _names(morphs["name"])
    position = bones["position"].astype(np.float32)
    rotation = bones["rotation"].astype(np.float32)
    with np.errstate(invalid="ignore"):  # signalling NaNs in garbage files
        position[:, 2] *= -1  # left-handed → right-handed, as models are
        rotation[:, :2] *= -1
    return Motion(
        path=path,
        format="vmd",
        version=version,
        model_name=model_name,
        bone_names=bone_names,
        bone_raw=bone_raw,
        bones=BoneKeys(
            bone_track,
            bones["frame"].astype(np.int64),
            position,
            rotation,
            bones["interpolation"][:, _CURVE_BYTES],
        ),
        morph_names=morph_names,
        morph_raw=morph_raw,
        morphs=MorphKeys(
            morph_track, morphs["frame"].astype(np.int64), morphs["weight"].astype(np.float32)
        ),
        warnings=warnings,
        **counts,
    )


def _read_tail(r: BoundedReader, warnings: list[str]) -> dict[str, int]:
    """Counts of the camera, light, self-shadow and IK sections, each read past; a section the
    file ends before is absent, one it ends inside ends the file with a warning."""
    counts = {"camera_keys": 0, "light_keys": 0, "shadow_keys": 0, "ik_keys": 0}
    sections = (
        ("camera_keys", "camera", CAMERA_BYTES),
        ("light_keys", "light", LIGHT_BYTES),
        ("shadow_keys", "self-shadow", SHADOW_BYTES),
    )
    try:
        for key, what, size in sections:
            if r.is_end():
                return counts
            n = r.count(4, size, MAX_KEYFRAMES, f"{what} keyframe", unsigned=True)
            r.skip(n * size, f"{what} keyframes")
            counts[key] = n
        if r.is_end():
            return counts
        n = r.count(4, 9, MAX_KEYFRAMES, "IK keyframe", unsigned=True)
        for _ in range(n):
            r.skip(5, "an IK keyframe")  # frame, shown
            k = r.count(4, IK_ENTRY_BYTES, MAX_KEYFRAMES, "IK bone", unsigned=True)
            r.skip(k * IK_ENTRY_BYTES, "IK bones")
        counts["ik_keys"] = n
        if not r.is_end():
            warnings.append(f"{r.remaining} bytes after the last section, ignored")
    except FormatError as error:
        warnings.append(f"at byte {error.offset}: {error.message}; the rest is ignored")
    return counts


def _names(raw: np.ndarray) -> tuple[list[str], list[bytes], np.ndarray]:
    """(decoded names, stored names, per-keyframe index) with names in order of first
    appearance. A name field ends at its first NUL (MMD leaves garbage after it). Files keep a
    bone's keys together, so names are compared once per run of equal fields."""
    if not len(raw):
        return [], [], np.zeros(0, np.int32)
    fields = np.ascontiguousarray(raw)
    octets = fields.view(np.uint8).reshape(len(fields), -1)
    new_run = np.ones(len(fields), bool)
    new_run[1:] = np.any(octets[1:] != octets[:-1], axis=1)
    starts = np.flatnonzero(new_run)
    unique, first, inverse = np.unique(fields[starts], return_index=True, return_inverse=True)
    index: dict[bytes, int] = {}
    remap = np.empty(len(unique), np.int32)
    for i in np.argsort(first, kind="stable").tolist():
        cut = bytes(unique[i]).split(b"\0", 1)[0]
        remap[i] = index.setdefault(cut, len(index))
    stored = list(index)
    per_run = remap[inverse.reshape(-1)]
    return [decode_name(b) for b in stored], stored, per_run[np.cumsum(new_run) - 1]


# --- writing (tests, benchmarks, the README's media) -----------------------------------------


@dataclass(frozen=True)
class VmdBoneFrame:
    """One bone keyframe as the file stores it: MMD's left-handed frame, the quaternion
    (x, y, z, w), and the four curves (X, Y, Z, rotation) as (x1, y1, x2, y2) in 0..127."""

    name: str
    frame: int
    position: Sequence[float] = (0.0, 0.0, 0.0)
    rotation: Sequence[float] = (0.0, 0.0, 0.0, 1.0)
    curves: Sequence[Sequence[int]] = (LINEAR_CURVE,) * 4


@dataclass(frozen=True)
class VmdMorphFrame:
    name: str
    frame: int
    weight: float


def interpolation_block(curves: Sequence[Sequence[int]]) -> bytes:
    """The 64-byte interpolation of four curves, laid out as MMD writes it (four rows, each
    the first shifted left by one more byte)."""
    row = bytes(int(curves[c][j]) for j in range(4) for c in range(4))
    pad = b"\x01\x00\x00"
    return b"".join(row[k:] + pad[:k] for k in range(4))


def encode_vmd(
    model_name: str,
    bones: Iterable[VmdBoneFrame] = (),
    morphs: Iterable[VmdMorphFrame] = (),
    *,
    cameras: int = 0,
    lights: int = 0,
    shadows: int = 0,
    tail: bool = True,
    old: bool = False,
) -> bytes:
    """A VMD file's bytes. Names are written in cp932 and cut at 15 bytes (20 or 10 for the
    model name), as MMD does. `cameras`, `lights`, `shadows` write that many zero keyframes;
    `tail=False` stops after the morphs, as old exporters did; `old` writes the 0001 header."""
    version = b"Vocaloid Motion Data file" if old else b"Vocaloid Motion Data 0002"
    name_bytes = 10 if old else 20
    bones, morphs = list(bones), list(morphs)
    b = np.zeros(len(bones), BONE_RECORD)
    for i, key in enumerate(bones):
        b[i] = (
            key.name.encode("cp932")[:NAME_BYTES],
            key.frame,
            key.position,
            key.rotation,
            np.frombuffer(interpolation_block(key.curves), np.uint8),
        )
    m = np.zeros(len(morphs), MORPH_RECORD)
    for i, key in enumerate(morphs):
        m[i] = (key.name.encode("cp932")[:NAME_BYTES], key.frame, key.weight)
    parts = [
        version.ljust(HEADER_BYTES, b"\0"),
        model_name.encode("cp932")[:name_bytes].ljust(name_bytes, b"\0"),
        np.uint32(len(b)).tobytes(),
        b.tobytes(),
        np.uint32(len(m)).tobytes(),
        m.tobytes(),
    ]
    if tail:
        for count, size in ((cameras, CAMERA_BYTES), (lights, LIGHT_BYTES)):
            parts += [np.uint32(count).tobytes(), bytes(count * size)]
        parts += [np.uint32(shadows).tobytes(), bytes(shadows * SHADOW_BYTES)]
        parts.append(np.uint32(0).tobytes())  # IK keyframes
    return b"".join(parts)


def write_vmd(path: str | Path, data: bytes) -> Path:
    """Write `encode_vmd`'s bytes to `path` (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
