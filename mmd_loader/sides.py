"""Which side of the face a morph moves, decided by its vertices (never by its name).

+x is the character's own left in the model frame. The face's centre line is the head bone's x
(`face_centre_x`): models are built around it. A morph that puts at least `ONE_SIDE` of its
displacement on one side is one-sided (a wink, 困る左); otherwise it moves both sides and is split
there, as a both-eyes まばたき is split into a left and a right closure.
"""

from __future__ import annotations

import numpy as np

from mmd_loader.model import Model

ONE_SIDE = 0.8  # share of the displacement that makes a morph one-sided
MOVE_EPS = 1e-5  # displacements shorter than this fraction of the model's height do not count


def face_centre_x(model: Model, head: int) -> float:
    """The face's symmetry plane: the head bone's x (0 without a head bone)."""
    if 0 <= head < len(model.bones):
        return float(model.bones[head].position[0])
    return 0.0


def moved(model: Model, indices: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The entries of a resolved vertex morph that move a vertex of the model noticeably."""
    indices = np.asarray(indices, np.int64)
    offsets = np.asarray(offsets, np.float32)
    valid = (indices >= 0) & (indices < len(model.positions))
    indices, offsets = indices[valid], offsets[valid]
    scale = float(np.ptp(model.positions[:, 1])) if len(model.positions) else 1.0
    keep = np.linalg.norm(offsets, axis=1) > MOVE_EPS * (scale or 1.0)
    return indices[keep], offsets[keep]


def left_share(model: Model, indices: np.ndarray, offsets: np.ndarray, cx: float) -> float:
    """The share of a morph's displacement on the character's left (x > cx); 0.5 when it moves
    nothing."""
    indices, offsets = moved(model, indices, offsets)
    weights = np.linalg.norm(offsets, axis=1)
    total = float(weights.sum())
    if total <= 0.0:
        return 0.5
    return float(weights[model.positions[indices, 0] > cx].sum() / total)


def sides_of(model: Model, indices: np.ndarray, offsets: np.ndarray, cx: float) -> str | None:
    """ "left" or "right" for a one-sided morph, "both" for one that moves both sides, None for
    one that moves nothing."""
    indices, offsets = moved(model, indices, offsets)
    if len(indices) == 0:
        return None
    share = left_share(model, indices, offsets, cx)
    if share >= ONE_SIDE:
        return "left"
    if share <= 1.0 - ONE_SIDE:
        return "right"
    return "both"


def side_part(
    model: Model, indices: np.ndarray, offsets: np.ndarray, side: str, cx: float
) -> tuple[np.ndarray, np.ndarray]:
    """The part of a morph on one side of the centre line: x > cx is "left", x <= cx "right"."""
    indices = np.asarray(indices, np.int64)
    offsets = np.asarray(offsets, np.float32)
    x = model.positions[indices, 0]
    keep = x > cx if side == "left" else x <= cx
    return indices[keep].astype(np.int32), offsets[keep]
