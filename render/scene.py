"""One model on the GPU: buffers uploaded once, the moving vertex slice re-uploaded per pose.

The posing itself (vertex order, deformers, culling) is `render.rig.Rig`'s, without GL; this
module owns the buffers, textures and draw calls.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import moderngl
import numpy as np

from mmd_loader.face_parts import FaceParts, decal_normals, face_parts
from mmd_loader.model import Model
from mmd_loader.overlays import Overlays, expression_overlays
from mmd_loader.roles import FaceRoles
from render.brow_layer import BrowLayer, brow_layer
from render.errors import RenderError
from render.framing import Framing
from render.materials import DrawMaterial, SharedTextures, TextureCache, draw_material
from render.pose import Lighting, Pose
from render.regions import ChangeMap
from render.rig import Posed, Rig
from render.targets import Targets

CULL_MARGIN_PX = 2.0


@dataclass
class Programs:
    """The material programs by (opaque, samplers), the outline program and the depth-only
    programs of the brow layer (the face's depth; the far depth).

    Opaque materials (alpha 1 at every fragment) are drawn without blending or discard, and
    untextured ones without sampling the white texture: the same pixels, less work per fragment.
    """

    materials: dict[tuple[bool, int], moderngl.Program]
    edge: moderngl.Program
    depth: moderngl.Program
    far: moderngl.Program  # writes the far depth (the brow layer's first pass)

    def release(self) -> None:
        for program in (*self.materials.values(), self.edge, self.depth, self.far):
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
        face_ramp: bool = True,
        hide_overlays: bool = True,
    ) -> None:
        if roles.head_box is None:
            raise RenderError(
                f"{model.path}: no head box, cannot frame the face: {'; '.join(roles.problems)}"
            )
        if len(model.positions) == 0 or len(model.triangles) == 0:
            raise RenderError(f"{model.path}: the model has no geometry")
        self.face = face_parts(model, roles) if face_ramp else FaceParts()
        self.overlays = (
            expression_overlays(model, roles, self.face) if hide_overlays else Overlays()
        )
        model = as_drawn(model, roles, self.face, self.overlays)
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
        # Per vertex: uv, edge scale, and 1 where the face is lit through its ramp.
        lit_by_ramp = self.face.vertices if len(self.face.vertices) == len(model.uvs) else None
        if lit_by_ramp is None:
            lit_by_ramp = np.zeros(len(model.uvs), bool)
        self.face_materials = self.face.materials(model)
        statics = np.concatenate(
            [model.uvs, model.edge_scale[:, None], lit_by_ramp[:, None]], axis=1
        )
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
        self.vao_far = self._vao(programs.far)
        self.posed: Posed | None = None
        self._brows: BrowLayer | None = None  # found on first use (`draw_brows`)
        self._brow_draw: _BrowDraw | None = None

    # --- upload -------------------------------------------------------------------------------

    def _keep(self, obj):
        self._objects.append(obj)
        return obj

    def _vao(
        self, program: moderngl.Program, ibo: moderngl.Buffer | None = None
    ) -> moderngl.VertexArray:
        """A VAO over both buffers (indexed by `ibo`, default the full index buffer), skipping
        attributes the program's linker dropped; released with the scene."""
        return self._keep(self.vertex_array(program, ibo or self.ibo))

    def vertex_array(self, program: moderngl.Program, ibo: moderngl.Buffer) -> moderngl.VertexArray:
        """A VAO over both vertex buffers, indexed by `ibo` (the caller releases it)."""
        pose = " ".join(
            f if a in program else f"{f[0]}x4"
            for f, a in (("3f", "in_position"), ("3f", "in_normal"))
        )
        statics = (("2f", "in_uv"), ("1f", "in_edge_scale"), ("1f", "in_face"))
        static = " ".join(f if a in program else f"{f[0]}x4" for f, a in statics)
        content = [
            (self.vbo_pose, pose, *[a for a in ("in_position", "in_normal") if a in program]),
            (self.vbo_static, static, *[a for _, a in statics if a in program]),
        ]
        content = [c for c in content if len(c) > 2]
        return self.ctx.vertex_array(program, content, ibo, index_element_size=4)

    def _build_indices(self, shared: SharedTextures, cull: bool) -> None:
        """Fill the IBO (materials in file order) and the draw records."""
        framing = self.framing if cull else None
        margin = CULL_MARGIN_PX + self._max_edge_px()
        parts, draws, sources, first = [], [], [], 0
        for i, tris, source in self.rig.drawn_triangles(framing, self.size, margin):
            material = self.model.materials[i]
            face = i in self.face_materials
            draws.append(
                draw_material(material, i, first, 3 * len(tris), self.textures, shared, face)
            )
            parts.append(tris)
            sources.append(source)
            first += 3 * len(tris)
        indices = np.concatenate(parts) if parts else np.zeros((1, 3), np.int64)
        # For each drawn triangle, its index in model.triangles.
        self.drawn_source = np.concatenate(sources) if sources else np.zeros(0, np.int64)
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
        if getattr(self, "_brow_draw", None) is not None:
            self._brow_draw.release()
            self._brow_draw = None  # the brows' places in the index buffer changed

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
        self.posed = posed
        return posed

    # --- drawing ------------------------------------------------------------------------------

    def draw(
        self,
        mvp: np.ndarray,
        lighting: Lighting,
        light: float,
        outline: bool,
        triangles: np.ndarray | None = None,
        brows: bool = False,
        only: frozenset[int] | None = None,
    ) -> None:
        """Draw every material in file order, then the outlines (if `outline`).

        `triangles` (ascending indices into `drawn`) draws only those, in the same order: within
        a scissor box that no other triangle reaches, the same pixels for less work.
        `brows`: leave the brow triangles out (`draw_brows` draws them after).
        `only`: draw only these materials (model indices; for measurements).
        Opaque materials (alpha 1 at every fragment) are drawn with blending off: the blend
        would give the same pixels, only slower.
        """
        layer = self._brow_records() if brows else None
        if triangles is not None:
            if layer is not None:
                triangles = triangles[~layer.drawn_mask[triangles]]
            materials, vaos, vao_edge = self._part(triangles), self.vaos_part, self.vao_edge_part
        else:
            materials = layer.others if layer is not None else self.materials
            vaos, vao_edge = self.vaos, self.vao_edge
        if only is not None:
            materials = [m for m in materials if m.index in only]
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
        for program in (*self.programs.materials.values(), self.programs.depth, self.programs.far):
            program["u_mvp"].write(matrix)
            _set(program, "u_edge", 0.0)
            _set(program, "u_ambient", lighting.ambient)
            _set(program, "u_directional", lighting.directional)
            _set(program, "u_light", light)
        self._draw_materials(materials, vaos)
        ctx.enable(moderngl.BLEND)
        if outline:
            self._draw_edges(matrix, materials, vao_edge)

    def _draw_materials(
        self, materials: list[DrawMaterial], vaos: dict[tuple[bool, int], moderngl.VertexArray]
    ) -> None:
        """Draw `materials`' index ranges with their own state (culling, blending, uniforms)."""
        ctx = self.ctx
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

    # --- the brow layer (render.brow_layer) ---------------------------------------------------

    @property
    def brows(self) -> BrowLayer:
        """The model's brow layer (found on first use)."""
        if self._brows is None:
            self._brows = brow_layer(self.model, self.roles, self.face)
        return self._brows

    def draw_brows(self, targets: Targets) -> None:
        """Draw the brows over everything drawn so far (after `draw(..., brows=True)` of the
        same pose), depth-tested against the face's skin near them only: depth only, the
        brows' own pixels are set to the far depth (one extra draw of the brow triangles), the
        skin patch is drawn into that, and then the brows in their materials. Within the
        scene's scissor box (a region's)."""
        layer = self._brow_records()
        if layer is None:
            return
        ctx = self.ctx
        ctx.disable(moderngl.BLEND)
        with targets.depth_only():
            ctx.depth_func = "1"  # always: the brows' pixels back to far
            for m in layer.brows:
                (ctx.disable if m.double_sided else ctx.enable)(moderngl.CULL_FACE)
                self.vao_far.render(moderngl.TRIANGLES, vertices=m.count, first=m.first)
            ctx.depth_func = "<"
            ctx.enable(moderngl.CULL_FACE)
            layer.patch_vao.render(moderngl.TRIANGLES)
        self._draw_materials(layer.brows, self.vaos)
        ctx.enable(moderngl.BLEND)

    def _brow_records(self) -> _BrowDraw | None:
        """The brow layer's draw records over the current index buffer (None without brows)."""
        if not self.brows.found:
            return None
        if self._brow_draw is None:
            self._brow_draw = _BrowDraw.build(self)
        return self._brow_draw

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
        if self._brow_draw is not None:
            self._brow_draw.release()
            self._brow_draw = None
        for obj in reversed(self._objects):
            obj.release()
        self._objects.clear()
        self.textures.release()


@dataclass
class _BrowDraw:
    """The brow layer over one index buffer: which drawn triangles are brows (`drawn_mask`),
    the draw records without them (`others`) and of them only (`brows`), and the face patch's
    own index buffer and depth-only vertex array."""

    drawn_mask: np.ndarray
    others: list[DrawMaterial]
    brows: list[DrawMaterial]
    patch_ibo: moderngl.Buffer
    patch_vao: moderngl.VertexArray

    @classmethod
    def build(cls, scene: Scene) -> _BrowDraw:
        layer = scene.brows
        mask = np.isin(scene.drawn_source, layer.brows.triangles)
        others = _records(scene.materials, ~mask)
        brows = _records(scene.materials, mask)
        patch = scene.rig.new_index[scene.model.triangles[layer.patch].astype(np.int64)]
        data = patch.astype(np.uint32).tobytes() if len(patch) else np.zeros(3, np.uint32).tobytes()
        ibo = scene.ctx.buffer(data)
        vao = scene.vertex_array(scene.programs.depth, ibo)
        if not len(patch):
            vao.vertices = 0
        return cls(mask, others, brows, ibo, vao)

    def release(self) -> None:
        self.patch_vao.release()
        self.patch_ibo.release()


def _records(materials: list[DrawMaterial], keep: np.ndarray) -> list[DrawMaterial]:
    """`materials`' draw records cut to the drawn triangles `keep` marks: one record per run of
    kept triangles, in order."""
    out = []
    for m in materials:
        first = m.first // 3
        flags = keep[first : first + m.count // 3]
        if not flags.any():
            continue
        edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            out.append(replace(m, first=3 * (first + int(start)), count=3 * int(stop - start)))
    return out


def as_drawn(model: Model, roles: FaceRoles, face: FaceParts, overlays: Overlays) -> Model:
    """`model` as the renderer draws it: its decals with the skin's normals, its expression
    overlays hidden at rest (alpha 0). The model itself when nothing changes; else a copy that
    shares every other array."""
    normals = decal_normals(model, roles, face)
    if normals is model.normals and not overlays.hidden:
        return model
    drawn = copy.copy(model)
    drawn.normals = normals
    drawn.materials = [
        replace(m, diffuse=np.array([*m.diffuse[:3], 0.0], np.float32))
        if i in overlays.hidden
        else m
        for i, m in enumerate(model.materials)
    ]
    return drawn


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
