"""The in-memory model every later stage uses: one shape for PMD and PMX, backed by numpy arrays.

Coordinates are converted at load time from MMD's left-handed frame to a right-handed one:
y up, +x towards the character's own left, +z out of the character's face (towards a viewer in
front). A front camera therefore looks along -z, and the character's left appears on the image's
right. Positions, normals, bone positions, axes and morph offsets all have z negated; quaternions
(x, y, z, w) become (-x, -y, z, w). Triangles keep file order: measured on every real model
under ../shared/mmd, they are clockwise in this frame when seen from their front side (the
side their vertex normals face).

References between a model's parts follow one rule, for every index read from a PMD/PMX file:

- A reference that adds something optional and points nowhere is dropped with a warning naming
  the item and the entry, as MMD itself skips such entries: the rest of the model stays as its
  author made it. Optional references are a morph's entries (vertex, UV, bone, material, morph
  or rigid-body indices; `drop_dangling_entries`), a bone's parent, tail, append (付与) parent,
  IK target and IK links (`check_bone_references`), a vertex's bone weights
  (`drop_dangling_weights`) and a material's texture, sphere and toon. A dropped parent makes
  a root, a dropped IK target drops that IK, a dropped vertex weight goes to the vertex's other
  bones (to bone 0 when none is left). A parent chain that loops is cut where it closes. PMX's
  material index -1 in a material morph means every material and is kept.
- A reference that defines the mesh itself (a triangle's vertex, a material's face range) is
  an error: without it there is no mesh to draw, and any guess would draw another model.
- Every count and size is bounded (`mmd_loader.binary`); exceeding a bound is an error. Group
  morphs nested in group morphs are bounded in depth and expansion (`check_group_morphs`).
- Sections read past without being used (display slots, rigid bodies, joints, soft bodies)
  are parsed for their size only; nothing uses their references, so they are not checked.

Warnings go to `Model.warnings` through `add_warning` (at most MAX_WARNINGS per model), and
quote decoded names with `mmd_loader.errors.quote` (at most 80 characters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from pathlib import Path

import numpy as np

from mmd_loader.errors import quote


class Deform(IntEnum):
    """Per-vertex skinning type, numbered as in PMX."""

    BDEF1 = 0
    BDEF2 = 1
    BDEF4 = 2
    SDEF = 3
    QDEF = 4


class MaterialFlag(IntFlag):
    """PMX material draw flags (PMD's edge flag maps to EDGE, and PMD alpha < 1 to DOUBLE_SIDED)."""

    DOUBLE_SIDED = 0x01
    GROUND_SHADOW = 0x02
    SELF_SHADOW_MAP = 0x04
    SELF_SHADOW = 0x08
    EDGE = 0x10
    VERTEX_COLOR = 0x20
    POINT_DRAW = 0x40
    LINE_DRAW = 0x80


class BoneFlag(IntFlag):
    """PMX bone flags (PMD bone types are translated to these)."""

    TAIL_IS_BONE = 0x0001
    ROTATABLE = 0x0002
    TRANSLATABLE = 0x0004
    VISIBLE = 0x0008
    ENABLED = 0x0010
    IK = 0x0020
    LOCAL_APPEND = 0x0080
    APPEND_ROTATE = 0x0100
    APPEND_TRANSLATE = 0x0200
    FIXED_AXIS = 0x0400
    LOCAL_AXIS = 0x0800
    PHYSICS_AFTER_DEFORM = 0x1000
    EXTERNAL_PARENT = 0x2000


class MorphKind(IntEnum):
    """Morph types, numbered as in PMX 2.1."""

    GROUP = 0
    VERTEX = 1
    BONE = 2
    UV = 3
    UV1 = 4
    UV2 = 5
    UV3 = 6
    UV4 = 7
    MATERIAL = 8
    FLIP = 9
    IMPULSE = 10


class Panel(IntEnum):
    """Where MMD lists a morph."""

    SYSTEM = 0
    EYEBROW = 1
    EYE = 2
    MOUTH = 3
    OTHER = 4


class SphereMode(IntEnum):
    NONE = 0
    MULTIPLY = 1
    ADD = 2
    SUBTEXTURE = 3


@dataclass
class Material:
    name: str
    english_name: str
    diffuse: np.ndarray  # (4,) RGBA
    specular: np.ndarray  # (3,)
    specular_power: float
    ambient: np.ndarray  # (3,)
    flags: MaterialFlag
    edge_color: np.ndarray  # (4,)
    edge_size: float
    face_start: int  # first triangle (not index) of this material
    face_count: int  # number of triangles
    texture_ref: str | None  # the string as written in the file
    sphere_ref: str | None
    sphere_mode: SphereMode
    toon_ref: str | None  # e.g. "toon01.bmp" for a shared toon, or the model's own file
    toon_shared: int | None  # 0..9 for MMD's shared toon01..toon10, else None
    texture: Path | None = None  # resolved, inside the model's folder; None if absent/refused
    sphere: Path | None = None
    toon: Path | None = None
    comment: str = ""

    @property
    def double_sided(self) -> bool:
        return bool(self.flags & MaterialFlag.DOUBLE_SIDED)


@dataclass
class IKLink:
    bone: int
    limit_min: np.ndarray | None = None  # (3,) radians, or None when unlimited
    limit_max: np.ndarray | None = None


@dataclass
class IK:
    target: int
    loop: int
    limit_angle: float  # radians per iteration
    links: list[IKLink] = field(default_factory=list)


@dataclass
class Bone:
    name: str
    english_name: str
    parent: int  # -1 for a root
    position: np.ndarray  # (3,) rest position in model space
    flags: BoneFlag
    layer: int = 0
    tail_bone: int = -1  # when flags has TAIL_IS_BONE
    tail_offset: np.ndarray | None = None  # otherwise
    append_parent: int = -1  # grant ("付与") parent
    append_ratio: float = 0.0
    fixed_axis: np.ndarray | None = None
    local_x: np.ndarray | None = None
    local_z: np.ndarray | None = None
    external_key: int | None = None
    ik: IK | None = None

    @property
    def appends_rotation(self) -> bool:
        return bool(self.flags & BoneFlag.APPEND_ROTATE) and self.append_parent >= 0

    @property
    def appends_translation(self) -> bool:
        return bool(self.flags & BoneFlag.APPEND_TRANSLATE) and self.append_parent >= 0


@dataclass
class MaterialMorphOffset:
    material: int  # -1 means every material
    operation: int  # 0 multiply, 1 add
    diffuse: np.ndarray  # (4,)
    specular: np.ndarray  # (3,)
    specular_power: float
    ambient: np.ndarray  # (3,)
    edge_color: np.ndarray  # (4,)
    edge_size: float
    texture_tint: np.ndarray  # (4,)
    sphere_tint: np.ndarray  # (4,)
    toon_tint: np.ndarray  # (4,)


@dataclass
class Morph:
    """One morph. Which arrays are filled depends on `kind`:

    - VERTEX: `indices` (N,) int32 vertex indices, `offsets` (N, 3) float32.
    - UV, UV1..UV4: `indices` (N,), `offsets` (N, 4).
    - GROUP, FLIP: `indices` (N,) morph indices, `weights` (N,).
    - BONE: `indices` (N,) bone indices, `offsets` (N, 3) translations, `rotations` (N, 4) xyzw.
    - IMPULSE: `indices` (N,) rigid bodies, `offsets` (N, 6) velocity + torque, `local` (N,) bool.
    - MATERIAL: `material_offsets`.
    """

    name: str
    english_name: str
    panel: Panel
    kind: MorphKind
    indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    offsets: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    weights: np.ndarray | None = None
    rotations: np.ndarray | None = None
    local: np.ndarray | None = None
    material_offsets: list[MaterialMorphOffset] = field(default_factory=list)


@dataclass
class Model:
    """A loaded PMD or PMX model. See the module docstring for the coordinate frame."""

    path: Path  # the file (for a zip member: "archive.zip/inner/path.pmx")
    format: str  # "pmd" or "pmx"
    version: float
    name: str
    english_name: str
    comment: str
    positions: np.ndarray  # (V, 3) float32
    normals: np.ndarray  # (V, 3) float32
    uvs: np.ndarray  # (V, 2) float32
    extra_uvs: np.ndarray  # (V, K, 4) float32, K = PMX additional UV count (0..4)
    bone_indices: np.ndarray  # (V, 4) int32, unused slots 0 with weight 0
    bone_weights: np.ndarray  # (V, 4) float32, rows sum to 1
    deform: np.ndarray  # (V,) uint8, values of Deform
    sdef: np.ndarray  # (V, 3, 3) float32: C, R0, R1 for SDEF vertices, zeros elsewhere
    edge_scale: np.ndarray  # (V,) float32
    triangles: np.ndarray  # (F, 3) int32
    materials: list[Material]
    bones: list[Bone]
    morphs: list[Morph]
    textures: list[str] = field(default_factory=list)  # PMX texture table as written
    toon_textures: list[str] = field(default_factory=list)  # PMD's ten toon names
    rigid_body_count: int = 0
    joint_count: int = 0
    soft_body_count: int = 0
    warnings: list[str] = field(default_factory=list)
    root: Path | None = None  # the folder textures resolve inside
    archive_root: Path | None = None  # for an archived model: the folder it was extracted to
    english_comment: str = ""
    # Objects that must live as long as the model, e.g. the temporary folder a zip member was
    # extracted to (its textures are read from there). Released with the model.
    keepalive: list[object] = field(default_factory=list, repr=False, compare=False)
    _group_problems: dict[int, str] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __repr__(self) -> str:
        return (
            f"<Model {self.format} {self.name!r} {len(self.positions)} vertices "
            f"{len(self.triangles)} faces {len(self.bones)} bones {len(self.morphs)} morphs>"
        )

    def bone_index(self, name: str) -> int:
        """Index of the first bone with this exact name, or -1."""
        for i, bone in enumerate(self.bones):
            if bone.name == name:
                return i
        return -1

    def morph_index(self, name: str) -> int:
        """Index of the first morph with this exact name, or -1."""
        for i, morph in enumerate(self.morphs):
            if morph.name == name:
                return i
        return -1

    def vertex_offsets(self, morph: int, weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Resolve a vertex or group morph to (vertex indices, summed offsets) at `weight`.

        Group morphs are expanded through nested group morphs (iteratively; see
        `check_group_morphs` for the bounds); a group morph those checks skip resolves to
        nothing. Non-vertex members are ignored. Indices are unique and sorted.
        """
        acc = self._vertex_morph_weights(morph, weight)
        parts_i, parts_o = [], []
        for index, w in acc.items():
            m = self.morphs[index]
            parts_i.append(m.indices)
            parts_o.append(m.offsets * np.float32(w))
        if not parts_i:
            return np.zeros(0, np.int32), np.zeros((0, 3), np.float32)
        idx = np.concatenate(parts_i).astype(np.int64)
        off = np.concatenate(parts_o).astype(np.float32)
        unique, inverse = np.unique(idx, return_inverse=True)
        summed = np.zeros((len(unique), 3), np.float32)
        np.add.at(summed, inverse, off)
        return unique.astype(np.int32), summed

    def _vertex_morph_weights(self, morph: int, weight: float) -> dict[int, float]:
        """{vertex morph index: summed weight} that `morph` expands to, in depth-first order."""
        n = len(self.morphs)
        if not 0 <= morph < n or morph in self.check_group_morphs():
            return {}
        acc: dict[int, float] = {}
        stack = [(morph, weight)]
        while stack:  # bounded: a group morph that passed the checks has few entries, no cycle
            index, w = stack.pop()
            m = self.morphs[index]
            if m.kind == MorphKind.VERTEX:
                acc[index] = acc.get(index, 0.0) + w
            elif m.kind == MorphKind.GROUP and m.weights is not None:
                entries = zip(m.indices.tolist(), m.weights.tolist(), strict=True)
                stack.extend((c, w * cw) for c, cw in reversed(list(entries)) if 0 <= c < n)
        return acc

    def check_group_morphs(self) -> dict[int, str]:
        """{group morph index: why it is skipped}, computed once; each skip is also a warning.

        A group morph is resolved whole or not at all. It is skipped when its entries form a
        cycle (directly or through the group morphs it includes), when group morphs nest in it
        more than MAX_GROUP_DEPTH deep, when it expands to more than MAX_GROUP_ENTRIES entries
        counting every path (an exponential fan-out of a few bytes), or when it includes a group
        morph that is skipped. MMD itself does not expand nested group morphs at all; thagen
        does, within these bounds. The check is linear in the file's group entries (no
        recursion, no expansion).
        """
        if self._group_problems is None:
            self._group_problems = _check_group_morphs(self.morphs)
            for index, reason in sorted(self._group_problems.items()):
                add_warning(
                    self.warnings, f"group morph {quote(self.morphs[index].name)} skipped: {reason}"
                )
        return self._group_problems


MAX_GROUP_DEPTH = 16  # group morphs nested inside one group morph (MMD nests none)
MAX_GROUP_ENTRIES = 65_536  # entries one group morph expands to, counting every path
MAX_WARNINGS = 200  # warnings one model collects through `add_warning`


def add_warning(warnings: list[str], message: str) -> None:
    """Append `message`, or after MAX_WARNINGS entries one line saying further ones are omitted."""
    if len(warnings) < MAX_WARNINGS:
        warnings.append(message)
    elif len(warnings) == MAX_WARNINGS:
        warnings.append(f"more than {MAX_WARNINGS} warnings: further ones omitted")


def _check_group_morphs(morphs: list[Morph]) -> dict[int, str]:
    """The reasons behind `Model.check_group_morphs`: a topological pass (Kahn's algorithm)
    from the group morphs that include no group morph up to those that include them."""
    kinds = np.array([int(m.kind) for m in morphs], np.int8)
    groups = np.flatnonzero(kinds == MorphKind.GROUP)
    if not len(groups):
        return {}
    n = len(morphs)
    children: dict[int, np.ndarray] = {}  # group -> the group morphs it includes, with repeats
    others = np.zeros(n, np.int64)  # entries that are not group morphs
    parents: dict[int, list[int]] = {}
    waiting = np.zeros(n, np.int64)  # distinct included groups not finished yet
    for g in groups.tolist():
        idx = morphs[g].indices.astype(np.int64)
        idx = idx[(idx >= 0) & (idx < n)]
        inner = idx[kinds[idx] == MorphKind.GROUP]
        children[g], others[g] = inner, len(morphs[g].indices) - len(inner)
        for c in np.unique(inner).tolist():
            parents.setdefault(c, []).append(g)
        waiting[g] = len(np.unique(inner))
    depth = np.zeros(n, np.int64)
    entries = np.zeros(n, np.int64)
    problems: dict[int, str] = {}
    ready = [g for g in groups.tolist() if waiting[g] == 0]
    finished = 0
    while ready:
        g = ready.pop()
        finished += 1
        inner = children[g]
        depth[g] = 1 + (int(depth[inner].max()) if len(inner) else 0)
        entries[g] = min(int(others[g] + entries[inner].sum()), MAX_GROUP_ENTRIES + 1)
        skipped = next((c for c in inner.tolist() if c in problems), None)
        if skipped is not None:
            problems[g] = f"it includes group morph {quote(morphs[skipped].name)}, which is skipped"
        elif depth[g] > MAX_GROUP_DEPTH:
            problems[g] = f"group morphs nest {depth[g]} deep in it, more than {MAX_GROUP_DEPTH}"
        elif entries[g] > MAX_GROUP_ENTRIES:
            problems[g] = f"it expands to more than {MAX_GROUP_ENTRIES} entries"
        for p in parents.get(g, ()):
            waiting[p] -= 1
            if waiting[p] == 0:
                ready.append(p)
    if finished < len(groups):  # the rest never became ready: each is in or above a cycle
        for g in groups.tolist():
            if waiting[g] > 0:
                problems[g] = "it is part of, or includes, a cycle of group morphs"
    return problems


# --- references read from a file (the rule is in the module docstring) ----------------------------

_ENTRY_TARGET = {
    MorphKind.VERTEX: "vertex",
    MorphKind.UV: "vertex",
    MorphKind.UV1: "vertex",
    MorphKind.UV2: "vertex",
    MorphKind.UV3: "vertex",
    MorphKind.UV4: "vertex",
    MorphKind.BONE: "bone",
    MorphKind.MATERIAL: "material",
    MorphKind.GROUP: "morph",
    MorphKind.FLIP: "morph",
    MorphKind.IMPULSE: "rigid body",
}


def drop_dangling_entries(morph: Morph, sizes: dict[str, int], warnings: list[str]) -> None:
    """Remove the entries of `morph` whose index points nowhere (one warning for the morph).

    `sizes` maps "vertex", "bone", "material", "morph", "rigid body" to the model's counts.
    A material morph's -1 (every material) is kept.
    """
    target = _ENTRY_TARGET[morph.kind]
    lower = -1 if morph.kind == MorphKind.MATERIAL else 0
    if not len(morph.indices) or (
        morph.indices.min() >= lower and morph.indices.max() < sizes[target]
    ):
        return  # the common case, in two reductions
    bad = (morph.indices < lower) | (morph.indices >= sizes[target])
    first = int(np.flatnonzero(bad)[0])
    count = int(bad.sum())
    more = f"; {count} such entries skipped" if count > 1 else ""
    add_warning(
        warnings,
        f"morph {quote(morph.name)} entry {first}: {target} index {int(morph.indices[first])} "
        f"points nowhere (the model has {sizes[target]}), entry skipped{more}",
    )
    keep = ~bad
    morph.indices = morph.indices[keep]
    if morph.kind == MorphKind.MATERIAL:
        morph.material_offsets = [o for o, k in zip(morph.material_offsets, keep, strict=True) if k]
    elif morph.kind in (MorphKind.GROUP, MorphKind.FLIP):
        if morph.weights is not None:
            morph.weights = morph.weights[keep]
    else:
        morph.offsets = morph.offsets[keep]
        for name in ("rotations", "local"):
            value = getattr(morph, name)
            if value is not None:
                setattr(morph, name, value[keep])


def check_bone_references(bones: list[Bone], warnings: list[str]) -> None:
    """Drop bone references that point nowhere, and cut parent chains that loop (warnings)."""
    n = len(bones)
    refs = [r for b in bones for r in (b.parent, b.tail_bone, b.append_parent)]
    iks = [
        r for b in bones if b.ik is not None for r in (b.ik.target, *(x.bone for x in b.ik.links))
    ]
    if (not refs or (min(refs) >= -1 and max(refs) < n)) and (
        not iks or (min(iks) >= 0 and max(iks) < n)
    ):
        _cut_parent_cycles(bones, warnings)
        return  # the common case: nothing points nowhere

    def dangling(bone: Bone, what: str, value: int, lower: int = -1) -> bool:
        if lower <= value < n:
            return False
        add_warning(
            warnings,
            f"bone {quote(bone.name)}: {what} {value} points nowhere (the model has {n} bones), "
            "dropped",
        )
        return True

    for bone in bones:
        if dangling(bone, "parent", bone.parent):
            bone.parent = -1
        if dangling(bone, "tail bone", bone.tail_bone):
            bone.tail_bone = -1
        if dangling(bone, "append parent", bone.append_parent):
            bone.append_parent, bone.append_ratio = -1, 0.0
            bone.flags &= ~(BoneFlag.APPEND_ROTATE | BoneFlag.APPEND_TRANSLATE)
        if bone.ik is not None:
            if dangling(bone, "IK target", bone.ik.target, lower=0):
                bone.ik = None
                bone.flags &= ~BoneFlag.IK
                continue
            bone.ik.links = [
                link for link in bone.ik.links if not dangling(bone, "IK link", link.bone, lower=0)
            ]
    _cut_parent_cycles(bones, warnings)


def _cut_parent_cycles(bones: list[Bone], warnings: list[str]) -> None:
    """Make the bone that closes a parent loop a root, so every parent chain ends."""
    state = [0] * len(bones)  # 0 unseen, 1 on the current chain, 2 known to end
    for start in range(len(bones)):
        chain, bone = [], start
        while bone >= 0 and state[bone] == 0:
            state[bone] = 1
            chain.append(bone)
            bone = bones[bone].parent
        if bone >= 0 and state[bone] == 1:  # the chain came back to itself
            closing = chain[-1]
            add_warning(
                warnings,
                f"bone {quote(bones[closing].name)}: parent {bones[closing].parent} closes a loop "
                "of parents, dropped",
            )
            bones[closing].parent = -1
        for b in chain:
            state[b] = 2


def drop_dangling_weights(
    bone_indices: np.ndarray,
    bone_weights: np.ndarray,
    used: np.ndarray,
    n_bones: int,
    warnings: list[str],
) -> np.ndarray:
    """Zero the weights of used skinning slots naming a bone that does not exist (-1 = none).

    `used` marks the slots a vertex's deform type uses ((V, 4), or (4,) for every vertex). Such
    slots become bone 0 with weight 0, like PMX's -1; one warning counts the vertices.
    Returns the mask of vertices that lost a weight (their weights need normalising).
    """
    if not bone_indices.size:
        return np.zeros(len(bone_indices), bool)
    lowest = bone_indices.min()
    if lowest >= -1 and bone_indices.max() < n_bones:
        changed = np.zeros(len(bone_indices), bool)  # the common case, in two reductions
        rows = np.zeros(0, np.int64)
    else:
        used = np.broadcast_to(used, bone_indices.shape)
        bad = ((bone_indices < -1) | (bone_indices >= n_bones)) & used
        changed = bad.any(axis=1)
        rows = np.flatnonzero(changed)
    if len(rows):
        v = int(rows[0])
        add_warning(
            warnings,
            f"{len(rows)} vertices weight bones that do not exist (first: vertex {v} uses "
            f"{bone_indices[v][used[v]].tolist()}, the model has {n_bones} bones): "
            "those weights dropped",
        )
        bone_indices[bad] = -1
    if len(rows) or lowest < 0:
        missing = bone_indices < 0
        bone_indices[missing] = 0
        bone_weights[missing] = 0.0
    return changed
