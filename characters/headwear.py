"""Headwear over the hair: a hat with a brim, a baseball cap with a visor, a beret, a hood.
Each encloses the top of the hair cap, whose top (`CharacterSpec.head_top_y`) stays the true head
top, as THA1's labellers drew it: the box is the hair over the skull, not what covers it."""

from __future__ import annotations

import numpy as np

from characters.layout import HEAD
from characters.mesh import Mesh, ellipsoid, grid_triangles, revolution, tube
from characters.shape import HeadShape, cap_lift, head_shape
from characters.spec import CharacterSpec


def add_headwear(spec: CharacterSpec, mesh: Mesh) -> None:
    """The spec's headwear (material `headwear`), if any."""
    if spec.headwear == "none":
        return
    build = {"hat": _hat, "cap": _cap, "beret": _beret, "hood": _hood}[spec.headwear]
    for part in build(spec, head_shape(spec), cap_lift(spec)):
        mesh.add("headwear", *part, HEAD)


def _hat(spec: CharacterSpec, shape: HeadShape, lift: float) -> list[tuple]:
    """A crown standing 25 % of the head's height above the hair, on a brim over the brows that
    droops towards its edge (a sun hat's)."""
    h, top = spec.head_height, spec.head_top_y
    base = top - 0.3 * h
    k = np.sqrt(max(1 - ((base - spec.head_centre_y) / (h + lift)) ** 2, 0.05)) + 0.08
    profile = [(base - 0.22 * h, 2.0, -0.6), (base - 0.05 * h, 1.4, -0.2), (base, 1.0, 0.0)]
    profile += [(top + 0.2 * h, 0.92, 0.3)]
    profile += [(top + 0.24 * h, 0.6, 1.0), (top + 0.25 * h, 0.0, 1.0)]
    return [revolution(profile, k * spec.head_width, k * spec.head_depth)]


def _cap(spec: CharacterSpec, shape: HeadShape, lift: float) -> list[tuple]:
    """A baseball cap: a shell hugging the hair down to the forehead (lower behind), and a visor
    reaching forward from its front rim."""
    rows, cols = 10, 41
    phi = np.linspace(-np.pi, np.pi, cols)
    rim = 0.72 + 0.5 * (1 - np.cos(phi)) / 2
    theta = np.linspace(0, 1, rows)[:, None] * rim[None, :]
    pos = shape.point(theta, phi[None, :], lift + 0.07)
    nrm = shape.normal(theta, phi[None, :])
    uv = np.zeros((*pos.shape[:-1], 2))
    parts = [(pos, nrm, uv, grid_triangles(rows, cols))]
    front = np.linspace(-1.0, 1.0, 15)
    inner = shape.point(np.full_like(front, 0.72), front, lift + 0.07)
    reach = 0.75 * np.cos(front * np.pi / 2.2)[:, None]
    outer = inner + reach * np.array([0.0, -0.12, -1.0]) + np.outer(front, [0.15, 0.0, 0.0])
    visor = np.stack([inner, outer], 0)
    up = np.broadcast_to([0.0, 1.0, 0.15], visor.shape)
    parts.append((visor, up, np.zeros((2, 15, 2)), grid_triangles(2, 15)))
    return parts


def _beret(spec: CharacterSpec, shape: HeadShape, lift: float) -> list[tuple]:
    """A beret: a flattened ball over the crown, tilted to one side, with a stalk on top."""
    side = 1.0 if spec.wink_side == "left" else -1.0
    tilt = side * np.radians(14)
    axes = np.array(
        [[np.cos(tilt), -np.sin(tilt), 0.0], [np.sin(tilt), np.cos(tilt), 0.0], [0.0, 0.0, 1.0]]
    )
    h = spec.head_height
    centre = np.array([side * 0.2 * spec.head_width, spec.head_top_y - 0.06 * h, 0.08])
    radii = np.array([1.05 * spec.head_width, 0.22 * h, 1.05 * spec.head_depth])
    stalk_root = centre + axes[:, 1] * radii[1] * 0.95
    stalk = stalk_root + np.outer(np.linspace(0, 0.14, 3), axes[:, 1])
    return [ellipsoid(centre, radii, axes, rows=12, cols=28), tube(stalk, np.full(3, 0.04), 6)]


def _hood(spec: CharacterSpec, shape: HeadShape, lift: float) -> list[tuple]:
    """A hood standing off the hair, framing the face and falling behind the neck."""
    stand = lift + 0.2
    parts = []
    # Behind and beside the face: theta from the crown down past the ears.
    rows, cols = 14, 33
    phi = np.linspace(1.05, 2 * np.pi - 1.05, cols)
    theta = np.linspace(0.0, 2.4, rows)[:, None] * np.ones((1, cols))
    parts.append(_shell(shape, theta, np.broadcast_to(phi, theta.shape), stand))
    # Over the forehead, joining the two sides.
    phi = np.linspace(-1.05, 1.05, 13)
    theta = np.linspace(0.0, 0.62, 5)[:, None] * np.ones((1, 13))
    parts.append(_shell(shape, theta, np.broadcast_to(phi, theta.shape), stand))
    return parts


def _shell(shape: HeadShape, theta: np.ndarray, phi: np.ndarray, stand: float) -> tuple:
    pos = shape.point(theta, phi, stand)
    nrm = shape.normal(theta, phi)
    rows, cols = theta.shape
    return pos, nrm, np.zeros((rows, cols, 2)), grid_triangles(rows, cols)
