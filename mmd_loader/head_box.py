"""Measuring the head as THA1's labellers did: the top of the hair mass over the skull and the
lowest point of the jaw's skin at the midline.

Everything is anchored on the face the roles found (eye centres and mouth) and measured in units
of the eye separation `u`, so the method does not depend on a model's scale. Signals used: the
bones that drive each vertex (the head's subtree), materials (names, textures, which material is
the face's skin), mesh pieces (connected footprints), and the face's proportions.

**Ornaments by name.** Head-driven parts whose material (name, English name, texture or
sphere file) or driving bone is named like an ornament (リボン/ribbon, 帽子/hat, 髪飾り, 簪,
ヘッドホン/headphone, 花/flower, カチューシャ, アホ毛/ahoge, 耳/ears, ...) are left out of the
top's and the width's measurement. Each name is judged on its own: one that names the face's own
skin (a material 顔・耳) is not an ornament, and one that would remove most of the head by
itself (more than 40 % of its widest footprint: an atlas material named after its ribbon,
over a face that is a mask) is ignored, unless what it names is a piece apart from the rest
that does not hang down the head (a hat above the hair, however wide its brim). Names only
help: the geometry below finds the same box on every real model in ../shared/mmd with every
name ignored (tests/test_head_box.py).

**Top** (`mmd_loader.head_top`): the crown of the dome the head's footprints make, walking up
from the eyes; pieces that do not hang down the head (bows, buns, hair sticks, flowers) are
left out unless they enclose the crown; when a dome stands under the piece the top ends on and
which of them is the hair cannot be told (a hat, a cap, a hood over hair), the box says so.

**Chin: the end of the face's skin profile.** The model is cut by the plane x = (face centre):
the face's skin material is the one frontmost just below the mouth. Walking down from the mouth
in rows of u/48, the frontmost depth of that material's cut follows the jaw until it has fallen
back more than u/4 behind its front (to the neck, or to nothing when the neck is another
material); the chin is the lowest point of the profile still u/10 in front of the neck there.
A collar, scarf, tie or headset in front of the neck is another material and never takes part;
nor does the neck, which is behind the jaw.

Every search is bounded in steps: the top's walks cover at most 8 eye separations above the
eyes (real tops: 1.4-2) and rasterise at most `MAX_FOOTPRINTS` footprints in all, the chin's
walk 2 below the mouth, the grid is 64² cells. A degenerate anchor (an eye separation of ~0
against the model's size) or a crown still wide 8 eye separations up raises `HeadBoxError`
naming the stage instead of searching on.
Known limit: an unnamed hat, cap, beret or hood reads as hair when nothing tells it apart (its
crown encloses the head as hair does); the box then carries `uncertain_top` (the top of the
dome under it), which quality flags as `head_top_uncertain`, and an overrides file corrects
such a model.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

import numpy as np

from mmd_loader.head_top import (
    FLOAT,
    MAX_TOP,
    WIDEST_ROWS,
    Anchors,
    Grid,
    HeadBoxError,
    find_top,
    widest,
)
from mmd_loader.head_top import (
    MAX_FOOTPRINTS as TOP_FOOTPRINTS,
)
from mmd_loader.mesh_geometry import all3, highest, lowest, mesh_pieces, row_cuts
from mmd_loader.model import Model
from mmd_loader.roles import HeadBox, RoleMorph

__all__ = ["MAX_FOOTPRINTS", "HeadBoxError", "find_head_box", "head_driven_mask", "ornament_name"]

_CHIN_STEP = 1 / 48  # chin rows, in units of u
_CHIN_DROP = 0.25  # the profile falling back this far (in u) behind its front is below the chin
_DEGENERATE = 1e-3  # an eye separation below this share of the model's height is degenerate

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
# A name whose exclusion alone removes more than this share of the head's widest footprint is
# not believed (the "ornament" is the hair itself, e.g. one atlas material)...
_MAX_EXCLUDED = 0.4
_MAX_NAMES = 16  # ... judged one by one for this many names at most (the rest together)
MAX_FOOTPRINTS = TOP_FOOTPRINTS + WIDEST_ROWS * (_MAX_NAMES + 2)


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


def _centre(model: Model, morph: RoleMorph | None) -> np.ndarray | None:
    if morph is None or len(morph.indices) == 0:
        return None
    w = np.linalg.norm(morph.offsets, axis=1) + 1e-12
    return (model.positions[morph.indices] * w[:, None]).sum(0) / w.sum()


def find_head_box(
    model: Model,
    head_mask: np.ndarray,
    morphs: dict[str, RoleMorph],
    cx: float,
    eyes: dict[str, np.ndarray] | None = None,
) -> HeadBox | None:
    """The head box anchored on the eyes (`eyes`: each eye role's centre as all its closures
    see it, `mmd_loader.face.eye_anchor`; else the eye morphs' centres) and the mouth, or None
    with no anchor at all.

    Raises `HeadBoxError` when the anchors are degenerate (see the module docstring)."""
    anchors = _anchors(model, head_mask, morphs, cx, eyes or {})
    if anchors is None:
        return None
    head_tris = all3(head_mask[model.triangles])
    if not head_tris.any():
        return None
    u = anchors.u
    notes: list[str] = []
    material_of = _material_of_triangles(model)
    pieces = np.full(len(model.triangles), -1, np.int64)
    pieces[head_tris] = mesh_pieces(model.positions, model.triangles[head_tris])
    face_material = _face_material(model, material_of, cx, anchors)
    ornaments = _ornaments(model, material_of, head_tris, pieces, face_material, cx, anchors, notes)
    face = _face_piece(pieces, material_of, face_material, head_tris)
    top = find_top(model, head_tris & ~ornaments, pieces, cx, anchors, face)
    notes += top.notes

    chin, how = _chin(model, material_of, head_tris, cx, anchors, face_material)
    notes.append(f"chin: {how} at {chin:.4g}")
    if top.y - chin > MAX_TOP * u:
        raise HeadBoxError(
            f"head box: the head is {(top.y - chin) / u:.3g} eye separations tall, more than "
            f"{MAX_TOP:g} (eye separation {u:.3g} is too small for this head)"
        )
    ys = model.positions[model.triangles, 1]
    level = head_tris & ~ornaments & (lowest(ys) <= anchors.eye_y) & (highest(ys) >= anchors.eye_y)
    head = model.positions[model.triangles[level]].astype(np.float64)
    half_width = _half_width(head, cx, u, anchors.eye_y, anchors.face_z)
    centre = np.array([cx, 0.5 * (top.y + chin), anchors.face_z], np.float64)
    return HeadBox(
        top=float(top.y),
        chin=float(chin),
        center=centre,
        half_width=float(half_width),
        notes=notes,
        uncertain_top=None if top.inner is None else float(top.inner),
    )


def _anchors(
    model: Model,
    head_mask: np.ndarray,
    morphs: dict[str, RoleMorph],
    cx: float,
    eyes: dict[str, np.ndarray],
) -> Anchors | None:
    left = eyes.get("left_eye", _centre(model, morphs.get("left_eye")))
    right = eyes.get("right_eye", _centre(model, morphs.get("right_eye")))
    mouth = _centre(model, morphs.get("mouth"))
    found = [c for c in (left, right) if c is not None]
    if not found and mouth is None:
        return None
    if left is not None and right is not None:
        u = float(abs(left[0] - right[0]))
    elif found and mouth is not None:
        u = 2.0 * float(found[0][1] - mouth[1])
    else:
        xs = model.positions[head_mask, 0] if head_mask.any() else model.positions[:, 0]
        lo, hi = np.percentile(xs, [10, 90])
        u = 0.3 * float(hi - lo)
    scale = float(np.ptp(model.positions[:, 1])) if len(model.positions) else 0.0
    if not np.isfinite(u) or u <= _DEGENERATE * max(scale, 1e-12):
        raise HeadBoxError(
            f"head box: eye separation {u:.3g} is degenerate (model height {scale:.3g})"
        )
    eye_y = float(np.mean([c[1] for c in found])) if found else float(mouth[1]) + 0.5 * u
    face_z = float(max(c[2] for c in [*found, *([mouth] if mouth is not None else [])]))
    return Anchors(u, eye_y, face_z, mouth)


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


def _ornament_groups(
    model: Model, material_of: np.ndarray, head_tris: np.ndarray, face_material: int
) -> list[tuple[str, np.ndarray]]:
    """(what named it, its head triangles) for every ornament-named material and every
    ornament-named bone's subtree, the face's own skin material excepted."""
    groups: list[tuple[str, np.ndarray]] = []
    for index, material in enumerate(model.materials):
        labels = [material.name, material.english_name]
        for ref in (material.texture_ref, material.sphere_ref):
            if ref:
                labels.append(re.split(r"[\\/]", ref)[-1].rsplit(".", 1)[0])
        if index != face_material and any(label and ornament_name(label) for label in labels):
            triangles = (material_of == index) & head_tris
            if triangles.any():
                groups.append((f"material {material.name or index}", triangles))
    roots = [i for i, bone in enumerate(model.bones) if ornament_name(bone.name)]
    if not roots or not len(model.positions):
        return groups
    bones = np.clip(model.bone_indices, 0, len(model.bones) - 1)
    by_name: dict[str, np.ndarray] = {}
    for root in roots:
        subtree = _subtree(model, np.array([root]))
        driven = (model.bone_weights * subtree[bones]).sum(axis=1) >= 0.5
        triangles = all3(driven[model.triangles]) & head_tris
        if triangles.any():
            name = model.bones[root].name
            by_name[name] = by_name.get(name, np.zeros_like(triangles)) | triangles
    # a bone below another named one belongs to the outer one's group
    kept = sorted(by_name.items(), key=lambda item: -int(item[1].sum()))
    out: list[tuple[str, np.ndarray]] = []
    for name, triangles in kept:
        if not any((triangles & ~outer).sum() == 0 for _, outer in out):
            out.append((name, triangles))
    return groups + [(f"bone {name}", triangles) for name, triangles in out]


def _ornaments(
    model: Model,
    material_of: np.ndarray,
    head_tris: np.ndarray,
    pieces: np.ndarray,
    face_material: int,
    cx: float,
    anchors: Anchors,
    notes: list[str],
) -> np.ndarray:
    """The head triangles left out by name, each name judged on its own (see the module doc);
    notes say what was left out and which names were not believed."""
    groups = _ornament_groups(model, material_of, head_tris, face_material)
    out = np.zeros(len(model.triangles), bool)
    if not groups:
        return out
    ys = model.positions[model.triangles, 1]
    upper = head_tris & (highest(ys) >= anchors.eye_y)
    level = anchors.eye_y + FLOAT * anchors.u
    apart = [_apart(triangles, pieces, lowest(ys), level) for _, triangles in groups]
    for (_, triangles), separate in zip(groups, apart, strict=True):
        if separate:
            out |= triangles
    grid = Grid.of(cx, anchors)

    def widest_of(mask: np.ndarray) -> float:
        return widest(model.positions[model.triangles[mask]].astype(np.float64), grid, anchors)

    judged = [(g, t) for (g, t), a in zip(groups, apart, strict=True) if not a]
    if len(judged) > _MAX_NAMES:  # the rest are judged together
        rest = np.logical_or.reduce([t for _, t in judged[_MAX_NAMES - 1 :]])
        judged = [*judged[: _MAX_NAMES - 1], ("and the other names", rest)]
    base = widest_of(upper & ~out) if judged else 0.0
    ignored = []
    for name, triangles in judged:
        if widest_of(upper & ~out & ~triangles) < (1 - _MAX_EXCLUDED) * base:
            ignored.append(name)
        else:
            out |= triangles
    left_out = [name for (name, _), a in zip(groups, apart, strict=True) if a]
    left_out += [name for name, _ in judged if name not in ignored]
    if left_out:
        notes.append(f"excluded as ornaments: {_listed(left_out)}")
    if ignored:
        notes.append(f"ornament names ignored (they cover the head): {_listed(ignored)}")
    return out


def _apart(triangles: np.ndarray, pieces: np.ndarray, low: np.ndarray, level: float) -> bool:
    """Whether `triangles` are whole pieces of their own lying above `level` (a separate piece
    that does not hang down the head: a hat above the hair, a bow)."""
    labels = np.unique(pieces[triangles])
    labels = labels[labels >= 0]
    if labels.size == 0:
        return False
    whole = np.isin(pieces, labels)
    return bool((whole <= triangles).all()) and float(low[whole].min()) > level


def _listed(names: list[str]) -> str:
    return ", ".join(names if len(names) <= 8 else [*names[:8], f"and {len(names) - 8} more"])


def _face_piece(
    pieces: np.ndarray, material_of: np.ndarray, face_material: int, head_tris: np.ndarray
) -> int:
    """The piece most of the face skin's head triangles belong to (-1: unknown)."""
    if face_material < 0:
        return -1
    labels = pieces[(material_of == face_material) & head_tris]
    labels = labels[labels >= 0]
    return int(np.bincount(labels).argmax()) if labels.size else -1


# ----------------------------------------------------------------------------------------- chin


def _midline_profile(
    model: Model, material_of: np.ndarray, cx: float, anchors: Anchors
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The model cut by the plane just off x = cx, near the face: segment ends (y, z) P0, P1,
    their materials, and the y the chin's walk starts from (the mouth)."""
    u, mouth = anchors.u, anchors.mouth
    anchor_y = float(mouth[1]) if mouth is not None else anchors.eye_y - 0.6 * u
    ys, xs = model.positions[model.triangles, 1], model.positions[model.triangles, 0]
    plane = cx + 1e-3 * u  # just off the midline, where real models put a row of vertices
    band = (highest(ys) >= anchor_y - 2.2 * u) & (lowest(ys) <= anchor_y + 0.2 * u)
    band &= (lowest(xs) <= plane) & (highest(xs) >= plane)
    p0, p1, hit = row_cuts(model.positions[model.triangles[band]].astype(np.float64), plane, 0)
    materials = material_of[np.flatnonzero(band)[hit]]
    return p0[:, 1:], p1[:, 1:], materials, anchor_y


def _face_material(model: Model, material_of: np.ndarray, cx: float, anchors: Anchors) -> int:
    """The face's skin material: the one frontmost at the midline just below the mouth (-1 when
    nothing is cut there)."""
    p0, p1, materials, anchor_y = _midline_profile(model, material_of, cx, anchors)
    return _skin_of(p0, p1, materials, anchor_y, anchors.u)


def _skin_of(p0, p1, materials, anchor_y: float, u: float) -> int:
    votes: Counter[int] = Counter()
    for y in anchor_y - u * np.linspace(0.05, 0.2, 6):
        hit, z = _depth_at(p0, p1, float(y))
        if hit.any():
            votes[int(materials[np.flatnonzero(hit)[np.argmax(z[hit])]])] += 1
    return votes.most_common(1)[0][0] if votes else -1


def _chin(
    model: Model,
    material_of: np.ndarray,
    head_tris: np.ndarray,
    cx: float,
    anchors: Anchors,
    skin: int,
) -> tuple[float, str]:
    """(chin y, how it was found): the end of the face skin's midline profile, else the
    lowest head-driven point in front near the midline."""
    p0, p1, materials, anchor_y = _midline_profile(model, material_of, cx, anchors)
    chin = None
    if skin >= 0:
        chin = _chin_from_profile(p0[materials == skin], p1[materials == skin], anchor_y, anchors)
    if chin is not None:
        return chin, "end of the face skin at the midline"
    head = model.positions[model.triangles[head_tris]].astype(np.float64)
    return _chin_fallback(head, cx, anchors.u, anchor_y, anchors.face_z), (
        "lowest head-driven point near the midline (no skin profile)"
    )


def _depth_at(p0: np.ndarray, p1: np.ndarray, y: float) -> tuple[np.ndarray, np.ndarray]:
    """Profile segments (y, z) crossing height y: (which, z there)."""
    da, db = p0[:, 0] - y, p1[:, 0] - y
    hit = (da * db <= 0) & (da != db)
    t = np.where(hit, da / np.where(hit, da - db, 1.0), 0.0)
    return hit, p0[:, 1] + t * (p1[:, 1] - p0[:, 1])


def _chin_from_profile(
    p0: np.ndarray, p1: np.ndarray, anchor_y: float, anchors: Anchors
) -> float | None:
    """The chin on the skin's own profile segments (y, z)."""
    u = anchors.u
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
