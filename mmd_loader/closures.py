"""Telling a neutral eye closure from a smile wink by the shape of the closed lid.

THA1 closes eyes with normal winks, not smile winks, and names cannot tell them apart: in
あにまさ-style models ウィンク is the smile (⌒) and ウィンク２ the neutral one, in others the
reverse. So each candidate closure of one eye is measured on its geometry:

- **The closed lid line.** The lid is the part of the morph that moves down; its visible edge
  is drawn by the material that moves furthest (the lash or eye-line mesh, else the lid's
  skin). Its closed triangles are cut by 16 vertical lines across the eye (the extent of the
  vertices that move at least half the most), the lowest point of each cut is the closed line,
  and a parabola is fitted to it. `arch` = the parabola's centre above its ends, per eye width:
  a neutral closure is straight or sags (∪, arch ≤ 0), a smile wink is an upward arc (⌒).
- **What else moves.** `raised` is the share of the displacement that moves up (a smile lifts
  the cheek and the lower lid); `elsewhere` the share more than one eye width from the eye
  (brow, cheek, the other eye).

`score = arch + ¼ raised + ¼ elsewhere` orders the candidates of one eye (lower = more neutral);
a closure whose arch exceeds `SMILE_ARCH` is a smile. Measured on the real models in
../shared/mmd (see tests/test_face.py): neutral closures arch -0.42 … -0.04, smiles
-0.005 … +0.25; within each model every smile scores above every neutral closure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmd_loader.model import Model
from mmd_loader.roles import ClosureCandidate

# A closed lid arching more than this (⌒) is a smile wink (and a model whose every closure is one
# is flagged `smile_closure`): the middle of the gap between the largest arch of a chosen neutral
# closure (-0.040) and the smallest of a smile wink (-0.005), both on ../shared/mmd's face models
# (procedural: neutral -0.37..-0.22, smile +0.23..+0.37; scripts/flag_rates.py).
SMILE_ARCH = -0.023
_COLUMNS = 16
_MOVED = 0.05  # of the largest downward move: "moves down"
_STRONG = 0.5  # of the largest downward move: spans the eye's width
_RAISE_WEIGHT = 0.25
_ELSEWHERE_WEIGHT = 0.25


@dataclass
class Lids:
    """A model with the per-triangle and per-vertex material tables the measure needs."""

    model: Model
    tri_material: np.ndarray  # (T,) material index, -1 where no material claims a triangle
    vertex_material: np.ndarray  # (V,) the material of (one of) the vertex's triangles

    @classmethod
    def of(cls, model: Model) -> Lids:
        tri = np.full(len(model.triangles), -1, np.int64)
        for index, material in enumerate(model.materials):
            start = max(int(material.face_start), 0)
            tri[start : start + max(int(material.face_count), 0)] = index
        vertex = np.full(len(model.positions), -1, np.int64)
        vertex[model.triangles.ravel()] = np.repeat(tri, 3)
        return cls(model, tri, vertex)


def measure(
    lids: Lids,
    morph: str,
    how: str,
    indices: np.ndarray,
    offsets: np.ndarray,
    side: int,
    cx: float,
) -> ClosureCandidate:
    """Measure the closure of the eye on `side` (+1 = the character's left, +x) that the vertex
    offsets (`indices`, `offsets`) make."""
    model = lids.model
    magnitude = np.linalg.norm(offsets, axis=1)
    total = float(magnitude.sum()) or 1.0
    x = model.positions[indices, 0]
    on_side = x > cx if side > 0 else x <= cx
    raised = float(magnitude[on_side & (offsets[:, 1] > 0)].sum() / total)
    arch, centre, width = _arch(lids, indices[on_side], offsets[on_side])
    if centre is None:
        elsewhere = float(magnitude[~on_side].sum() / total)
    else:
        distance = np.linalg.norm(model.positions[indices, :2] - centre, axis=1)
        elsewhere = float(magnitude[(distance > width) | ~on_side].sum() / total)
    smile = arch is not None and arch > SMILE_ARCH
    shape = arch if arch is not None else 0.5  # an unmeasurable lid ranks after measured ones
    score = shape + _RAISE_WEIGHT * raised + _ELSEWHERE_WEIGHT * elsewhere
    return ClosureCandidate(morph, how, arch, raised, elsewhere, smile, float(score))


def _arch(
    lids: Lids, indices: np.ndarray, offsets: np.ndarray
) -> tuple[float | None, np.ndarray | None, float]:
    """(arch, eye centre (x, y), eye width) of the closed lid, or (None, ...) when the morph
    does not close a lid one can measure."""
    model = lids.model
    drop = -offsets[:, 1]
    if len(indices) < 3 or drop.max(initial=0.0) <= 0:
        return None, None, 0.0
    strong = model.positions[indices[drop >= _STRONG * drop.max()]]
    x0, x1 = float(strong[:, 0].min()), float(strong[:, 0].max())
    width = x1 - x0
    centre = strong[:, :2].mean(axis=0)
    if width <= 0:
        return None, centre, 0.0
    moved = drop > _MOVED * drop.max()
    down = np.zeros(len(model.positions), bool)
    down[indices[moved]] = True
    lid = down[model.triangles]
    lid = lid[:, 0] & lid[:, 1] & lid[:, 2]
    # closed positions of the lid's vertices only (a table from vertex index to its row)
    row = np.full(len(model.positions), -1, np.int64)
    row[indices] = np.arange(len(indices))
    closed = model.positions[indices].astype(np.float64) + offsets
    line = _lid_material(lids, indices[moved], drop[moved])
    columns = x0 + width * (np.arange(_COLUMNS) + 0.5) / _COLUMNS
    for triangles in (lid & (lids.tri_material == line), lid):
        bottom = _lowest_cuts(closed[row[model.triangles[triangles]]], columns)
        ok = np.isfinite(bottom)
        if ok.sum() >= 3:
            t = 2.0 * (columns[ok] - x0) / width - 1.0
            a = np.linalg.lstsq(np.stack([t * t, t, np.ones_like(t)], 1), bottom[ok], rcond=None)
            return float(-a[0][0] / width), centre, width
    return None, centre, width


def _lid_material(lids: Lids, indices: np.ndarray, drop: np.ndarray) -> int:
    """The material of the moving vertices that moves furthest (median), -1 if none has 3."""
    materials = lids.vertex_material[indices]
    best, best_drop = -1, -1.0
    for material in np.unique(materials).tolist():
        mine = materials == material
        if material >= 0 and mine.sum() >= 3 and np.median(drop[mine]) > best_drop:
            best, best_drop = material, float(np.median(drop[mine]))
    return best


def _lowest_cuts(corners: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """For each vertical line x = columns[k], the lowest y where the triangles cross it."""
    out = np.full(len(columns), np.inf)
    if len(corners) == 0:
        return out
    a, b = corners, np.roll(corners, -1, axis=1)
    for k, x in enumerate(columns):
        da, db = a[..., 0] - x, b[..., 0] - x
        crosses = (da * db <= 0) & (da != db)
        if not crosses.any():
            continue
        t = np.where(crosses, da / np.where(crosses, da - db, 1.0), 0.0)
        y = np.where(crosses, a[..., 1] + t * (b[..., 1] - a[..., 1]), np.inf)
        out[k] = y.min()
    return out
