"""PMX 2.0/2.1 parsing into a `Model`.

pymeshio's PMX reader is extended from outside: `PmxReader` subclasses it (and the bounded
reader), keeps its material, bone, IK and rigid body/joint readers, and replaces what it gets
wrong or does slowly: the header (strict version/encoding checks, additional UVs), vertices and
morph offsets (read straight into numpy), the PMX 2.1 additions (QDEF, flip and impulse morphs,
soft bodies) and every count (checked before anything is allocated).

Coordinates are mirrored into the right-handed frame of `mmd_loader.model` (z negated).
Indices read from the file follow the rule in `mmd_loader.model`'s docstring: an optional
reference that points nowhere (a morph entry, a bone's parent/tail/append parent/IK, a vertex
weight, a material's texture) is dropped with a warning; a triangle's vertex or a material's
face range out of range is an error with its byte offset.
Rotation limits and angular quantities mirror as rotations do: angles about x and y change sign,
angles about z keep theirs, so an IK limit [min, max] becomes
[(-max_x, -max_y, min_z), (-min_x, -min_y, max_z)] and a torque (tx, ty, tz) becomes
(-tx, -ty, tz).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pymeshio import pmx as pmx_data
from pymeshio.pmx import reader as pmx_reader

from mmd_loader.binary import (
    MAX_INDICES,
    MAX_ITEMS,
    MAX_MORPH_OFFSETS,
    MAX_STRING_BYTES,
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
    MaterialMorphOffset,
    Model,
    Morph,
    MorphKind,
    Panel,
    SphereMode,
    add_warning,
    check_bone_references,
    drop_dangling_entries,
    drop_dangling_weights,
)

VERSIONS = (2.0, 2.1)
_SIGNED = {1: "i1", 2: "<i2", 4: "<i4"}
_VERTEX_INDEX = {1: "u1", 2: "<u2", 4: "<i4"}  # PMX: vertex indices unsigned below 4 bytes


class PmxReader(BoundedReader, pmx_reader.Reader):
    """pymeshio's PMX section readers on a bounded buffer, with the header checked strictly."""

    def __init__(self, data: bytes) -> None:
        BoundedReader.__init__(self, data)
        if bytes(self.take(4, "signature")) != b"PMX ":
            raise self.fail("not a PMX file (bad signature)", 0)
        at = self.pos
        version = round(self.read_float(), 3)
        if version not in VERSIONS:
            raise self.fail(f"unsupported PMX version {version} (expected 2.0 or 2.1)", at)
        self.version = version
        at = self.pos
        globals_size = self.read_uint(1)
        if globals_size < 8:
            raise self.fail(f"PMX header declares {globals_size} global bytes, needs 8", at)
        head = bytes(self.take(globals_size, "header"))
        encoding, self.extra_uv = head[0], head[1]
        if encoding not in (0, 1):
            raise self.fail(f"unknown text encoding {encoding} (0 UTF-16LE, 1 UTF-8)", at + 1)
        if self.extra_uv > 4:
            raise self.fail(f"additional UV count {self.extra_uv} (at most 4)", at + 2)
        self.encoding = "utf-16-le" if encoding == 0 else "utf-8"
        sizes = head[3:8]
        for k, size in enumerate(sizes):
            if size not in (1, 2, 4):
                raise self.fail(f"index size {size} is not 1, 2 or 4", at + 4 + k)
        vi, ti, mi, bi, morph_i, ri = head[2], *sizes
        if vi not in (1, 2, 4):
            raise self.fail(f"vertex index size {vi} is not 1, 2 or 4", at + 3)
        self.vi, self.ti, self.mi, self.bi, self.morph_i, self.ri = vi, ti, mi, bi, morph_i, ri
        self.read_vertex_index = (
            (lambda: self.read_uint(vi)) if vi < 4 else lambda: self.read_int(4)
        )
        self.read_texture_index = lambda: self.read_int(ti)
        self.read_material_index = lambda: self.read_int(mi)
        self.read_bone_index = lambda: self.read_int(bi)
        self.read_morph_index = lambda: self.read_int(morph_i)
        self.read_rigidbody_index = lambda: self.read_int(ri)

    def read_text(self) -> str:  # type: ignore[override]
        at = self.pos
        size = self.read_int(4)
        if size < 0 or size > MAX_STRING_BYTES:
            raise self.fail(f"string length {size} out of range 0..{MAX_STRING_BYTES}", at)
        return bytes(self.take(size, "string")).decode(self.encoding, errors="replace")

    def read_ik(self) -> pmx_data.Ik:
        ik = pmx_data.Ik(self.read_bone_index(), self.read_int(4), self.read_float())
        n = self.count(4, self.bi + 1, MAX_ITEMS, "IK link")
        ik.link = [self.read_ik_link() for _ in range(n)]
        return ik

    def read_display_slot(self) -> pmx_data.DisplaySlot:
        slot = pmx_data.DisplaySlot(self.read_text(), self.read_text(), self.read_int(1))
        n = self.count(4, 1 + min(self.bi, self.morph_i), MAX_ITEMS, "display slot entry")
        for _ in range(n):
            at = self.pos
            kind = self.read_uint(1)
            if kind > 1:
                raise self.fail(f"unknown display slot entry type {kind}", at)
            index = self.read_bone_index() if kind == 0 else self.read_morph_index()
            slot.references.append((kind, index))
        return slot

    def skip_soft_body(self) -> None:
        """Read past one PMX 2.1 soft body (thagen keeps only their count)."""
        self.read_text()
        self.read_text()
        self.skip(1, "soft body")  # shape
        self.read_material_index()
        self.skip(1 + 2 + 1 + 4 + 4 + 4 + 4 + 4 + 12 * 4 + 6 * 4 + 4 * 4 + 3 * 4, "soft body")
        n = self.count(4, self.ri + self.vi + 1, MAX_INDICES, "soft body anchor")
        self.skip(n * (self.ri + self.vi + 1), "soft body anchors")
        n = self.count(4, self.vi, MAX_INDICES, "soft body pin")
        self.skip(n * self.vi, "soft body pins")


