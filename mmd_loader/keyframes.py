"""MMD's keyframe interpolation, vectorised over the frames asked for, and the rotation algebra
motions need (quaternions, matrices, the renderer's Euler order).

A bone is sampled as MMD plays it: between keys k-1 and k, the segment's curves are key k's;
each curve is a cubic Bézier from (0, 0) to (1, 1) with control points (x1, y1), (x2, y2) =
bytes / 127. For the segment's linear progress u, the curve's parameter s solves x(s) = u (x is
non-decreasing on [0, 1] since x1, x2 lie in [0, 1]; found by `BISECTIONS` bisection steps, to
2⁻³⁵ in s), and the eased progress is y(s). A linear curve (x1 = y1 and x2 = y2: the line
itself) gives u exactly, as MMD skips it too. Positions move along their own X, Y, Z curves;
the rotation is the slerp (shortest arc) of the two keys' quaternions at the rotation curve's
eased progress. Before its first key a bone holds that key, after its last the last; a single
key holds for all time. Morphs are linear between keys, held at the ends likewise.

Euler angles are the renderer's (`render.pose.Pose`): degrees about the model frame's x, y, z,
composed Ry · Rx · Rz.
"""

from __future__ import annotations

import numpy as np

from mmd_loader.motion import BoneTrack, MorphTrack

BISECTIONS = 36


def bezier_ease(curves: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The eased progress of MMD curves `curves` ((n, 4): x1, y1, x2, y2 in 0..127) at linear
    progress `u` ((n,) in [0, 1])."""
    u = np.asarray(u, np.float64)
    c = np.asarray(curves, np.float64) / 127.0
    x1, y1, x2, y2 = c[:, 0], c[:, 1], c[:, 2], c[:, 3]
    out = u.copy()
    # a curve's ends are exact (the bisection near a flat end is not: x rounds to 0 or 1 early)
    curved = ~((x1 == y1) & (x2 == y2)) & (u > 0.0) & (u < 1.0)
    if not curved.any():
        return out
    uc, a1, a2 = u[curved], x1[curved], x2[curved]
    lo, hi = np.zeros_like(uc), np.ones_like(uc)
    for _ in range(BISECTIONS):
        mid = 0.5 * (lo + hi)
        below = _cubic(mid, a1, a2) < uc
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    out[curved] = _cubic(0.5 * (lo + hi), y1[curved], y2[curved])
    return out


def _cubic(s: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> np.ndarray:
    """One coordinate of the Bézier from 0 to 1 with inner control values p1, p2 at s."""
    r = 1.0 - s
    return 3.0 * r * r * s * p1 + 3.0 * r * s * s * p2 + s * s * s


def _segments(keys: np.ndarray, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(previous key, next key, linear progress) of each frame; both keys are the first before
    the first key and the last after the last (progress 0)."""
    nxt = np.searchsorted(keys, frames, side="right")
    prev = np.clip(nxt - 1, 0, len(keys) - 1)
    nxt = np.clip(nxt, 0, len(keys) - 1)
    span = keys[nxt] - keys[prev]
    safe = np.where(span > 0, span, 1.0)
    u = np.where(span > 0, (frames - keys[prev]) / safe, 0.0)
    return prev, nxt, np.clip(u, 0.0, 1.0)


def sample_rotation(track: BoneTrack, frames: np.ndarray) -> np.ndarray:
    """The bone's rotation (unit quaternions (n, 4), x y z w) at `frames` (MMD frames, float)."""
    frames = np.asarray(frames, np.float64).reshape(-1)
    if len(track.frames) == 0:
        return np.tile((0.0, 0.0, 0.0, 1.0), (len(frames), 1))
    prev, nxt, u = _segments(track.frames, frames)
    eased = bezier_ease(track.curves[nxt, 3], u)
    return slerp(track.rotations[prev], track.rotations[nxt], eased)


def sample_position(track: BoneTrack, frames: np.ndarray) -> np.ndarray:
    """The bone's translation ((n, 3)) at `frames`, each axis along its own curve."""
    frames = np.asarray(frames, np.float64).reshape(-1)
    if len(track.frames) == 0:
        return np.zeros((len(frames), 3))
    prev, nxt, u = _segments(track.frames, frames)
    a, b = track.positions[prev], track.positions[nxt]
    eased = np.stack([bezier_ease(track.curves[nxt, axis], u) for axis in range(3)], axis=1)
    return a + (b - a) * eased


def sample_weight(track: MorphTrack, frames: np.ndarray) -> np.ndarray:
    """The morph's weight at `frames`: linear between keys, held before the first and after
    the last."""
    frames = np.asarray(frames, np.float64).reshape(-1)
    if len(track.frames) == 0:
        return np.zeros(len(frames))
    return np.interp(frames, track.frames, track.weights)


# --- rotations -------------------------------------------------------------------------------


def slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical linear interpolation along the shorter arc, row by row; `t` may leave [0, 1]
    (a rotation raised to a power: `slerp(identity, q, ratio)`)."""
    q0 = np.asarray(q0, np.float64)
    q1 = np.asarray(q1, np.float64)
    t = np.asarray(t, np.float64)[:, None]
    dot = np.sum(q0 * q1, axis=1, keepdims=True)
    q1 = np.where(dot < 0.0, -q1, q1)
    dot = np.abs(dot)
    angle = np.arccos(np.clip(dot, -1.0, 1.0))
    sin = np.sin(angle)
    near = sin < 1e-9
    safe = np.where(near, 1.0, sin)
    w0 = np.where(near, 1.0 - t, np.sin((1.0 - t) * angle) / safe)
    w1 = np.where(near, t, np.sin(t * angle) / safe)
    q = w0 * q0 + w1 * q1
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def quaternion_power(q: np.ndarray, ratio: float) -> np.ndarray:
    """Each rotation's angle scaled by `ratio` about its axis (an append bone's share)."""
    identity = np.tile((0.0, 0.0, 0.0, 1.0), (len(q), 1))
    return slerp(identity, q, np.full(len(q), float(ratio)))


def quaternion_matrices(q: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotation matrices of unit quaternions (x, y, z, w)."""
    x, y, z, w = (np.asarray(q, np.float64)[:, k] for k in range(4))
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )


