"""A model ready to be posed, without GL: bones and morphs bound by name, the moving vertex slice,
the deformer a pose needs, and which triangles the fixed camera can see.

Vertices are reordered so those a pose can move (weighted to the neck/head subtree, to the
subtrees of the extra `bones` a schema turns — the upper body, the eyes — or in a face-role
morph) come last: such a pose rewrites only that tail of the vertex buffer. A pose that moves
other bones or morphs switches to a full-model deformer (every vertex). Static triangles
outside the camera's view can be left out of the index buffer, which the full-model path must
put back. `render.scene.Scene` puts the results on the GPU.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from mmd_loader.model import Model
from mmd_loader.roles import FaceRoles
from mmd_loader.sides import face_centre_x, side_part
from poses.roles import HEAD_ROLES, MORPH_ROLES, SIDES
from render.errors import RenderError
from render.framing import Framing
from render.kinematics import Skeleton
from render.pose import Pose, euler_matrix
from render.skinning import Deformer


@dataclass(frozen=True)
class Posed:
    """The vertex data of a pose: (N, 6) float32 positions + normals, written from vertex
    `start` of the reordered buffer; `full` when every vertex was deformed."""

    data: np.ndarray
    start: int
    full: bool


class Rig:
    """`model` with its face `roles`, bound for posing; `bones`: further bones whose subtrees
    poses turn (e.g. `SchemaBinding.bones()`), kept on the partial path with the head's."""

    def __init__(self, model: Model, roles: FaceRoles, bones: Iterable[int] = ()) -> None:
        self.model, self.roles = model, roles
        self.skeleton = Skeleton(model)
        extra = [b for b in bones if 0 <= b < len(model.bones)]
        self.pose_bones = list(dict.fromkeys(b for b in (roles.neck, roles.head, *extra) if b >= 0))
        self.posable = set(self.skeleton.affected(self.pose_bones))

        # Vertex order: static first, then the slice a face pose moves.
        moving = np.zeros(len(model.positions), bool)
        if self.posable:
            hits = np.isin(model.bone_indices, list(self.posable)) & (model.bone_weights > 0)
            moving |= hits.any(axis=1)
        for role in roles.morphs.values():
            moving[role.indices] = True
        self.order = np.concatenate([np.flatnonzero(~moving), np.flatnonzero(moving)])
        self.new_index = np.empty(len(self.order), np.int64)
        self.new_index[self.order] = np.arange(len(self.order))
        self.start = int((~moving).sum())
        self.partial = Deformer(model, self.skeleton, self.order[self.start :])
        for name, role in roles.morphs.items():
            self.partial.add_morph(name, role.indices, role.offsets)
        self.full: Deformer | None = None
        rest = np.concatenate([model.positions, model.normals], axis=1).astype(np.float32)
        self.rest = np.ascontiguousarray(rest[self.order])  # interleaved, reordered

    def deform(self, pose: Pose) -> Posed:
        """The posed vertices of `pose` (only the moving slice when the pose allows)."""
        morphs = {name: float(w) for name, w in pose.morphs.items() if float(w) != 0.0}
        rotations = {}
        for key, degrees in pose.rotations.items():
            if not any(degrees):
                continue
            rotations[self.bone(key)] = euler_matrix(degrees)
        for name in morphs:
            self._register(self.partial, name)
        full = not set(rotations) <= self.posable or not all(
            self.partial.can_apply(n) for n in morphs
        )
        if full:
            deformer, start = self._full_deformer(), 0
            for name in morphs:
                self._register(deformer, name)
        else:
            deformer, start = self.partial, self.start
        for b in self.pose_bones:
            rotations.setdefault(b, np.eye(3))
        return Posed(deformer.deform(morphs, rotations), start, full)

    def bone(self, key: str) -> int:
        """The bone a rotation key names: a head role (`head`, `neck`) or a bone name."""
        if key in HEAD_ROLES:
            bone = self.roles.head if key == "head" else self.roles.neck
            if bone < 0:
                raise RenderError(f"{self.model.path}: the model has no {key} bone to rotate")
            return bone
        bone = self.model.bone_index(key)
        if bone < 0:
            roles = ", ".join(HEAD_ROLES)
            raise RenderError(f"{self.model.path}: no bone named {key!r} (or {roles})")
        return bone

    def _register(self, deformer: Deformer, name: str) -> None:
        if deformer.knows(name):
            return
        if name in self.roles.morphs:
            role = self.roles.morphs[name]
            deformer.add_morph(name, role.indices, role.offsets)
            return
        if name in MORPH_ROLES:
            raise RenderError(f"{self.model.path}: the model has no {name} morph")
        index = self.model.morph_index(name)
        base, _, side = name.rpartition("@")
        if index < 0 and side in SIDES and self.model.morph_index(base) >= 0:
            # One side of a both-sided morph (render.binding), split at the face's centre line.
            cx = face_centre_x(self.model, self.roles.head)
            offsets = self.model.vertex_offsets(self.model.morph_index(base))
            deformer.add_morph(name, *side_part(self.model, *offsets, side, cx))
            return
        if index < 0:
            roles = ", ".join(MORPH_ROLES)
            raise RenderError(
                f"{self.model.path}: no morph named {name!r} (roles: {roles}; NAME@left|right"
                " for one side of a morph)"
            )
        deformer.add_morph(name, *self.model.vertex_offsets(index))

    def _full_deformer(self) -> Deformer:
        if self.full is None:
            self.full = Deformer(self.model, self.skeleton, self.order)
        return self.full

    def triangles(
        self, framing: Framing | None, size: int, margin_px: float
    ) -> list[tuple[int, np.ndarray]]:
        """(material index, (T, 3) reordered vertex indices) per drawn material, in file order.

        With a `framing`, static triangles wholly outside the image (plus `margin_px`) are left
        out; triangles touching the moving slice always stay. Materials with no triangle left,
        or whose alpha is 0 (MMD does not draw them), are skipped.
        """
        return [(i, tris) for i, tris, _ in self.drawn_triangles(framing, size, margin_px)]

    def drawn_triangles(
        self, framing: Framing | None, size: int, margin_px: float
    ) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """`triangles`, each material's with the indices of its triangles in `model.triangles`."""
        model = self.model
        triangles = self.new_index[model.triangles.astype(np.int64)]
        keep = np.ones(len(triangles), bool)
        if framing is not None:
            pixels = framing.project(model.positions[self.order], size)
            lo = pixels[triangles].min(axis=1)
            hi = pixels[triangles].max(axis=1)
            inside = (hi >= -margin_px).all(axis=1) & (lo <= size + margin_px).all(axis=1)
            keep = inside | (triangles >= self.start).any(axis=1)
        out = []
        for i, material in enumerate(model.materials):
            lo, hi = material.face_start, material.face_start + material.face_count
            kept = lo + np.flatnonzero(keep[lo:hi])
            if len(kept) == 0 or float(material.diffuse[3]) <= 0.0:
                continue
            out.append((i, triangles[kept], kept))
        return out
