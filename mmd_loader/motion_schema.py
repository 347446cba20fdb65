"""A motion (VMD/VPD) as a pose sequence of a schema, on one model: what each track drives.

**Morphs**, by what each one does in the model, whatever its name. A motion's morph track names
a model morph (the 15 bytes a VMD keeps, as MMD matches them; else after the name folding
schemas use, so ウインク reaches ウィンク; else the model's side-named variants of it, so a
motion's 笑い reaches a model's 笑いL and 笑いR). That morph then drives:

- the closure parameters of the eyes the face finder measures it closing
  (`mmd_loader.face.face_roles_of_morphs`: a both-eyes まばたき drives both sides, a wink the side
  its vertices are on, whatever its name says), whether or not it is the morph the roles chose
  for rendering. A smile closure (its lid arches, as 笑い or the あにまさ family's ウィンク)
  drives the `*_eye_happy` role's parameters (THA3's `eye_happy_wink`); a schema without
  them (tha1) gets it on the plain closure, unless a parameter names the morph itself (tha2's
  `eye_happy`);
- `mouth` for the morphs named like あ below the eyes (and ARKit's jawOpen);
- every parameter whose schema `morphs:` list names it (after folding; side-named variants
  too), on the side(s) its vertices move: a one-sided morph serves only its side, a both-sided
  one both halves. ARKit names ("perfect sync": browInnerUp, mouthSmileLeft, eyeWideRight, …)
  are in the schemas' lists, so geometry decides their sides as well.

Several morphs driving one parameter add up (まばたき 0.6 and a wink 0.6 close that eye 1.2),
and the sum is clipped to the range (counted as any clipping is). A motion morph that drives
nothing, or that the model lacks, is listed once (`MotionReport.unused`).

**Bones.** A rotation parameter follows the motion when each of its bones turns about one axis
by one angle (head_x, head_y, neck_z, body_y, body_z, the irises; THA3's breathing moves four
bones at once, is not a rotation of any, and stays at rest). A bone's track is the one named
like the bone (bytes, as MMD matches), else, for a bone found by role (a head named `head`),
the track of MMD's standard name for that role (頭, 首, 上半身, 上半身2, 両目, 左目, 右目).
Motions are in MMD's left-handed frame; quaternions are converted as the model loader converts
them ((x, y, z, w) → (-x, -y, z, w)), and a parameter's value is the bone's angle about its axis
(degrees, in the renderer's Euler order Ry · Rx · Rz) over the schema's degrees.

The bones on the head's chain that the schema turns (tha1: 首 then 頭; tha3: 上半身, 首, 頭) are
taken from the top: each takes the rotation handed down to it times its own track (and the
tracks of bones between it and the previous one, 上半身2 for 首), keeps the axes the schema turns
it about, and hands the rest down to the next, so the face keeps the orientation the motion gives
it (the neck's nod goes to the head's head_x; only what the last bone cannot take is lost:
tha1's 頭 roll). Other bones (the eyes) take their own track and their append parent's (両目,
times the append ratio), as MMD turns them. What exceeds a range is clipped and counted.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmd_loader.body import find_body_bones
from mmd_loader.errors import MotionLoadError
from mmd_loader.face import face_roles_of_morphs
from mmd_loader.keyframes import (
    euler_angles,
    euler_matrices,
    quaternion_matrices,
    quaternion_power,
    sample_rotation,
    sample_weight,
)
from mmd_loader.model import Model
from mmd_loader.morph_names import fold, morph_table
from mmd_loader.motion import Motion
from mmd_loader.roles import HAPPY_ROLES, FaceRoles
from mmd_loader.sides import face_centre_x, sides_of
from poses.schema import AXES, Parameter, Schema
from poses.sequence import Frame

MMD_FPS = 30.0
MAX_FPS = 240.0
MAX_MOTION_FRAMES = 3 * 3600 * 30  # 3 hours at MMD's 30 frames a second
CHUNK_FRAMES = 4096  # rows converted at once (memory stays flat for any length)
# MMD's names for the bones a schema turns by role (what a motion made for MMD's standard
# bones calls them, whatever the model calls its own).
STANDARD_BONES = {
    "head": "頭",
    "neck": "首",
    "upper_body": "上半身",
    "chest": "上半身2",
    "both_eyes": "両目",
    "left_eye_bone": "左目",
    "right_eye_bone": "右目",
    "left_shoulder": "左肩",
    "right_shoulder": "右肩",
    "left_arm": "左腕",
    "right_arm": "右腕",
}
_IDENTITY = np.eye(3)


@dataclass(frozen=True)
class RotationDrive:
    """A rotation parameter the motion drives: each (bone index, axis, degrees)."""

    parameter: str
    targets: tuple[tuple[int, int, float], ...]


@dataclass
class MotionMapping:
    """How motions drive `schema` on one model (build once per model, convert any motion)."""

    schema: Schema
    model: Model
    morphs: dict[str, list[str]]  # model morph name → the parameters it drives
    morph_how: dict[str, str]  # model morph name → why (for `describe`)
    rotations: list[RotationDrive]
    chain: list[tuple[int, list[int]]]  # (driven bone, the bones whose tracks it takes)
    own: list[int]  # driven bones off the chain
    axes: dict[int, tuple[int, ...]]  # driven bone → the axes the schema turns it about
    bone_roles: dict[str, int]
    still: list[str] = field(default_factory=list)  # rotation parameters no motion drives

    @classmethod
    def build(cls, schema: Schema, model: Model, roles: FaceRoles) -> MotionMapping:
        morphs, how = _morph_drives(schema, model, roles)
        bone_roles = {"head": roles.head, "neck": roles.neck, **find_body_bones(model, roles)}
        rotations, still = _rotation_drives(schema, model, bone_roles)
        axes: dict[int, set[int]] = {}
        for drive in rotations:
            for bone, axis, _ in drive.targets:
                axes.setdefault(bone, set()).add(axis)
        chain, own = _chain(model, roles.head, set(axes))
        return cls(
            schema,
            model,
            morphs,
            how,
            rotations,
            chain,
            own,
            {b: tuple(sorted(a)) for b, a in axes.items()},
            bone_roles,
            still,
        )

    def describe(self) -> dict[str, list[str]]:
        """Parameter → what drives it (model morphs with why, bones with axes)."""
        out: dict[str, list[str]] = {p.name: [] for p in self.schema.parameters}
        for morph, params in self.morphs.items():
            for p in params:
                out[p].append(f"{morph} ({self.morph_how[morph]})")
        for drive in self.rotations:
            out[drive.parameter] += [
                f"{self.model.bones[b].name} {'xyz'[a]} {d:g}°" for b, a, d in drive.targets
            ]
        return out


def _morph_drives(
    schema: Schema, model: Model, roles: FaceRoles
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Model morph → parameters, and why, in schema order."""
    by_role: dict[str, list[str]] = {}
    for p in schema.of_kind("morph"):
        for role in p.roles:
            by_role.setdefault(role, []).append(p.name)
    named = _named_drives(schema, model, roles)
    drives: dict[str, list[str]] = {}
    how: dict[str, list[str]] = {}
    for morph, served in face_roles_of_morphs(model, roles).items():
        for role in sorted(served):
            params = by_role.get(role, [])
            happy = role in HAPPY_ROLES.values()
            if happy and not params and morph not in named:  # no smile parameter (tha1)
                params = by_role.get(next(k for k, v in HAPPY_ROLES.items() if v == role), [])
            if params:
                drives.setdefault(morph, []).extend(params)
                how.setdefault(morph, []).append(_ROLE_WORDS.get(role, role))
    for morph, params in named.items():
        drives.setdefault(morph, []).extend(params)
        how.setdefault(morph, []).append("by name")
    order = {p.name: i for i, p in enumerate(schema.parameters)}
    out = {m: sorted(set(ps), key=order.__getitem__) for m, ps in drives.items()}
    return out, {m: ", ".join(dict.fromkeys(w)) for m, w in how.items()}


