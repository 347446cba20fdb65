"""The fixed orthographic front camera of one model, computed from its rest-pose head box."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmd_loader.roles import HeadBox


@dataclass(frozen=True)
class Framing:
    """An orthographic camera looking along -z at (center_x, center_y).

    `half_extent` is half the visible width (= height) in model units; depth covers
    [z_near, z_far] in model z (z_far > z_near; larger z is nearer the viewer).
    """

    center_x: float
    center_y: float
    half_extent: float
    z_near: float
    z_far: float

    @classmethod
    def from_head_box(
        cls,
        box: HeadBox,
        head_fraction: float,
        bounds: tuple[np.ndarray, np.ndarray],
        head_center: tuple[float, float] = (0.5, 0.5),
    ) -> Framing:
        """Head top→chin spans `head_fraction` of the image height; the head box's centre (the
        face centre x, the middle of top and chin) lands at `head_center` (x, y as fractions of
        the width and height from the top left: THA1 (0.5, 0.5), THA3 (0.5, 0.25)). Depth from
        the model `bounds` (min, max corners), widened so any rotation about a point inside them
        stays inside."""
        if not 0.0 < head_fraction <= 1.0:
            raise ValueError(f"head_fraction must be in (0, 1], not {head_fraction}")
        hx, hy = (float(v) for v in head_center)
        if not (0.0 <= hx <= 1.0 and 0.0 <= hy <= 1.0):
            raise ValueError(f"head_center must lie in [0, 1]², not {head_center}")
        height = float(box.top - box.chin)
        if not np.isfinite(height) or height <= 0.0:
            raise ValueError(f"head box has top {box.top} <= chin {box.chin}")
        lo, hi = (np.asarray(b, np.float64) for b in bounds)
        radius = 0.5 * float(np.linalg.norm(hi - lo)) + 1e-3 * height
        mid_z = 0.5 * float(lo[2] + hi[2])
        half = 0.5 * height / head_fraction
        # The image spans centre ± half; the head's centre sits (2hx - 1)·half right of the
        # image centre and (1 - 2hy)·half above it.
        return cls(
            center_x=float(box.center[0]) - (2.0 * hx - 1.0) * half,
            center_y=0.5 * float(box.top + box.chin) - (1.0 - 2.0 * hy) * half,
            half_extent=half,
            z_near=mid_z - 2.0 * radius,
            z_far=mid_z + 2.0 * radius,
        )

    @property
    def units_per_pixel_at(self) -> float:
        """Model units per pixel of a 1-pixel-wide image (divide by the image size)."""
        return 2.0 * self.half_extent

    def matrix(self) -> np.ndarray:
        """4×4 model → clip matrix (column vectors), y up in clip space, nearer = smaller depth."""
        s = 1.0 / self.half_extent
        depth = self.z_far - self.z_near
        return np.array(
            [
                [s, 0.0, 0.0, -s * self.center_x],
                [0.0, s, 0.0, -s * self.center_y],
                [0.0, 0.0, -2.0 / depth, 2.0 * self.z_near / depth + 1.0],
                [0.0, 0.0, 0.0, 1.0],
            ]
        )

    def project(self, points: np.ndarray, size: int) -> np.ndarray:
        """Model points (N, 3) → pixel coordinates (N, 2): x right, y down from the image top,
        in pixels of a `size`×`size` image (pixel centres at .5)."""
        points = np.asarray(points, np.float64).reshape(-1, 3)
        u = (points[:, 0] - self.center_x) / self.half_extent
        v = (points[:, 1] - self.center_y) / self.half_extent
        return np.stack([(u + 1.0) * 0.5 * size, (1.0 - v) * 0.5 * size], axis=1)