def parse_pmx(data: bytes, path: Path) -> Model:
    """Parse PMX bytes. Raises FormatError (or pymeshio's ParseException) on bad input."""
    r = PmxReader(data)
    name, english_name, comment = r.read_text(), r.read_text(), r.read_text()
    english_comment = r.read_text()
    verts = _read_vertices(r)
    n_vertices = len(verts["positions"])

    at = r.pos
    n = r.count(4, r.vi, MAX_INDICES, "vertex index")
    if n % 3:
        raise r.fail(f"vertex index count {n} is not a multiple of 3", at)
    faces_at = r.pos
    indices = r.array(np.dtype(_VERTEX_INDEX[r.vi]), n, "triangles")
    _check_range(r, indices, n_vertices, "triangle vertex index", faces_at, r.vi)
    triangles = indices.astype(np.int32).reshape(-1, 3)

    textures = [r.read_text() for _ in range(r.count(4, 4, MAX_ITEMS, "texture"))]
    warnings: list[str] = []
    n = r.count(4, 84 + 2 * r.ti, MAX_ITEMS, "material")
    materials = _materials(r, n, textures, len(triangles), warnings)

    n = r.count(4, 26 + 2 * r.bi, MAX_ITEMS, "bone")
    bones = [_bone(r.read_bone()) for _ in range(n)]
    check_bone_references(bones, warnings)
    _check_skin(verts, len(bones), warnings)

    n = r.count(4, 14, MAX_ITEMS, "morph")
    morphs = [_read_morph(r) for _ in range(n)]

    n = r.count(4, 10, MAX_ITEMS, "display slot")
    for _ in range(n):
        r.read_display_slot()
    rigid_bodies = r.count(4, 69 + r.bi, MAX_ITEMS, "rigid body")
    for _ in range(rigid_bodies):
        r.read_rigidbody()
    joints = r.count(4, 105 + 2 * r.ri, MAX_ITEMS, "joint")
    for _ in range(joints):
        r.read_joint()
    soft_bodies = 0
    if r.version >= 2.1 and not r.is_end():
        soft_bodies = r.count(4, 150, MAX_ITEMS, "soft body")
        for _ in range(soft_bodies):
            r.skip_soft_body()

    sizes = {"vertex": n_vertices, "bone": len(bones), "material": len(materials)}
    sizes |= {"morph": len(morphs), "rigid body": rigid_bodies}
    for morph in morphs:
        drop_dangling_entries(morph, sizes, warnings)

    return Model(
        path=path,
        format="pmx",
        version=r.version,
        name=name,
        english_name=english_name,
        comment=comment,
        english_comment=english_comment,
        triangles=triangles,
        materials=materials,
        bones=bones,
        morphs=morphs,
        textures=textures,
        rigid_body_count=rigid_bodies,
        joint_count=joints,
        soft_body_count=soft_bodies,
        warnings=warnings,
        **{k: v for k, v in verts.items() if not k.startswith("_")},
    )