def euler_matrices(degrees: np.ndarray) -> np.ndarray:
    """(n, 3, 3) matrices Ry · Rx · Rz of Euler angles (n, 3) in degrees about x, y, z: the
    order of `render.pose.euler_matrix`, vectorised."""
    x, y, z = np.radians(np.asarray(degrees, np.float64)).T
    cx, sx, cy, sy, cz, sz = np.cos(x), np.sin(x), np.cos(y), np.sin(y), np.cos(z), np.sin(z)
    return np.stack(
        [
            np.stack([cy * cz + sy * sx * sz, sy * sx * cz - cy * sz, sy * cx], -1),
            np.stack([cx * sz, cx * cz, -sx], -1),
            np.stack([cy * sx * sz - sy * cz, sy * sz + cy * sx * cz, cy * cx], -1),
        ],
        axis=1,
    )


def euler_angles(matrices: np.ndarray) -> np.ndarray:
    """(n, 3) Euler angles in degrees (x in [-90, 90], y and z in (-180, 180]) with
    Ry(y) · Rx(x) · Rz(z) = each matrix: the inverse of `euler_matrices`."""
    m = np.asarray(matrices, np.float64)
    x = np.arcsin(np.clip(-m[:, 1, 2], -1.0, 1.0))
    y = np.arctan2(m[:, 0, 2], m[:, 2, 2])
    z = np.arctan2(m[:, 1, 0], m[:, 1, 1])
    return np.degrees(np.stack([x, y, z], axis=1))
