"""Buns (hair tied up on the top, back or sides of the head, or a pair of odango) and a cluster
of hair sticks and flowers on and above a bun: hair and ornaments outside the head box, whose
true top stays the hair cap's (`CharacterSpec.head_top_y`)."""

from __future__ import annotations

import numpy as np

from characters.layout import HEAD
from characters.mesh import Mesh, ellipsoid, grid_triangles, normalize, tube
from characters.ornaments import flower
from characters.shape import cap_lift, head_shape
from characters.spec import CharacterSpec

# Where each bun sits on the hair cap: (theta from the crown, phi about y; 0 = the front).
_PLACES = {
    "top": [(0.1, np.pi)],
    "back": [(0.35, np.pi)],  # the back of the crown
    "low": [(1.2, np.pi)],  # a chignon at the back of the head
    "side": [(0.85, 1.35)],
    "double": [(0.6, 1.15), (0.6, -1.15)],  # odango
}
_SINK = 0.35  # share of the bun's radius sunk into the hair


def bun_centres(spec: CharacterSpec) -> list[np.ndarray]:
    """The centres of the character's buns (none for `bun="none"`), in the file's frame."""
    shape, lift = head_shape(spec), cap_lift(spec)
    radius = spec.bun_size * spec.head_width
    centres = []
    for theta, phi in _PLACES.get(spec.bun, []):
        if spec.bun == "side" and spec.wink_side == "right":
            phi = -phi
        point = shape.point(theta, phi, lift)
        centres.append(point + shape.normal(theta, phi) * (1 - _SINK) * radius)
    return centres


def add_buns(spec: CharacterSpec, mesh: Mesh, cap: np.ndarray) -> None:
    """The buns: balls of hair, a little flattened along the head's normal. A joined bun is one
    mesh with the hair cap (vertex indices `cap`): a band of hair runs from a ring of the bun's
    vertices to the cap's vertices nearest them, sharing their positions exactly."""
    radius = spec.bun_size * spec.head_width
    for centre in bun_centres(spec):
        out = normalize(centre - np.array([0.0, spec.head_centre_y, 0.0]))
        across = normalize(np.cross(out, [0.0, 0.0, 1.0]) if abs(out[2]) < 0.9 else [1.0, 0, 0])
        axes = np.stack([across, out, np.cross(across, out)], 1)
        # the ellipsoid's rows run from +y (axes[:, 1], away from the head) to -y
        ball = ellipsoid(centre, radius * np.array([1.0, 0.85, 1.0]), axes)
        mesh.add("hair", *ball, HEAD)
        if spec.bun_joined:
            mesh.add("hair", *_band(mesh, cap, ball[0][-4], ball[1][-4]), HEAD)


def _band(mesh: Mesh, cap: np.ndarray, ring: np.ndarray, normals: np.ndarray) -> tuple:
    """A strip from `ring` (bun vertices) down to the cap vertices nearest each of them."""
    cap_pos = np.concatenate([chunk[0] for chunk in mesh.chunks])[cap]
    nearest = np.argmin(np.linalg.norm(cap_pos[None] - ring[:, None], axis=2), axis=1)
    pos = np.stack([ring, cap_pos[nearest]], 0)
    nrm = np.stack([normals, normals], 0)
    return pos, nrm, np.zeros((*pos.shape[:-1], 2)), grid_triangles(2, len(ring))


def cluster_anchor(spec: CharacterSpec) -> tuple[np.ndarray, float]:
    """(centre, radius) the ornament cluster sits on: the back bun, else the first bun, else
    where a back bun would be."""
    centres = bun_centres(spec)
    radius = spec.bun_size * spec.head_width
    if spec.bun == "back" or centres:
        return centres[0], radius
    shape, lift = head_shape(spec), cap_lift(spec)
    return shape.point(1.0, np.pi, lift), radius


def add_bun_ornaments(spec: CharacterSpec, mesh: Mesh) -> None:
    """`spec.bun_ornaments` hair sticks (kanzashi) and flowers in a cluster on and above the
    bun, rising behind the crown (material `hair_ornament`): puffy folded-cloth flowers piled in
    a pyramid on the bun (a row of them on it, fewer in each row above), one stick in three
    fanning up and back through the bun with a bead at its end."""
    count = spec.bun_ornaments
    if count <= 0:
        return
    rng = np.random.default_rng([spec.seed, 0xB17])
    centre, radius = cluster_anchor(spec)
    up_back = normalize(np.array([0.0, 1.0, 0.6]))  # +z is behind in the file's frame
    sticks = count // 3
    rows = _pyramid(count - sticks)
    for level, width in enumerate(rows):
        for i in range(width):
            size = float(rng.uniform(1.1, 1.4)) * (1 - 0.12 * level)
            across = (i - (width - 1) / 2) * 0.75 * radius
            where = centre + up_back * radius * (0.8 + 0.55 * level)
            where = where + np.array([across, 0.0, 0.0])
            facing = normalize(up_back + np.array([0.25 * np.sign(across), 0.5, 0.0]))
            for part in flower(where, facing, size=size):
                mesh.add("hair_ornament", *part, HEAD)
            side = normalize(np.cross(facing, [1.0, 0.0, 0.0]))
            axes = np.stack([np.cross(side, facing), facing, side], 1)
            puff = ellipsoid(where, 0.3 * size * np.array([1.0, 0.6, 1.0]), axes, 8, 14)
            mesh.add("hair_ornament", *puff, HEAD)
    for _ in range(sticks):
        lean = normalize(up_back + np.array([float(rng.uniform(-0.6, 0.6)), 0.0, 0.0]))
        length = radius * float(rng.uniform(2.6, 3.4))
        path = centre - lean * 0.6 * radius + np.linspace(0, 1, 6)[:, None] * lean * length
        mesh.add("hair_ornament", *tube(path, np.full(6, 0.035), sides=6), HEAD)
        mesh.add("hair_ornament", *ellipsoid(path[-1], np.full(3, 0.09), rows=6, cols=8), HEAD)


def _pyramid(count: int) -> list[int]:
    """Row widths, bottom first, of `count` items piled as a pyramid (e.g. 6: 3, 2, 1)."""
    base = 1
    while base * (base + 1) // 2 < count:
        base += 1
    rows, left = [], count
    for width in range(base, 0, -1):
        rows.append(min(width, left))
        left -= rows[-1]
        if left <= 0:
            break
    return rows