_ROLE_WORDS = {
    "left_eye": "closes the left eye",
    "right_eye": "closes the right eye",
    "left_eye_happy": "smile-closes the left eye",
    "right_eye_happy": "smile-closes the right eye",
    "mouth": "opens the mouth",
}


def _named_drives(schema: Schema, model: Model, roles: FaceRoles) -> dict[str, list[str]]:
    """Model morph → the parameters whose `morphs:` names it, on the sides it moves."""
    table = morph_table(model)
    cx = face_centre_x(model, roles.head)
    sides: dict[str, str | None] = {}
    out: dict[str, list[str]] = {}
    for p in schema.of_kind("morph"):
        for wanted in p.morphs:
            for name in table.get(fold(wanted), []):
                if p.side is not None:
                    if name not in sides:
                        indices, offsets = model.vertex_offsets(model.morph_index(name))
                        sides[name] = sides_of(model, indices, offsets, cx)
                    if sides[name] not in (p.side, "both"):
                        continue
                if p.name not in out.setdefault(name, []):
                    out[name].append(p.name)
    return out


def _rotation_drives(
    schema: Schema, model: Model, bone_roles: dict[str, int]
) -> tuple[list[RotationDrive], list[str]]:
    """The rotation parameters a motion can drive on this model, and those it cannot."""
    drives, still = [], []
    for p in schema.of_kind("rotation"):
        if not _one_turn(p):
            still.append(p.name)
            continue
        targets = []
        for t in p.targets:
            bone = bone_roles.get(t.bone, -1) if t.bone in bone_roles else model.bone_index(t.bone)
            if bone < 0:
                if t.optional:
                    continue
                targets = []
                break
            targets.append((bone, AXES[t.axis], t.degrees))
        if targets and all(d != 0 for _, _, d in targets):
            drives.append(RotationDrive(p.name, tuple(targets)))
        else:
            still.append(p.name)
    return drives, still


