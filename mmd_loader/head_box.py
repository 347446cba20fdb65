"""Measuring the head as THA1's labellers did: the top of the hair mass over the skull and the
lowest point of the jaw's skin at the midline.

Everything is anchored on the face the roles found (eye centres and mouth) and measured in units
of the eye separation `u`, so the method does not depend on a model's scale. Signals used: the
bones that drive each vertex (the head's subtree), materials (names, textures, which material is
the face's skin), mesh pieces (connected footprints), and the face's proportions.

**Ornaments by name.** Head-driven parts whose material (name, English name, texture or
sphere file) or driving bone is named like an ornament (リボン/ribbon, 帽子/hat, 髪飾り,
ヘッドホン/headphone, 花/flower, カチューシャ, アホ毛/ahoge, 耳/ears, ...) are left out of the
top's and the width's measurement; a name that would remove most of the head (an atlas
material named after its ribbon) is ignored. Names only help: the geometry below finds the
same box on every real model in ../shared/mmd with every name ignored (tests/test_head_box.py).

**Top: the crown of the footprint dome.** Walking up from the eyes in rows of u/24, each
horizontal cut through the head-driven triangles is rasterised in a top view (cells of u/10)
and filled where a cell is enclosed by cut surface on all four sides (left, right, front,
back), so a ring of hair counts with the skull it encloses while sheets, strands and ribbon
loops count only their own thin cells. The skull and hair make a dome: its footprint is widest
near the eyes and, once below 35 % of that, shrinks steeply to nothing; from there on only the
crown's own piece counts (the connected piece overlapping the row below's most), so spikes, buns
and ear cups beside it drop out. The top is where the crown ends: where its footprint falls
below 10 % of the widest (interpolated between rows), or, earlier, where it stops shrinking by
2 % of the widest per row (over the next three rows): a bow, a flower, a headband or headphone
band sitting on the crown, an ahoge or a topknot all leave a small plateau above the hair,
which is not followed.

**Chin: the end of the face's skin profile.** The model is cut by the plane x = (face centre):
the face's skin material is the one frontmost just below the mouth. Walking down from the mouth
in rows of u/48, the frontmost depth of that material's cut follows the jaw until it has fallen
back more than u/4 behind its front (to the neck, or to nothing when the neck is another
material); the chin is the lowest point of the profile still u/10 in front of the neck there.
A collar, scarf, tie or headset in front of the neck is another material and never takes part;
nor does the neck, which is behind the jaw.

Every search is bounded in steps: the top's walk covers at most 8 eye separations above the
eyes (real tops: 1.4-2), the chin's 2 below the mouth, the grid is 64² cells. A degenerate
anchor (an eye separation of ~0 against the model's size) or a crown still wide 8 eye
separations up raises `HeadBoxError` naming the stage instead of searching on.
Known limit: an unnamed hat is indistinguishable from hair by geometry (its crown encloses the
head as hair does); an overrides file corrects such a model.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

import numpy as np

from mmd_loader.model import Model
from mmd_loader.roles import HeadBox, RoleMorph

_ROW_STEP = 1 / 24  # top rows, in units of u
_CHIN_STEP = 1 / 48  # chin rows, in units of u
_MAX_TOP = 8  # eye separations above the eyes: the top-down walk's reach (heads: 1.4-2)
_MAX_ROWS = 400  # bound of every row walk, whatever u is
_GRID = 64  # top-view cells per side
_CELL = 1 / 10  # top-view cell, in units of u
_CROWN = 0.35  # the dome's crown starts below this share of its widest footprint
_CROWN_END = 0.10  # ... and ends below this share
_MIN_SHRINK = 0.02  # ... or where it shrinks by less than this share per row,
_SHRINK_ROWS = 3  # ... over the next rows (a single row's change is quantised by the grid)
_CHIN_DROP = 0.25  # the profile falling back this far (in u) behind its front is below the chin
_DEGENERATE = 1e-3  # an eye separation below this share of the model's height is degenerate
_MAX_SAMPLES = 32  # raster samples per cut segment

# Words naming head ornaments, matched in NFKC-folded lowercase names (Japanese anywhere in the
# name; Latin words as whole words, so "bow" is not "elbow").
_ORNAMENT_JA = (
    "リボン", "りぼん", "帽子", "ぼうし", "ハット", "キャップ", "ベレー", "ヘルメット", "フード",
    "飾", "かざり", "髪留", "ヘアピン", "ピン", "簪", "かんざし", "櫛", "クリップ", "アクセ",
    "カチューシャ", "ヘアバンド", "ヘッドバンド", "バンド", "ヘッドホン", "ヘッドフォン",
    "ヘッドセット", "イヤホン", "インカム", "マイク", "花", "フラワー", "薔薇", "バラ", "桜",
    "王冠", "ティアラ", "冠", "シュシュ", "ゴム", "ゴーグル", "アホ毛", "あほ毛", "アホゲ",
    "耳", "角", "羽", "ベール", "ヴェール",
)  # fmt: skip
_ORNAMENT_EN = (
    "ribbon", "bow", "hat", "cap", "beret", "helmet", "hood", "ornament", "accessory", "acc",
    "hairpin", "pin", "clip", "comb", "kanzashi", "headband", "band", "hairband", "headphone",
    "headphones", "headset", "earphone", "mic", "flower", "rose", "crown", "tiara", "scrunchie",
    "goggle", "goggles", "ahoge", "ear", "ears", "mimi", "kemomimi", "nekomimi", "horn",
    "horns", "wing", "wings", "feather", "veil",
)  # fmt: skip
_WORD = re.compile(r"[a-z]+")
_JA = re.compile("|".join(map(re.escape, _ORNAMENT_JA)))
_EN = frozenset(_ORNAMENT_EN)
# A name-based exclusion that removes more than this share of the head's widest footprint is
# not believed (the "ornament" is the hair itself, e.g. one atlas material).
_MAX_EXCLUDED = 0.4


class HeadBoxError(ValueError):
    """The head cannot be measured; the message names the stage and why."""


def head_driven_mask(model: Model, head: int) -> np.ndarray:
    """Vertices at least half-weighted to the head bone or any bone below it."""
    in_subtree = _subtree(model, np.array([head]))
    bones = np.clip(model.bone_indices, 0, len(model.bones) - 1)
    weight = (model.bone_weights * in_subtree[bones]).sum(axis=1)
    return weight >= 0.5


def _subtree(model: Model, roots: np.ndarray) -> np.ndarray:
    """Bones that are `roots` or below one of them: one pass over the children lists (a parent
    cycle in a broken file cannot loop, each bone is visited once)."""
    count = len(model.bones)
    children: list[list[int]] = [[] for _ in range(count)]
    for index, bone in enumerate(model.bones):
        if 0 <= bone.parent < count and bone.parent != index:
            children[bone.parent].append(index)
    inside = np.zeros(count, bool)
    stack = [int(r) for r in roots if 0 <= r < count]
    while stack:
        index = stack.pop()
        if inside[index]:
            continue
        inside[index] = True
        stack.extend(children[index])
    return inside


def _lowest(values: np.ndarray) -> np.ndarray:
    """Row-wise minimum of a (T, 3) array (numpy's reductions over a length-3 axis are slow)."""
    return np.minimum(np.minimum(values[:, 0], values[:, 1]), values[:, 2])


def _highest(values: np.ndarray) -> np.ndarray:
    return np.maximum(np.maximum(values[:, 0], values[:, 1]), values[:, 2])


def _all3(flags: np.ndarray) -> np.ndarray:
    return flags[:, 0] & flags[:, 1] & flags[:, 2]


def _centre(model: Model, morph: RoleMorph | None) -> np.ndarray | None:
    if morph is None or len(morph.indices) == 0:
        return None
    w = np.linalg.norm(morph.offsets, axis=1) + 1e-12
    return (model.positions[morph.indices] * w[:, None]).sum(0) / w.sum()


@dataclass
class _Anchors:
    u: float  # eye separation
    eye_y: float
    face_z: float  # frontmost of the eye and mouth centres
    mouth: np.ndarray | None


def find_head_box(
    model: Model, head_mask: np.ndarray, morphs: dict[str, RoleMorph], cx: float
) -> HeadBox | None:
    """The head box anchored on the found eyes and mouth, or None with no anchor at all.

    Raises `HeadBoxError` when the anchors are degenerate (see the module docstring)."""
    anchors = _anchors(model, head_mask, morphs, cx)
    if anchors is None:
        return None
    head_tris = _all3(head_mask[model.triangles])
    if not head_tris.any():
        return None
    u = anchors.u
    notes: list[str] = []
    material_of = _material_of_triangles(model)
    ornaments, names = _ornament_triangles(model, material_of, head_tris)
    ys = model.positions[model.triangles, 1]
    upper = head_tris & (_highest(ys) >= anchors.eye_y)
    corners = model.positions[model.triangles[upper & ~ornaments]].astype(np.float64)
    if names:
        plain = model.positions[model.triangles[upper]].astype(np.float64)
        if _widest(corners, cx, anchors) < (1 - _MAX_EXCLUDED) * _widest(plain, cx, anchors):
            corners, ornaments = plain, np.zeros_like(ornaments)
            notes.append(f"ornament names ignored (they cover the head): {', '.join(names)}")
        else:
            notes.append(f"excluded as ornaments: {', '.join(names)}")
    top = _top(corners, cx, anchors)
    notes.append(f"top: crown of the hair mass at {top:.4g}")

    chin, how = _chin(model, material_of, head_tris, cx, anchors)
    notes.append(f"chin: {how} at {chin:.4g}")
    level = (
        head_tris & ~ornaments & (_lowest(ys) <= anchors.eye_y) & (_highest(ys) >= anchors.eye_y)
    )
    head = model.positions[model.triangles[level]].astype(np.float64)
    half_width = _half_width(head, cx, u, anchors.eye_y, anchors.face_z)
    centre = np.array([cx, 0.5 * (top + chin), anchors.face_z], np.float64)
    return HeadBox(
        top=float(top), chin=float(chin), center=centre, half_width=float(half_width), notes=notes
    )


def _anchors(
    model: Model, head_mask: np.ndarray, morphs: dict[str, RoleMorph], cx: float
) -> _Anchors | None:
    left, right = _centre(model, morphs.get("left_eye")), _centre(model, morphs.get("right_eye"))
    mouth = _centre(model, morphs.get("mouth"))
    eyes = [c for c in (left, right) if c is not None]
    if not eyes and mouth is None:
        return None
    if left is not None and right is not None:
        u = float(abs(left[0] - right[0]))
    elif eyes and mouth is not None:
        u = 2.0 * float(eyes[0][1] - mouth[1])
    else:
        xs = model.positions[head_mask, 0] if head_mask.any() else model.positions[:, 0]
        lo, hi = np.percentile(xs, [10, 90])
        u = 0.3 * float(hi - lo)
    scale = float(np.ptp(model.positions[:, 1])) if len(model.positions) else 0.0
    if not np.isfinite(u) or u <= _DEGENERATE * max(scale, 1e-12):
        raise HeadBoxError(
            f"head box: eye separation {u:.3g} is degenerate (model height {scale:.3g})"
        )
    eye_y = float(np.mean([c[1] for c in eyes])) if eyes else float(mouth[1]) + 0.5 * u
    face_z = float(max(c[2] for c in [*eyes, *([mouth] if mouth is not None else [])]))
    return _Anchors(u, eye_y, face_z, mouth)


# ------------------------------------------------------------------------------------ ornaments


def _material_of_triangles(model: Model) -> np.ndarray:
    """The material index of every triangle (-1 for triangles no material claims)."""
    out = np.full(len(model.triangles), -1, np.int64)
    for index, material in enumerate(model.materials):
        start = max(int(material.face_start), 0)
        out[start : start + max(int(material.face_count), 0)] = index
    return out


def ornament_name(name: str) -> bool:
    """Whether a material, texture or bone name names a head ornament (see the module doc)."""
    key = unicodedata.normalize("NFKC", name or "").lower()
    return bool(_JA.search(key)) or not _EN.isdisjoint(_WORD.findall(key))


def _ornament_triangles(
    model: Model, material_of: np.ndarray, head_tris: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """Head triangles of ornament-named materials or driven by ornament-named bones, and what
    named them."""
    names: list[str] = []
    flagged = np.zeros(len(model.materials) + 1, bool)  # last entry: triangles without material
    for index, material in enumerate(model.materials):
        labels = [material.name, material.english_name]
        for ref in (material.texture_ref, material.sphere_ref):
            if ref:
                labels.append(re.split(r"[\\/]", ref)[-1].rsplit(".", 1)[0])
        if any(label and ornament_name(label) for label in labels):
            flagged[index] = True
    triangles = flagged[material_of] & head_tris
    for index in np.unique(material_of[triangles]).tolist():
        names.append(f"material {model.materials[index].name or index}")
    roots = [i for i, bone in enumerate(model.bones) if ornament_name(bone.name)]
    if roots and len(model.positions):
        bones = np.clip(model.bone_indices, 0, len(model.bones) - 1)
        ornament_bone = _subtree(model, np.array(roots))
        driven = (model.bone_weights * ornament_bone[bones]).sum(axis=1) >= 0.5
        by_bone = _all3(driven[model.triangles]) & head_tris
        if by_bone.any():
            triangles |= by_bone
            vertices = np.unique(model.triangles[by_bone])
            weights = model.bone_weights[vertices] * ornament_bone[bones[vertices]]
            main = bones[vertices, np.argmax(weights, axis=1)]
            names.append("bones " + ", ".join(sorted({model.bones[i].name for i in main})))
    if len(names) > 8:
        names = [*names[:8], f"and {len(names) - 8} more"]
    return triangles, names


# ------------------------------------------------------------------------------------------ top


def _row_cuts(
    corners: np.ndarray, y: float, axis: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _footprint(p0: np.ndarray, p1: np.ndarray, origin: np.ndarray, cell: float) -> np.ndarray:
    """Cells of a top-view grid (`_GRID`² cells of `cell`, lower corner `origin` in (x, z))
    covered by the cut segments or enclosed by them on all four sides."""
    if len(p0) == 0:
        return np.zeros((_GRID, _GRID), bool)
    length = np.linalg.norm(p1 - p0, axis=1)
    count = np.minimum(np.ceil(length / (0.5 * cell)).astype(np.int64) + 1, _MAX_SAMPLES)
    owner = np.repeat(np.arange(len(p0)), count)
    first = np.repeat(np.cumsum(count) - count, count)
    t = (np.arange(len(owner)) - first) / np.maximum(np.repeat(count - 1, count), 1)
    points = p0[owner] + t[:, None] * (p1 - p0)[owner]
    ij = np.floor((points - origin) / cell).astype(np.int64)
    ok = ((ij >= 0) & (ij < _GRID)).all(axis=1)
    occupied = np.zeros((_GRID, _GRID), bool)
    occupied[ij[ok, 1], ij[ok, 0]] = True
    left = np.maximum.accumulate(occupied, axis=1)
    right = np.maximum.accumulate(occupied[:, ::-1], axis=1)[:, ::-1]
    front = np.maximum.accumulate(occupied, axis=0)
    back = np.maximum.accumulate(occupied[::-1], axis=0)[::-1]
    return occupied | (left & right & front & back)


def _grid_origin(cx: float, anchors: _Anchors) -> np.ndarray:
    """Lower (x, z) corner of the top-view grid, centred on the skull behind the face."""
    cell = _CELL * anchors.u
    return np.array([cx, anchors.face_z - 1.0 * anchors.u]) - 0.5 * _GRID * cell


def _footprints(
    corners: np.ndarray, rows: np.ndarray, origin: np.ndarray, cell: float
) -> np.ndarray:
    """The footprints (rows, _GRID, _GRID) of the triangles `corners` at each height in `rows`
    (ascending)."""
    x, z = corners[..., 0].sum(axis=1) / 3, corners[..., 2].sum(axis=1) / 3
    end = origin + _GRID * cell
    inside = (x >= origin[0]) & (x < end[0]) & (z >= origin[1]) & (z < end[1])
    corners = corners[inside & (_highest(corners[..., 1]) >= rows[0])]
    low, high = _lowest(corners[..., 1]), _highest(corners[..., 1])
    order = np.argsort(low, kind="stable")
    corners, low, high = corners[order], low[order], high[order]
    masks = np.zeros((len(rows), _GRID, _GRID), bool)
    for k, y in enumerate(rows):
        end = int(np.searchsorted(low, y, side="right"))
        near = corners[:end][high[:end] >= y]
        p0, p1, _ = _row_cuts(near, float(y), axis=1)
        masks[k] = _footprint(p0[:, [0, 2]], p1[:, [0, 2]], origin, cell)
    return masks


def _widest(corners: np.ndarray, cx: float, anchors: _Anchors) -> float:
    """The head's widest footprint, sampled between the eyes and two eye separations above."""
    rows = anchors.eye_y + anchors.u * np.linspace(0.0, 2.0, 9)
    masks = _footprints(corners, rows, _grid_origin(cx, anchors), _CELL * anchors.u)
    return float(masks.sum(axis=(1, 2)).max())


def _top(corners: np.ndarray, cx: float, anchors: _Anchors) -> float:
    """The top of the dome the triangles `corners` make (see the module docstring)."""
    u, eye_y = anchors.u, anchors.eye_y
    highest = float(corners[..., 1].max()) if len(corners) else eye_y
    if highest <= eye_y:
        return eye_y + 1.5 * u
    reach = min(highest, eye_y + _MAX_TOP * u)  # no head's top is further above its eyes
    count = min(int(np.ceil((reach - eye_y) / (_ROW_STEP * u))), _MAX_ROWS)
    rows = eye_y + _ROW_STEP * u * np.arange(count + 1)
    masks = _footprints(corners, rows, _grid_origin(cx, anchors), _CELL * u)
    top = _crown_end(rows, masks, eye_y + 2.0 * u)
    if top is None and reach >= highest:
        top = float(rows[-1])  # the crown ends with the geometry
    if top is None:
        raise HeadBoxError(
            f"head box: the head goes on more than {_MAX_TOP:g} eye separations above the eyes "
            f"(eye separation {u:.3g} is too small for this head)"
        )
    return top


def _crown_end(rows: np.ndarray, masks: np.ndarray, widest_below: float) -> float | None:
    """Where the dome of footprints `masks` (per row y in `rows`) ends (see the module doc), or
    None when it has not ended by the last row."""
    areas = masks.sum(axis=(1, 2)).astype(np.float64)
    search = rows <= widest_below
    peak = int(np.argmax(np.where(search, areas, -1.0)))
    widest = areas[peak]
    if widest <= 0:
        return float(rows[-1])
    k = peak
    while k + 1 < len(rows) and areas[k + 1] >= _CROWN * widest:
        k += 1
    crown = _Crown(masks, k)  # above here, only the crown's own piece of each footprint counts

    def share(j: int) -> float:
        return (areas[j] if j <= crown.start else crown.cells(min(j, len(rows) - 1))) / widest

    while k + 1 < len(rows) and share(k + 1) >= _CROWN_END:
        if share(k) - share(k + _SHRINK_ROWS) < _MIN_SHRINK * _SHRINK_ROWS:
            break  # no longer shrinking like a dome: what lies above sits on the crown
        k += 1
    if k + 1 == len(rows):
        return None  # the rows ran out with the crown still wide
    if k + 1 < len(rows) and share(k + 1) < _CROWN_END <= share(k):
        # the crown runs out between rows k and k + 1: interpolate the crossing
        t = (share(k) - _CROWN_END) / max(share(k) - share(k + 1), 1e-12)
        return float(rows[k] + t * (rows[k + 1] - rows[k]))
    return float(rows[k])


class _Crown:
    """The crown's cells in the footprints above row `start`, followed upwards on demand: in
    each row, the connected piece that overlaps the previous row's crown most (a spike, a bun or
    an ear cup beside it is left out)."""

    def __init__(self, masks: np.ndarray, start: int) -> None:
        self.masks, self.start = masks, start
        self.pieces = [masks[start]]

    def cells(self, row: int) -> float:
        while self.start + len(self.pieces) - 1 < row:
            previous = self.pieces[-1]
            mask = self.masks[self.start + len(self.pieces)]
            self.pieces.append(_piece_over(mask, previous))
        return float(self.pieces[row - self.start].sum())


def _piece_over(mask: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """The 4-connected piece of `mask` that overlaps `previous` most (empty if none does)."""
    seeds = mask & previous
    if not seeds.any():
        return np.zeros_like(mask)
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    inside = mask[y0:y1, x0:x1]
    big = inside.size
    labels = np.where(inside, np.arange(big).reshape(inside.shape), big)
    for _ in range(big):  # each pass spreads the smallest label one cell; bounded by the cells
        spread = labels.copy()
        np.minimum(spread[1:], labels[:-1], out=spread[1:])
        np.minimum(spread[:-1], labels[1:], out=spread[:-1])
        np.minimum(spread[:, 1:], labels[:, :-1], out=spread[:, 1:])
        np.minimum(spread[:, :-1], labels[:, 1:], out=spread[:, :-1])
        spread = np.where(inside, spread, big)
        if np.array_equal(spread, labels):
            break
        labels = spread
    overlap = np.bincount(labels[seeds[y0:y1, x0:x1]], minlength=big + 1)[:big]
    size = np.bincount(labels[inside], minlength=big + 1)[:big]
    best = int(np.lexsort((size, overlap))[-1])
    piece = np.zeros_like(mask)
    piece[y0:y1, x0:x1] = labels == best
    return piece


# ----------------------------------------------------------------------------------------- chin


def _chin(
    model: Model, material_of: np.ndarray, head_tris: np.ndarray, cx: float, anchors: _Anchors
) -> tuple[float, str]:
    """(chin y, how it was found): the end of the face skin's midline profile, else the
    lowest head-driven point in front near the midline."""
    u, mouth = anchors.u, anchors.mouth
    anchor_y = float(mouth[1]) if mouth is not None else anchors.eye_y - 0.6 * u
    ys, xs = model.positions[model.triangles, 1], model.positions[model.triangles, 0]
    plane = cx + 1e-3 * u  # just off the midline, where real models put a row of vertices
    band = (_highest(ys) >= anchor_y - 2.2 * u) & (_lowest(ys) <= anchor_y + 0.2 * u)
    band &= (_lowest(xs) <= plane) & (_highest(xs) >= plane)
    p0, p1, hit = _row_cuts(model.positions[model.triangles[band]].astype(np.float64), plane, 0)
    materials = material_of[np.flatnonzero(band)[hit]]
    chin = _chin_from_profile(p0[:, 1:], p1[:, 1:], materials, anchor_y, anchors)
    if chin is not None:
        return chin, "end of the face skin at the midline"
    head = model.positions[model.triangles[head_tris]].astype(np.float64)
    return _chin_fallback(head, cx, u, anchor_y, anchors.face_z), (
        "lowest head-driven point near the midline (no skin profile)"
    )


def _depth_at(p0: np.ndarray, p1: np.ndarray, y: float) -> tuple[np.ndarray, np.ndarray]:
    """Profile segments (y, z) crossing height y: (which, z there)."""
    da, db = p0[:, 0] - y, p1[:, 0] - y
    hit = (da * db <= 0) & (da != db)
    t = np.where(hit, da / np.where(hit, da - db, 1.0), 0.0)
    return hit, p0[:, 1] + t * (p1[:, 1] - p0[:, 1])


def _chin_from_profile(
    p0: np.ndarray, p1: np.ndarray, materials: np.ndarray, anchor_y: float, anchors: _Anchors
) -> float | None:
    u = anchors.u
    votes: Counter[int] = Counter()
    for y in anchor_y - u * np.linspace(0.05, 0.2, 6):
        hit, z = _depth_at(p0, p1, float(y))
        if hit.any():
            votes[int(materials[np.flatnonzero(hit)[np.argmax(z[hit])]])] += 1
    if not votes:
        return None
    skin = votes.most_common(1)[0][0]
    own = materials == skin
    p0, p1 = p0[own], p1[own]
    step = _CHIN_STEP * u
    rows = anchor_y - step * np.arange(int(2.0 / _CHIN_STEP))
    fronts = np.full(len(rows), -np.inf)
    for k, y in enumerate(rows):
        hit, z = _depth_at(p0, p1, float(y))
        if hit.any():
            fronts[k] = z[hit].max()
    finite = np.isfinite(fronts)
    if not finite.any():
        return None
    first = int(np.argmax(finite))
    reach = np.maximum.accumulate(np.where(finite, fronts, -np.inf))
    behind = (fronts < reach - _CHIN_DROP * u) & (np.arange(len(rows)) > first)
    if not behind.any():
        return None
    k = int(np.argmax(behind))  # the first row the profile has fallen back: below the chin
    below = fronts[k : k + int(0.3 / _CHIN_STEP)]
    below = below[np.isfinite(below)]
    # In front of the neck (the profile just below), or anywhere on the face when the skin ends
    cut = float(np.median(below)) + 0.1 * u if len(below) else float(reach[k]) - u
    ends = np.concatenate([p0, p1])
    chosen = (ends[:, 0] >= rows[k] - step) & (ends[:, 0] <= anchor_y) & (ends[:, 1] >= cut)
    return float(ends[chosen, 0].min()) if chosen.any() else float(rows[k])


def _chin_fallback(corners: np.ndarray, cx: float, u: float, anchor_y: float, face_z: float):
    points = corners.reshape(-1, 3)
    near_centre = np.abs(points[:, 0] - cx) < 0.35 * u
    in_front = points[:, 2] > face_z - 0.8 * u
    below = (points[:, 1] < anchor_y) & (points[:, 1] > anchor_y - 2.0 * u)
    chosen = points[near_centre & in_front & below]
    return float(chosen[:, 1].min()) if len(chosen) else anchor_y - 0.3 * u


# ---------------------------------------------------------------------------------------- width


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
