"""Where a pose's image can differ from the rest image, and which triangles can draw there.

A pixel's value is a function of the fragments the drawn triangles give it, and a triangle whose
six vertex values (position, normal) are those of the rest pose gives the same fragments as at
rest. So a pose can change only the pixels that a *changed* triangle (one with a vertex whose
data differs from rest) covers, at rest or posed. Outside the bounding box of those triangles'
vertices, the pose's image is the rest image, bit for bit. Inside it, drawing only the triangles
that reach the box, in their usual order, gives the fragments a full draw gives there.

The renderer uses this to draw an expression (eyes and mouth: about 10 % of a 256² image for the
bench model) over the rest image instead of drawing the whole frame. Pure numpy, no GL: the
camera is `render.framing.Framing` (orthographic), so a triangle's pixels lie inside the box of
its projected vertices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from render.framing import Framing

EPSILON_PX = 1.0  # the GPU transforms in float32; a box this much wider holds every fragment


@dataclass(frozen=True)
class Region:
    """Output pixels x0 ≤ x < x1, y0 ≤ y < y1 (rows counted from the image top)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return max(0, self.x1 - self.x0)

    @property
    def height(self) -> int:
        return max(0, self.y1 - self.y0)

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def empty(self) -> bool:
        return self.area == 0


EMPTY = Region(0, 0, 0, 0)


class ChangeMap:
    """For one model's vertex buffer (`rest`: (N, 6) positions + normals in buffer order) and the
    triangles a full draw issues (`drawn`: (T, 3) buffer indices, in draw order), seen through
    `framing` at `size` pixels: the region a pose changes and the triangles that reach it.

    `margin_px` widens every box (outline width, in output pixels); `moving_from` is the first
    buffer index a partial pose can rewrite (vertices before it never change).
    """

    def __init__(
        self,
        rest: np.ndarray,
        drawn: np.ndarray,
        framing: Framing,
        size: int,
        margin_px: float = 0.0,
        moving_from: int = 0,
    ) -> None:
        self.rest, self.framing, self.size = rest, framing, size
        self.margin = EPSILON_PX + float(margin_px)
        self.start = int(moving_from)
        self.drawn = np.asarray(drawn, np.int64).reshape(-1, 3)
        self.rest_px = framing.project(rest[:, :3], size)
        a, b, c = (self.rest_px[self.drawn[:, i]] for i in range(3))
        self.rest_lo = np.minimum(np.minimum(a, b), c)  # (T, 2) box of each triangle at rest
        self.rest_hi = np.maximum(np.maximum(a, b), c)
        # Triangles with a vertex a pose can rewrite.
        self.moving = np.flatnonzero((self.drawn >= self.start).any(axis=1))
        self.moving_drawn = self.drawn[self.moving]

    def find(self, data: np.ndarray, start: int, max_area: int | None = None) -> Change:
        """The change that posed vertex data (`data`, written from buffer index `start`) makes
        to the rest image. With `max_area`, a region known to be larger than that is returned
        early, without its triangles (the caller then draws the whole frame)."""
        if start < self.start:
            raise ValueError(f"the pose rewrites from vertex {start}, before {self.start}")
        rest = self.rest[start : start + len(data)]
        moved = np.flatnonzero(_rows_differ(data, rest))
        if len(moved) == 0:
            return NO_CHANGE
        if max_area is not None:  # the moved vertices alone: a box inside the final one
            inner = self._region(data[moved], rest[moved])
            if inner.area > max_area:
                return Change(inner, None)
        changed = np.zeros(len(self.rest), bool)
        changed[moved + start] = True
        touched = self.moving_drawn
        hit = changed[touched[:, 0]] | changed[touched[:, 1]] | changed[touched[:, 2]]
        if not hit.any():  # only vertices no drawn triangle uses
            return NO_CHANGE
        used = np.zeros(len(self.rest), bool)
        used[touched[hit].ravel()] = True
        vertices = np.flatnonzero(used)
        posed = vertices[vertices >= start] - start
        region = self._region(data[posed], self.rest[vertices])
        if region.empty:  # the change is wholly outside the image
            return NO_CHANGE
        if max_area is not None and region.area > max_area:
            return Change(region, None)
        # Unchanged triangles sit where they sit at rest; the changed ones all reach the region.
        m = self.margin
        reach = (
            (self.rest_hi[:, 0] >= region.x0 - m)
            & (self.rest_lo[:, 0] <= region.x1 + m)
            & (self.rest_hi[:, 1] >= region.y0 - m)
            & (self.rest_lo[:, 1] <= region.y1 + m)
        )
        reach[self.moving[hit]] = True
        return Change(region, np.flatnonzero(reach))

    def _region(self, *vertices: np.ndarray) -> Region:
        """The pixels within the margin of the vertices' positions (rows of x, y, z, …),
        clipped to the image.

        The projection is axis-aligned and affine, so the pixel box of the points is the
        projection of their model-space box (image rows grow downwards, model y upwards)."""
        parts = [v for v in vertices if len(v)]
        x0, x1 = min(float(v[:, 0].min()) for v in parts), max(float(v[:, 0].max()) for v in parts)
        y0, y1 = min(float(v[:, 1].min()) for v in parts), max(float(v[:, 1].max()) for v in parts)
        corners = np.array([[x0, y1, 0.0], [x1, y0, 0.0]])
        (left, top), (right, bottom) = self.framing.project(corners, self.size)
        x0, y0 = (int(np.clip(np.floor(v - self.margin), 0, self.size)) for v in (left, top))
        x1, y1 = (int(np.clip(np.ceil(v + self.margin), 0, self.size)) for v in (right, bottom))
        return Region(x0, y0, x1, y1)


def _rows_differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rows of `a` and `b` that differ in any column (column by column: numpy's reductions
    along a short axis are many times slower)."""
    differ = a != b
    rows = differ[:, 0].copy()
    for column in range(1, differ.shape[1]):
        rows |= differ[:, column]
    return rows


@dataclass(frozen=True)
class Change:
    """Where a pose changes the rest image (`region`; empty: nowhere) and the indices into the
    full draw's triangles, ascending, that reach it (None when not computed)."""

    region: Region
    triangles: np.ndarray | None


NO_CHANGE = Change(EMPTY, np.zeros(0, np.int64))
