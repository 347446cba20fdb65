"""Procedural characters with hand-made morph records spliced into their PMX files, for tests of
hostile or broken input (group morph fan-outs and cycles, entries that point nowhere).

`pmx_writer` writes vertex morphs only; the records here are appended after them, so morph
indices of the writer's morphs stay as they were (まばたき is 0, ...).
"""

from __future__ import annotations

import struct
from pathlib import Path

from characters import build_character, save_png, spec_for_seed
from mmd_loader.pmx_writer import PmxVertexMorph, pmx_bytes

_SIGNED = {1: "b", 2: "h", 4: "i"}
_UNSIGNED = {1: "B", 2: "H", 4: "i"}
# header: "PMX " + version (4) + globals count (1) + encoding, extra UV, then the index sizes
VERTEX_SIZE_AT, MATERIAL_SIZE_AT, BONE_SIZE_AT, MORPH_SIZE_AT = 11, 13, 14, 15


def text(value: str) -> bytes:
    raw = value.encode("utf-16-le")
    return struct.pack("<i", len(raw)) + raw


def _record(name: str, panel: int, kind: int, entries: list[bytes]) -> bytes:
    return (
        text(name)
        + text("")
        + bytes([panel, kind])
        + struct.pack("<i", len(entries))
        + b"".join(entries)
    )


class Sizes:
    """The index sizes of a written PMX file, read from its header."""

    def __init__(self, data: bytes) -> None:
        self.vertex_size, self.material_size = data[VERTEX_SIZE_AT], data[MATERIAL_SIZE_AT]
        self.bone_size, self.morph_size = data[BONE_SIZE_AT], data[MORPH_SIZE_AT]

    def group(self, name: str, entries: list[tuple[int, float]], panel: int = 4) -> bytes:
        code = "<" + _SIGNED[self.morph_size] + "f"
        return _record(name, panel, 0, [struct.pack(code, i, w) for i, w in entries])

    def vertex(self, name: str, entries: list[tuple[int, tuple]], panel: int = 4) -> bytes:
        code = "<" + (_UNSIGNED if self.vertex_size < 4 else _SIGNED)[self.vertex_size] + "3f"
        return _record(name, panel, 1, [struct.pack(code, i, *o) for i, o in entries])

    def bone(self, name: str, bones: list[int]) -> bytes:
        code = "<" + _SIGNED[self.bone_size] + "7f"
        return _record(name, 4, 2, [struct.pack(code, b, 0, 0, 0, 0, 0, 0, 1) for b in bones])

    def material(self, name: str, materials: list[int]) -> bytes:
        code = "<" + _SIGNED[self.material_size] + "B28f"
        return _record(name, 4, 8, [struct.pack(code, m, 0, *[1.0] * 28) for m in materials])


def character_bytes(seed: int, pad_morphs: int = 0, texture_dir: str = "c_tex"):
    """(PMX bytes, PmxData, images) of a procedural character; `pad_morphs` empty vertex
    morphs are added so that the file's morph index size fits that many morphs."""
    import numpy as np

    data, images = build_character(spec_for_seed(seed), texture_dir)
    while len(data.morphs) < pad_morphs:
        empty = PmxVertexMorph(f"pad{len(data.morphs)}", 4, np.zeros(0, np.int32), np.zeros((0, 3)))
        data.morphs.append(empty)
    return pmx_bytes(data), data, images


def splice_morphs(raw: bytes, data, extra: list[bytes]) -> bytes:
    """`raw` (written from `data`) with the morph records `extra` appended to its morphs."""
    first = data.morphs[0]
    count = struct.pack("<i", len(data.morphs)) + text(first.name) + text(first.english_name)
    display = struct.pack("<i", 3) + text("Root") + text("Root")
    assert raw.count(count) == 1 and raw.count(display) == 1
    at, end = raw.index(count), raw.index(display)
    total = struct.pack("<i", len(data.morphs) + len(extra))
    return raw[:at] + total + raw[at + 4 : end] + b"".join(extra) + raw[end:]


def write_character_with(
    folder: Path, seed: int, extra_builder, pad_morphs: int = 0, name: str = "c.pmx"
) -> Path:
    """Write a character whose morphs are followed by `extra_builder(Sizes)`'s records."""
    raw, data, images = character_bytes(seed, pad_morphs)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "c_tex").mkdir(exist_ok=True)
    for file, pixels in images.items():
        save_png(folder / "c_tex" / file, pixels)
    path = folder / name
    path.write_bytes(splice_morphs(raw, data, extra_builder(Sizes(raw))))
    return path
