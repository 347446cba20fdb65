"""Geometry the head box is measured with: plane cuts through triangles, top-view footprints of
horizontal cuts, and a mesh's connected pieces.

Footprints are rasterised on a `GRID`² top-view grid (x, z): a cell counts when a cut segment
crosses it or when cut surface encloses it on all four sides (left, right, front, back), so a
ring of hair counts with the skull it encloses while sheets and strands count only their own
thin cells."""

from __future__ import annotations

import numpy as np

GRID = 64  # top-view cells per side
MAX_SAMPLES = 32  # raster samples per cut segment


def lowest(values: np.ndarray) -> np.ndarray:
    """Row-wise minimum of a (T, 3) array (numpy's reductions over a length-3 axis are slow)."""
    return np.minimum(np.minimum(values[:, 0], values[:, 1]), values[:, 2])


def highest(values: np.ndarray) -> np.ndarray:
    return np.maximum(np.maximum(values[:, 0], values[:, 1]), values[:, 2])


def all3(flags: np.ndarray) -> np.ndarray:
    return flags[:, 0] & flags[:, 1] & flags[:, 2]


def row_cuts(corners: np.ndarray, y: float, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where triangles cross the plane `coordinate[axis] = y`: segment ends P0, P1 (S, 3) and
    which triangles (T,) they come from (those that only touch the plane give none)."""
    a, b = corners, np.roll(corners, -1, axis=1)  # edges a[k] -> b[k]
    da, db = a[..., axis] - y, b[..., axis] - y
    crosses = (da * db <= 0) & (da != db)
    t = np.where(crosses, da / np.where(crosses, da - db, 1.0), 0.0)
    points = a + t[..., None] * (b - a)
    hit = crosses[:, 0].astype(np.int8) + crosses[:, 1] + crosses[:, 2] >= 2
    points, crosses = points[hit], crosses[hit]
    c0, c1 = crosses[:, 0:1], crosses[:, 1:2]
    first = np.where(c0, points[:, 0], np.where(c1, points[:, 1], points[:, 2]))
    last = np.where(crosses[:, 2:3], points[:, 2], np.where(c1, points[:, 1], points[:, 0]))
    return first, last, hit


def footprint(p0: np.ndarray, p1: np.ndarray, origin: np.ndarray, cell: float) -> np.ndarray:
    """Cells of the top-view grid (`GRID`² cells of `cell`, lower corner `origin` in (x, z))
    covered by the cut segments or enclosed by them on all four sides."""
    occupied = occupied_cells(p0, p1, origin, cell)
    left = np.maximum.accumulate(occupied, axis=1)
    right = np.maximum.accumulate(occupied[:, ::-1], axis=1)[:, ::-1]
    front = np.maximum.accumulate(occupied, axis=0)
    back = np.maximum.accumulate(occupied[::-1], axis=0)[::-1]
    return occupied | (left & right & front & back)


def occupied_cells(p0: np.ndarray, p1: np.ndarray, origin: np.ndarray, cell: float) -> np.ndarray:
    """Cells of the top-view grid the segments (x, z) cross."""
    occupied = np.zeros((GRID, GRID), bool)
    if len(p0) == 0:
        return occupied
    ij = segment_cells(p0, p1, origin, cell)[0]
    occupied[ij[:, 1], ij[:, 0]] = True
    return occupied


def segment_cells(
    p0: np.ndarray, p1: np.ndarray, origin: np.ndarray, cell: float
) -> tuple[np.ndarray, np.ndarray]:
    """(cells (N, 2) as (i along x, j along z), the segment each comes from) sampled along the
    segments (x, z), inside the grid."""
    length = np.linalg.norm(p1 - p0, axis=1)
    count = np.minimum(np.ceil(length / (0.5 * cell)).astype(np.int64) + 1, MAX_SAMPLES)
    owner = np.repeat(np.arange(len(p0)), count)
    first = np.repeat(np.cumsum(count) - count, count)
    t = (np.arange(len(owner)) - first) / np.maximum(np.repeat(count - 1, count), 1)
    points = p0[owner] + t[:, None] * (p1 - p0)[owner]
    ij = np.floor((points - origin) / cell).astype(np.int64)
    ok = ((ij >= 0) & (ij < GRID)).all(axis=1)
    return ij[ok], owner[ok]


def piece_over(mask: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """The 4-connected piece of `mask` that overlaps `previous` most (empty if none does; of
    equal overlaps the larger piece, then the later label)."""
    seeds = mask & previous
    if not seeds.any():
        return np.zeros_like(mask)
    labels = cell_pieces(mask)
    big = mask.size
    overlap = np.bincount(labels[seeds], minlength=big)
    size = np.bincount(labels[mask], minlength=big)
    best = int(np.lexsort((size, overlap))[-1])
    return mask & (labels == best)


def cell_pieces(mask: np.ndarray) -> np.ndarray:
    """Per cell of `mask`, the smallest flat index of its 4-connected piece (cells outside:
    the grid's size)."""
    index = np.arange(mask.size).reshape(mask.shape)
    right = mask[:, :-1] & mask[:, 1:]
    down = mask[:-1] & mask[1:]
    edges = np.concatenate(
        [
            np.stack([index[:, :-1][right], index[:, 1:][right]], 1),
            np.stack([index[:-1][down], index[1:][down]], 1),
        ]
    )
    labels = connected_labels(mask.size, edges).reshape(mask.shape)
    return np.where(mask, labels, mask.size)


def welded_ids(positions: np.ndarray) -> np.ndarray:
    """Per vertex, one id shared by every vertex at the same position (bit for bit)."""
    exact = np.ascontiguousarray(positions, np.float32) + np.float32(0.0)  # -0.0 is 0.0
    _, weld = np.unique(exact.view(np.dtype((np.void, 12))).ravel(), return_inverse=True)
    return weld.ravel()


def mesh_pieces(
    positions: np.ndarray, triangles: np.ndarray, weld: np.ndarray | None = None
) -> np.ndarray:
    """The connected piece of each triangle (labels 0..P-1), vertices at the same position welded
    (`weld`: `welded_ids(positions)`, computed when not given): a mesh split at its UV seams is
    one piece."""
    if len(triangles) == 0:
        return np.zeros(0, np.int64)
    corners = (welded_ids(positions) if weld is None else weld)[triangles]
    edges = np.concatenate([corners[:, [0, 1]], corners[:, [1, 2]]])
    labels = connected_labels(int(corners.max()) + 1, edges)
    _, order = np.unique(labels[corners[:, 0]], return_inverse=True)
    return order.ravel()


def connected_labels(count: int, edges: np.ndarray) -> np.ndarray:
    """Per node 0..count-1, the smallest node of its connected component (`edges`: (E, 2))."""
    labels = np.arange(count)
    for _ in range(count):  # hook and shortcut: each round hooks a root (a few on meshes)
        a, b = labels[edges[:, 0]], labels[edges[:, 1]]
        differ = a != b
        if not differ.any():
            break
        np.minimum.at(labels, np.maximum(a, b)[differ], np.minimum(a, b)[differ])
        while True:
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
    return labels
