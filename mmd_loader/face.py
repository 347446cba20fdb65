"""Finding a model's face without hand labels: which morphs close each eye and open the mouth,
the neck and head bones, and the head box that frames the render.

Names propose, geometry decides: a wink's side comes from where its displaced vertices lie
(+x is the character's own left in the model frame), whatever its name says, and whether a
closure is neutral or a smile wink from the shape of its closed lid (`mmd_loader.closures`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mmd_loader import closures
from mmd_loader.closures import Lids
from mmd_loader.head_box import HeadBoxError, find_head_box, head_driven_mask
from mmd_loader.model import Model, MorphKind
from mmd_loader.morph_names import (
    HEAD_NAMES,
    NECK_NAMES,
    bone_rank,
    eye_morph_kind,
    is_closure,
    is_mouth_open,
    mouth_rank,
)
from mmd_loader.overrides import FaceOverrides
from mmd_loader.roles import (
    EYE_ROLES,
    HAPPY_ROLES,
    ClosureCandidate,
    EyeChoice,
    FaceRoles,
    Flag,
    RoleMorph,
)

# A displacement shorter than this fraction of the model's height counts as "not moved".
_MOVE_EPS = 1e-5
# A one-eye morph puts at least this share of its displacement on one side of the face.
_ONE_SIDE = 0.8
# A closing morph moves some vertex down by this share of its largest move ...
_LID_DROP = 0.25
# ... and closes an eye when its lid travels this share of the eye's furthest-closing candidate.
_CLOSES = 0.35


@dataclass
class _Candidate:
    """A vertex/group morph that moves geometry, with where it moves it."""

    index: int
    name: str
    indices: np.ndarray
    offsets: np.ndarray
    weights: np.ndarray  # displacement length per moved vertex
    centre: np.ndarray  # displacement-weighted rest position of the moved vertices

    def left_share(self, positions: np.ndarray, cx: float) -> float:
        x = positions[self.indices, 0]
        return float(self.weights[x > cx].sum() / max(self.weights.sum(), 1e-12))

    @property
    def moves_down(self) -> bool:
        """Some vertex moves down by a good part of the largest move: a lid that closes (a smile
        wink that lifts the cheek a lot still qualifies; the mean move may be upwards)."""
        return float(-self.offsets[:, 1].min()) >= _LID_DROP * float(self.weights.max())


def detect_face(model: Model, overrides: FaceOverrides | None = None) -> FaceRoles:
    """Find the THA1 roles of a model. `roles.problems` lists why it is unusable, if it is."""
    overrides = overrides or FaceOverrides()
    roles = FaceRoles()
    roles.neck = _find_bone(model, NECK_NAMES, overrides.neck, "neck (首)", roles.problems)
    roles.head = _find_bone(model, HEAD_NAMES, overrides.head, "head (頭)", roles.problems)
    if len(model.positions) == 0:
        roles.problems.append("the model has no vertices")
        return roles

    candidates = _movable_morphs(model)
    cx = _face_centre_x(model, roles.head)
    _assign_eyes(model, candidates, cx, overrides, roles)
    _assign_mouth(model, candidates, cx, overrides, roles)

    head_mask = head_driven_mask(model, roles.head) if roles.head >= 0 else None
    if head_mask is not None and not head_mask.any():
        roles.problems.append("no vertex is driven by the head bone")
    elif head_mask is not None:
        try:
            roles.head_box = find_head_box(model, head_mask, roles.morphs, cx, roles.eye_anchors)
        except HeadBoxError as error:
            roles.problems.append(str(error))
        else:
            if roles.head_box is None:
                roles.problems.append("could not measure the head (no eyes or mouth to anchor it)")
    if overrides.head_top is not None or overrides.chin is not None:
        roles.head_box = overrides.apply_to_box(roles.head_box, cx, roles.problems)
        if roles.head_box is not None:
            roles.problems = [p for p in roles.problems if "measure the head" not in p]
    roles.flags.extend(_proportion_flags(model, roles))
    roles.flags.extend(_top_flags(roles))
    return roles


# Head box size in eye separations, well outside which the box probably holds an ornament or
# misses part of the head. Measured by scripts/flag_rates.py on clean characters (20 real, 84
# procedural): height 2.14-3.22 (pooled log mean 0.955, widest sd 0.082), width 1.99-3.18 (log
# mean 1.006, widest sd 0.153, the real heads'); each band is the log mean ± 4 sd (a normal
# tail leaves 3 in 100,000 characters outside; real heads' tails are heavier: issue 19's 3.41
# eye separations, a correct box, lay 3.1 sd out).
HEIGHT_PER_EYE_SEPARATION = (1.87, 3.61)
WIDTH_PER_EYE_SEPARATION = (1.48, 5.04)


def _proportion_flags(model: Model, roles: FaceRoles) -> list[Flag]:
    box = roles.head_box
    if box is None or not all(r in roles.morphs for r in EYE_ROLES):
        return []
    left, right = (eye_centre(model, roles, r) for r in EYE_ROLES)
    separation = float(abs(left[0] - right[0]))
    if separation <= 0:
        return []
    flags = []
    for what, size, (lo, hi) in (
        ("height", box.height, HEIGHT_PER_EYE_SEPARATION),
        ("width", 2 * box.half_width, WIDTH_PER_EYE_SEPARATION),
    ):
        ratio = size / separation
        if not lo <= ratio <= hi:
            flags.append(
                Flag(
                    "head_box_proportions",
                    f"head box {what} is {ratio:.2f} eye separations (usual {lo}-{hi})",
                    value=round(ratio, 4),
                )
            )
    return flags


# A top that may be headwear is flagged when the dome under it ends this share of the head's
# height lower: the box is off by that much if the top piece is a hat. The box's own accuracy on
# the hand-checked real heads is 2.1 % at worst (tests/test_head_box.py), so a smaller gap is
# within it (an unnamed cap hugging the hair: 1-3 %); unnamed hats, berets and hoods measure
# 5-13 % (scripts/flag_rates.py), no clean real or procedural character any.
UNCERTAIN_TOP = 0.03


def _top_flags(roles: FaceRoles) -> list[Flag]:
    """`head_top_uncertain`: the top ends on a piece that may be a hat, cap, beret or hood, and
    the dome under it ends far enough lower to matter (value: that gap / the box's height)."""
    box = roles.head_box
    if box is None or box.uncertain_top is None or box.height <= 0:
        return []
    gap = (box.top - box.uncertain_top) / box.height
    if gap < UNCERTAIN_TOP:
        return []
    message = (
        f"the head top may be on headwear: the hair under the piece it ends on ends {gap:.0%} of "
        f"the head's height lower (at {box.uncertain_top:.4g}); set head_top if it is a hat"
    )
    return [Flag("head_top_uncertain", message, value=round(gap, 4))]


def _find_bone(
    model: Model, names: tuple[str, ...], override: str | None, label: str, problems: list[str]
) -> int:
    if override is not None:
        index = model.bone_index(override)
        if index < 0:
            problems.append(f"override names {label} bone {override!r}, which the model lacks")
        return index
    best, best_rank = -1, len(names)
    for index, bone in enumerate(model.bones):
        rank = bone_rank(bone.name, names)
        if rank is not None and rank < best_rank:
            best, best_rank = index, rank
    if best < 0:
        problems.append(f"no {label} bone")
    return best


def _face_named(name: str) -> bool:
    """Named like an eye closure or the mouth's あ: what detection considers."""
    return bool(eye_morph_kind(name) or is_mouth_open(name))


def _movable_morphs(
    model: Model, named: Callable[[str], bool] = _face_named
) -> dict[int, _Candidate]:
    """Every vertex or group morph `named` accepts that moves at least one vertex, resolved at
    weight 1."""
    scale = float(np.ptp(model.positions[:, 1])) or 1.0
    out: dict[int, _Candidate] = {}
    for index, morph in enumerate(model.morphs):
        if morph.kind not in (MorphKind.VERTEX, MorphKind.GROUP):
            continue
        if not named(morph.name):
            continue
        indices, offsets = model.vertex_offsets(index)
        valid = (indices >= 0) & (indices < len(model.positions))
        indices, offsets = indices[valid], offsets[valid]
        lengths = np.linalg.norm(offsets, axis=1)
        moved = lengths > _MOVE_EPS * scale
        if not moved.any():
            continue
        indices, offsets, lengths = indices[moved], offsets[moved], lengths[moved]
        centre = (model.positions[indices] * lengths[:, None]).sum(0) / lengths.sum()
        out[index] = _Candidate(index, morph.name, indices, offsets, lengths, centre)
    return out


def _face_centre_x(model: Model, head: int) -> float:
    """The face's symmetry plane: the head bone's x (models are built around x = 0)."""
    if head >= 0:
        return float(model.bones[head].position[0])
    return 0.0


def _assign_eyes(
    model: Model,
    candidates: dict[int, _Candidate],
    cx: float,
    overrides: FaceOverrides,
    roles: FaceRoles,
) -> None:
    """Bind left_eye and right_eye to the most neutral closure of each eye (see
    `mmd_loader.closures`), and keep the smile winks found under the `*_happy` roles."""
    closing = eye_closures(model, candidates, cx)
    for role in EYE_ROLES:
        found = closing[role]
        forced = overrides.morph_for(role)
        side = "left" if role == "left_eye" else "right"
        scores = [shape for shape, _, _ in found]
        closers = [b for _, b, _ in found]
        if forced is not None:
            bound = _bind_override(model, role, forced, cx, roles.problems)
            reason = "override"
            if bound is not None and not _within(bound, closers):
                closers = [bound]  # it moves more than this eye's closures: measure it alone
        elif found:
            shape, bound, _ = next((f for f in found if not f[0].smile), found[0])
            reason = _reason(shape, scores)
            if shape.smile:
                roles.flags.append(
                    Flag(
                        "smile_closure",
                        f"every closure of the {side} eye is a smile wink; using {shape.morph} "
                        f"(lid arch {_fmt(shape.arch)})",
                        role=role,
                        value=shape.arch,
                    )
                )
        else:
            bound, reason = None, "no morph closes this eye"
        roles.eyes[role] = EyeChoice(role, bound.morph if bound else None, reason, scores)
        if bound is None:
            roles.problems.append(f"no morph closes the {side} eye")
        else:
            roles.morphs[role] = bound
            roles.eye_anchors[role] = eye_anchor(model, closers or [bound])
        smiles = [f for f in found if f[0].smile]
        if smiles:
            shape, happy, _ = max(smiles, key=lambda f: (f[0].how == "wink", f[0].arch, -f[2]))
            name = HAPPY_ROLES[role]
            roles.morphs[name] = RoleMorph(
                name, happy.morph, happy.indices, happy.offsets, happy.how
            )


def _within(morph: RoleMorph, closers: list[RoleMorph]) -> bool:
    """Whether every vertex `morph` moves is moved by one of `closers` (an override naming one
    of this eye's closures, or a part of one)."""
    if not closers:
        return False
    known = np.concatenate([c.indices for c in closers])
    return bool(np.isin(morph.indices, known).all())


def eye_anchor(model: Model, closers: list[RoleMorph]) -> np.ndarray:
    """The centre of an eye as all its closures together see it: the rest positions of every
    vertex any of them moves down, each weighted by the furthest any of them moves it down.

    A lid comes down over the eye in a neutral closure and in a smile wink alike; what differs
    (a smile lifts the cheek and the lower lid, a neutral one drops further) moves up or moves
    less, so the anchor, and the head box measured from it, does not depend on which closure
    was chosen (tests/test_head_box_features.py: every choice gives the same box within 1 % of
    its height), nor on an override naming one of them. An override moving more than the eye's
    closures is measured alone: a both-eyes morph named for each eye puts both anchors on the
    midline, which the head box refuses as degenerate."""
    indices = np.concatenate([m.indices for m in closers]).astype(np.int64)
    drops = np.concatenate([np.maximum(-m.offsets[:, 1], 0.0) for m in closers])
    if len(indices) == 0:
        return np.zeros(3)
    weight = np.zeros(len(model.positions))
    np.maximum.at(weight, indices, drops)
    moved = np.flatnonzero(weight > 0)
    if len(moved) == 0:  # nothing moves down: the displacement-weighted centre of the first
        return morph_centre(model, closers[0])
    w = weight[moved]
    return (model.positions[moved] * w[:, None]).sum(0) / w.sum()


Closure = tuple[ClosureCandidate, RoleMorph, int]  # the lid's shape, the bound side, morph index


def eye_closures(
    model: Model,
    candidates: dict[int, _Candidate],
    cx: float,
    eye_named: Callable[[str], bool] = lambda name: eye_morph_kind(name) is not None,
) -> dict[str, list[Closure]]:
    """Per eye role, every way the candidates close that eye, most neutral first.

    Candidates for one eye: every eye-named morph that closes that eye alone (a wink, whichever
    side its name says) and that side of every eye-named morph that closes both (まばたき); each
    closes it when its lid travels at least `_CLOSES` of the furthest one's."""
    lids = Lids.of(model)
    options: dict[str, list[Closure]] = {r: [] for r in EYE_ROLES}
    for cand in candidates.values():
        if not eye_named(cand.name) or not cand.moves_down:
            continue
        share = cand.left_share(model.positions, cx)
        if share >= _ONE_SIDE or share <= 1 - _ONE_SIDE:
            role = "left_eye" if share >= _ONE_SIDE else "right_eye"
            # Only its own side: many authors' winks also squint the other eye a little, and a
            # pose's one-eye closure must not move the other eye.
            x = model.positions[cand.indices, 0]
            mine = x > cx if role == "left_eye" else x <= cx
            bound = RoleMorph(role, cand.name, cand.indices[mine], cand.offsets[mine], "geometry")
            sides = [(role, bound)]
            how = "wink"
        else:
            sides = [(role, _split_blink(model, cand, role, cx)) for role in EYE_ROLES]
            how = "split"
        for role, bound in sides:
            side = 1 if role == "left_eye" else -1
            shape = closures.measure(lids, cand.name, how, bound.indices, bound.offsets, side, cx)
            options[role].append((shape, bound, cand.index))
    out = {}
    for role in EYE_ROLES:
        travel = {id(b): float(-b.offsets[:, 1].min(initial=0.0)) for _, b, _ in options[role]}
        furthest = max(travel.values(), default=0.0)
        closing = [o for o in options[role] if travel[id(o[1])] >= _CLOSES * furthest]
        out[role] = sorted(closing, key=_preference)
    return out


def _preference(option: tuple[ClosureCandidate, RoleMorph, int]) -> tuple:
    """Most neutral first; a one-eye morph wins over half a blink within 0.02 of its score."""
    shape, _, index = option
    return (shape.score + (0.0 if shape.how == "wink" else 0.02), index)


def _fmt(value: float | None) -> str:
    return "unmeasured" if value is None else f"{value:+.3f}"


def _reason(chosen: ClosureCandidate, scores: list[ClosureCandidate]) -> str:
    kind = "smile" if chosen.smile else "neutral"
    text = f"{kind} lid (arch {_fmt(chosen.arch)}, score {chosen.score:+.3f})"
    others = [c for c in scores if c is not chosen]
    if others:
        text += "; over " + ", ".join(
            f"{c.morph}{' (half)' if c.how == 'split' else ''}: "
            f"{'smile' if c.smile else 'neutral'} {c.score:+.3f}"
            for c in others
        )
    return text


def _split_blink(model: Model, blink: _Candidate, role: str, cx: float) -> RoleMorph:
    """One side of a both-eyes blink: the moved vertices on that side of the face."""
    x = model.positions[blink.indices, 0]
    keep = x > cx if role == "left_eye" else x <= cx
    return RoleMorph(role, blink.name, blink.indices[keep], blink.offsets[keep], how="split")


def _assign_mouth(
    model: Model,
    candidates: dict[int, _Candidate],
    cx: float,
    overrides: FaceOverrides,
    roles: FaceRoles,
) -> None:
    forced = overrides.morph_for("mouth")
    if forced is not None:
        bound = _bind_override(model, "mouth", forced, cx, roles.problems)
        if bound is not None:
            roles.morphs["mouth"] = bound
        return
    options = mouth_openers(model, candidates, roles)
    if not options:
        roles.problems.append("no morph opens the mouth (あ)")
        return
    cand = min(options, key=lambda c: (mouth_rank(c.name), c.index))
    roles.morphs["mouth"] = RoleMorph("mouth", cand.name, cand.indices, cand.offsets)


def mouth_openers(
    model: Model, candidates: dict[int, _Candidate], roles: FaceRoles
) -> list[_Candidate]:
    """The candidates named like あ that lie below the eyes bound in `roles`."""
    eye_y = _eye_level(model, roles)
    options = []
    for cand in candidates.values():
        if not is_mouth_open(cand.name):
            continue
        if eye_y is not None and cand.centre[1] >= eye_y:
            continue  # a mouth sits below the eyes: this is something else sharing the name
        options.append(cand)
    return options


def _motion_named(name: str) -> bool:
    """What a motion's morphs are looked at as: detection's names and smile closures (笑い)."""
    return is_closure(name) or is_mouth_open(name)


def face_roles_of_morphs(model: Model, roles: FaceRoles) -> dict[str, set[str]]:
    """Model morph name → the face roles it serves (`poses.roles.FACE_ROLES`), by what the face
    finder measures, whatever the morph the roles chose for rendering.

    A morph named like an eye closure (or a smile closure: 笑い) that closes an eye serves that
    eye's role, `left_eye_happy`/`right_eye_happy` when its lid is a smile (`closures`); a both-
    eyes one (まばたき) serves both eyes. A morph named like あ below the eyes serves `mouth`.
    The morphs `roles` hold (overrides included) serve their role as well."""
    out: dict[str, set[str]] = {}
    for role, bound in roles.morphs.items():
        out.setdefault(bound.morph, set()).add(role)
    if len(model.positions) == 0:
        return out
    candidates = _movable_morphs(model, _motion_named)
    cx = _face_centre_x(model, roles.head)
    for role, found in eye_closures(model, candidates, cx, is_closure).items():
        for shape, _, index in found:
            served = HAPPY_ROLES[role] if shape.smile else role
            out.setdefault(model.morphs[index].name, set()).add(served)
    for cand in mouth_openers(model, candidates, roles):
        out.setdefault(cand.name, set()).add("mouth")
    return out


def _eye_level(model: Model, roles: FaceRoles) -> float | None:
    """The y of the lowest eye centre, or None before any eye is bound."""
    centres = [eye_centre(model, roles, r)[1] for r in EYE_ROLES if r in roles.morphs]
    return min(centres) if centres else None


def eye_centre(model: Model, roles: FaceRoles, role: str) -> np.ndarray:
    """The centre of the eye of `role`: its anchor (`eye_anchor`), else its morph's centre."""
    anchor = roles.eye_anchors.get(role)
    return anchor if anchor is not None else morph_centre(model, roles.morphs[role])


def morph_centre(model: Model, morph: RoleMorph) -> np.ndarray:
    """Displacement-weighted rest position of the vertices a role morph moves."""
    if len(morph.indices) == 0:
        return np.zeros(3)
    weights = np.linalg.norm(morph.offsets, axis=1) + 1e-12
    return (model.positions[morph.indices] * weights[:, None]).sum(0) / weights.sum()


def _bind_override(
    model: Model, role: str, spec: str, cx: float, problems: list[str]
) -> RoleMorph | None:
    """An override names a morph, optionally with `@left`/`@right` to take one side of it."""
    name, _, side = spec.partition("@")
    index = model.morph_index(name)
    if index < 0:
        problems.append(f"override names morph {name!r} for {role}, which the model lacks")
        return None
    indices, offsets = model.vertex_offsets(index)
    if side:
        x = model.positions[indices, 0]
        keep = x > cx if side.strip().lower() == "left" else x <= cx
        indices, offsets = indices[keep], offsets[keep]
    return RoleMorph(role, name, indices, offsets, how="override")
