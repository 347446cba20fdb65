"""Measuring the head: top of the skull and chin, from the vertices the head bone drives.

Hair that sticks up, hats' thin parts, twin tails and back hair are all weighted to the head in
real models, so the box cannot be their extent. Instead it is anchored on the face the roles
found (eye centres and mouth), in units of the eye separation `u`:
- chin: the lowest head-driven point below the mouth, near the face's centre line and in front;
- top: walking up from the eyes, the last height where the head's silhouette is still at least
  `u` wide (the union of the triangles' cuts, so gaps between strands do not count); a strand
  (アホ毛) is narrower and ends the walk. Spikes fanned across the whole crown can still pass for
  skull (measured on procedural characters: up to 16% of the head height too high); an overrides
  file corrects such a model.
"""

from __future__ import annotations

import numpy as np

from mmd_loader.model import Model
from mmd_loader.roles import HeadBox, RoleMorph

_BINS_PER_UNIT = 24  # silhouette rows per eye separation
_TOP_MIN_WIDTH = 1.0  # in units of u


def head_driven_mask(model: Model, head: int) -> np.ndarray:
    """Vertices at least half-weighted to the head bone or any bone below it."""
    in_subtree = np.zeros(len(model.bones), bool)
    in_subtree[head] = True
    changed = True
    while changed:  # parents may come after children in file order
        changed = False
        for index, bone in enumerate(model.bones):
            parent = bone.parent
            if not in_subtree[index] and 0 <= parent < len(model.bones) and in_subtree[parent]:
                in_subtree[index] = changed = True
    bones = np.clip(model.bone_indices, 0, len(model.bones) - 1)
    weight = (model.bone_weights * in_subtree[bones]).sum(axis=1)
    return weight >= 0.5


def _centre(model: Model, morph: RoleMorph | None) -> np.ndarray | None:
    if morph is None or len(morph.indices) == 0:
        return None
    w = np.linalg.norm(morph.offsets, axis=1) + 1e-12
    return (model.positions[morph.indices] * w[:, None]).sum(0) / w.sum()


def find_head_box(
    model: Model, head_mask: np.ndarray, morphs: dict[str, RoleMorph], cx: float
) -> HeadBox | None:
    """The head box anchored on the found eyes and mouth, or None with no anchor at all."""
    left, right = _centre(model, morphs.get("left_eye")), _centre(model, morphs.get("right_eye"))
    mouth = _centre(model, morphs.get("mouth"))
    eyes = [c for c in (left, right) if c is not None]
    if not eyes and mouth is None:
        return None
    tris = model.triangles[head_mask[model.triangles].all(axis=1)]
    if len(tris) == 0:
        return None
    corners = model.positions[tris]  # (T, 3, 3)

    u = _eye_separation(left, right, mouth, eyes, corners, cx)
    eye_y = float(np.mean([c[1] for c in eyes])) if eyes else float(mouth[1]) + 0.5 * u
    face_z = float(max(c[2] for c in [*eyes, *([mouth] if mouth is not None else [])]))
    anchor_y = float(mouth[1]) if mouth is not None else eye_y - 0.6 * u

    chin = _chin(corners, cx, u, anchor_y, face_z)
    top = _top(corners, cx, u, eye_y)
    half_width = _half_width(corners, cx, u, eye_y, face_z)
    centre = np.array([cx, 0.5 * (top + chin), face_z], np.float64)
    return HeadBox(top=float(top), chin=float(chin), center=centre, half_width=float(half_width))


def _eye_separation(left, right, mouth, eyes, corners, cx) -> float:
    if left is not None and right is not None:
        return max(float(abs(left[0] - right[0])), 1e-6)
    if eyes and mouth is not None:
        return max(2.0 * float(eyes[0][1] - mouth[1]), 1e-6)
    xs = corners[..., 0].ravel()
    lo, hi = np.percentile(xs, [10, 90])
    return max(0.3 * float(hi - lo), 1e-6)