def _one_turn(p: Parameter) -> bool:
    """Whether every bone of `p` turns about one axis by one angle (a rotation of those bones,
    not a composite such as breathing)."""
    return len({(t.axis, t.degrees) for t in p.targets}) == 1


def _chain(
    model: Model, head: int, driven: set[int]
) -> tuple[list[tuple[int, list[int]]], list[int]]:
    """The driven bones on the head's chain, top first, each with the bones whose tracks it
    takes (itself and those between it and the driven bone above; the first takes its own);
    and the driven bones off the chain."""
    path: list[int] = []
    bone, seen = head, set()
    while 0 <= bone < len(model.bones) and bone not in seen:
        seen.add(bone)
        path.append(bone)
        bone = model.bones[bone].parent
    path.reverse()  # root first
    chain: list[tuple[int, list[int]]] = []
    pending: list[int] = []
    for bone in path:
        if chain:
            pending.append(bone)
        if bone in driven:
            chain.append((bone, pending if chain else [bone]))
            pending = []
    on_chain = {b for b, _ in chain}
    return chain, sorted(driven - on_chain)


# --- one motion on one mapping ---------------------------------------------------------------


@dataclass
class MotionReport:
    """What a conversion did: the motion's morphs that reach no parameter (and those the model
    lacks), and per parameter the frames clipped to its range and the furthest value."""

    unused: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    clipped: dict[str, tuple[int, float]] = field(default_factory=dict)
    drives: dict[str, list[str]] = field(default_factory=dict)  # parameter → motion tracks

    def count_clipped(self, names: list[str], values: np.ndarray, ranges) -> np.ndarray:
        """Clip `values` (n, k) to the ranges in place and count what was outside."""
        for k, name in enumerate(names):
            lo, hi = ranges[name]
            column = values[:, k]
            outside = (column < lo) | (column > hi)
            if outside.any():
                count, worst = self.clipped.get(name, (0, 0.0))
                far = column[outside][np.argmax(np.abs(column[outside]))]
                worst = far if abs(far) > abs(worst) else worst
                self.clipped[name] = (count + int(outside.sum()), float(worst))
                np.clip(column, lo, hi, out=column)
        return values

    def lines(self) -> list[str]:
        """One line each: the morphs reaching no parameter, what was clipped."""
        out = []
        if self.unused:
            missing = set(self.missing)
            names = [f"{n} (not in the model)" if n in missing else n for n in self.unused]
            out.append(f"morphs reaching no parameter: {', '.join(names)}")
        if self.clipped:
            parts = [f"{n} {c} frames (up to {w:+.2f})" for n, (c, w) in self.clipped.items()]
            out.append(f"clipped to the range: {', '.join(parts)}")
        return out


