"""Neck, shoulders, torso, arms and tie, and the skinning that hangs them on 上半身, 上半身2, the
shoulders and the arms."""

from __future__ import annotations

import numpy as np

from characters.layout import (
    CHEST,
    HEAD,
    LEFT_ARM,
    LEFT_SHOULDER,
    NECK,
    RIGHT_ARM,
    RIGHT_SHOULDER,
    UPPER,
)
from characters.mesh import Mesh, grid_triangles, normalize, tube
from characters.spec import CharacterSpec


def add_neck_and_shoulders(spec: CharacterSpec, mesh: Mesh) -> tuple[float, float]:
    """Neck (skin) and shoulders (clothes); returns (neck base y, head bone y)."""
    shoulder_y = spec.chin_y - spec.neck_length
    head_y = spec.chin_y + 0.1
    r = spec.neck_radius
    a = np.linspace(0, 2 * np.pi, 17)
    y = np.linspace(shoulder_y - 0.4, spec.chin_y + 0.7, 10)
    ring = np.stack([np.sin(a), np.zeros_like(a), -np.cos(a)], -1)
    pos = ring[None] * r + np.stack([np.zeros_like(y), y, np.full_like(y, 0.15)], -1)[:, None]
    nrm = np.broadcast_to(ring, pos.shape)
    # 頭 above the jaw line, 首 below, blended (BDEF2) across the seam; 上半身 at the base.
    w_head = np.clip((pos[..., 1] - (head_y - 0.3)) / 0.6, 0, 1)
    w_neck = np.clip((pos[..., 1] - (shoulder_y - 0.25)) / 0.4, 0, 1)
    lower = w_head <= 0
    b0 = np.where(lower, NECK, HEAD)
    b1 = np.where(lower, UPPER, NECK)
    w0 = np.where(lower, w_neck, w_head)
    uv = np.broadcast_to([0.5, 0.985], (*pos.shape[:-1], 2))
    mesh.add("skin", pos, nrm, uv, grid_triangles(10, 17), b0, b1, w0)

    # Shoulders: superellipse rings from a collar round the neck down to the chest.
    sw = spec.shoulder_width
    prof = [  # (dy, half-width, half-depth)
        (0.22, r + 0.07, r + 0.07),
        (0.0, r + 0.3, 0.5),
        (-0.22, 0.8 * sw, 0.62),
        (-0.55, sw, 0.7),
        (-1.3, 0.97 * sw, 0.72),
        (-2.8, 0.85 * sw, 0.66),
    ]
    a = np.linspace(0, 2 * np.pi, 33)
    c, s = np.sin(a), -np.cos(a)
    e = 0.6
    pos = np.array(
        [
            np.stack(
                [
                    hw * np.sign(c) * np.abs(c) ** e,
                    np.full_like(a, shoulder_y + dy),
                    0.15 + hd * np.sign(s) * np.abs(s) ** e,
                ],
                -1,
            )
            for dy, hw, hd in prof
        ]
    )
    # Outwards from each ring's own centre (not the origin, whose y made them point up).
    nrm = normalize((pos - [0.0, 0.0, 0.15]) * [1, 0, 1] + [0, 0.3, 0])
    mesh.add("clothes", pos, nrm, np.zeros((*pos.shape[:-1], 2)), grid_triangles(6, 33), UPPER)
    return shoulder_y, head_y


def superellipse(y: float, hw: float, hd: float, n: int = 33) -> tuple[np.ndarray, np.ndarray]:
    """One ring of the torso (as add_neck_and_shoulders makes them) and its normals."""
    a = np.linspace(0, 2 * np.pi, n)
    c, s = np.sin(a), -np.cos(a)
    e = 0.6
    pos = np.stack(
        [
            hw * np.sign(c) * np.abs(c) ** e,
            np.full_like(a, y),
            0.15 + hd * np.sign(s) * np.abs(s) ** e,
        ],
        -1,
    )
    return pos, normalize((pos - [0.0, 0.0, 0.15]) * [1, 0, 1])


def body_weights(spec: CharacterSpec, pos: np.ndarray, shoulder_y: float):
    """(b0, b1, w0) of torso points: 上半身2 above the waist blend, the shoulders' 肩 outwards
    at the top, 上半身 below."""
    y, ax = pos[:, 1], np.abs(pos[:, 0])
    chest = np.clip((y - (shoulder_y - 4.0)) / 1.6, 0, 1)
    reach = max(0.7 * spec.shoulder_width - spec.neck_radius, 0.2)
    shoulder = np.clip((ax - (spec.neck_radius + 0.35)) / reach, 0, 1)
    shoulder = shoulder * np.clip((y - (shoulder_y - 1.4)) / 0.8, 0, 1)
    side_bone = np.where(pos[:, 0] > 0, LEFT_SHOULDER, RIGHT_SHOULDER)
    top = chest >= 1.0
    b0 = np.where(top, side_bone, CHEST)
    b1 = np.where(top, CHEST, UPPER)
    w0 = np.where(top, shoulder, chest)
    return b0, b1, w0


