"""Nearest points within a radius, by hashing both sets into cubes of that size (numpy only)."""

from __future__ import annotations

import numpy as np

CHUNK = 512  # points per pass
_OFFSETS = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), -1).reshape(-1, 3)


def nearest_within(
    points: np.ndarray, sites: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """For each of `points` (N, 3), the index of its nearest of `sites` (M, 3) closer than
    `radius`, or -1 when none is; and that distance (inf for -1).

    Sites are hashed into cubes of side `radius`; a point looks in its own cube and the 26
    around it, which hold every site within `radius`. Work grows with the sites near the points,
    not with N × M."""
    points = np.asarray(points, np.float64).reshape(-1, 3)
    sites = np.asarray(sites, np.float64).reshape(-1, 3)
    best = np.full(len(points), -1, np.int64)
    dist = np.full(len(points), np.inf)
    if len(points) == 0 or len(sites) == 0 or not radius > 0.0:
        return best, dist
    grid = _Grid(sites, points, radius)
    for start in range(0, len(points), CHUNK):  # bounds the candidate pairs held at once
        owner, candidate, d = grid.pairs(points[start : start + CHUNK])
        first = np.lexsort((d, owner))  # by point, nearest first
        owner, candidate, d = owner[first], candidate[first], d[first]
        keep = np.ones(len(owner), bool)
        keep[1:] = owner[1:] != owner[:-1]
        best[start + owner[keep]] = candidate[keep]
        dist[start + owner[keep]] = d[keep]
    return best, dist


def any_within(points: np.ndarray, sites: np.ndarray, radius: float) -> np.ndarray:
    """(N,) whether each of `points` has one of `sites` closer than `radius` (as
    `nearest_within`, without finding which)."""
    points = np.asarray(points, np.float64).reshape(-1, 3)
    sites = np.asarray(sites, np.float64).reshape(-1, 3)
    out = np.zeros(len(points), bool)
    if len(points) == 0 or len(sites) == 0 or not radius > 0.0:
        return out
    grid = _Grid(sites, points, radius)
    for start in range(0, len(points), CHUNK):
        owner, _, _ = grid.pairs(points[start : start + CHUNK])
        out[start + owner] = True
    return out


class _Grid:
    """`sites` hashed into cubes of side `radius` (the cube grid also covering `points`)."""

    def __init__(self, sites: np.ndarray, points: np.ndarray, radius: float) -> None:
        self.sites, self.radius = sites, radius
        self.origin = np.minimum(points.min(axis=0), sites.min(axis=0)) - radius
        cells = np.floor((sites - self.origin) / radius).astype(np.int64)
        span = np.maximum(cells.max(axis=0), np.floor((points - self.origin) / radius).max(axis=0))
        self.dims = span.astype(np.int64) + 3
        keys = self.key(cells)
        self.order = np.argsort(keys, kind="stable")
        self.sorted_keys = keys[self.order]

    def key(self, cells: np.ndarray) -> np.ndarray:
        return (cells[..., 0] * self.dims[1] + cells[..., 1]) * self.dims[2] + cells[..., 2]

    def pairs(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(point index, site index, distance) of every pair closer than the radius."""
        cells = np.floor((points - self.origin) / self.radius).astype(np.int64)
        around = cells[:, None, :] + _OFFSETS[None]  # never negative (the origin's margin)
        keys = self.key(around).ravel()
        lo = np.searchsorted(self.sorted_keys, keys, side="left")
        hi = np.searchsorted(self.sorted_keys, keys, side="right")
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            empty = np.zeros(0, np.int64)
            return empty, empty, np.zeros(0)
        owner = np.repeat(np.repeat(np.arange(len(points)), len(_OFFSETS)), counts)
        starts = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        candidate = self.order[starts + np.arange(total)]
        diff = points[owner] - self.sites[candidate]
        d = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        near = d < self.radius
        return owner[near], candidate[near], d[near]


def surface_samples(positions: np.ndarray, triangles: np.ndarray, step: float) -> np.ndarray:
    """Points on the triangles (M, 3) no further than about `step` from any point of them: a
    barycentric lattice per triangle, n segments along each edge, n = longest edge / step
    (at most 32), so the nearest sample to a surface point is within about step / √3."""
    positions = np.asarray(positions, np.float64)
    triangles = np.asarray(triangles, np.int64).reshape(-1, 3)
    if len(triangles) == 0 or not step > 0.0:
        return positions[np.unique(triangles)] if len(triangles) else np.zeros((0, 3))
    a, b, c = (positions[triangles[:, k]] for k in range(3))
    longest = np.max(
        [
            np.linalg.norm(b - a, axis=1),
            np.linalg.norm(c - b, axis=1),
            np.linalg.norm(a - c, axis=1),
        ],
        axis=0,
    )
    segments = np.clip(np.ceil(longest / step), 1, 32).astype(np.int64)
    out = []
    for n in np.unique(segments):
        i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
        keep = i + j <= n
        u, v = i[keep] / n, j[keep] / n  # weights of b and c
        group = segments == n
        ga, gb, gc = a[group], b[group], c[group]
        points = (
            ga[:, None] * (1.0 - u - v)[None, :, None]
            + gb[:, None] * u[None, :, None]
            + gc[:, None] * v[None, :, None]
        )
        out.append(points.reshape(-1, 3))
    return np.concatenate(out)
