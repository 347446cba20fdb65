"""A small PMX 2.0 writer from numpy arrays (UTF-16LE text, no additional UVs, no physics);
vertex morphs and material morphs.

Arrays are in the FILE's frame (MMD's left-handed one: y up, the model faces -z), not the
right-handed frame `mmd_loader.load` returns. Vertex records are packed with numpy, so writing a
few thousand vertices takes milliseconds. pymeshio's writer is not used: it walks Python objects
vertex by vertex and needs its own model classes; the arrays here are what callers already have.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BDEF1, BDEF2, BDEF4 = 0, 1, 2


@dataclass
class PmxMaterial:
    name: str
    face_count: int  # triangles drawn by this material (the file stores 3x this)
    diffuse: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    specular: tuple[float, float, float] = (0.0, 0.0, 0.0)
    specular_power: float = 5.0
    ambient: tuple[float, float, float] = (0.5, 0.5, 0.5)
    flags: int = 0x02 | 0x04 | 0x08  # ground shadow, self shadow map, self shadow
    edge_color: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    edge_size: float = 1.0
    texture: int = -1  # index into PmxData.textures, -1 for none
    sphere: int = -1
    sphere_mode: int = 0
    toon_shared: int | None = 0  # 0..9 for toon01..toon10.bmp; None with toon = a texture index
    toon: int = -1
    english_name: str = ""
    comment: str = ""


@dataclass
class PmxBone:
    name: str
    parent: int
    position: tuple[float, float, float]
    flags: int = 0x0002 | 0x0008 | 0x0010  # rotatable, visible, enabled
    tail_bone: int = -1  # used when flags has 0x0001
    tail_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    english_name: str = ""
    layer: int = 0
    append_parent: int = -1  # with flags 0x0100 (append rotation): the bone it follows
    append_ratio: float = 1.0


@dataclass
class PmxVertexMorph:
    name: str
    panel: int  # 1 eyebrow, 2 eye, 3 mouth, 4 other
    indices: np.ndarray  # (N,) vertex indices
    offsets: np.ndarray  # (N, 3)
    english_name: str = ""


@dataclass
class PmxMaterialOffset:
    """One entry of a material morph: `operation` 0 multiplies, 1 adds, at weight 1."""

    material: int  # material index, -1 for every material
    operation: int = 1
    diffuse: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    specular: tuple[float, float, float] = (0.0, 0.0, 0.0)
    specular_power: float = 0.0
    ambient: tuple[float, float, float] = (0.0, 0.0, 0.0)
    edge_color: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    edge_size: float = 0.0
    texture_tint: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    sphere_tint: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    toon_tint: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


@dataclass
class PmxMaterialMorph:
    """A material morph (PMX type 8): e.g. an overlay's alpha raised from 0 (add (0, 0, 0, a))."""

    name: str
    panel: int  # 1 eyebrow, 2 eye, 3 mouth, 4 other
    offsets: list[PmxMaterialOffset]
    english_name: str = ""


@dataclass
class PmxData:
    """Everything one PMX file holds. Per-vertex skinning: `deform` picks BDEF1/2/4 per vertex;
    BDEF1 uses `bone_indices[:, 0]`, BDEF2 the first two with `bone_weights[:, 0]` as the first
    bone's weight, BDEF4 all four."""

    name: str
    positions: np.ndarray  # (V, 3)
    normals: np.ndarray  # (V, 3)
    uvs: np.ndarray  # (V, 2)
    bone_indices: np.ndarray  # (V, 4)
    bone_weights: np.ndarray  # (V, 4)
    deform: np.ndarray  # (V,) values BDEF1, BDEF2, BDEF4
    triangles: np.ndarray  # (F, 3), grouped by material in material order
    materials: list[PmxMaterial]
    bones: list[PmxBone]
    morphs: list[PmxVertexMorph | PmxMaterialMorph] = field(default_factory=list)
    textures: list[str] = field(default_factory=list)
    edge_scale: np.ndarray | None = None  # (V,), default 1
    english_name: str = ""
    comment: str = ""
    english_comment: str = ""


def _index_size(count: int, unsigned: bool) -> int:
    """Smallest PMX index width for `count` items (vertex indices are unsigned, others signed)."""
    limit_1, limit_2 = (256, 65536) if unsigned else (128, 32768)
    return 1 if count < limit_1 else 2 if count < limit_2 else 4


_SIGNED = {1: "b", 2: "h", 4: "i"}
_UNSIGNED = {1: "B", 2: "H", 4: "i"}


def _text(value: str) -> bytes:
    data = value.encode("utf-16-le")
    return struct.pack("<i", len(data)) + data