def add_lower_torso(spec: CharacterSpec, mesh: Mesh, shoulder_y: float) -> None:
    """The torso from where add_neck_and_shoulders ends down to the waist and hips, below the
    frame."""
    sw = spec.shoulder_width
    prof = [(-2.8, 0.85 * sw, 0.66), (-4.2, 0.78 * sw, 0.6), (-5.8, 0.82 * sw, 0.63)]
    prof += [(-7.6, 0.9 * sw, 0.7), (-9.6, 0.94 * sw, 0.72)]
    rings = [superellipse(shoulder_y + dy, hw, hd) for dy, hw, hd in prof]
    pos = np.stack([r[0] for r in rings])
    nrm = normalize((pos - [0.0, 0.0, 0.15]) * [1, 0, 1])
    flat = pos.reshape(-1, 3)
    b0, b1, w0 = body_weights(spec, flat, shoulder_y)
    tris = grid_triangles(len(prof), 33)
    mesh.add("clothes", pos, nrm, np.zeros((*pos.shape[:-1], 2)), tris, b0, b1, w0)


def front_z(spec: CharacterSpec, y: np.ndarray, shoulder_y: float) -> np.ndarray:
    """z of the torso's front (file frame: the front is -z) at heights y below the shoulders."""
    dys = np.array([0.0, -0.22, -0.55, -1.3, -2.8, -4.2, -5.8])
    hds = np.array([0.5, 0.62, 0.7, 0.72, 0.66, 0.6, 0.63])
    return 0.15 - np.interp(y - shoulder_y, dys[::-1], hds[::-1])


def add_tie(spec: CharacterSpec, mesh: Mesh, shoulder_y: float) -> None:
    """A tie down the front of the chest: what shows which way the torso turned."""
    t = np.linspace(0, 1, 12)
    y = shoulder_y + 0.15 - t * 3.4
    half = 0.12 + 0.1 * t
    x = np.stack([-half, half])
    yy = np.broadcast_to(y, x.shape)
    z = np.broadcast_to(front_z(spec, y, shoulder_y) - 0.03, x.shape)
    pos = np.stack([x, yy, z], -1)
    nrm = np.broadcast_to([0.0, 0.2, -1.0], pos.shape)
    b0, b1, w0 = body_weights(spec, pos.reshape(-1, 3), shoulder_y)
    uv = np.zeros((*pos.shape[:-1], 2))
    mesh.add("trim", pos, nrm, uv, grid_triangles(2, 12), b0, b1, w0)


def add_arms(spec: CharacterSpec, mesh: Mesh, shoulder_y: float) -> None:
    """Sleeved arms hanging at the sides from the shoulders."""
    sw = spec.shoulder_width
    for side, shoulder, arm in ((1, LEFT_SHOULDER, LEFT_ARM), (-1, RIGHT_SHOULDER, RIGHT_ARM)):
        knots = np.array(
            [
                [side * 0.9 * sw, shoulder_y - 0.25, 0.15],
                [side * (sw + 0.28), shoulder_y - 1.6, 0.15],
                [side * (sw + 0.34), shoulder_y - 4.4, 0.2],
                [side * (sw + 0.3), shoulder_y - 8.4, 0.05],
            ]
        )
        s = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(knots, axis=0), axis=1))])
        u = np.linspace(0, s[-1], 18)
        path = np.stack([np.interp(u, s, knots[:, k]) for k in range(3)], 1)
        radius = 0.34 - 0.1 * u / s[-1]
        pos, nrm, uv, tris = tube(path, radius, sides=10)
        w_arm = np.clip((shoulder_y - 0.25 - pos[..., 1]) / 0.9, 0, 1)
        mesh.add("clothes", pos, nrm, uv, tris, arm, shoulder, w_arm)


def reweight_upper_body(spec: CharacterSpec, v: dict[str, np.ndarray], shoulder_y: float) -> None:
    """The base character's torso hangs on 上半身 and its neck on (首, 上半身): move them onto
    上半身2, 肩 and 上半身 by height (in place on the arrays of `Mesh.arrays`)."""
    torso = (v["b0"] == UPPER) & (v["w0"] >= 1.0)
    b0, b1, w0 = body_weights(spec, v["pos"][torso], shoulder_y)
    v["b0"][torso], v["b1"][torso], v["w0"][torso] = b0, b1, w0
    neck = (v["b0"] == NECK) & (v["b1"] == UPPER)
    v["b1"][neck] = CHEST


def clothes_uv(pos: np.ndarray, shoulder_y: float) -> np.ndarray:
    """Texture coordinates of clothes points: u round the body (0.5 at the front), v down from
    just above the shoulders."""
    u = np.arctan2(pos[:, 0], -(pos[:, 2] - 0.15)) / (2 * np.pi) + 0.5
    v = np.clip((shoulder_y + 0.3 - pos[:, 1]) / 6.0, 0, 1)
    return np.stack([u, v], -1)
