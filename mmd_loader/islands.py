"""Islands of a mesh: vertices joined by triangle edges."""

from __future__ import annotations

import numpy as np

from mmd_loader.mesh_geometry import connected_labels


def vertex_islands(count: int, triangles: np.ndarray) -> np.ndarray:
    """(count,) a label per vertex, equal for vertices joined by triangle edges: the smallest
    vertex of its island (`connected_labels` over the triangles' edges)."""
    if len(triangles) == 0:
        return np.arange(count)
    edges = np.concatenate([triangles[:, 0:2], triangles[:, 1:3]])
    return connected_labels(count, edges)
