"""PMD parsing into a `Model`.

pymeshio's PMD reader is extended from outside: `PmdReader` subclasses it (and the bounded
reader) and keeps its material, IK and rigid body/joint readers; vertices, triangles and face
morphs are read straight into numpy (fixed-size records), names are decoded from Shift-JIS
(cut at the first NUL, so garbage after it is ignored), and the optional English, toon and
physics sections are read only when the file goes on.

PMD's face table is turned into ordinary vertex morphs: its `base` entry holds absolute
positions of the face vertices and every other entry indexes into it, so each other entry
becomes a VERTEX morph on absolute vertex indices and `base` itself is dropped.

Bone types become PMX flags: 0 rotate, 1 rotate+move, 2 IK, 4 under IK, 5 rotation influenced
(append rotation from the bone in the IK field, ratio 1), 6 IK target (hidden), 7 invisible,
8 twist (fixed axis towards the tail), 9 rotation-linked (append rotation from the tail bone
with ratio IK field / 100). IK chains get MMD's implicit knee limit (a ひざ link bends about x
only), and an IK's per-iteration limit is PMD's control weight × 4 radians, as MMD reads it.
Coordinates are mirrored into the right-handed frame as in `mmd_loader.pmx`. Indices read from
the file follow the rule in `mmd_loader.model`'s docstring: an optional reference that points
nowhere (a face morph entry or base vertex, a bone's parent/tail/influencing bone, an IK bone,
target or link, a vertex's bone) is dropped with a warning; a triangle's vertex or a material's
face range out of range is an error with its byte offset.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from pymeshio import pmd as pmd_data
from pymeshio.pmd import reader as pmd_reader

from mmd_loader.binary import (
    MAX_INDICES,
    MAX_ITEMS,
    MAX_MORPH_OFFSETS,
    MAX_VERTICES,
    BoundedReader,
)
from mmd_loader.errors import quote
from mmd_loader.model import (
    IK,
    Bone,
    BoneFlag,
    Deform,
    IKLink,
    Material,
    MaterialFlag,
    Model,
    Morph,
    MorphKind,
    Panel,
    SphereMode,
    add_warning,
    check_bone_references,
    drop_dangling_weights,
)

VERTEX = np.dtype(
    [
        ("pos", "<f4", (3,)),
        ("nrm", "<f4", (3,)),
        ("uv", "<f4", (2,)),
        ("b", "<u2", (2,)),
        ("w", "u1"),
        ("no_edge", "u1"),
    ]
)
MORPH_OFFSET = np.dtype([("i", "<u4"), ("o", "<f4", (3,))])
NO_BONE = 0xFFFF
KNEE_MIN = (-math.pi, 0.0, 0.0)  # MMD's implicit knee limit, in the file's (left-handed) frame
KNEE_MAX = (-math.radians(0.5), 0.0, 0.0)

_BASIC = BoneFlag.ROTATABLE | BoneFlag.VISIBLE | BoneFlag.ENABLED
_TYPE_FLAGS = {
    0: _BASIC,
    1: _BASIC | BoneFlag.TRANSLATABLE,
    2: _BASIC | BoneFlag.TRANSLATABLE | BoneFlag.IK,
    3: _BASIC,
    4: _BASIC,
    5: _BASIC | BoneFlag.APPEND_ROTATE,
    6: BoneFlag.ROTATABLE | BoneFlag.ENABLED,
    7: BoneFlag.ROTATABLE | BoneFlag.ENABLED,
    8: _BASIC | BoneFlag.FIXED_AXIS,
    9: BoneFlag.ROTATABLE | BoneFlag.ENABLED | BoneFlag.APPEND_ROTATE,
}


def sjis(raw: bytes) -> str:
    """A fixed-size PMD name: Shift-JIS (cp932), cut at the first NUL."""
    return raw.split(b"\x00", 1)[0].decode("cp932", errors="replace")


class PmdReader(BoundedReader, pmd_reader.Reader):
    """pymeshio's PMD section readers on a bounded buffer."""

    def __init__(self, data: bytes) -> None:
        BoundedReader.__init__(self, data)
        if bytes(self.take(3, "signature")) != b"Pmd":
            raise self.fail("not a PMD file (bad signature)", 0)
        self.version = round(self.read_float(), 3)

    def name(self, size: int) -> str:
        return sjis(bytes(self.take(size, "name")))

    def read_bone(self) -> pmd_data.Bone:  # pymeshio's raises a bare Exception on type 3
        name = self.read_text(20)
        parent, tail, kind = self.read_uint(2), self.read_uint(2), self.read_uint(1)
        bone = pmd_data.Bone(name, kind)
        bone.parent_index, bone.tail_index = parent, tail
        bone.ik_index = self.read_uint(2)
        bone.pos = self.read_vector3()
        return bone


