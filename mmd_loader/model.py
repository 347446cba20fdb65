"""The in-memory model every later stage uses: one shape for PMD and PMX, backed by numpy arrays.

Coordinates are converted at load time from MMD's left-handed frame to a right-handed one:
y up, +x towards the character's own left, +z out of the character's face (towards a viewer in
front). A front camera therefore looks along -z, and the character's left appears on the image's
right. Positions, normals, bone positions, axes and morph offsets all have z negated; quaternions
(x, y, z, w) become (-x, -y, z, w). Triangles keep file order: measured on every real model
under ../shared/mmd, they are clockwise in this frame when seen from their front side (the
side their vertex normals face).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from pathlib import Path

import numpy as np


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
    # Objects that must live as long as the model, e.g. the temporary folder a zip member was
    # extracted to (its textures are read from there). Released with the model.
    keepalive: list[object] = field(default_factory=list, repr=False, compare=False)

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

        Group morphs are expanded recursively (cycles are cut); non-vertex members are ignored.
        Indices are unique and sorted.
        """
        acc: dict[int, float] = {}
        self._collect_vertex_morphs(morph, weight, acc, frozenset())
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

    def _collect_vertex_morphs(
        self, index: int, weight: float, acc: dict[int, float], seen: frozenset[int]
    ) -> None:
        if index < 0 or index >= len(self.morphs) or index in seen:
            return
        m = self.morphs[index]
        if m.kind == MorphKind.VERTEX:
            acc[index] = acc.get(index, 0.0) + weight
        elif m.kind == MorphKind.GROUP and m.weights is not None:
            for child, w in zip(m.indices.tolist(), m.weights.tolist(), strict=True):
                self._collect_vertex_morphs(child, weight * w, acc, seen | {index})
