"""Islands of a mesh: vertices joined by triangle edges."""

from __future__ import annotations

import numpy as np


def vertex_islands(count: int, triangles: np.ndarray) -> np.ndarray:
    """(count,) a label per vertex, equal for vertices joined by triangle edges (union-find:
    roots hooked to the smaller root, paths compressed, until every edge joins one label)."""
    parent = np.arange(count)
    if len(triangles) == 0:
        return parent
    a = np.concatenate([triangles[:, 0], triangles[:, 1]])
    b = np.concatenate([triangles[:, 1], triangles[:, 2]])
    while True:
        pa, pb = parent[a], parent[b]
        differ = pa != pb
        if not differ.any():
            return parent
        np.minimum.at(parent, np.maximum(pa, pb)[differ], np.minimum(pa, pb)[differ])
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