class MotionConverter:
    """One motion's tracks resolved against one mapping; `values(frames)` samples it."""

    def __init__(self, mapping: MotionMapping, motion: Motion) -> None:
        self.mapping = mapping
        self.motion = motion
        self.names = mapping.schema.names
        self.column = {n: k for k, n in enumerate(self.names)}
        self.report = MotionReport()
        self._morphs = self._resolve_morphs()
        self._bones = self._resolve_bones()

    def _resolve_morphs(self) -> list[tuple[int, list[int]]]:
        """(morph track, the columns it adds to) for every track that drives something."""
        model, motion, mapping = self.mapping.model, self.motion, self.mapping
        by_key = _stored_keys([m.name for m in model.morphs], motion.name_limit)
        by_fold: dict[str, str] = {}
        for m in model.morphs:
            by_fold.setdefault(fold(m.name), m.name)
        variants = morph_table(model)
        out = []
        for track, (name, raw) in enumerate(zip(motion.morph_names, motion.morph_raw, strict=True)):
            index = by_key.get(raw)
            if index is not None:
                morphs = [model.morphs[index].name]
            elif fold(name) in by_fold:
                morphs = [by_fold[fold(name)]]
            else:  # the model splits it by side (a motion's 笑い: the model's 笑いL and 笑いR)
                morphs = variants.get(fold(name), [])
            params = list(dict.fromkeys(p for m in morphs for p in mapping.morphs.get(m, [])))
            if not params:
                self.report.unused.append(name)
                if not morphs:
                    self.report.missing.append(name)
                continue
            for p in params:
                self.report.drives.setdefault(p, []).append(name)
            out.append((track, [self.column[p] for p in params]))
        return out

    def _resolve_bones(self) -> dict[int, int]:
        """Model bone → motion bone track, for the bones the mapping turns or reads."""
        model, motion, mapping = self.mapping.model, self.motion, self.mapping
        by_key = _stored_keys(motion.bone_raw, None, raw=True)
        wanted = {b for _, bones in mapping.chain for b in bones} | set(mapping.own)
        for b in mapping.own:
            bone = model.bones[b]
            if bone.appends_rotation:
                wanted.add(bone.append_parent)
        role_of = {i: r for r, i in mapping.bone_roles.items() if i >= 0}
        names = {b.name for b in model.bones}
        out = {}
        for b in sorted(wanted):
            key = _stored(model.bones[b].name, motion.name_limit)
            track = by_key.get(key) if key is not None else None
            standard = STANDARD_BONES.get(role_of.get(b, ""))
            if track is None and standard is not None and standard not in names:
                track = by_key.get(_stored(standard, motion.name_limit))
            if track is not None:
                out[b] = track
        for drive in mapping.rotations:
            tracks = sorted({motion.bone_names[out[b]] for b, _, _ in drive.targets if b in out})
            self.report.drives.setdefault(drive.parameter, []).extend(tracks)
        return out

    def values(self, frames: np.ndarray) -> np.ndarray:
        """The schema's values (n, k) at MMD `frames` (floats), before clipping: parameters the
        motion does not drive are at rest."""
        frames = np.asarray(frames, np.float64).reshape(-1)
        schema = self.mapping.schema
        out = np.tile([p.neutral for p in schema.parameters], (len(frames), 1))
        driven = {c for _, cols in self._morphs for c in cols}
        for c in driven:
            out[:, c] = 0.0
        for track, columns in self._morphs:
            weight = sample_weight(self.motion.morph_track(track), frames)
            for c in columns:
                out[:, c] += weight
        angles = self._angles(frames)
        for drive in self.mapping.rotations:
            parts = [angles[b][:, axis] / degrees for b, axis, degrees in drive.targets]
            out[:, self.column[drive.parameter]] = np.mean(parts, axis=0)
        return out

    def _rotation(self, bone: int, frames: np.ndarray) -> np.ndarray:
        """The bone's own track as (n, 3, 3) matrices (the identity without one)."""
        track = self._bones.get(bone)
        if track is None:
            return np.broadcast_to(_IDENTITY, (len(frames), 3, 3))
        return quaternion_matrices(sample_rotation(self.motion.bone_track(track), frames))

    def _angles(self, frames: np.ndarray) -> dict[int, np.ndarray]:
        """Driven bone → (n, 3) Euler angles in degrees (see the module docstring)."""
        model, mapping = self.mapping.model, self.mapping
        out: dict[int, np.ndarray] = {}
        handed = np.broadcast_to(_IDENTITY, (len(frames), 3, 3))
        for bone, bones in mapping.chain:
            turn = handed
            for b in bones:
                turn = turn @ self._rotation(b, frames)
            angles = euler_angles(turn)
            kept = np.zeros_like(angles)
            axes = list(mapping.axes[bone])
            kept[:, axes] = angles[:, axes]
            handed = np.swapaxes(euler_matrices(kept), 1, 2) @ turn
            out[bone] = angles
        for bone in mapping.own:
            turn = self._rotation(bone, frames)
            info = model.bones[bone]
            if info.appends_rotation and info.append_parent in self._bones:
                track = self.motion.bone_track(self._bones[info.append_parent])
                share = quaternion_power(sample_rotation(track, frames), info.append_ratio)
                turn = turn @ quaternion_matrices(share)
            out[bone] = euler_angles(turn)
        return out


