"""What real characters wear round the neck and face, which the face morpher must learn to leave
alone: collars (high, sailor, shirt, scarf, choker), a bow or a tie knot at the throat, and a
headset microphone reaching towards the mouth.

Measured on ../shared/mmd (a cpu-small morpher trained on characters without them, evaluated on
the real models): most of the pixels it changed that should have stayed were on collars, ribbons
and ties just under the chin, where nothing in its training data looked like that. The parts
here follow the spec's `OutfitStyle` (characters.outfit_styles).
"""

from __future__ import annotations

import numpy as np

from characters.body import body_weights
from characters.layout import HEAD, NECK
from characters.mesh import Mesh, bezier, grid_triangles, normalize, ribbon, tube
from characters.outfit_styles import OutfitStyle
from characters.shape import head_shape


def arc_ring(y, rx: float, rz: float, gap: float, n: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Points round the neck's axis (x = 0, z = 0.15) at heights `y` (one per ring), radii
    (rx, rz), leaving `gap` radians open at the front; and their outward normals."""
    a = np.linspace(gap, 2 * np.pi - gap, n)
    y = np.asarray(y, float)[:, None]
    rx_ = np.broadcast_to(np.asarray(rx, float).reshape(-1, 1), y.shape)
    rz_ = np.broadcast_to(np.asarray(rz, float).reshape(-1, 1), y.shape)
    pos = np.stack([np.sin(a) * rx_, np.broadcast_to(y, (len(y), n)), 0.15 - np.cos(a) * rz_], -1)
    nrm = normalize(np.stack([np.sin(a) / rx_, np.zeros((len(y), n)), -np.cos(a) / rz_], -1))
    return pos, nrm


class Outfit:
    """Adds the spec's outfit parts to the mesh (materials "collar" and "accessory")."""

    def __init__(self, spec, mesh: Mesh, shoulder_y: float) -> None:
        self.spec, self.mesh, self.sy = spec, mesh, shoulder_y
        self.style: OutfitStyle = spec.outfit
        self.r = spec.neck_radius

    def build(self) -> None:
        getattr(self, f"_{self.style.collar}")()
        if self.style.throat != "none":
            self._throat()
        if self.style.mic:
            self._mic()

    def _add_body(self, material: str, pos, nrm, uv, tris) -> None:
        """Parts that follow the chest (上半身2, the shoulders) as the clothes do."""
        b0, b1, w0 = body_weights(self.spec, pos.reshape(-1, 3), self.sy)
        self.mesh.add(material, pos, nrm, uv, tris, b0, b1, w0)

    def _top(self) -> float:
        """The height a high collar or scarf reaches, below the chin."""
        return self.sy + self.style.collar_height * (self.spec.chin_y - 0.08 - self.sy)

    def _none(self) -> None:
        pass

    def _high(self) -> None:
        """A stand-up collar round the neck, open at the front."""
        r, top = self.r, self._top()
        y = np.array([self.sy - 0.05, self.sy + 0.2, top])
        grow = np.array([0.32, 0.16, 0.1])
        pos, nrm = arc_ring(y, r + grow, r + grow, 0.35)
        uv = np.zeros((*pos.shape[:-1], 2))
        self._add_body("collar", pos, nrm, uv, grid_triangles(3, 25))

    def _scarf(self) -> None:
        """A thick scarf wound round the neck, its ends hanging in front."""
        r, top = self.r, self._top()
        a = np.linspace(0, 2 * np.pi, 24)
        thick = 0.12 + 0.1 * self.style.collar_height
        ring = np.stack(
            [np.sin(a) * (r + thick), np.full_like(a, top - thick), 0.15 - np.cos(a) * (r + thick)],
            -1,
        )
        pos, nrm, uv, tris = tube(ring, np.full(len(ring), thick), sides=8)
        self._add_body("collar", pos, nrm, uv, tris)
        start = np.array([0.15, top - 1.5 * thick, 0.15 - r - 1.5 * thick])
        drop = np.array([[0.05, -0.5, -0.1], [0.1, -1.4, -0.25]])
        path = bezier(start, start + drop[0], start + drop[1], 8)
        pos, nrm, uv, tris = ribbon(path, np.tile([0.0, 0.0, -1.0], (8, 1)), np.full(8, 0.45))
        self._add_body("collar", pos, nrm, uv, tris)

    def _sailor(self) -> None:
        """A flat collar lying over the shoulders, in a V at the front."""
        sw, r = self.spec.shoulder_width, self.r
        a = np.linspace(0.45, 2 * np.pi - 0.45, 25)
        inner = np.stack(
            [
                np.sin(a) * (r + 0.12),
                self.sy + 0.2 - 0.35 * (np.cos(a) > 0.9),
                0.15 - np.cos(a) * (r + 0.12),
            ],
            -1,
        )
        reach = 0.55 * sw
        outer = np.stack(
            [np.sin(a) * reach, np.full_like(a, self.sy - 0.35), 0.15 - np.cos(a) * 0.78], -1
        )
        outer[:, 1] -= 0.5 * np.clip(np.cos(a), 0, 1) ** 4  # the V's point
        pos = np.stack([inner, 0.5 * (inner + outer) + [0.0, 0.03, 0.0], outer])
        nrm = normalize(pos - [0.0, self.sy - 1.0, 0.15])
        uv = np.zeros((*pos.shape[:-1], 2))
        self._add_body("collar", pos, nrm, uv, grid_triangles(3, 25))

    def _shirt(self) -> None:
        """A shirt collar: two flaps from the sides of the neck to points under the chin."""
        r = self.r
        for side in (-1, 1):
            root = np.array([side * (r + 0.05), self.sy + 0.35, 0.05])
            tip = np.array([side * 0.12, self.sy - 0.15, 0.15 - r - 0.2])
            wing = np.array([side * (r + 0.35), self.sy - 0.05, 0.15 - r * 0.6])
            path = bezier(root, wing, tip, 6)
            out = normalize(np.tile([side * 0.3, 0.2, -1.0], (6, 1)))
            width = np.linspace(0.35, 0.05, 6)
            pos, nrm, uv, tris = ribbon(path, out, width)
            self._add_body("collar", pos, nrm, uv, tris)

    def _choker(self) -> None:
        """A narrow band round the middle of the neck (it turns with the neck)."""
        r, mid = self.r, self.sy + 0.55 * (self.spec.chin_y - self.sy)
        pos, nrm = arc_ring(np.array([mid - 0.05, mid + 0.05]), r + 0.02, r + 0.02, 0.0)
        uv = np.zeros((*pos.shape[:-1], 2))
        self.mesh.add("collar", pos, nrm, uv, grid_triangles(2, 25), NECK)

    def _throat(self) -> None:
        """A bow or a tie knot at the front of the neckline."""
        k, r = self.style.throat_size, self.r
        centre = np.array([0.0, self.sy + 0.12, 0.15 - r - 0.22])
        if self.style.throat == "knot":
            knot = centre + np.array([[0.0, 0.1 * k, 0.0], [0.0, -0.12 * k, -0.02]])
            pos, nrm, uv, tris = tube(knot, np.array([0.14, 0.09]) * k, sides=8)
            self._add_body("accessory", pos, nrm, uv, tris)
            return
        t = np.linspace(0, 2 * np.pi, 17)
        for side in (-1, 1):
            loop = centre + np.stack(
                [
                    side * 0.32 * k * (1 - np.cos(t)) / 2,
                    0.13 * k * np.sin(t),
                    -0.06 * np.sin(t) ** 2,
                ],
                -1,
            )
            pos, nrm, uv, tris = ribbon(
                loop, np.tile([0.0, 0.0, -1.0], (17, 1)), np.full(17, 0.13 * k)
            )
            self._add_body("accessory", pos, nrm, uv, tris)
            tail = centre + np.stack(
                [
                    np.linspace(0, side * 0.15, 5) * k,
                    np.linspace(0, -0.4, 5) * k,
                    np.full(5, -0.02),
                ],
                -1,
            )
            pos, nrm, uv, tris = ribbon(
                tail, np.tile([0.0, 0.0, -1.0], (5, 1)), np.full(5, 0.1 * k)
            )
            self._add_body("accessory", pos, nrm, uv, tris)
        pos, nrm, uv, tris = tube(
            centre + np.array([[0.0, 0.0, 0.0], [0.0, 0.0, -0.05]]), np.full(2, 0.07 * k), sides=8
        )
        self._add_body("accessory", pos, nrm, uv, tris)

    def _mic(self) -> None:
        """A headset microphone: a thin boom from beside the ear to the side of the mouth."""
        spec, side = self.spec, self.style.mic
        shape = head_shape(spec)
        w = spec.head_width
        ear = np.array([side * (w + 0.02), spec.eye_y - 0.25 * spec.head_height, 0.0])
        hw = spec.mouth_style.width * spec.eye_half_width
        end_x = side * (1.4 * hw + 0.15)
        end, _ = shape.on_face(np.array(end_x), np.array(spec.mouth_y - 0.02), 0.2)
        bend, _ = shape.on_face(np.array(side * 0.8 * w), np.array(spec.mouth_y + 0.1), 0.35)
        path = bezier(ear, bend.reshape(3), end.reshape(3), 12)
        pos, nrm, uv, tris = tube(path, np.full(12, 0.025), sides=6)
        self.mesh.add("mic", pos, nrm, uv, tris, HEAD)
        cap = end.reshape(1, 3) + np.outer([-1.0, 1.0], [side * 0.04, 0.0, 0.0])
        pos, nrm, uv, tris = tube(cap, np.full(2, 0.06), sides=8)
        self.mesh.add("mic", pos, nrm, uv, tris, HEAD)
