"""One model on the GPU: buffers uploaded once, the moving vertex slice re-uploaded per pose.

The posing itself (vertex order, deformers, culling) is `render.rig.Rig`'s, without GL; this
module owns the buffers, textures and draw calls.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import moderngl
import numpy as np

from mmd_loader.model import Model
from mmd_loader.roles import FaceRoles
from render.errors import RenderError
from render.framing import Framing
from render.materials import DrawMaterial, SharedTextures, TextureCache, draw_material
from render.pose import Lighting, Pose
from render.regions import ChangeMap
from render.rig import Posed, Rig

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
        head_center: tuple[float, float] = (0.5, 0.5),
        bones: tuple[int, ...] = (),
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
        self.framing = Framing.from_head_box(roles.head_box, head_fraction, bounds, head_center)
        self.pixel = 2.0 * self.framing.half_extent / size  # model units per output pixel
        self.outline_width = outline_width
        self.front_face = front_face(model)
        self.rig = Rig(model, roles, bones)
        self.dirty_static = False  # the static part holds a non-rest pose

        self._objects: list = []
        self.textures = TextureCache(ctx)
        self.vbo_pose = self._keep(ctx.buffer(self.rig.rest.tobytes(), dynamic=True))
        statics = np.concatenate([model.uvs, model.edge_scale[:, None]], axis=1)
        order = self.rig.order
        self.vbo_static = self._keep(ctx.buffer(statics[order].astype(np.float32).tobytes()))
        self.culled = True
        self.ibo: moderngl.Buffer | None = None
        self.materials: list[DrawMaterial] = []
        self._build_indices(shared, cull=True)
        self.vaos = {key: self._vao(program) for key, program in programs.materials.items()}
        self.vao_edge = self._vao(programs.edge)
        # A second index buffer for drawing part of the triangles (`draw(..., triangles=...)`).
        self.ibo_part = self._keep(ctx.buffer(reserve=self.ibo.size, dynamic=True))
        self.vaos_part = {
            key: self._vao(program, self.ibo_part) for key, program in programs.materials.items()
        }
        self.vao_edge_part = self._vao(programs.edge, self.ibo_part)

    # --- upload -------------------------------------------------------------------------------

    def _keep(self, obj):
        self._objects.append(obj)
        return obj

    def _vao(
        self, program: moderngl.Program, ibo: moderngl.Buffer | None = None
    ) -> moderngl.VertexArray:
        """A VAO over both buffers (indexed by `ibo`, default the full index buffer), skipping
        attributes the program's linker dropped."""
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
        ibo = ibo or self.ibo
        return self._keep(self.ctx.vertex_array(program, content, ibo, index_element_size=4))

    def _build_indices(self, shared: SharedTextures, cull: bool) -> None:
        """Fill the IBO (materials in file order) and the draw records."""
        framing = self.framing if cull else None
        margin = CULL_MARGIN_PX + self._max_edge_px()
        parts, draws, first = [], [], 0
        for i, tris in self.rig.triangles(framing, self.size, margin):
            material = self.model.materials[i]
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
        self.drawn = indices.astype(np.uint32) if parts else np.zeros((0, 3), np.uint32)
        self.draw_ends = np.cumsum([m.count // 3 for m in draws], dtype=np.int64)
        self.changes = ChangeMap(
            self.rig.rest, self.drawn, self.framing, self.size, margin, self.rig.start
        )

    def _max_edge_px(self) -> float:
        sizes = [float(m.edge_size) for m in self.model.materials] or [0.0]
        scale = float(self.model.edge_scale.max()) if len(self.model.edge_scale) else 0.0
        return self.outline_width * max(sizes) * max(scale, 1.0)

    # --- posing -------------------------------------------------------------------------------

    def apply(self, pose: Pose) -> Posed:
        """Write the posed vertices for `pose` into the vertex buffer; returns them."""
        posed = self.rig.deform(pose)
        if posed.full:
            if self.culled:
                self._build_indices(self.shared, cull=False)
            self.dirty_static = True
        elif self.dirty_static:  # undo a full-model pose: the static part back to rest
            self.vbo_pose.write(self.rig.rest[: self.rig.start])
            self.dirty_static = False
        self.vbo_pose.write(posed.data, offset=posed.start * 24)
        return posed

    # --- drawing ------------------------------------------------------------------------------

    def draw(
        self,
        mvp: np.ndarray,
        lighting: Lighting,
        light: float,
        outline: bool,
        triangles: np.ndarray | None = None,
    ) -> None:
        """Draw every material in file order, then the outlines (if `outline`).

        `triangles` (ascending indices into `drawn`) draws only those, in the same order: within
        a scissor box that no other triangle reaches, the same pixels for less work.
        Opaque materials (alpha 1 at every fragment) are drawn with blending off: the blend
        would give the same pixels, only slower.
        """
        materials, vaos, vao_edge = self.materials, self.vaos, self.vao_edge
        if triangles is not None:
            materials, vaos, vao_edge = self._part(triangles), self.vaos_part, self.vao_edge_part
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
        for m in materials:
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
            vaos[key].render(moderngl.TRIANGLES, vertices=m.count, first=m.first)
        ctx.enable(moderngl.BLEND)
        if outline:
            self._draw_edges(matrix, materials, vao_edge)

    def _part(self, triangles: np.ndarray) -> list[DrawMaterial]:
        """Upload `drawn[triangles]` to the part index buffer; the draw records over it."""
        data = self.drawn[triangles].tobytes()
        self.ibo_part.orphan(self.ibo.size)
        if data:
            self.ibo_part.write(data)
        ends = np.searchsorted(triangles, self.draw_ends)
        starts = np.concatenate([[0], ends[:-1]])
        return [
            replace(m, first=3 * int(a), count=3 * int(b - a))
            for m, a, b in zip(self.materials, starts, ends, strict=True)
            if b > a
        ]

    def _draw_edges(
        self, matrix: bytes, materials: list[DrawMaterial], vao_edge: moderngl.VertexArray
    ) -> None:
        ctx, program = self.ctx, self.programs.edge
        ctx.enable(moderngl.CULL_FACE)
        ctx.cull_face = "front"
        program["u_mvp"].write(matrix)
        for m in materials:
            if not m.edge:
                continue
            _set(program, "u_edge", m.edge_size * self.outline_width * self.pixel)
            _set(program, "u_edge_color", m.edge_color)
            vao_edge.render(moderngl.TRIANGLES, vertices=m.count, first=m.first)
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