def _check_range(
    r: BoundedReader, values: np.ndarray, upper: int, what: str, at: int, stride: int, lower=0
) -> None:
    """Raise at the first value outside [lower, upper); `stride` bytes per value from `at`."""
    bad = np.flatnonzero((values < lower) | (values >= upper))
    if len(bad):
        i = int(bad[0])
        raise r.fail(f"{what} {int(values[i])} out of range [{lower}, {upper})", at + i * stride)


# --- vertices ------------------------------------------------------------------------------------


def _deform_fields(bone: str) -> dict[int, list[tuple]]:
    w4 = [("b", bone, (4,)), ("w", "<f4", (4,))]
    return {
        Deform.BDEF1: [("b", bone, (1,))],
        Deform.BDEF2: [("b", bone, (2,)), ("w", "<f4", (1,))],
        Deform.BDEF4: w4,
        Deform.SDEF: [("b", bone, (2,)), ("w", "<f4", (1,)), ("sdef", "<f4", (3, 3))],
        Deform.QDEF: w4,
    }


def _read_vertices(r: PmxReader) -> dict[str, np.ndarray]:
    """Read every vertex straight into arrays: one pass to find record starts, then one
    vectorised gather per deform type."""
    head = [("pos", "<f4", (3,)), ("nrm", "<f4", (3,)), ("uv", "<f4", (2,))]
    if r.extra_uv:
        head.append(("ex", "<f4", (r.extra_uv, 4)))
    head.append(("type", "u1"))
    tail = [("edge", "<f4")]
    dtypes = {t: np.dtype(head + f + tail) for t, f in _deform_fields(_SIGNED[r.bi]).items()}
    type_at = np.dtype(head).itemsize - 1
    sizes = [0] * 256
    for t, dt in dtypes.items():
        sizes[t] = dt.itemsize
    min_size = min(dt.itemsize for dt in dtypes.values())

    n = r.count(4, min_size, MAX_VERTICES, "vertex")
    data, pos, starts = r.data, r.pos, []
    append = starts.append
    try:
        for _ in range(n):
            size = sizes[data[pos + type_at]]
            if not size:
                raise r.fail(f"unknown deform type {data[pos + type_at]}", pos + type_at)
            append(pos)
            pos += size
    except IndexError:
        raise r.fail("file ends inside the vertices", r.end) from None
    if pos > r.end:
        raise r.fail("file ends inside the vertices", r.end)
    r.pos = pos

    start = np.asarray(starts, np.int64)
    buf = np.frombuffer(data, np.uint8)
    kinds = buf[start + type_at] if n else np.zeros(0, np.uint8)
    out = {
        "positions": np.zeros((n, 3), np.float32),
        "normals": np.zeros((n, 3), np.float32),
        "uvs": np.zeros((n, 2), np.float32),
        "extra_uvs": np.zeros((n, r.extra_uv, 4), np.float32),
        "bone_indices": np.zeros((n, 4), np.int32),
        "bone_weights": np.zeros((n, 4), np.float32),
        "deform": kinds.astype(np.uint8),
        "sdef": np.zeros((n, 3, 3), np.float32),
        "edge_scale": np.zeros(n, np.float32),
        "_starts": start,
    }
    for t, dt in dtypes.items():
        sel = np.flatnonzero(kinds == t)
        if not len(sel):
            continue
        windows = np.lib.stride_tricks.sliding_window_view(buf, dt.itemsize)
        rec = np.ascontiguousarray(windows[start[sel]]).view(dt).reshape(-1)
        out["positions"][sel] = rec["pos"]
        out["normals"][sel] = rec["nrm"]
        out["uvs"][sel] = rec["uv"]
        if r.extra_uv:
            out["extra_uvs"][sel] = rec["ex"]
        out["edge_scale"][sel] = rec["edge"]
        k = rec["b"].shape[1]
        out["bone_indices"][sel, :k] = rec["b"]
        if t == Deform.BDEF1:
            out["bone_weights"][sel, 0] = 1.0
        elif k == 2:
            w = np.clip(np.nan_to_num(rec["w"][:, 0]), 0.0, 1.0)
            out["bone_weights"][sel, 0] = w
            out["bone_weights"][sel, 1] = 1.0 - w
        else:
            out["bone_weights"][sel] = rec["w"]
        if t == Deform.SDEF:
            out["sdef"][sel] = rec["sdef"]
    with np.errstate(invalid="ignore"):  # signalling NaNs in garbage files
        for key in ("positions", "normals"):
            out[key][:, 2] *= -1
        out["sdef"][:, :, 2] *= -1
    return out