def _check(data: PmxData) -> None:
    n = len(data.positions)
    for label, arr, shape in (
        ("positions", data.positions, (n, 3)),
        ("normals", data.normals, (n, 3)),
        ("uvs", data.uvs, (n, 2)),
        ("bone_indices", data.bone_indices, (n, 4)),
        ("bone_weights", data.bone_weights, (n, 4)),
        ("deform", data.deform, (n,)),
    ):
        if np.shape(arr) != shape:
            raise ValueError(f"PMX {data.name!r}: {label} has shape {np.shape(arr)}, want {shape}")
    if not np.isin(data.deform, (BDEF1, BDEF2, BDEF4)).all():
        raise ValueError(f"PMX {data.name!r}: deform must be BDEF1, BDEF2 or BDEF4")
    if len(data.triangles) and (data.triangles.min() < 0 or data.triangles.max() >= n):
        raise ValueError(f"PMX {data.name!r}: a triangle indexes a vertex outside 0..{n - 1}")
    if sum(m.face_count for m in data.materials) != len(data.triangles):
        raise ValueError(f"PMX {data.name!r}: material face counts do not add up to the triangles")
    if data.bone_indices.size and (
        data.bone_indices.min() < 0 or data.bone_indices.max() >= len(data.bones)
    ):
        raise ValueError(f"PMX {data.name!r}: a vertex weights a bone that does not exist")
    for morph in data.morphs:
        if isinstance(morph, PmxMaterialMorph):
            if any(not -1 <= o.material < len(data.materials) for o in morph.offsets):
                raise ValueError(
                    f"PMX {data.name!r}: material morph {morph.name!r} names a missing material"
                )
            if any(o.operation not in (0, 1) for o in morph.offsets):
                raise ValueError(f"PMX {data.name!r}: material morph {morph.name!r}: bad operation")
            continue
        if len(morph.indices) and (morph.indices.min() < 0 or morph.indices.max() >= n):
            raise ValueError(f"PMX {data.name!r}: morph {morph.name!r} indexes a missing vertex")
        if np.shape(morph.offsets) != (len(morph.indices), 3):
            raise ValueError(f"PMX {data.name!r}: morph {morph.name!r} offsets do not match")


def _vertex_block(data: PmxData, bone_size: int) -> bytes:
    """All vertex records, packed per deform type and scattered into file order."""
    n = len(data.positions)
    edge = np.ones(n, np.float32) if data.edge_scale is None else data.edge_scale
    layouts = {
        BDEF1: [("w", "u1"), ("b", f"<i{bone_size}")],
        BDEF2: [("w", "u1"), ("b", f"<i{bone_size}", (2,)), ("k", "<f4")],
        BDEF4: [("w", "u1"), ("b", f"<i{bone_size}", (4,)), ("k", "<f4", (4,))],
    }
    head = [("p", "<f4", (3,)), ("n", "<f4", (3,)), ("t", "<f4", (2,))]
    dtypes = {k: np.dtype([*head, *v, ("e", "<f4")]) for k, v in layouts.items()}
    sizes = np.array([dtypes[int(d)].itemsize for d in (BDEF1, BDEF2, BDEF4)])
    deform = np.asarray(data.deform, np.int64)
    record = sizes[deform]
    starts = np.concatenate([[0], np.cumsum(record)[:-1]]).astype(np.int64)
    out = np.zeros(int(record.sum()), np.uint8)
    for kind, dtype in dtypes.items():
        rows = np.flatnonzero(deform == kind)
        if not len(rows):
            continue
        rec = np.zeros(len(rows), dtype)
        rec["p"], rec["n"], rec["t"] = data.positions[rows], data.normals[rows], data.uvs[rows]
        rec["w"], rec["e"] = kind, edge[rows]
        if kind == BDEF1:
            rec["b"] = data.bone_indices[rows, 0]
        elif kind == BDEF2:
            rec["b"], rec["k"] = data.bone_indices[rows, :2], data.bone_weights[rows, 0]
        else:
            rec["b"], rec["k"] = data.bone_indices[rows], data.bone_weights[rows]
        raw = rec.view(np.uint8).reshape(len(rows), dtype.itemsize)
        out[starts[rows, None] + np.arange(dtype.itemsize)] = raw
    return struct.pack("<i", n) + out.tobytes()


