"""Mesh building: vertices in creation order, triangles per material, and the primitives parts
are made of (grids, strands, tubes, surfaces of revolution, curves)."""

from __future__ import annotations

import numpy as np

from characters.layout import MATERIALS


def grid_triangles(rows: int, cols: int) -> np.ndarray:
    """Two triangles per cell of a rows x cols vertex grid (row-major)."""
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols - 1), indexing="ij")
    a = (r * cols + c).ravel()
    b, d = a + 1, a + cols
    return np.concatenate([np.stack([a, b, d + 1], 1), np.stack([a, d + 1, d], 1)])


def normalize(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


class Mesh:
    """Vertices in creation order; triangles collected per material."""

    def __init__(self) -> None:
        self.chunks: list[tuple[np.ndarray, ...]] = []
        self.tris: dict[str, list[np.ndarray]] = {m: [] for m in MATERIALS}
        self.count = 0

    def add(
        self,
        material: str,
        pos: np.ndarray,
        nrm: np.ndarray,
        uv: np.ndarray,
        tris: np.ndarray,
        bone: int | np.ndarray,
        bone2: int | np.ndarray = 0,
        weight: float | np.ndarray = 1.0,
        shape: np.ndarray | None = None,
    ) -> np.ndarray:
        """Add vertices and triangles; returns the new vertices' indices. Triangles are turned to
        face along the vertex normals, judged on `shape` (e.g. an opened mouth) when given; without
        it, triangles of zero area are dropped."""
        pos, nrm = pos.reshape(-1, 3), normalize(nrm.reshape(-1, 3))
        n = len(pos)
        ref = pos if shape is None else shape.reshape(-1, 3)
        a, b, c = ref[tris[:, 0]], ref[tris[:, 1]], ref[tris[:, 2]]
        geo = np.cross(b - a, c - a)
        if shape is None:
            tris = tris[np.linalg.norm(geo, axis=1) > 1e-10]
            geo = geo[np.linalg.norm(geo, axis=1) > 1e-10]
        flip = np.sum(geo * nrm[tris].sum(1), axis=1) < 0
        tris = np.where(flip[:, None], tris[:, [0, 2, 1]], tris)
        bones = np.broadcast_to(np.ravel(bone), (n,))
        bones2 = np.broadcast_to(np.ravel(bone2), (n,))
        weights = np.broadcast_to(np.ravel(np.asarray(weight, float)), (n,))
        self.chunks.append((pos, nrm, uv.reshape(-1, 2), bones, bones2, weights))
        self.tris[material].append(tris + self.count)
        self.count += n
        return np.arange(self.count - n, self.count)

    def arrays(self) -> dict[str, np.ndarray]:
        cols = [np.concatenate(c) for c in zip(*self.chunks, strict=True)]
        return dict(zip(("pos", "nrm", "uv", "b0", "b1", "w0"), cols, strict=True))


def ribbon(path: np.ndarray, out: np.ndarray, width: np.ndarray, bulge=0.35):
    """A strand: three vertices across (edge, raised middle, edge) at each path point; the
    middle stands `bulge` half-widths off the edges (a number or one per point)."""
    tangent = normalize(np.gradient(path, axis=0))
    across = normalize(np.cross(tangent, out))
    half = (width / 2)[:, None]
    rise = half * np.broadcast_to(np.asarray(bulge, float), len(path))[:, None]
    pos = np.stack([path - across * half, path + out * rise, path + across * half], 1)
    nrm = np.stack([normalize(out - across * 0.5), out, normalize(out + across * 0.5)], 1)
    n = len(path)
    uv = np.stack(np.meshgrid([0.0, 0.5, 1.0], np.linspace(0, 1, n)), -1)[..., ::1]
    return pos, nrm, uv, grid_triangles(n, 3)


def tube(path: np.ndarray, radius: np.ndarray, sides: int = 7):
    """A closed tube around `path` (seam duplicated for the texture)."""
    tangent = normalize(np.gradient(path, axis=0))
    ref = np.where(np.abs(tangent[:, 1:2]) > 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    e1 = normalize(np.cross(tangent, ref))
    e2 = np.cross(tangent, e1)
    a = np.linspace(0, 2 * np.pi, sides + 1)
    ring = np.cos(a)[None, :, None] * e1[:, None] + np.sin(a)[None, :, None] * e2[:, None]
    pos = path[:, None] + ring * radius[:, None, None]
    uv = np.stack(np.meshgrid(a / (2 * np.pi), np.linspace(0, 1, len(path))), -1)
    return pos, ring, uv, grid_triangles(len(path), sides + 1)


def resample(points: np.ndarray, n: int) -> np.ndarray:
    """`n` points evenly spaced along a polyline."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0, s[-1], n)
    return np.stack([np.interp(t, s, points[:, k]) for k in range(points.shape[1])], 1)


def bezier(p0, p1, p2, n: int) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t**2 * np.asarray(p2)


def revolution(profile: list[tuple[float, float, float]], rx: float, rz: float, segments: int = 28):
    """A surface of revolution about the y axis: `profile` rows of (y, radius scale, normal y)
    on an ellipse of radii (rx, rz); returns pos, nrm, uv, tris."""
    a = np.linspace(0, 2 * np.pi, segments + 1)
    ring = np.stack([np.sin(a) * rx, np.zeros_like(a), -np.cos(a) * rz], -1)
    pos = np.array([ring * k + [0.0, y, 0.0] for y, k, _ in profile])
    out = np.stack([np.sin(a) / rx, np.zeros_like(a), -np.cos(a) / rz], -1)
    nrm = np.array([normalize(out + np.array([0.0, ny, 0.0])) for _, _, ny in profile])
    uv = np.zeros((*pos.shape[:-1], 2))
    return pos, nrm, uv, grid_triangles(len(profile), segments + 1)


def ellipsoid(centre, radii, axes: np.ndarray | None = None, rows: int = 12, cols: int = 20):
    """A closed ellipsoid: `radii` along the columns of `axes` (default x, y, z); returns pos,
    nrm, uv, tris (the poles' zero-area triangles are dropped by `Mesh.add`)."""
    axes = np.eye(3) if axes is None else np.asarray(axes, float)
    t, p = np.meshgrid(
        np.linspace(0, np.pi, rows), np.linspace(0, 2 * np.pi, cols + 1), indexing="ij"
    )
    unit = np.stack([np.sin(t) * np.cos(p), np.cos(t), np.sin(t) * np.sin(p)], -1)
    radii = np.asarray(radii, float)
    pos = np.asarray(centre, float) + (unit * radii) @ axes.T
    nrm = normalize((unit / radii) @ axes.T)
    uv = np.stack([p / (2 * np.pi), t / np.pi], -1)
    return pos, nrm, uv, grid_triangles(rows, cols + 1)
