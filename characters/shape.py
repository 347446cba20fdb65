"""The head's skin as a deformed sphere, the one surface every face part is placed on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from characters.spec import CharacterSpec


@dataclass(frozen=True)
class HeadShape:
    """The skin of the head as a deformed sphere: theta from the crown (0) to below (pi), phi
    about y with 0 facing the front (-z) and phi > 0 towards +x."""

    cy: float
    w: float
    h: float
    d: float
    chin_w: float
    jaw: float

    def point(self, theta: np.ndarray, phi: np.ndarray, lift: float | np.ndarray = 0.0):
        theta, phi = np.asarray(theta, float), np.asarray(phi, float)
        p = self._raw(theta, phi)
        if np.any(lift):
            p = p + self.normal(theta, phi) * np.asarray(lift)[..., None]
        return p

    def _raw(self, theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
        st = np.sin(theta)
        dx, dy, dz = st * np.sin(phi), np.cos(theta), -st * np.cos(phi)
        s = np.clip(-dy, 0.0, 1.0)
        front = np.clip(-dz, 0.0, 1.0)
        x = self.w * dx * (1.0 - (1.0 - self.chin_w) * s**1.5)
        y = self.cy + self.h * dy - self.h * self.jaw * s**1.5 * front**2
        z = self.d * dz * (1.0 - 0.3 * s)
        return np.stack([x, y, z], axis=-1)

    def normal(self, theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
        theta = np.clip(np.asarray(theta, float), 1e-3, np.pi - 1e-3)
        phi = np.asarray(phi, float)
        e = 1e-4
        t_theta = self._raw(theta + e, phi) - self._raw(theta - e, phi)
        t_phi = self._raw(theta, phi + e) - self._raw(theta, phi - e)
        n = np.cross(t_theta, t_phi)
        out = self._raw(theta, phi) - np.array([0.0, self.cy, 0.0])
        n *= np.sign(np.sum(n * out, axis=-1, keepdims=True) + 1e-12)
        return n / np.linalg.norm(n, axis=-1, keepdims=True)

    def locate(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(theta, phi) of the front surface point at (x, y), by Newton's method."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        theta = np.arccos(np.clip((y - self.cy) / self.h, -0.9, 0.9))
        phi = np.arcsin(np.clip(x / (self.w * np.sin(theta)), -0.9, 0.9))
        e = 1e-5
        for _ in range(9):  # Newton steps, until every point has converged
            p = self._raw(theta, phi)[..., :2]
            r = p - np.stack([x, y], axis=-1)
            j_t = (self._raw(theta + e, phi)[..., :2] - p) / e
            j_p = (self._raw(theta, phi + e)[..., :2] - p) / e
            det = j_t[..., 0] * j_p[..., 1] - j_t[..., 1] * j_p[..., 0]
            d_t = (r[..., 0] * j_p[..., 1] - r[..., 1] * j_p[..., 0]) / det
            d_p = (j_t[..., 0] * r[..., 1] - j_t[..., 1] * r[..., 0]) / det
            theta = np.clip(theta - np.clip(d_t, -0.2, 0.2), 0.02, np.pi - 0.02)
            phi = np.clip(phi - np.clip(d_p, -0.2, 0.2), -1.5, 1.5)
            if max(np.abs(d_t).max(initial=0.0), np.abs(d_p).max(initial=0.0)) < 1e-10:
                break
        return theta, phi

    def on_face(self, x: np.ndarray, y: np.ndarray, lift: float) -> tuple[np.ndarray, np.ndarray]:
        """Points `lift` in front of the face at (x, y), and the skin normals there."""
        theta, phi = self.locate(x, y)
        n = self.normal(theta, phi)
        return self._raw(theta, phi) + lift * n, n

    def grid(self, rows: int = 34, cols: int = 44) -> tuple[np.ndarray, np.ndarray]:
        """The (theta, phi) samples of the head mesh: rows x cols plus the two poles."""
        theta = np.linspace(0.0, np.pi, rows + 2)[1:-1]
        phi = np.linspace(-np.pi, np.pi, cols, endpoint=False)
        t, p = np.meshgrid(theta, phi, indexing="ij")
        return t.ravel(), p.ravel()

    def mesh_vertices(self) -> np.ndarray:
        t, p = self.grid()
        return np.concatenate(
            [[[0.0, self.cy + self.h, 0.0]], self.point(t, p), [self._raw(np.pi, 0.0)]]
        )


def head_shape(spec: CharacterSpec) -> HeadShape:
    return HeadShape(
        spec.head_centre_y,
        spec.head_width,
        spec.head_height,
        spec.head_depth,
        spec.chin_width,
        spec.jaw,
    )


def cap_lift(spec: CharacterSpec) -> float:
    return cap_lift_for(spec.head_height)


def cap_lift_for(head_height: float) -> float:
    return 0.11 * head_height / 1.2
