"""One model on the GPU: buffers uploaded once, the moving vertex slice re-uploaded per pose.

Vertices are reordered so those a THA1 pose can move (weighted to the neck/head subtree or in a
face-role morph) come last: a pose rewrites only that tail of the vertex buffer. Static triangles
that fall outside the fixed camera's view are left out of the index buffer (MMD's file order of
materials and of triangles within a material is kept). A pose that moves other bones or morphs
switches to a full-model path (every vertex, every triangle).
"""

from __future__ import annotations

from dataclasses import dataclass

import moderngl
import numpy as np

from mmd_loader.model import Model
from mmd_loader.roles import FaceRoles
from render.context import RenderError
from render.framing import Framing
from render.kinematics import Skeleton
from render.materials import DrawMaterial, SharedTextures, TextureCache, draw_material
from render.pose import ROLE_NAMES, ROTATION_ROLES, Lighting, Pose, euler_matrix
from render.skinning import Deformer

CULL_MARGIN_PX = 2.0


@dataclass
class Programs:
    """The material programs by (opaque, textured), and the outline program.

    Opaque materials (alpha 1 at every fragment) are drawn without blending or discard, and
    untextured ones without sampling the white texture: the same pixels, less work per fragment.
    """

    materials: dict[tuple[bool, bool], moderngl.Program]
    edge: moderngl.Program

    def release(self) -> None:
        for program in (*self.materials.values(), self.edge):
            program.release()