def parse_pmd(data: bytes, path: Path) -> Model:
    """Parse PMD bytes. Raises FormatError on bad input."""
    r = PmdReader(data)
    name, comment = r.name(20), r.name(256)

    n = r.count(4, VERTEX.itemsize, MAX_VERTICES, "vertex", unsigned=True)
    v = r.array(VERTEX, n, "vertices")
    at = r.pos
    n = r.count(4, 2, MAX_INDICES, "vertex index", unsigned=True)
    if n % 3:
        raise r.fail(f"vertex index count {n} is not a multiple of 3", at)
    at = r.pos
    indices = r.array(np.dtype("<u2"), n, "triangles")
    bad = np.flatnonzero(indices >= len(v))
    if len(bad):
        i = int(bad[0])
        raise r.fail(f"triangle vertex index {indices[i]} out of range [0, {len(v)})", at + 2 * i)
    triangles = indices.astype(np.int32).reshape(-1, 3)

    n = r.count(4, 70, MAX_ITEMS, "material", unsigned=True)
    raw_materials = [r.read_material() for _ in range(n)]
    n = r.count(2, 39, MAX_ITEMS, "bone", unsigned=True)
    bone_at, raw_bones = [], []
    for _ in range(n):
        bone_at.append(r.pos)
        raw_bones.append(r.read_bone())
    n = r.count(2, 11, MAX_ITEMS, "IK", unsigned=True)
    iks = [r.read_ik() for _ in range(n)]
    n = r.count(2, 25, MAX_ITEMS, "morph", unsigned=True)
    raw_morphs = []
    for _ in range(n):
        at, morph_name = r.pos, r.name(20)
        count = r.count(4, MORPH_OFFSET.itemsize + 1, MAX_MORPH_OFFSETS, "morph offset", True)
        kind = r.read_uint(1)
        raw_morphs.append((at, morph_name, kind, r.array(MORPH_OFFSET, count, "morph offsets")))
    r.skip(2 * r.count(1, 2, 255, "morph display", unsigned=True), "morph display list")
    groups = r.count(1, 50, 255, "bone group", unsigned=True)
    r.skip(50 * groups, "bone group names")
    r.skip(3 * r.count(4, 3, MAX_ITEMS, "bone display", unsigned=True), "bone display list")

    english_name = english_comment = ""
    english_bones = [""] * len(raw_bones)
    english_morphs = [""] * max(len(raw_morphs) - 1, 0)
    if not r.is_end() and r.read_uint(1) == 1:
        english_name = r.name(20)
        english_comment = r.name(256)
        english_bones = [r.name(20) for _ in raw_bones]
        english_morphs = [r.name(20) for _ in english_morphs]
        r.skip(50 * groups, "English bone group names")
    toon_textures: list[str] = []
    if not r.is_end():
        toon_textures = [r.name(100) for _ in range(10)]
    rigid_bodies = joints = 0
    if not r.is_end():
        rigid_bodies = r.count(4, 83, MAX_ITEMS, "rigid body", unsigned=True)
        for _ in range(rigid_bodies):
            r.read_rigidbody()
        joints = r.count(4, 124, MAX_ITEMS, "joint", unsigned=True)
        for _ in range(joints):
            r.read_joint()

    warnings: list[str] = []
    bones = _bones(r, raw_bones, bone_at, english_bones, warnings)
    _add_iks(bones, iks, warnings)
    check_bone_references(bones, warnings)
    bone_indices = np.zeros((len(v), 4), np.int32)
    bone_indices[:, :2] = v["b"]
    w = np.minimum(v["w"], 100).astype(np.float32) / 100.0
    bone_weights = np.zeros((len(v), 4), np.float32)
    bone_weights[:, 0], bone_weights[:, 1] = w, 1.0 - w
    used = np.arange(4) < 2
    changed = drop_dangling_weights(bone_indices, bone_weights, used, len(bones), warnings)
    if changed.any():  # the other bone takes the whole weight; none left: follow bone 0
        total = bone_weights[changed].sum(axis=1, keepdims=True)
        safe = np.where(total > 0, total, 1.0)
        fixed = np.where(total > 0, bone_weights[changed] / safe, [1.0, 0.0, 0.0, 0.0])
        bone_weights[changed] = fixed
    positions = v["pos"].astype(np.float32)
    normals = v["nrm"].astype(np.float32)
    with np.errstate(invalid="ignore"):  # signalling NaNs in garbage files
        positions[:, 2] *= -1
        normals[:, 2] *= -1

    return Model(
        path=path,
        format="pmd",
        version=r.version,
        name=name,
        english_name=english_name,
        comment=comment,
        english_comment=english_comment,
        positions=positions,
        normals=normals,
        uvs=v["uv"].astype(np.float32),
        extra_uvs=np.zeros((len(v), 0, 4), np.float32),
        bone_indices=bone_indices,
        bone_weights=bone_weights,
        deform=np.full(len(v), Deform.BDEF2, np.uint8),
        sdef=np.zeros((len(v), 3, 3), np.float32),
        edge_scale=(v["no_edge"] == 0).astype(np.float32),
        triangles=triangles,
        materials=_materials(r, raw_materials, toon_textures, len(triangles)),
        bones=bones,
        morphs=_morphs(raw_morphs, english_morphs, len(v), warnings),
        toon_textures=toon_textures,
        rigid_body_count=rigid_bodies,
        joint_count=joints,
        warnings=warnings,
    )


