"""Hair: the cap over the skull, bangs, side locks, back hair, ahoge, spikes and twin tails."""

from __future__ import annotations

import numpy as np

from characters.layout import HEAD
from characters.mesh import Mesh, bezier, grid_triangles, normalize, resample, ribbon, tube
from characters.shape import cap_lift, head_shape
from characters.spec import CharacterSpec


def add_hair(spec: CharacterSpec, mesh: Mesh, rng: np.random.Generator) -> np.ndarray:
    """Add the hair; returns the hair cap's vertex indices (what a joined bun grows from)."""
    shape, lift = head_shape(spec), cap_lift(spec)

    # The cap: the skull's surface lifted, down to a hairline high in front and low behind.
    rows, cols = 14, 45
    phi = np.linspace(-np.pi, np.pi, cols)
    back = (1 - np.cos(phi)) / 2
    end = 0.62 + (2.3 - 0.62) * back**0.6
    theta = np.linspace(0, 1, rows)[:, None] * end[None, :]
    pos = shape.point(theta, phi[None, :], lift)
    pos[0] = [0.0, spec.head_top_y, 0.0]
    nrm = shape.normal(theta, phi[None, :])
    nrm[0] = [0, 1, 0]
    uv = np.stack(np.meshgrid((phi + np.pi) / (2 * np.pi), np.linspace(0, 0.55, rows)), -1)
    cap = mesh.add("hair", pos, nrm, uv, grid_triangles(rows, cols), HEAD)

    def strand(path: np.ndarray, out: np.ndarray, width: np.ndarray, bulge=0.35) -> None:
        pos, nrm, uv, tris = ribbon(path, out, width, bulge)
        mesh.add("hair", pos, nrm, uv, tris, HEAD)

    def surface_path(phi0: float, theta0: float, theta1: float, curl: float, lift_: float, n=12):
        t = np.linspace(0, 1, n)
        th, ph = theta0 + (theta1 - theta0) * t, phi0 + curl * t**2
        return shape.point(th, ph, lift_ + 0.04 * t), shape.normal(th, ph)

    def theta_at(phi0: float, y: float) -> float:
        th = np.linspace(0.05, 2.2, 200)
        ys = shape.point(th, np.full_like(th, phi0))[:, 1]
        return float(np.interp(-y, -ys, th))

    # Bangs over the forehead; the outer ones longer.
    n = spec.bangs
    spread = 1.25
    brow = spec.eye_y + spec.eye_style.brow_height * spec.eye_half_height
    for i in range(n):
        phi0 = -spread + 2 * spread * i / (n - 1) + float(rng.uniform(-0.05, 0.05))
        side = abs(phi0) / spread
        tip_y = brow - spec.bang_length * 1.6 * spec.eye_half_height - side**2 * 0.6
        tip_y += float(rng.uniform(-0.12, 0.12))
        path, out = surface_path(
            phi0,
            0.2,
            theta_at(phi0, tip_y),
            float(rng.uniform(-0.12, 0.12)),
            lift + 0.025 * (i % 2),
        )
        t = np.linspace(0, 1, len(path))
        width = 2 * spread / (n - 1) * 1.45 * (1 - t) ** 0.75 * shape.w + 0.005
        # Flat at the root, on the crown, so no strand stands above the cap (the head top).
        strand(path, out, width, 0.35 * np.clip(3 * t, 0, 1))

    # Side locks hang in front of the ears.
    if spec.side_locks:
        length = float(rng.uniform(0.3, 1.6))
        for side in (-1, 1):
            path, out = surface_path(side * 1.35, 0.8, 1.75, 0.0, lift + 0.03, n=8)
            drop = path[-1] + np.linspace(0, 1, 10)[1:, None] * [
                0.0,
                -(path[-1, 1] - spec.chin_y + length),
                -0.1,
            ]
            full = resample(np.concatenate([path, drop]), 16)
            outs = normalize(full * [1, 0, 1])
            t = np.linspace(0, 1, 16)
            strand(full, outs, 0.42 * (1 - t) ** 0.6 + 0.01)

    # Back hair hanging behind.
    if spec.back_hair != "short":
        bottom = spec.chin_y - (0.6 if spec.back_hair == "medium" else 3.2)
        for phi0 in np.linspace(np.pi * 0.55, np.pi * 1.45, 8):
            phi0 = (phi0 + np.pi) % (2 * np.pi) - np.pi
            path, _ = surface_path(phi0, 1.0, 2.0, 0.0, lift + 0.03, n=6)
            drop = path[-1] + np.linspace(0, 1, 9)[1:, None] * [0.0, bottom - path[-1, 1], 0.15]
            full = resample(np.concatenate([path, drop]), 14)
            t = np.linspace(0, 1, 14)
            strand(full, normalize(full * [1, 0, 1]), 0.75 * (1 - t) ** 0.5 + 0.02)

    top = np.array([0.0, spec.head_top_y, 0.0])
    if spec.ahoge:
        h = spec.head_height
        path = bezier(
            top - np.array([0, 0.05, 0]),
            top + np.array([0.05, 0.6 * h, 0.1]),
            top + np.array([0.12, 0.45 * h, -0.5]),
            10,
        )
        tangent = normalize(np.gradient(path, axis=0))
        out = normalize(np.cross(tangent, [[1.0, 0.0, 0.0]]))
        strand(path, out, 0.16 * (1 - np.linspace(0, 1, 10)) ** 0.8 + 0.005)

    for k in range(spec.spikes):
        phi0 = np.pi + (k - (spec.spikes - 1) / 2) * 0.7
        root = shape.point(0.55, phi0, lift - 0.05)
        direction = normalize(shape.normal(0.55, phi0) + np.array([0.0, 1.2, 0.0]))
        path = root + np.linspace(0, 1, 6)[:, None] * direction * float(rng.uniform(0.5, 0.8))
        pos, nrm, uv, tris = tube(path, 0.2 * (1 - np.linspace(0, 1, 6)) + 0.003, sides=6)
        mesh.add("hair", pos, nrm, uv, tris, HEAD)

    if spec.twin_tails:
        bottom = spec.chin_y - float(rng.uniform(1.5, 3.5))
        for side in (-1, 1):
            root = shape.point(0.75, side * 1.9, lift)
            p1 = root + np.array([side * 0.9, 0.25, 0.1])
            p2 = [side * (shape.w + 0.7), bottom, root[2] + 0.3]
            path = bezier(root, p1, p2, 16)
            t = np.linspace(0, 1, 16)
            radius = 0.16 + 0.2 * np.sin(np.pi * np.clip(t * 1.6, 0, 1)) ** 0.7 * (1 - t) + 0.0
            radius = radius * (1 - t**3) + 0.01
            pos, nrm, uv, tris = tube(path, radius, sides=7)
            mesh.add("hair", pos, nrm, uv, tris, HEAD)
    return cap
