"""A low-poly skin with split normals (`CharacterSpec.face_facets`): every triangle has vertices
of its own carrying its flat normal, as a faceted face exported without smoothing is. Under a
plain Lambert term each facet shows as a plate; MMD's toon ramp (and thagen's face shading,
`mmd_loader.face_parts`) draws the face flat."""

from __future__ import annotations

import numpy as np

from characters.mesh import normalize
from characters.shape import HeadShape


def faceted_skin(shape: HeadShape, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions, normals, triangles) of the head's skin as `rows` × 2·`rows` facets (the
    chords lie inside the smooth surface, so the face's parts on it stay in front)."""
    cols = 2 * rows
    theta = np.linspace(0.0, np.pi, rows + 1)
    phi = np.linspace(-np.pi, np.pi, cols, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    grid = shape.point(t, p)  # (rows + 1, cols, 3); the poles repeat
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    a, b = r * cols + c, r * cols + (c + 1) % cols
    quads = np.stack([a, b, b + cols, a + cols], -1).reshape(-1, 4)
    flat = grid.reshape(-1, 3)
    tris = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    corners = flat[tris]  # (T, 3, 3)
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    area = np.linalg.norm(normal, axis=1)
    corners, normal = corners[area > 1e-10], normal[area > 1e-10]
    outward = corners.mean(axis=1) - np.array([0.0, shape.cy, 0.0])
    normal *= np.sign(np.sum(normal * outward, axis=1, keepdims=True))
    positions = corners.reshape(-1, 3)
    normals = np.repeat(normalize(normal), 3, axis=0)
    return positions, normals, np.arange(len(positions)).reshape(-1, 3)