def _vec(v) -> np.ndarray:
    return np.array([v.x, v.y, -v.z], np.float32)


def _materials(
    r: PmdReader, raw: list[pmd_data.Material], toons: list[str], n_faces: int
) -> list[Material]:
    out, face = [], 0
    for i, m in enumerate(raw):
        if m.vertex_count % 3:
            raise r.fail(f"material {i} has {m.vertex_count} indices (not 3k)", None)
        count = m.vertex_count // 3
        if face + count > n_faces:
            raise r.fail(f"material {i} ends at face {face + count}, the model has {n_faces}")
        texture_ref = sphere_ref = None
        sphere_mode = SphereMode.NONE
        for part in sjis(m.texture_file).split("*"):
            if part.lower().endswith((".sph", ".spa")):
                sphere_ref = part
                sphere_mode = (
                    SphereMode.ADD if part.lower().endswith(".spa") else SphereMode.MULTIPLY
                )
            elif part:
                texture_ref = part
        toon_shared = toon_ref = None
        if 0 <= m.toon_index <= 9:
            toon_shared = m.toon_index
            custom = toons[toon_shared] if toon_shared < len(toons) else ""
            toon_ref = custom or f"toon{toon_shared + 1:02d}.bmp"
        flags = MaterialFlag.GROUND_SHADOW | MaterialFlag.SELF_SHADOW_MAP | MaterialFlag.SELF_SHADOW
        if m.edge_flag:
            flags |= MaterialFlag.EDGE
        if m.alpha < 1.0:
            flags |= MaterialFlag.DOUBLE_SIDED
        d, s, a = m.diffuse_color, m.specular_color, m.ambient_color
        out.append(
            Material(
                name=f"material{i}",
                english_name="",
                diffuse=np.array([d.r, d.g, d.b, m.alpha], np.float32),
                specular=np.array([s.r, s.g, s.b], np.float32),
                specular_power=float(m.specular_factor),
                ambient=np.array([a.r, a.g, a.b], np.float32),
                flags=flags,
                edge_color=np.array([0.0, 0.0, 0.0, 1.0], np.float32),
                edge_size=1.0,
                face_start=face,
                face_count=count,
                texture_ref=texture_ref,
                sphere_ref=sphere_ref,
                sphere_mode=sphere_mode,
                toon_ref=toon_ref,
                toon_shared=toon_shared,
            )
        )
        face += count
    return out


def _index(value: int) -> int:
    """A PMD u16 bone reference as a bone index: -1 for none (0xFFFF)."""
    return -1 if value == NO_BONE else value