def _chin(corners: np.ndarray, cx: float, u: float, anchor_y: float, face_z: float) -> float:
    points = corners.reshape(-1, 3)
    near_centre = np.abs(points[:, 0] - cx) < 0.35 * u
    in_front = points[:, 2] > face_z - 0.8 * u
    below = (points[:, 1] < anchor_y) & (points[:, 1] > anchor_y - 2.0 * u)
    chosen = points[near_centre & in_front & below]
    return float(chosen[:, 1].min()) if len(chosen) else anchor_y - 0.3 * u


def _row_widths(corners: np.ndarray, cx: float, u: float, rows: np.ndarray) -> np.ndarray:
    """Covered width of the head's front silhouette along each horizontal line `rows[i]`.

    Each triangle crossing the line contributes the exact segment where it cuts it; the width is
    the length of the union of those segments, so gaps between spikes of hair do not count.
    """
    centroid_x = corners[..., 0].mean(axis=1)
    band = corners[np.abs(centroid_x - cx) < 2.5 * u]
    a, b = band, np.roll(band, -1, axis=1)  # the three edges (a[k] -> b[k]) of every triangle
    widths = np.zeros(len(rows))
    for i, y in enumerate(rows):
        ya, yb = a[..., 1] - y, b[..., 1] - y
        crosses = (ya * yb <= 0) & (ya != yb)
        t = np.where(crosses, ya / np.where(ya == yb, 1.0, ya - yb), 0.0)
        x = a[..., 0] + t * (b[..., 0] - a[..., 0])
        hit = crosses.any(axis=1)
        if not hit.any():
            continue
        lo = np.where(crosses, x, np.inf).min(axis=1)[hit]
        hi = np.where(crosses, x, -np.inf).max(axis=1)[hit]
        widths[i] = _union_length(lo, hi)
    return widths


def _union_length(lo: np.ndarray, hi: np.ndarray) -> float:
    """Total length covered by the intervals [lo[k], hi[k]]."""
    return float(sum(b - a for a, b in _union_runs(lo, hi)))


def _top(corners: np.ndarray, cx: float, u: float, eye_y: float) -> float:
    highest = float(corners[..., 1].max())
    if highest <= eye_y:
        return eye_y + 1.5 * u
    step = u / _BINS_PER_UNIT
    rows = np.arange(eye_y, highest, step)
    widths = _row_widths(corners, cx, u, rows)
    top = eye_y
    for y, width in zip(rows, widths, strict=True):
        if width < _TOP_MIN_WIDTH * u:
            break
        top = y
    return float(top)


def _half_width(corners: np.ndarray, cx: float, u: float, eye_y: float, face_z: float) -> float:
    """Half the width of the head at eye level, counting only its front part (twin tails and back
    hair hang behind and beside it) within 2.5 eye separations of the centre line."""
    front = corners[corners[..., 2].mean(axis=1) > face_z - 1.2 * u]
    a, b = front, np.roll(front, -1, axis=1)
    ya, yb = a[..., 1] - eye_y, b[..., 1] - eye_y
    crosses = (ya * yb <= 0) & (ya != yb)
    t = np.where(crosses, ya / np.where(ya == yb, 1.0, ya - yb), 0.0)
    reach = np.abs(a[..., 0] + t * (b[..., 0] - a[..., 0]) - cx)[crosses]
    reach = reach[reach < 2.5 * u]
    return float(reach.max()) if len(reach) else 1.5 * u


def _union_runs(lo: np.ndarray, hi: np.ndarray) -> list[tuple[float, float]]:
    """The union of intervals [lo[k], hi[k]] as disjoint (start, end) runs, left to right."""
    order = np.argsort(lo)
    runs: list[tuple[float, float]] = []
    for a, b in zip(lo[order].tolist(), hi[order].tolist(), strict=True):
        if runs and a <= runs[-1][1]:
            runs[-1] = (runs[-1][0], max(runs[-1][1], b))
        else:
            runs.append((a, b))
    return runs
