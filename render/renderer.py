"""`Renderer`: one EGL context, one model at a time, pose → (size, size, 4) straight-alpha RGBA."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Collection, Iterator
from dataclasses import dataclass, replace

import numpy as np

from mmd_loader.brows import BROW_MODES
from mmd_loader.model import Model
from mmd_loader.roles import FaceRoles
from poses.schema import Schema
from render.binding import SchemaBinding
from render.context import create_context
from render.errors import RenderError
from render.framing import Framing
from render.materials import (
    TEXTURE_POLICIES,
    Samplers,
    SharedTextures,
    TextureBudget,
    TextureProblem,
)
from render.pose import Lighting, Pose
from render.scene import Programs, Scene
from render.targets import Targets, shader_source

SHADINGS = ("phong", "toon")
MMD_LIGHT = 154.0 / 255.0  # MMD's default light colour
# Phong's normalisation: the light term ambient + directional × max(0, n·l) is divided by its
# value for a front-facing surface under the default Lighting (0.5 + 0.5 = 1), so there phong
# shows MMD's material colour (diffuse/ambient, texture, sphere map) unchanged, as MMD and
# `toon` do on the lit half of the ramp; THA1's brighter ambients scale it up from there.
PHONG_REFERENCE = Lighting().ambient + Lighting().directional
# A pose drawn over the rest image redraws its changed region only when that is at most this
# share of the image; above it the whole frame costs about the same and needs no copy.
MAX_REGION_SHARE = 0.6


@dataclass(frozen=True)
class RenderSettings:
    """How images are made.

    - `size`: output width = height in pixels; `head_fraction`: the head top→chin span as a
      fraction of the height (THA1: 0.5, the middle 128 px of 256); `head_center`: where the
      head box's centre lands, (x, y) as fractions from the top left (THA1 (0.5, 0.5); THA3
      (0.5, 0.25), the middle 128² box of a 512² image's top half).
    - `shading`: "phong" (THA1's ambient + directional light over the colour MMD composes for
      each material: diffuse and ambient, texture, sphere map; at the default `Lighting` a
      front-facing surface shows that colour exactly) or "toon" (MMD's look: the same colour
      × the toon ramp). `specular` adds material specular;
      `outline` draws MMD's edge (back-face hull, `outline_width` px per unit of edge size).
    - Anti-aliasing: `supersample` k renders at k × size and box-filters; `msaa` samples
      (0 = off) multisamples the (supersampled) buffer.
    - `threads`: llvmpipe's LP_NUM_THREADS (0: rasterise in the calling thread, the least CPU
      per image; None: Mesa's default).
    - Texture budgets, checked on each file's declared size before it is decoded:
      `max_texture_pixels` per texture (default 4096²) and `max_model_texture_pixels` for one
      model's textures together (default 64 Mpx = four 4096² textures; the real models in
      ../shared/mmd use at most 11 Mpx). `texture_policy` for a texture over its budget:
      "downscale" (the default: decoded reduced by a power of two until it fits; at 256 px a
      face samples mip levels of 1024 px or less, so nothing visible is lost and the model keeps
      its look) or "refuse" (drawn without it). A texture past the model's budget is refused.
      Everything refused or unreadable is in `Renderer.texture_problems`.
    - `device`: the EGL device index (`render.devices`; None: `THAGEN_EGL_DEVICE`, else 0).
    - `face_ramp`: under phong, light the face (`mmd_loader.face_parts`) through its own
      toon ramp, as its author saw it in MMD (False: THA1's plain Lambert term everywhere,
      under which many faces show grey plates).
    - `hide_overlays`: draw expression overlays that the model shows at rest but means to
      hide (`mmd_loader.overlays`) at alpha 0.

    How far a schema parameter turns a bone is the schema's (`degrees`), not a setting here.
    """

    size: int = 256
    head_fraction: float = 0.5
    head_center: tuple[float, float] = (0.5, 0.5)
    shading: str = "phong"
    supersample: int = 2
    msaa: int = 0
    specular: bool = False
    outline: bool = False
    outline_width: float = 1.0
    threads: int | None = None
    max_texture_pixels: int = TextureBudget.max_pixels
    max_model_texture_pixels: int = TextureBudget.max_model_pixels
    texture_policy: str = TextureBudget.policy
    device: int | None = None
    face_ramp: bool = True
    hide_overlays: bool = True

    def __post_init__(self) -> None:
        if not 8 <= self.size <= 4096:
            raise ValueError(f"size must be in [8, 4096], not {self.size}")
        if not 0.0 < self.head_fraction <= 1.0:
            raise ValueError(f"head_fraction must be in (0, 1], not {self.head_fraction}")
        if len(self.head_center) != 2 or not all(0.0 <= v <= 1.0 for v in self.head_center):
            raise ValueError(f"head_center must be (x, y) in [0, 1]², not {self.head_center}")
        if self.shading not in SHADINGS:
            raise ValueError(f"shading must be one of {SHADINGS}, not {self.shading!r}")
        if not 1 <= self.supersample <= 8 or self.size * self.supersample > 8192:
            raise ValueError(
                f"supersample must be in [1, 8] (size × k <= 8192), not {self.supersample}"
            )
        if self.msaa not in (0, 1, 2, 4, 8, 16):
            raise ValueError(f"msaa must be 0, 2, 4, 8 or 16, not {self.msaa}")
        if self.threads is not None and self.threads < 0:
            raise ValueError(f"threads must be >= 0 (or None), not {self.threads}")
        if self.max_texture_pixels < 1 or self.max_model_texture_pixels < 1:
            raise ValueError("texture budgets must be at least 1 pixel")
        if self.texture_policy not in TEXTURE_POLICIES:
            raise ValueError(
                f"texture_policy must be one of {TEXTURE_POLICIES}, not {self.texture_policy!r}"
            )
        if self.device is not None and self.device < 0:
            raise ValueError(f"device must be an EGL device index >= 0, not {self.device}")

    @property
    def texture_budget(self) -> TextureBudget:
        return TextureBudget(
            self.max_texture_pixels, self.max_model_texture_pixels, self.texture_policy
        )


class RegionOdds:
    """Whether drawing over the rest image is worth trying for the next pose of one model.

    Finding a pose's changed region costs a few tenths of a millisecond; for a model whose head
    turns change most of the frame (long hair) the region is always too large and the whole
    frame is drawn anyway. After `STREAK` such misses in a row for poses that turn bones (or
    for poses that do not), the search is skipped for that kind of pose, except every `PROBE`-th
    time. Either way the pixels are the same: this only saves the search.
    """

    STREAK, PROBE = 8, 32

    def __init__(self) -> None:
        self.misses = {False: 0, True: 0}
        self.skipped = {False: 0, True: 0}

    def worth_trying(self, turns: bool) -> bool:
        if self.misses[turns] < self.STREAK:
            return True
        self.skipped[turns] += 1
        return self.skipped[turns] % self.PROBE == 0

    def record(self, turns: bool, drawn_in_region: bool) -> None:
        self.misses[turns] = 0 if drawn_in_region else self.misses[turns] + 1


class Renderer:
    """Renders poses of one model at a time. Create it in the process that renders (after fork)."""

    def __init__(self, settings: RenderSettings | None = None) -> None:
        self.settings = settings = settings or RenderSettings()
        self.ctx = create_context(settings.threads, settings.device)
        samples = settings.msaa if settings.msaa > 1 else 0
        if samples > self.ctx.max_samples:
            self.ctx.release()
            raise RenderError(f"msaa={samples}: this GL allows at most {self.ctx.max_samples}")
        self.targets = Targets(self.ctx, settings.size, settings.supersample, samples)
        vertex = shader_source("model.vert")
        ramp_vertex = shader_source("model.vert", {"RAMP": "1"})
        programs = {}
        # Toon always samples the ramp: RAMP variants are phong's.
        every = Samplers.TEXTURE | Samplers.SPHERE
        if settings.shading == "phong":
            every |= Samplers.RAMP
        samplers = [Samplers(bits) for bits in range(every + 1)]
        for opaque, sampled in itertools.product((False, True), samplers):
            defines = {
                "SHADING": settings.shading.upper(),
                "SPECULAR": str(int(settings.specular)),
                "OPAQUE": str(int(opaque)),
                "TEXTURED": str(int(Samplers.TEXTURE in sampled)),
                "SPHERE": str(int(Samplers.SPHERE in sampled)),
                "RAMP": str(int(Samplers.RAMP in sampled)),
                "MMD_LIGHT": repr(MMD_LIGHT),
                "PHONG_REFERENCE": repr(float(PHONG_REFERENCE)),
            }
            program = self.ctx.program(
                vertex_shader=ramp_vertex if Samplers.RAMP in sampled else vertex,
                fragment_shader=shader_source("model.frag", defines),
            )
            for name, unit in (("u_texture", 0), ("u_sphere", 1), ("u_toon", 2)):
                if name in program:
                    program[name].value = unit
            programs[opaque, sampled] = program
        edge_program = self.ctx.program(
            vertex_shader=vertex, fragment_shader=shader_source("edge.frag")
        )
        depth_program = self.ctx.program(
            vertex_shader=vertex, fragment_shader=shader_source("depth.frag")
        )
        far_program = self.ctx.program(
            vertex_shader=vertex, fragment_shader=shader_source("far.frag")
        )
        self.programs = Programs(programs, edge_program, depth_program, far_program)
        phong = settings.shading == "phong"
        self.shared = SharedTextures(
            self.ctx, settings.texture_budget, MMD_LIGHT if phong else None
        )
        self.scene: Scene | None = None
        self._mvp: np.ndarray | None = None
        self._regions = RegionOdds()

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the model, the targets and the context."""
        if self.ctx is None:
            return
        self._activate()  # the GL objects belong to this context, whichever was current
        if self.scene is not None:
            self.scene.release()
            self.scene = None
        self.shared.release()
        self.targets.release()
        self.programs.release()
        self.ctx.release()
        self.ctx = None

    def set_model(
        self, model: Model, roles: FaceRoles | None = None, schema: Schema | None = None
    ) -> None:
        """Upload `model` (and release the previous one). `roles` default: `detect_face(model)`.
        With a `schema`, the vertices its rotations can move (the upper body, the eyes) join the
        head's on the fast partial path.

        The framing comes from the rest pose's head box and stays fixed for every pose.
        """
        if roles is None:
            from mmd_loader import detect_face

            roles = detect_face(model)
        settings = self.settings
        self._activate()
        if self.scene is not None:
            self.scene.release()
            self.scene = None
        self.scene = Scene(
            self.ctx,
            self.programs,
            self.shared,
            model,
            roles,
            size=settings.size,
            head_fraction=settings.head_fraction,
            outline_width=settings.outline_width,
            head_center=tuple(settings.head_center),
            bones=tuple(SchemaBinding(schema, model, roles).bones()) if schema else (),
            face_ramp=settings.face_ramp,
            hide_overlays=settings.hide_overlays,
        )
        self._mvp = self.scene.framing.matrix()
        self._regions = RegionOdds()

    @property
    def framing(self) -> Framing:
        """The current model's camera (see `Framing.project` to map model points to pixels)."""
        return self._require().framing

    def bind(self, schema: Schema) -> SchemaBinding:
        """`schema` bound to the current model: `bind(schema).pose(values)` is the `Pose` of
        schema values (see `render.binding`)."""
        scene = self._require()
        return SchemaBinding(schema, scene.model, scene.roles)

    @property
    def warnings(self) -> list[str]:
        """Problems met while uploading the current model (unreadable textures, …)."""
        return list(self._require().textures.warnings)

    @property
    def texture_problems(self) -> list[TextureProblem]:
        """Textures the current model's materials lost so far, as (material index, material
        name, slot, path, reason): refused by a budget, unreadable, out of memory while decoding,
        not uploadable. Textures load as materials are first drawn (those outside the fixed view
        when a pose needs the whole model), so check after rendering. Files that were missing
        or refused by the loader are in the model's warnings (`thagen inspect`), not here."""
        return list(self._require().textures.problems)

    @contextlib.contextmanager
    def flat_colours(self, colours: dict[int, tuple[float, float, float]]) -> Iterator[None]:
        """While inside, draw the current model's materials named in `colours` (by index) in that
        flat RGB instead of their colour, texture and sphere map (alpha and shading unchanged):
        two renders in different colours show exactly the pixels a material reaches."""
        scene = self._require()
        kept = scene.materials
        flat = Samplers(0)
        scene.materials = [
            replace(
                m,
                diffuse=(*colours[m.index], m.diffuse[3]),  # phong draws the (baked) diffuse
                ambient=tuple(colours[m.index]),  # toon adds the ambient: saturated either way
                textured=flat,
                sphere_mode=0,
            )
            if m.index in colours
            else m
            for m in kept
        ]
        try:
            yield
        finally:
            scene.materials = kept

    def render(
        self,
        pose: Pose | None = None,
        lighting: Lighting | None = None,
        rest: np.ndarray | None = None,
        brows: str = "modelled",
        only: Collection[int] | None = None,
    ) -> np.ndarray:
        """The current model in `pose` as (size, size, 4) uint8 RGBA: straight alpha, row 0 at
        the top, background exactly (0, 0, 0, 0).

        `brows`: "modelled" (as the model is built) or "over" (the brows drawn over the hair,
        depth-tested against the face only: `render.brow_layer`; a model whose brows have no
        geometry of their own renders as modelled).
        `rest`, when given, must be `render(Pose(), lighting, brows=brows)` of this model: then
        only the region the pose can change is drawn (`render.regions`) and the rest is copied
        from it. The pixels are the same as without it; an expression costs a fraction.
        `only`: draw only these materials (model indices; for measurements such as the quality
        flags), the whole frame.
        """
        if brows not in BROW_MODES:
            raise ValueError(f"brows must be one of {BROW_MODES}, not {brows!r}")
        scene = self._require()
        lighting = lighting or Lighting()
        self._activate()
        posed = scene.apply(pose or Pose())
        over = brows == "over" and scene.brows.found
        light = MMD_LIGHT * (lighting.ambient + lighting.directional)
        turns = any(any(angles) for angles in (pose or Pose()).rotations.values())
        outline = self.settings.outline
        if only is not None:
            self.targets.begin()
            scene.draw(self._mvp, lighting, light, outline, brows=over, only=frozenset(only))
            if over:
                scene.draw_brows(self.targets)
            return self.targets.finish()
        if rest is not None and not posed.full and self._regions.worth_trying(turns):
            limit = int(MAX_REGION_SHARE * self.settings.size**2)
            change = scene.changes.find(posed.data, posed.start, limit)
            self._regions.record(turns, change.triangles is not None)
            if change.region.empty:
                return rest.copy()
            if change.triangles is not None:
                self.targets.begin(change.region)
                scene.draw(self._mvp, lighting, light, outline, change.triangles, brows=over)
                if over:
                    scene.draw_brows(self.targets)
                return self.targets.finish(change.region, rest)
        self.targets.begin()
        scene.draw(self._mvp, lighting, light, outline, brows=over)
        if over:
            scene.draw_brows(self.targets)
        return self.targets.finish()

    def _activate(self) -> None:
        """Make this renderer's context current, and leave it so (code using `ctx` after a
        render finds it current): a process may hold several renderers, and each call of one
        draws into its own context. Entering is moderngl's way of making a standalone context
        current; it costs a few microseconds."""
        if self.ctx is None:
            raise RenderError("the renderer is closed")
        self.ctx.__enter__()

    def _require(self) -> Scene:
        if self.ctx is None:
            raise RenderError("the renderer is closed")
        if self.scene is None:
            raise RenderError("no model: call set_model(model, roles) first")
        return self.scene
