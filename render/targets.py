"""Offscreen render targets and the anti-aliasing resolve.

The scene is drawn at `factor` × the output size (supersampling), optionally into a multisampled
buffer that is resolved first (MSAA). The framebuffer holds premultiplied colour (the blend state
multiplies by source alpha) and coverage alpha over a (0, 0, 0, 0) clear. One full-screen pass then
box-filters factor × factor samples per output pixel, flips rows to top-first order and divides by
alpha, so the output is straight alpha with no dark fringe, and exactly zero where nothing drew.
Given a `render.regions.Region`, the clear, the draw, the resolve and the readback are limited
to it (scissor boxes, a sub-rectangle read), and the rest of the image comes from a base image.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources

import moderngl
import numpy as np

from render.regions import Region


def shader_source(name: str, defines: dict[str, str] | None = None) -> str:
    """A GLSL file from render/shaders, with `#define`s inserted after its `#version` line."""
    text = resources.files("render").joinpath("shaders", name).read_text(encoding="utf-8")
    if not defines:
        return text
    head, _, rest = text.partition("\n")
    lines = "".join(f"#define {key} {value}\n" for key, value in defines.items())
    return f"{head}\n{lines}{rest}"


class Targets:
    """Framebuffers for one output size, supersampling factor and MSAA sample count."""

    def __init__(self, ctx: moderngl.Context, size: int, factor: int, samples: int) -> None:
        self.ctx, self.size, self.factor, self.samples = ctx, size, factor, samples
        inner = (size * factor, size * factor)
        self.color = ctx.texture(inner, 4)
        self.color.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._objects: list = [self.color]
        if samples > 1:
            ms_color = ctx.renderbuffer(inner, 4, samples=samples)
            ms_depth = ctx.depth_renderbuffer(inner, samples=samples)
            self.scene = ctx.framebuffer([ms_color], ms_depth)
            self.resolved = ctx.framebuffer([self.color])
            self._objects += [ms_color, ms_depth, self.scene, self.resolved]
        else:
            depth = ctx.depth_renderbuffer(inner)
            self.scene = ctx.framebuffer([self.color], depth)
            self.resolved = self.scene
            self._objects += [depth, self.scene]
        out_color = ctx.renderbuffer((size, size), 4)
        self.output = ctx.framebuffer([out_color])
        self.program = ctx.program(
            vertex_shader=shader_source("resolve.vert"),
            fragment_shader=shader_source("resolve.frag", {"FACTOR": str(factor)}),
        )
        self.program["u_source"].value = 0
        self.quad = ctx.vertex_array(self.program, [])
        self._objects += [out_color, self.output, self.program, self.quad]

    def begin(self, region: Region | None = None) -> None:
        """Bind and clear the scene framebuffer (only `region` of it, and draw only there)."""
        self.scene.scissor = None if region is None else self._scene_box(region)
        self.scene.use()
        self.scene.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)

    @contextmanager
    def depth_only(self) -> Iterator[None]:
        """Draw into the scene's depth buffer only (colour writes off) within the block."""
        self.scene.color_mask = (False, False, False, False)
        self.scene.use()
        try:
            yield
        finally:
            self.scene.color_mask = (True, True, True, True)
            self.scene.use()

    def finish(self, region: Region | None = None, base: np.ndarray | None = None) -> np.ndarray:
        """Resolve, downsample, un-premultiply; read the (size, size, 4) uint8 RGBA image.

        With a `region` only its pixels are resolved and read, into a copy of `base` (the image
        that holds everywhere else)."""
        self.resolve(region)
        if region is None:
            image = np.empty((self.size, self.size, 4), np.uint8)
            self.output.read_into(image, components=4)  # straight into the array: no copy
            return image
        if base is None or base.shape != (self.size, self.size, 4):
            raise ValueError(f"finish(region) needs the ({self.size}, {self.size}, 4) base image")
        patch = np.empty((region.height, region.width, 4), np.uint8)
        box = (region.x0, region.y0, region.width, region.height)  # the resolve's rows: top first
        self.output.read_into(patch, viewport=box, components=4)
        image = base.copy()
        image[region.y0 : region.y1, region.x0 : region.x1] = patch
        return image

    def resolve(self, region: Region | None = None) -> None:
        """The MSAA resolve (if any) and the downsampling pass into the output framebuffer
        (only within `region`)."""
        ctx = self.ctx
        if self.samples > 1:
            ctx.copy_framebuffer(self.resolved, self.scene)
        ctx.disable(moderngl.DEPTH_TEST | moderngl.BLEND | moderngl.CULL_FACE)
        self.output.scissor = (
            None if region is None else (region.x0, region.y0, region.width, region.height)
        )
        self.output.use()
        self.color.use(0)
        self.quad.render(moderngl.TRIANGLES, vertices=3)

    def _scene_box(self, region: Region) -> tuple[int, int, int, int]:
        """`region` in the supersampled scene framebuffer, whose rows count from the bottom."""
        k = self.factor
        return (k * region.x0, k * (self.size - region.y1), k * region.width, k * region.height)

    def release(self) -> None:
        for obj in reversed(self._objects):
            obj.release()
        self._objects.clear()