def _stored(name: str, limit: int | None) -> bytes | None:
    """A name as a motion stores it: cp932 (UTF-8 when cp932 cannot write it), cut at `limit`
    bytes."""
    try:
        data = name.encode("cp932")
    except UnicodeEncodeError:
        data = name.encode("utf-8")
    return data if limit is None else data[:limit]


def _stored_keys(names: list, limit: int | None, raw: bool = False) -> dict[bytes, int]:
    """Stored name → first index with it (file order)."""
    out: dict[bytes, int] = {}
    for i, name in enumerate(names):
        key = name if raw else _stored(name, limit)
        if key is not None:
            out.setdefault(key, i)
    return out


# --- sequences -------------------------------------------------------------------------------


def check_fps(fps: float) -> float:
    fps = float(fps)
    if not (math.isfinite(fps) and 0.0 < fps <= MAX_FPS):
        raise ValueError(f"--fps must be in (0, {MAX_FPS:g}], not {fps:g}")
    return fps


def motion_problem(motion: Motion) -> str | None:
    """Why a motion cannot become poses (None when it can): no bone or morph keyframe (a
    camera or light motion), or longer than thagen converts."""
    if not len(motion.bones.frame) and not len(motion.morphs.frame):
        return "no bone or morph keyframes (a camera or light motion?)"
    if motion.last_frame > MAX_MOTION_FRAMES:
        return (
            f"its last keyframe is at frame {motion.last_frame} "
            f"({motion.last_frame / MMD_FPS / 3600:.1f} hours), more than thagen converts "
            f"({MAX_MOTION_FRAMES} frames, {MAX_MOTION_FRAMES / MMD_FPS / 3600:g} hours)"
        )
    return None


def row_count(motion: Motion, fps: float) -> int:
    """Rows of a sequence at `fps` covering frames 0..last: row i is time i / fps."""
    problem = motion_problem(motion)
    if problem is not None:
        raise MotionLoadError(motion.path, problem)
    return math.floor(motion.last_frame * fps / MMD_FPS + 1e-9) + 1


class MotionSequence:
    """A motion sampled at `fps` as a pose sequence of the mapping's schema: iterate for
    `poses.sequence.Frame`s (converted `CHUNK_FRAMES` at a time), or `chunks()` for arrays.
    Values are clipped to the ranges; `report` fills as chunks are converted."""

    def __init__(self, mapping: MotionMapping, motion: Motion, fps: float = MMD_FPS) -> None:
        self.fps = check_fps(fps)
        self.converter = MotionConverter(mapping, motion)
        self.motion = motion
        self.names = tuple(mapping.schema.names)
        self.rows = row_count(motion, self.fps)

    @property
    def report(self) -> MotionReport:
        return self.converter.report

    def __len__(self) -> int:
        return self.rows

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(times (n,), values (n, k)) in order, clipped."""
        ranges = self.converter.mapping.schema.ranges
        for start in range(0, self.rows, CHUNK_FRAMES):
            index = np.arange(start, min(start + CHUNK_FRAMES, self.rows), dtype=np.float64)
            values = self.converter.values(index * (MMD_FPS / self.fps))
            self.report.count_clipped(list(self.names), values, ranges)
            yield index / self.fps, values

    def __iter__(self) -> Iterator[Frame]:
        row = 0
        for times, values in self.chunks():
            for t, v in zip(times, values, strict=True):
                yield Frame(row, float(t), True, dict(zip(self.names, v.tolist(), strict=True)))
                row += 1


def load_mapped(
    motion_path: str | Path,
    model_path: str | Path,
    schema: Schema,
    fps: float = MMD_FPS,
    overrides_table=None,
) -> MotionSequence:
    """`motion_path` on the model at `model_path` (its sidecar and `overrides_table` honoured)
    as a `MotionSequence` of `schema`; raises when the model is not usable."""
    from mmd_loader.face import detect_face
    from mmd_loader.loader import load
    from mmd_loader.motion import load_motion
    from mmd_loader.overrides import overrides_for

    check_fps(fps)
    motion = load_motion(motion_path)
    model = load(model_path)
    roles = detect_face(model, overrides_for(Path(model_path), overrides_table))
    if roles.problems:
        raise ValueError(f"{model_path}: not usable:\n  " + "\n  ".join(roles.problems))
    return MotionSequence(MotionMapping.build(schema, model, roles), motion, fps)