def pmx_bytes(data: PmxData) -> bytes:
    """The PMX 2.0 file for `data`; raises ValueError naming the model on inconsistent input."""
    _check(data)
    vsize = _index_size(len(data.positions), unsigned=True)
    tsize = _index_size(len(data.textures), unsigned=False)
    msize = _index_size(len(data.materials), unsigned=False)
    bsize = _index_size(len(data.bones), unsigned=False)
    morph_size = _index_size(len(data.morphs), unsigned=False)
    tex, bone, morph_i = _SIGNED[tsize], _SIGNED[bsize], _SIGNED[morph_size]

    parts = [b"PMX ", struct.pack("<fb", 2.0, 8)]
    parts.append(bytes([0, 0, vsize, tsize, msize, bsize, morph_size, 1]))
    for s in (data.name, data.english_name, data.comment, data.english_comment):
        parts.append(_text(s))
    parts.append(_vertex_block(data, bsize))

    tri = np.ascontiguousarray(data.triangles, dtype=f"<u{vsize}" if vsize < 4 else "<i4")
    parts += [struct.pack("<i", tri.size), tri.tobytes()]

    parts.append(struct.pack("<i", len(data.textures)))
    parts += [_text(t) for t in data.textures]

    parts.append(struct.pack("<i", len(data.materials)))
    for m in data.materials:
        parts += [_text(m.name), _text(m.english_name)]
        parts.append(
            struct.pack("<4f3ff3fB", *m.diffuse, *m.specular, m.specular_power, *m.ambient, m.flags)
        )
        parts.append(
            struct.pack(
                f"<4ff{tex}{tex}B", *m.edge_color, m.edge_size, m.texture, m.sphere, m.sphere_mode
            )
        )
        if m.toon_shared is None:
            parts.append(struct.pack(f"<B{tex}", 0, m.toon))
        else:
            parts.append(struct.pack("<BB", 1, m.toon_shared))
        parts += [_text(m.comment), struct.pack("<i", 3 * m.face_count)]

    parts.append(struct.pack("<i", len(data.bones)))
    for b in data.bones:
        parts += [_text(b.name), _text(b.english_name)]
        parts.append(struct.pack(f"<3f{bone}iH", *b.position, b.parent, b.layer, b.flags))
        if b.flags & 0x0001:
            parts.append(struct.pack(f"<{bone}", b.tail_bone))
        else:
            parts.append(struct.pack("<3f", *b.tail_offset))
        if b.flags & ~0x011F:
            raise ValueError(f"PMX {data.name!r}: bone {b.name!r} uses flags this writer lacks")
        if b.flags & 0x0100:
            if not 0 <= b.append_parent < len(data.bones):
                raise ValueError(f"PMX {data.name!r}: bone {b.name!r} appends a missing bone")
            parts.append(struct.pack(f"<{bone}f", b.append_parent, b.append_ratio))

    vcode = f"<{_UNSIGNED[vsize]}" if vsize < 4 else "<i"
    parts.append(struct.pack("<i", len(data.morphs)))
    for m in data.morphs:
        if isinstance(m, PmxMaterialMorph):
            parts += [_text(m.name), _text(m.english_name)]
            parts.append(struct.pack("<BBi", m.panel, 8, len(m.offsets)))
            for o in m.offsets:
                parts.append(struct.pack(f"<{_SIGNED[msize]}B", o.material, o.operation))
                parts.append(
                    struct.pack(
                        "<4f3ff3f4ff4f4f4f",
                        *o.diffuse,
                        *o.specular,
                        o.specular_power,
                        *o.ambient,
                        *o.edge_color,
                        o.edge_size,
                        *o.texture_tint,
                        *o.sphere_tint,
                        *o.toon_tint,
                    )
                )
            continue
        parts += [
            _text(m.name),
            _text(m.english_name),
            struct.pack("<BBi", m.panel, 1, len(m.indices)),
        ]
        rec = np.zeros(len(m.indices), [("i", vcode), ("o", "<f4", (3,))])
        rec["i"], rec["o"] = m.indices, m.offsets
        parts.append(rec.tobytes())

    # Display frames: MMD's two special ones (Root with the first bone, 表情 with every morph),
    # then one frame with the remaining bones.
    parts.append(struct.pack("<i", 3))
    parts += [_text("Root"), _text("Root"), struct.pack(f"<Bi B{bone}", 1, 1, 0, 0)]
    parts += [_text("表情"), _text("Exp"), struct.pack("<Bi", 1, len(data.morphs))]
    parts += [struct.pack(f"<B{morph_i}", 1, i) for i in range(len(data.morphs))]
    parts += [_text("体"), _text("Body"), struct.pack("<Bi", 0, len(data.bones) - 1)]
    parts += [struct.pack(f"<B{bone}", 0, i) for i in range(1, len(data.bones))]

    parts.append(struct.pack("<ii", 0, 0))  # rigid bodies, joints
    return b"".join(parts)


def write_pmx(path: Path, data: PmxData) -> Path:
    """Write `data` to `path` as PMX 2.0 and return the path."""
    path = Path(path)
    path.write_bytes(pmx_bytes(data))
    return path
