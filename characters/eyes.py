"""Eyes that turn: whites, irises on spheres round the eye bones, and the socket ring that hides
an iris outside the opening; what THA3's eye-shape morphs move of them."""

from __future__ import annotations

import numpy as np

from characters.eye_styles import outline
from characters.face import face_uv
from characters.layout import (
    EYE_RADIUS,
    HEAD,
    IRIS_LIFT,
    LEFT_EYE,
    RIGHT_EYE,
    RING_LIFT,
    WHITE_LIFT,
)
from characters.mesh import Mesh, grid_triangles, normalize
from characters.shape import head_shape
from characters.spec import CharacterSpec


def eye_frame(spec: CharacterSpec, side: int):
    """(surface point, outward normal, +x tangent, +y tangent) at the eye's centre."""
    shape = head_shape(spec)
    point, normal = shape.on_face(np.array(side * spec.eye_x), np.array(spec.eye_y), 0.0)
    point, normal = point.reshape(3), normal.reshape(3)
    ex = normalize(np.array([1.0, 0.0, 0.0]) - normal * normal[0])
    ey = np.array([0.0, 1.0, 0.0]) - normal * normal[1] - ex * ex[1]
    return point, normal, ex, normalize(ey)


def eye_pivot(spec: CharacterSpec, side: int) -> np.ndarray:
    """The eye bone's position: the centre of the iris's sphere, EYE_RADIUS behind the iris."""
    point, normal, _, _ = eye_frame(spec, side)
    return point + normal * (IRIS_LIFT - EYE_RADIUS)


def sphere_cap(spec: CharacterSpec, side: int, radius: float, tx: np.ndarray, ty: np.ndarray):
    """Points and normals of the sphere (centre = the eye pivot) towards tangents (tx, ty)."""
    _, normal, ex, ey = eye_frame(spec, side)
    d = normalize(normal + tx[..., None] * ex + ty[..., None] * ey)
    return eye_pivot(spec, side) + radius * d, d


def iris_half(spec: CharacterSpec) -> tuple[float, float]:
    """The iris's half-width and half-height in model units (at most 1.5 eye half-heights, so
    the socket ring hides it outside the opening however it turns)."""
    hx = spec.iris_size * spec.eye_half_width
    return hx, min(spec.eye_style.iris_height * hx, 1.5 * spec.eye_half_height)


class Eyes:
    """Whites, irises and socket rings of both eyes, and what the eye-shape morphs move."""

    def __init__(self, spec: CharacterSpec, mesh: Mesh) -> None:
        self.spec, self.mesh, self.shape = spec, mesh, head_shape(spec)
        self.iris: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.ring: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    def build(self) -> None:
        for side in (1, -1):
            self._white(side)
            self._iris(side)
            self._ring(side)

    def _white(self, side: int) -> None:
        """The white: a patch on the face covering the opening, however wide it opens."""
        s = self.spec
        xo, yn = np.meshgrid(np.linspace(-1.35, 1.35, 11), np.linspace(1.75, -1.45, 11))
        # Rounded above (an ellipse's width): the socket ring must hide the patch outside the
        # opening, and its outer edge runs inwards of a square corner above a low inner corner.
        xo = xo * np.sqrt(np.clip(1 - ((yn - 0.15) / 1.6) ** 2, 0.15, 1))
        x = side * s.eye_x + side * xo * s.eye_half_width
        pos, nrm = self.shape.on_face(x, s.eye_y + yn * s.eye_half_height, WHITE_LIFT)
        uv = np.stack([(xo + 1.35) / 2.7, (1.75 - yn) / 3.2], -1)
        self.mesh.add("eyes", pos, nrm, uv, grid_triangles(11, 11), HEAD)

    def _iris(self, side: int) -> None:
        hx, hy = iris_half(self.spec)
        radius = EYE_RADIUS
        u, v = np.meshgrid(np.linspace(-1.05, 1.05, 9), np.linspace(1.05, -1.05, 9))
        tx, ty = u * hx / radius, v * hy / radius
        pos, nrm = sphere_cap(self.spec, side, radius, tx, ty)
        uv = np.stack([(0.5 if side > 0 else 0.0) + (u / 1.05 + 1) / 4, (1 - v / 1.05) / 2], -1)
        bone = LEFT_EYE if side > 0 else RIGHT_EYE
        ids = self.mesh.add("iris", pos, nrm, uv, grid_triangles(9, 9), bone)
        self.iris[side] = (ids, tx, ty)

    def _ring(self, side: int) -> None:
        """Skin round the eye opening, above the iris: the opening's outline on the inside."""
        s, o = self.spec, outline(self.spec)
        xo = np.linspace(-1.0, 1.0, 15)
        inner = np.concatenate(
            [np.stack([xo, o.top(xo)], -1), np.stack([xo, o.bottom(xo)], -1)[::-1]]
        )
        inner = np.concatenate([inner, inner[:1]])  # closed: the seam is duplicated
        centre = np.array([0.0, 0.1])
        out = inner - centre
        out = out / np.linalg.norm(out, axis=1, keepdims=True)
        rows = np.array([0.0, 0.12, 0.35, 1.0])[:, None, None]
        local = inner[None] + rows * 1.25 * out[None]  # (4, 31, 2) in eye units
        x = side * s.eye_x + side * local[..., 0] * s.eye_half_width
        y = s.eye_y + local[..., 1] * s.eye_half_height
        pos, nrm = self.shape.on_face(x, y, RING_LIFT)
        ids = self.mesh.add("skin", pos, nrm, face_uv(s, pos), grid_triangles(4, 31), HEAD)
        self.ring[side] = (ids.reshape(4, 31), local, x, y)

    # --- morphs -------------------------------------------------------------------------------

    def iris_small(self, side: int) -> tuple[np.ndarray, np.ndarray]:
        """瞳小 on one eye: the iris shrinks to 70 % about its centre, staying on its sphere."""
        ids, tx, ty = self.iris[side]
        radius = EYE_RADIUS
        rest, _ = sphere_cap(self.spec, side, radius, tx, ty)
        small, _ = sphere_cap(self.spec, side, radius, 0.7 * tx, 0.7 * ty)
        return ids, (small - rest).reshape(-1, 3)

    def ring_move(self, side: int, upper: bool, amount) -> tuple[np.ndarray, np.ndarray]:
        """The opening's upper (or lower) edge moved up by `amount(xo)` eye half-heights (xo
        from the inner to the outer corner); the next rows follow by a share that keeps them
        from crossing."""
        ids, local, x, y = self.ring[side]
        xo = np.clip(local[..., 0], -1, 1)
        half = local[..., 1] >= 0.1 if upper else local[..., 1] < 0.1
        share = np.array([1.0, 0.9, 0.0, 0.0])[:, None]  # the blush below stays put
        dy = amount(xo) * self.spec.eye_half_height * share * half
        moved, _ = self.shape.on_face(x, y + dy, RING_LIFT)
        rest, _ = self.shape.on_face(x, y, RING_LIFT)
        return ids.ravel(), (moved - rest).reshape(-1, 3)
