"""Head ornaments (bow, headband, hat, flower, headphones): above or beside the hair, never part
of the head box."""

from __future__ import annotations

import numpy as np

from characters.layout import HEAD, ORNAMENT_BONE
from characters.mesh import Mesh, normalize, revolution, ribbon, tube
from characters.shape import cap_lift, head_shape
from characters.spec import CharacterSpec, Color, hsv


def add_ornament(spec: CharacterSpec, mesh: Mesh) -> None:
    """The seed's head ornament (see `ORNAMENTS`), above or beside the hair: never part of the
    head box, whose true top stays `spec.head_top_y`."""
    if spec.ornament == "none":
        return
    shape, lift = head_shape(spec), cap_lift(spec)
    w, h, top = spec.head_width, spec.head_height, spec.head_top_y
    bone = ORNAMENT_BONE if has_ornament_bone(spec) else HEAD

    def add(pos, nrm, uv, tris):
        mesh.add("ornament", pos, nrm, uv, tris, bone)

    def band(path: np.ndarray, out: np.ndarray, width: float):
        add(*ribbon(path, out, np.full(len(path), width)))

    if spec.ornament == "bow":
        # A bow on the crown, to the front: a knot and two ribbon loops rising sideways.
        knot = shape.point(0.5, 0.0, lift + 0.06)
        for side in (-1, 1):
            t = np.linspace(0, 2 * np.pi, 25)
            reach, rise = 0.85 * w, top + 0.45 * h - knot[1]
            loop = knot + np.stack(
                [
                    side * reach * (1 - np.cos(t)) / 2,
                    rise * (1 - np.cos(t)) / 2 * 0.8 + 0.32 * h * np.sin(t),
                    -0.12 * np.sin(t) ** 2,
                ],
                -1,
            )
            band(loop, np.tile([0.0, 0.0, -1.0], (len(loop), 1)), 0.42 * h)
        add(*tube(knot + np.array([[-0.12, 0, 0], [0.12, 0, 0]]), np.full(2, 0.16), sides=8))
    elif spec.ornament == "headband":
        # A band over the crown from ear to ear, lying on the hair.
        theta = np.linspace(-1.55, 1.55, 31)
        path = shape.point(np.abs(theta), np.sign(theta) * 1.3, lift + 0.05)
        band(path, shape.normal(np.abs(theta), np.sign(theta) * 1.3), 0.22)
    elif spec.ornament == "hat":
        # A hat whose crown encloses the top of the hair, with a brim.
        base = top - 0.3 * h
        k = np.sqrt(max(1 - ((base - spec.head_centre_y) / (h + lift)) ** 2, 0.05)) + 0.08
        crown = [(base, 1.5, -0.3), (base, 1.0, 0.0), (top + 0.5 * h, 0.9, 0.3)]
        crown += [(top + 0.55 * h, 0.5, 1.0), (top + 0.56 * h, 0.0, 1.0)]
        add(*revolution(crown, k * w, k * spec.head_depth))
    elif spec.ornament == "flower":
        # A flower pinned to the side of the head, above the ear.
        side = 1 if spec.wink_side == "left" else -1
        theta, phi = 0.8, side * 1.25
        for part in flower(shape.point(theta, phi, lift + 0.05), shape.normal(theta, phi)):
            add(*part)
    else:  # headphones: a band standing off the hair and a cup over each ear
        theta = np.linspace(-1.5, 1.5, 31)
        path = shape.point(np.abs(theta), np.sign(theta) * np.pi / 2, lift + 0.14)
        add(*tube(path, np.full(len(path), 0.07), sides=8))
        for side in (-1, 1):
            x = side * (w + lift + 0.1)
            axis = np.array([[x, spec.eye_y + 0.05, 0.0], [x + side * 0.3, spec.eye_y + 0.05, 0.0]])
            add(*tube(axis, np.array([0.42, 0.38]), sides=12))


def flower(centre: np.ndarray, normal: np.ndarray, size: float = 1.0) -> list[tuple]:
    """A five-petal flower at `centre` facing along `normal`: its parts as (pos, nrm, uv, tris)."""
    up = [1.0, 0.0, 0.0] if abs(float(normal[1])) > 0.95 else [0.0, 1.0, 0.0]
    e1 = normalize(np.cross(normal, up))
    e2 = np.cross(normal, e1)
    parts = []
    for k in range(5):
        a = 2 * np.pi * k / 5
        d = np.cos(a) * e1 + np.sin(a) * e2
        path = centre + np.linspace(0.03, 0.42, 6)[:, None] * size * d + 0.02 * normal
        width = 0.28 * size * np.sin(np.linspace(0.2, np.pi - 0.2, 6))
        parts.append(ribbon(path, np.tile(normal, (6, 1)), width))
    parts.append(tube(centre + np.outer([0.0, 0.06 * size], normal), np.full(2, 0.08 * size), 8))
    return parts


def has_ornament_bone(spec: CharacterSpec) -> bool:
    """A named bow or flower hangs on a bone of its own (named like it), as in real models."""
    return spec.ornament_named and spec.ornament in ("bow", "flower")


def ornament_colour(spec: CharacterSpec) -> Color:
    rng = np.random.default_rng([spec.seed, 0x0A8])
    if spec.ornament in ("bow", "headband") and rng.random() < 0.5:
        return (0.96, 0.96, 0.97)  # white ribbons, as Rin's
    return hsv(float(rng.uniform(0, 1)), float(rng.uniform(0.4, 0.9)), float(rng.uniform(0.3, 0.9)))