def _check_skin(verts: dict[str, np.ndarray], n_bones: int, warnings: list[str]) -> None:
    """Drop weights on bones that do not exist (-1 becomes bone 0 with weight 0) and normalise.

    Rows whose weights sum to zero are bound fully to their first slot's bone, so such a
    vertex follows one bone rigidly instead of collapsing to the origin.
    """
    idx, w = verts["bone_indices"], verts["bone_weights"]
    slots = np.array([1, 2, 4, 2, 4])[verts["deform"]] if len(idx) else np.zeros(0, int)
    used = np.arange(4) < slots[:, None]
    drop_dangling_weights(idx, w, used, n_bones, warnings)
    np.nan_to_num(w, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    np.clip(w, 0.0, None, out=w)
    total = w.sum(axis=1)
    zero = total <= 0
    w[zero] = (1.0, 0.0, 0.0, 0.0)
    ok = ~zero & (np.abs(total - 1.0) > 1e-6)
    w[ok] /= total[ok, None]


# --- materials and bones -------------------------------------------------------------------------


def _vec(v) -> np.ndarray:
    return np.array([v.x, v.y, -v.z], np.float32)


def _materials(
    r: PmxReader, n: int, textures: list[str], n_faces: int, warnings: list[str]
) -> list[Material]:
    def texture(i: int, what: str, name: str) -> str | None:
        if i < 0:
            return None
        if i >= len(textures):
            add_warning(
                warnings,
                f"material {quote(name)}: {what} index {i} points nowhere (the texture table "
                f"has {len(textures)}), dropped",
            )
            return None
        return textures[i]

    out, face = [], 0
    for _ in range(n):
        at = r.pos
        m = r.read_material()
        if m.vertex_count < 0 or m.vertex_count % 3:
            raise r.fail(f"material {quote(m.name)} has {m.vertex_count} indices (not 3k)", at)
        count = m.vertex_count // 3
        if face + count > n_faces:
            raise r.fail(
                f"material {quote(m.name)} ends at face {face + count}, the model has {n_faces}",
                at,
            )
        toon_shared = toon_ref = None
        if m.toon_sharing_flag == 1:
            if 0 <= m.toon_texture_index <= 9:
                toon_shared = m.toon_texture_index
                toon_ref = f"toon{toon_shared + 1:02d}.bmp"
            else:
                add_warning(
                    warnings,
                    f"material {quote(m.name)}: shared toon {m.toon_texture_index} is not one of "
                    "MMD's toon01..toon10, dropped",
                )
        else:
            toon_ref = texture(m.toon_texture_index, "toon", m.name)
        d, s, a, e = m.diffuse_color, m.specular_color, m.ambient_color, m.edge_color
        out.append(
            Material(
                name=m.name,
                english_name=m.english_name,
                diffuse=np.array([d.r, d.g, d.b, m.alpha], np.float32),
                specular=np.array([s.r, s.g, s.b], np.float32),
                specular_power=float(m.specular_factor),
                ambient=np.array([a.r, a.g, a.b], np.float32),
                flags=MaterialFlag(m.flag & 0xFF),
                edge_color=np.array([e.r, e.g, e.b, e.a], np.float32),
                edge_size=float(m.edge_size),
                face_start=face,
                face_count=count,
                texture_ref=texture(m.texture_index, "texture", m.name),
                sphere_ref=texture(m.sphere_texture_index, "sphere", m.name),
                sphere_mode=SphereMode(m.sphere_mode) if 0 <= m.sphere_mode <= 3 else SphereMode(0),
                toon_ref=toon_ref,
                toon_shared=toon_shared,
                comment=m.comment,
            )
        )
        face += count
    if face != n_faces:
        add_warning(warnings, f"materials cover {face} of {n_faces} faces")
    return out


def _limit(low, high) -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([-high.x, -high.y, low.z], np.float32)
    hi = np.array([-low.x, -low.y, high.z], np.float32)
    return lo, hi


def _bone(b: pmx_data.Bone) -> Bone:
    flags = BoneFlag(b.flag & 0xFFFF)
    bone = Bone(
        name=b.name,
        english_name=b.english_name,
        parent=b.parent_index,
        position=_vec(b.position),
        flags=flags,
        layer=b.layer,
    )
    if flags & BoneFlag.TAIL_IS_BONE:
        bone.tail_bone = b.tail_index
    else:
        bone.tail_offset = _vec(b.tail_position)
    if flags & (BoneFlag.APPEND_ROTATE | BoneFlag.APPEND_TRANSLATE):
        bone.append_parent, bone.append_ratio = b.effect_index, float(b.effect_factor)
    if flags & BoneFlag.FIXED_AXIS:
        bone.fixed_axis = _vec(b.fixed_axis)
    if flags & BoneFlag.LOCAL_AXIS:
        bone.local_x, bone.local_z = _vec(b.local_x_vector), _vec(b.local_z_vector)
    if flags & BoneFlag.EXTERNAL_PARENT:
        bone.external_key = b.external_key
    if flags & BoneFlag.IK and b.ik is not None:
        links = []
        for link in b.ik.link:
            if link.limit_angle:
                links.append(IKLink(link.bone_index, *_limit(link.limit_min, link.limit_max)))
            else:
                links.append(IKLink(link.bone_index))
        bone.ik = IK(b.ik.target_index, b.ik.loop, float(b.ik.limit_radian), links)
    return bone


# --- morphs --------------------------------------------------------------------------------------


def _morph_dtype(r: PmxReader, kind: int) -> np.dtype:
    if kind == MorphKind.VERTEX:
        return np.dtype([("i", _VERTEX_INDEX[r.vi]), ("o", "<f4", (3,))])
    if MorphKind.UV <= kind <= MorphKind.UV4:
        return np.dtype([("i", _VERTEX_INDEX[r.vi]), ("o", "<f4", (4,))])
    if kind == MorphKind.BONE:
        return np.dtype([("i", _SIGNED[r.bi]), ("o", "<f4", (3,)), ("q", "<f4", (4,))])
    if kind in (MorphKind.GROUP, MorphKind.FLIP):
        return np.dtype([("i", _SIGNED[r.morph_i]), ("w", "<f4")])
    if kind == MorphKind.IMPULSE:
        return np.dtype([("i", _SIGNED[r.ri]), ("local", "u1"), ("o", "<f4", (6,))])
    return np.dtype(
        [
            ("i", _SIGNED[r.mi]),
            ("op", "u1"),
            ("diffuse", "<f4", (4,)),
            ("specular", "<f4", (3,)),
            ("power", "<f4"),
            ("ambient", "<f4", (3,)),
            ("edge_color", "<f4", (4,)),
            ("edge_size", "<f4"),
            ("tex", "<f4", (4,)),
            ("sph", "<f4", (4,)),
            ("toon", "<f4", (4,)),
        ]
    )


def _read_morph(r: PmxReader) -> Morph:
    name, english_name = r.read_text(), r.read_text()
    panel = r.read_uint(1)
    at = r.pos
    kind = r.read_uint(1)
    if kind > MorphKind.IMPULSE:
        raise r.fail(f"morph {quote(name)} has unknown type {kind}", at)
    dt = _morph_dtype(r, kind)
    n = r.count(4, dt.itemsize, MAX_MORPH_OFFSETS, f"morph {quote(name)} offset")
    rec = r.array(dt, n, f"morph {quote(name)}")
    morph = Morph(name, english_name, Panel(panel) if panel <= 4 else Panel.OTHER, MorphKind(kind))
    morph.indices = rec["i"].astype(np.int32)
    if kind == MorphKind.MATERIAL:
        morph.material_offsets = [_material_offset(x) for x in rec]
    elif kind in (MorphKind.GROUP, MorphKind.FLIP):
        morph.weights = rec["w"].astype(np.float32)
    else:
        offsets = rec["o"].astype(np.float32)
        if kind in (MorphKind.VERTEX, MorphKind.BONE):
            offsets[:, 2] *= -1
        elif kind == MorphKind.IMPULSE:
            offsets[:, [2, 3, 4]] *= -1  # velocity z; torque x, y (an angular quantity)
            morph.local = rec["local"] != 0
        morph.offsets = offsets
        if kind == MorphKind.BONE:
            q = rec["q"].astype(np.float32)
            q[:, :2] *= -1
            morph.rotations = q
    return morph


def _material_offset(x: np.void) -> MaterialMorphOffset:
    f = {k: np.array(x[k], np.float32) for k in x.dtype.names[2:]}
    return MaterialMorphOffset(
        material=int(x["i"]),
        operation=int(x["op"]),
        diffuse=f["diffuse"],
        specular=f["specular"],
        specular_power=float(f["power"]),
        ambient=f["ambient"],
        edge_color=f["edge_color"],
        edge_size=float(f["edge_size"]),
        texture_tint=f["tex"],
        sphere_tint=f["sph"],
        toon_tint=f["toon"],
    )