def _bones(
    r: PmdReader,
    raw: list[pmd_data.Bone],
    bone_at: list[int],
    english: list[str],
    warnings: list[str],
) -> list[Bone]:
    """PMD bones as PMX-flagged bones; references are checked after (`check_bone_references`)."""
    n = len(raw)
    out = []
    for i, b in enumerate(raw):
        name = sjis(b.name)
        parent, tail, ik = (_index(x) for x in (b.parent_index, b.tail_index, b.ik_index))
        if b.type not in _TYPE_FLAGS:
            raise r.fail(f"bone {quote(name)}: unknown PMD bone type {b.type}", bone_at[i] + 24)
        flags = _TYPE_FLAGS[b.type]
        bone = Bone(name, english[i], parent, _vec(b.pos), flags)
        if tail >= n:
            add_warning(
                warnings,
                f"bone {quote(name)}: tail bone {tail} points nowhere (the model has {n} bones), "
                "dropped",
            )
            tail = -1
        if tail > 0:
            bone.flags |= BoneFlag.TAIL_IS_BONE
            bone.tail_bone = tail
        else:
            bone.tail_offset = np.zeros(3, np.float32)
        if b.type == 5:
            bone.append_parent, bone.append_ratio = ik, 1.0
        elif b.type == 9:
            bone.append_parent, bone.append_ratio = tail, b.ik_index / 100.0
        out.append(bone)
    for bone in out:
        if not -1 <= bone.append_parent < n:
            add_warning(
                warnings,
                f"bone {quote(bone.name)}: influencing bone {bone.append_parent} points nowhere "
                f"(the model has {n} bones), dropped",
            )
            bone.append_parent, bone.append_ratio = -1, 0.0
        if bone.flags & BoneFlag.FIXED_AXIS:
            if bone.tail_bone >= 0:
                axis = out[bone.tail_bone].position - bone.position
                length = float(np.linalg.norm(axis))
                bone.fixed_axis = axis / length if length > 0 else np.zeros(3, np.float32)
            else:
                bone.flags &= ~BoneFlag.FIXED_AXIS
        if bone.flags & BoneFlag.APPEND_ROTATE and bone.append_parent < 0:
            bone.flags &= ~BoneFlag.APPEND_ROTATE
    return out


def _add_iks(bones: list[Bone], iks: list[pmd_data.IK], warnings: list[str]) -> None:
    """PMD's IK table onto its bones. An IK whose bone or target does not exist is dropped, and
    so is a link to a bone that does not exist (warnings)."""
    n = len(bones)
    knee_lo = np.array([-KNEE_MAX[0], -KNEE_MAX[1], KNEE_MIN[2]], np.float32)
    knee_hi = np.array([-KNEE_MIN[0], -KNEE_MIN[1], KNEE_MAX[2]], np.float32)
    for k, ik in enumerate(iks):
        if not (0 <= ik.index < n and 0 <= ik.target < n):
            add_warning(
                warnings,
                f"IK {k}: bone {ik.index} or target {ik.target} points nowhere (the model has "
                f"{n} bones), IK dropped",
            )
            continue
        links = []
        for child in ik.children:
            if not 0 <= child < n:
                add_warning(
                    warnings,
                    f"IK {k} of bone {quote(bones[ik.index].name)}: link {child} points nowhere "
                    f"(the model has {n} bones), dropped",
                )
            elif "ひざ" in bones[child].name:
                links.append(IKLink(child, knee_lo.copy(), knee_hi.copy()))
            else:
                links.append(IKLink(child))
        bone = bones[ik.index]
        bone.flags |= BoneFlag.IK
        bone.ik = IK(ik.target, ik.iterations, float(ik.weight) * 4.0, links)


def _morphs(
    raw: list[tuple], english: list[str], n_vertices: int, warnings: list[str]
) -> list[Morph]:
    """PMD's face table as VERTEX morphs on absolute vertex indices (see the module docstring).

    A base entry naming a vertex that does not exist is dropped, and with it every morph entry
    that indexes it; so is a morph entry indexing past the base (warnings). Without a base
    entry no face morph can be resolved: they are all dropped (one warning).
    """
    base = next((m for m in raw if m[2] == 0), None)
    if base is None:
        if any(len(m[3]) for m in raw):
            add_warning(warnings, "face morphs without a base entry: every face morph dropped")
        return []
    _, _, _, base_rec = base
    base_index = base_rec["i"].astype(np.int64)
    base_ok = base_index < n_vertices
    if not base_ok.all():
        first = int(np.flatnonzero(~base_ok)[0])
        add_warning(
            warnings,
            f"face morph base entry {first} names vertex {int(base_index[first])} (the model has "
            f"{n_vertices}): {int((~base_ok).sum())} base entries dropped",
        )
    out = []
    names = iter(english)
    for _, name, kind, rec in raw:
        if rec is base_rec:
            continue
        local = rec["i"].astype(np.int64)
        inside = local < len(base_index)
        keep = inside.copy()
        keep[inside] = base_ok[local[inside]]
        if not keep.all():
            first = int(np.flatnonzero(~keep)[0])
            add_warning(
                warnings,
                f"morph {quote(name)} entry {first}: base entry {int(local[first])} points nowhere "
                f"(the base has {len(base_index)}, {int(base_ok.sum())} usable), "
                f"{int((~keep).sum())} entries skipped",
            )
        offsets = rec["o"][keep].astype(np.float32)
        offsets[:, 2] *= -1
        panel = Panel(kind) if kind <= 4 else Panel.OTHER
        morph = Morph(name, next(names, ""), panel, MorphKind.VERTEX)
        morph.indices = base_index[local[keep]].astype(np.int32)
        morph.offsets = offsets
        out.append(morph)
    return out