class Scene:
    """`model` uploaded for drawing with `programs` at output `size`."""

    def __init__(
        self,
        ctx: moderngl.Context,
        programs: Programs,
        shared: SharedTextures,
        model: Model,
        roles: FaceRoles,
        *,
        size: int,
        head_fraction: float,
        outline_width: float,
    ) -> None:
        if roles.head_box is None:
            raise RenderError(
                f"{model.path}: no head box, cannot frame the face: {'; '.join(roles.problems)}"
            )
        if len(model.positions) == 0 or len(model.triangles) == 0:
            raise RenderError(f"{model.path}: the model has no geometry")
        self.ctx, self.programs, self.model, self.roles = ctx, programs, model, roles
        self.shared = shared
        self.size = size
        bounds = (model.positions.min(axis=0), model.positions.max(axis=0))
        self.framing = Framing.from_head_box(roles.head_box, head_fraction, bounds)
        self.pixel = 2.0 * self.framing.half_extent / size  # model units per output pixel
        self.outline_width = outline_width
        self.front_face = front_face(model)
        self.skeleton = Skeleton(model)
        self.pose_bones = [b for b in (roles.neck, roles.head) if b >= 0]
        self.posable = set(self.skeleton.affected(self.pose_bones))

        # Vertex order: static first, then the slice a THA1 pose moves.
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
        self.dirty_static = False  # the static part holds a non-rest pose

        self._objects: list = []
        self.textures = TextureCache(ctx)
        rest = np.concatenate([model.positions, model.normals], axis=1).astype(np.float32)
        self.rest = np.ascontiguousarray(rest[self.order])
        self.vbo_pose = self._keep(ctx.buffer(self.rest.tobytes(), dynamic=True))
        statics = np.concatenate([model.uvs, model.edge_scale[:, None]], axis=1)
        self.vbo_static = self._keep(ctx.buffer(statics[self.order].astype(np.float32).tobytes()))
        self.culled = True
        self.ibo: moderngl.Buffer | None = None
        self.materials: list[DrawMaterial] = []
        self._build_indices(shared, cull=True)
        self.vaos = {key: self._vao(program) for key, program in programs.materials.items()}
        self.vao_edge = self._vao(programs.edge)

    # --- upload -------------------------------------------------------------------------------

    def _keep(self, obj):
        self._objects.append(obj)
        return obj

    def _vao(self, program: moderngl.Program) -> moderngl.VertexArray:
        """A VAO over both buffers, skipping attributes the program's linker dropped."""
        pose = " ".join(
            f if a in program else f"{f[0]}x4"
            for f, a in (("3f", "in_position"), ("3f", "in_normal"))
        )
        static = " ".join(
            f if a in program else f"{f[0]}x4"
            for f, a in (("2f", "in_uv"), ("1f", "in_edge_scale"))
        )
        content = [
            (self.vbo_pose, pose, *[a for a in ("in_position", "in_normal") if a in program]),
            (self.vbo_static, static, *[a for a in ("in_uv", "in_edge_scale") if a in program]),
        ]
        content = [c for c in content if len(c) > 2]
        return self._keep(self.ctx.vertex_array(program, content, self.ibo, index_element_size=4))

    def _build_indices(self, shared: SharedTextures, cull: bool) -> None:
        """Fill the IBO (materials in file order) and the draw records."""
        model = self.model
        triangles = self.new_index[model.triangles.astype(np.int64)]
        keep = np.ones(len(triangles), bool)
        if cull:
            pixels = self.framing.project(model.positions[self.order], self.size)
            lo = pixels[triangles].min(axis=1)
            hi = pixels[triangles].max(axis=1)
            margin = CULL_MARGIN_PX + self._max_edge_px()
            inside = (hi >= -margin).all(axis=1) & (lo <= self.size + margin).all(axis=1)
            keep = inside | (triangles >= self.start).any(axis=1)
        parts, draws, first = [], [], 0
        for i, material in enumerate(model.materials):
            lo, hi = material.face_start, material.face_start + material.face_count
            tris = triangles[lo:hi][keep[lo:hi]]
            if len(tris) == 0 or float(material.diffuse[3]) <= 0.0:
                continue  # MMD does not draw a material whose alpha is 0
            draws.append(draw_material(material, i, first, 3 * len(tris), self.textures, shared))
            parts.append(tris)
            first += 3 * len(tris)
        indices = np.concatenate(parts) if parts else np.zeros((1, 3), np.int64)
        data = indices.astype(np.uint32).tobytes()
        if self.ibo is None:
            self.ibo = self._keep(self.ctx.buffer(data))
        else:
            self.ibo.orphan(len(data))
            self.ibo.write(data)
        self.materials = draws
        self.culled = cull

    def _max_edge_px(self) -> float:
        sizes = [float(m.edge_size) for m in self.model.materials] or [0.0]
        scale = float(self.model.edge_scale.max()) if len(self.model.edge_scale) else 0.0
        return self.outline_width * max(sizes) * max(scale, 1.0)

    # --- posing -------------------------------------------------------------------------------

    def apply(self, pose: Pose, max_degrees: float) -> None:
        """Write the posed vertices for `pose` into the vertex buffer."""
        morphs = {name: float(w) for name, w in pose.morphs.items() if float(w) != 0.0}
        rotations = {}
        for key, degrees in pose.degrees(max_degrees).items():
            if not any(degrees):
                continue
            rotations[self._bone(key)] = euler_matrix(degrees)
        for name in morphs:
            self._register(self.partial, name)
        needs_full = not set(rotations) <= self.posable or not all(
            self.partial.can_apply(n) for n in morphs
        )
        if needs_full:
            deformer, start = self._full_deformer(), 0
            if self.culled:
                self._build_indices(self.shared, cull=False)
            for name in morphs:
                self._register(deformer, name)
            self.dirty_static = True
        else:
            deformer, start = self.partial, self.start
            if self.dirty_static:  # undo a full-model pose: the static part back to rest
                self.vbo_pose.write(self.rest[: self.start])
                self.dirty_static = False
        for b in self.pose_bones:
            rotations.setdefault(b, np.eye(3))
        data = deformer.deform(morphs, rotations)
        self.vbo_pose.write(data, offset=start * 24)

    def _bone(self, key: str) -> int:
        if key in ROTATION_ROLES:
            bone = self.roles.head if key == "head" else self.roles.neck
            if bone < 0:
                raise RenderError(f"{self.model.path}: the model has no {key} bone to rotate")
            return bone
        bone = self.model.bone_index(key)
        if bone < 0:
            raise RenderError(f"{self.model.path}: no bone named {key!r} (or 'head', 'neck')")
        return bone

    def _register(self, deformer: Deformer, name: str) -> None:
        if deformer.knows(name):
            return
        if name in self.roles.morphs:
            role = self.roles.morphs[name]
            deformer.add_morph(name, role.indices, role.offsets)
            return
        if name in ROLE_NAMES:
            raise RenderError(f"{self.model.path}: the model has no {name} morph")
        index = self.model.morph_index(name)
        if index < 0:
            raise RenderError(
                f"{self.model.path}: no morph named {name!r} (roles: {', '.join(ROLE_NAMES)})"
            )
        deformer.add_morph(name, *self.model.vertex_offsets(index))

    def _full_deformer(self) -> Deformer:
        if self.full is None:
            self.full = Deformer(self.model, self.skeleton, self.order)
        return self.full

    # --- drawing ------------------------------------------------------------------------------

    def draw(self, mvp: np.ndarray, lighting: Lighting, light: float, outline: bool) -> None:
        """Draw every material in file order, then the outlines (if `outline`).

        Opaque materials (alpha 1 at every fragment) are drawn with blending off: the blend
        would give the same pixels, only slower.
        """
        ctx = self.ctx
        ctx.enable(moderngl.DEPTH_TEST)
        ctx.blend_func = (
            moderngl.SRC_ALPHA,
            moderngl.ONE_MINUS_SRC_ALPHA,
            moderngl.ONE,
            moderngl.ONE_MINUS_SRC_ALPHA,
        )
        ctx.front_face = self.front_face
        ctx.cull_face = "back"
        matrix = mvp.T.astype(np.float32).tobytes()  # column-major
        for program in self.programs.materials.values():
            program["u_mvp"].write(matrix)
            _set(program, "u_edge", 0.0)
            _set(program, "u_ambient", lighting.ambient)
            _set(program, "u_directional", lighting.directional)
            _set(program, "u_light", light)
        culling = blending = None
        for m in self.materials:
            if culling is not m.double_sided:
                (ctx.disable if m.double_sided else ctx.enable)(moderngl.CULL_FACE)
                culling = m.double_sided
            if blending is not m.opaque:
                (ctx.disable if m.opaque else ctx.enable)(moderngl.BLEND)
                blending = m.opaque
            key = (m.opaque, m.textured)
            program = self.programs.materials[key]
            _set(program, "u_diffuse", m.diffuse)
            _set(program, "u_material_ambient", m.ambient)
            _set(program, "u_specular", m.specular)
            _set(program, "u_specular_power", m.specular_power)
            _set(program, "u_sphere_mode", m.sphere_mode)
            if m.textured:
                m.texture.use(0)
            if m.sphere_mode:
                m.sphere.use(1)
            m.toon.use(2)
            self.vaos[key].render(moderngl.TRIANGLES, vertices=m.count, first=m.first)
        ctx.enable(moderngl.BLEND)
        if outline:
            self._draw_edges(matrix)

    def _draw_edges(self, matrix: bytes) -> None:
        ctx, program = self.ctx, self.programs.edge
        ctx.enable(moderngl.CULL_FACE)
        ctx.cull_face = "front"
        program["u_mvp"].write(matrix)
        for m in self.materials:
            if not m.edge:
                continue
            _set(program, "u_edge", m.edge_size * self.outline_width * self.pixel)
            _set(program, "u_edge_color", m.edge_color)
            self.vao_edge.render(moderngl.TRIANGLES, vertices=m.count, first=m.first)
        ctx.cull_face = "back"

    def release(self) -> None:
        """Free every GL object of this model (textures included)."""
        for obj in reversed(self._objects):
            obj.release()
        self._objects.clear()
        self.textures.release()


def front_face(model: Model) -> str:
    """ "ccw" or "cw": the winding whose geometric normals agree with the vertex normals.

    The Model contract says counter-clockwise, but the area-weighted vote over every real model
    in ../shared/mmd says clockwise; voting keeps the renderer right either way.
    """
    tri = model.triangles.astype(np.int64)
    a, b, c = (model.positions[tri[:, i]].astype(np.float64) for i in range(3))
    geometric = np.cross(b - a, c - a)
    vote = np.einsum("ij,ij->i", geometric, model.normals[tri].sum(axis=1, dtype=np.float64))
    return "ccw" if vote.sum() >= 0.0 else "cw"


def _set(program: moderngl.Program, name: str, value) -> None:
    """Set a uniform if the linker kept it."""
    member = program.get(name, None)
    if member is not None:
        member.value = value
