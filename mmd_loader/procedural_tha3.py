"""What procedural characters need for THA3's 45-parameter pose (`poses/schemas/tha3.yaml`).

Added to every character by `mmd_loader.procedural.build_character`:
- **Eyes that turn.** Each iris is a spherical cap centred on its eye bone (左目/右目, which
  follow 両目 through their append), in front of a white patch lying on the face, so turning the
  bone slides the iris over the white without crossing any other layer. A skin-textured socket
  ring round the eye opening, above the iris, hides it outside the opening, so iris rotation
  changes pixels inside the eyes only; 瞳小 shrinks the iris.
- **The THA3 morphs**, each under a name drawn from the spellings real models use (Japanese,
  romaji, English, katakana, half-width), and for about a third of the shapes written as two
  one-sided morphs whose side word is as likely wrong as right (geometry must decide): the
  eyebrow shapes (困る, 怒り, 下, にこり, 真面目; 上 is the base character's), the eye shapes
  (びっくり, なごみ, じと目, 下瞼上げ, and MMD's both-eyes smile closure 笑い, which tha3 leaves to
  the shape test of mmd_loader.face), the mouth vowels (う, え, お, ▲), the corners (口角上げ,
  口角下げ) and a one-sided にやり smirk. The mouth line is geometry so the corners move.
- **An upper body**: 上半身 at the waist, 上半身2 at the chest (the neck's parent), shoulders 左肩/
  右肩 and arms 左腕/右腕 hanging at the sides, the torso continued to below the THA3 frame, and a
  tie down the front, so a turn of the torso shows which way it went.

`tha3_spec(seed)` is the truth the tests check against (names, which shapes are pairs and which
pair member really moves which side).

Everything is in the FILE's frame (MMD's left-handed one): y up, the character faces -z, its own
left is +x.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from mmd_loader.pmx_writer import PmxBone, PmxVertexMorph
from mmd_loader.procedural import (
    _BROW_LIFT,
    _HEAD,
    _LASH_LIFT,
    _LEFT_EYE,
    _LID_LIFT,
    _MOUTH_LIFT,
    _NECK,
    _RIGHT_EYE,
    _UPPER,
    CharacterSpec,
    _blend,
    _downsample,
    _eye_bottom,
    _eye_closed,
    _eye_top,
    _Face,
    _face_uv,
    _grid_triangles,
    _Mesh,
    _normalize,
    _pixels,
    _tube,
    head_shape,
)

# Bone indices after the base character's seven (see procedural._bones).
CHEST, LEFT_SHOULDER, LEFT_ARM, RIGHT_SHOULDER, RIGHT_ARM = 7, 8, 9, 10, 11
BOTH_EYES = 4
EYE_RADIUS = 0.6  # the iris sphere's radius: its travel is R·tan(angle) (12°: 0.6 eye widths)
IRIS_LIFT = 0.045  # the iris's centre above the skin; the socket ring and lids sit above it
WHITE_LIFT = 0.005  # the white of the eye, on the face below the iris
RING_LIFT = 0.055

# Spellings a shape is written under (every one matches tha3.yaml's name lists after folding).
NAMES: dict[str, tuple[str, ...]] = {
    "troubled": ("困る", "困り眉", "komaru", "Troubled"),
    "angry": ("怒り", "怒り眉", "ikari", "Angry"),
    "lowered": ("下", "眉下", "brow down"),
    "happy": ("にこり", "ニコリ", "nikori"),
    "serious": ("真面目", "まじめ", "majime", "Serious"),
    "smile_eyes": ("笑い", "ﾜﾗｲ", "warai"),
    "surprised": ("びっくり", "ﾋﾞｯｸﾘ", "bikkuri", "Surprised"),
    "relaxed": ("なごみ", "ナゴミ", "nagomi"),
    "unimpressed": ("じと目", "ジト目", "jitome"),
    "lower_lid": ("下瞼上げ", "下まぶた上げ", "lower eyelid up"),
    "iris_small": ("瞳小", "瞳小さく", "iris small"),
    "uuu": ("う", "ウ", "u"),
    "eee": ("え", "ｴ", "e"),
    "ooo": ("お", "オ", "o"),
    "delta": ("▲", "△", "Δ"),
    "raised_corner": ("口角上げ", "mouth corner up"),
    "lowered_corner": ("口角下げ", "mouth corner down"),
    "smirk": ("にやり", "ニヤリ", "smirk"),
}
# Shapes that may be written as a left and a right morph (the others are always one morph).
PAIRABLE = (
    "troubled",
    "angry",
    "lowered",
    "happy",
    "serious",
    "smile_eyes",
    "surprised",
    "relaxed",
    "unimpressed",
    "lower_lid",
    "iris_small",
    "raised_corner",
    "lowered_corner",
)
PANELS = {"eyebrow": 1, "eye": 2, "mouth": 3}
SHAPE_PANEL = {
    **dict.fromkeys(("troubled", "angry", "lowered", "happy", "serious"), "eyebrow"),
    **dict.fromkeys(
        ("smile_eyes", "surprised", "relaxed", "unimpressed", "lower_lid", "iris_small"), "eye"
    ),
    **dict.fromkeys(
        ("uuu", "eee", "ooo", "delta", "raised_corner", "lowered_corner", "smirk"), "mouth"
    ),
}


@dataclass(frozen=True)
class Tha3Spec:
    """What the seed decides about a character's THA3 parts (the tests' truth).

    `names[shape]`: the morph name of a one-morph shape. `pairs[shape]`: (name of the morph that
    moves the character's LEFT side, name of the one moving its right) for a shape written as
    two one-sided morphs; their side words may be swapped (`misnamed`)."""

    seed: int
    names: dict[str, str]
    pairs: dict[str, tuple[str, str]]
    misnamed: tuple[str, ...]
    smirk_side: int  # +1: にやり raises the character's left corner, -1 its right


def tha3_spec(seed: int) -> Tha3Spec:
    """The THA3 parts a seed stands for (its own random stream: the base character's draws are
    untouched)."""
    rng = np.random.default_rng([seed, 0x7A3])
    names, pairs, misnamed = {}, {}, []
    for shape, spellings in NAMES.items():
        name = spellings[int(rng.integers(len(spellings)))]
        if shape in PAIRABLE and rng.random() < 0.35:
            latin = name.isascii()
            words = ("_L", "_R") if latin else (("左", "右") if rng.random() < 0.5 else ("L", "R"))
            swap = bool(rng.random() < 0.5)
            left, right = (words[1], words[0]) if swap else words
            pairs[shape] = (name + left, name + right)
            if swap:
                misnamed.append(shape)
        else:
            names[shape] = name
    return Tha3Spec(seed, names, pairs, tuple(misnamed), 1 if rng.random() < 0.5 else -1)


# ----------------------------------------------------------------------------------- the eyes


def _eye_frame(spec: CharacterSpec, side: int):
    """(surface point, outward normal, +x tangent, +y tangent) at the eye's centre."""
    shape = head_shape(spec)
    point, normal = shape.on_face(np.array(side * spec.eye_x), np.array(spec.eye_y), 0.0)
    point, normal = point.reshape(3), normal.reshape(3)
    ex = _normalize(np.array([1.0, 0.0, 0.0]) - normal * normal[0])
    ey = np.array([0.0, 1.0, 0.0]) - normal * normal[1] - ex * ex[1]
    return point, normal, ex, _normalize(ey)


def eye_pivot(spec: CharacterSpec, side: int) -> np.ndarray:
    """The eye bone's position: the centre of the iris's sphere, EYE_RADIUS behind the iris."""
    point, normal, _, _ = _eye_frame(spec, side)
    return point + normal * (IRIS_LIFT - EYE_RADIUS)


def _cap(spec: CharacterSpec, side: int, radius: float, tx: np.ndarray, ty: np.ndarray):
    """Points and normals of the sphere (centre = the eye pivot) towards tangents (tx, ty)."""
    _, normal, ex, ey = _eye_frame(spec, side)
    d = _normalize(normal + tx[..., None] * ex + ty[..., None] * ey)
    return eye_pivot(spec, side) + radius * d, d


def _iris_half(spec: CharacterSpec) -> tuple[float, float]:
    """The iris's half-width and half-height in model units."""
    hx = spec.iris_size * spec.eye_half_width
    return hx, 1.3 * hx


class _Eyes:
    """Whites, irises and socket rings of both eyes, and what the eye-shape morphs move."""

    def __init__(self, spec: CharacterSpec, mesh: _Mesh) -> None:
        self.spec, self.mesh, self.shape = spec, mesh, head_shape(spec)
        self.iris: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.ring: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    def build(self) -> None:
        for side in (1, -1):
            self._white(side)
            self._iris(side)
            self._ring(side)

    def _white(self, side: int) -> None:
        """The white: a patch on the face covering the opening, however wide it opens."""
        s = self.spec
        xo, yn = np.meshgrid(np.linspace(-1.35, 1.35, 11), np.linspace(1.75, -1.45, 11))
        x = side * s.eye_x + side * xo * s.eye_half_width
        pos, nrm = self.shape.on_face(x, s.eye_y + yn * s.eye_half_height, WHITE_LIFT)
        uv = np.stack([(xo + 1.35) / 2.7, (1.75 - yn) / 3.2], -1)
        self.mesh.add("eyes", pos, nrm, uv, _grid_triangles(11, 11), _HEAD)

    def _iris(self, side: int) -> None:
        hx, hy = _iris_half(self.spec)
        radius = EYE_RADIUS
        u, v = np.meshgrid(np.linspace(-1.05, 1.05, 9), np.linspace(1.05, -1.05, 9))
        tx, ty = u * hx / radius, v * hy / radius
        pos, nrm = _cap(self.spec, side, radius, tx, ty)
        uv = np.stack([(0.5 if side > 0 else 0.0) + (u / 1.05 + 1) / 4, (1 - v / 1.05) / 2], -1)
        bone = _LEFT_EYE if side > 0 else _RIGHT_EYE
        ids = self.mesh.add("iris", pos, nrm, uv, _grid_triangles(9, 9), bone)
        self.iris[side] = (ids, tx, ty)

    def _ring(self, side: int) -> None:
        """Skin round the eye opening, above the iris: the opening's outline on the inside."""
        s, tilt = self.spec, self.spec.eye_tilt
        xo = np.linspace(-1.0, 1.0, 15)
        inner = np.concatenate(
            [
                np.stack([xo, _eye_top(xo, tilt)], -1),
                np.stack([xo, _eye_bottom(xo, tilt)], -1)[::-1],
            ]
        )
        inner = np.concatenate([inner, inner[:1]])  # closed: the seam is duplicated
        centre = np.array([0.0, 0.1])
        out = inner - centre
        out = out / np.linalg.norm(out, axis=1, keepdims=True)
        rows = np.array([0.0, 0.12, 0.35, 1.0])[:, None, None]
        local = inner[None] + rows * 1.25 * out[None]  # (4, 31, 2) in eye units
        x = side * s.eye_x + side * local[..., 0] * s.eye_half_width
        y = s.eye_y + local[..., 1] * s.eye_half_height
        pos, nrm = self.shape.on_face(x, y, RING_LIFT)
        ids = self.mesh.add("skin", pos, nrm, _face_uv(s, pos), _grid_triangles(4, 31), _HEAD)
        self.ring[side] = (ids.reshape(4, 31), local, x, y)

    # --- morphs -------------------------------------------------------------------------------

    def iris_small(self, side: int) -> tuple[np.ndarray, np.ndarray]:
        """瞳小 on one eye: the iris shrinks to 70 % about its centre, staying on its sphere."""
        ids, tx, ty = self.iris[side]
        radius = EYE_RADIUS
        rest, _ = _cap(self.spec, side, radius, tx, ty)
        small, _ = _cap(self.spec, side, radius, 0.7 * tx, 0.7 * ty)
        return ids, (small - rest).reshape(-1, 3)

    def ring_move(self, side: int, upper: bool, amount) -> tuple[np.ndarray, np.ndarray]:
        """The opening's upper (or lower) edge moved up by `amount(xo)` eye half-heights (xo
        from the inner to the outer corner); the next rows follow by a share that keeps them
        from crossing."""
        ids, local, x, y = self.ring[side]
        xo = np.clip(local[..., 0], -1, 1)
        half = local[..., 1] >= 0.1 if upper else local[..., 1] < 0.1
        share = np.array([1.0, 0.9, 0.0, 0.0])[:, None]  # the blush below stays put
        dy = amount(xo) * self.spec.eye_half_height * share * half
        moved, _ = self.shape.on_face(x, y + dy, RING_LIFT)
        rest, _ = self.shape.on_face(x, y, RING_LIFT)
        return ids.ravel(), (moved - rest).reshape(-1, 3)


# ---------------------------------------------------------------------------- morph helpers


def _positions(mesh: _Mesh) -> np.ndarray:
    return np.concatenate([c[0] for c in mesh.chunks])


def _eye_coords(spec: CharacterSpec, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(side, xo, yn) of points near an eye: the side (+1 left), inner → outer corner in eye
    half-widths, height in eye half-heights."""
    side = np.where(p[:, 0] > 0, 1, -1)
    xo = side * (p[:, 0] - side * spec.eye_x) / spec.eye_half_width
    yn = (p[:, 1] - spec.eye_y) / spec.eye_half_height
    return side, xo, yn


def _lid_morph(face: _Face, spec: CharacterSpec, rest: np.ndarray, target) -> dict[int, np.ndarray]:
    """A morph of the upper lids and lashes (the vertices まばたき moves): each moves by the
    share of its closing that brings the lid's edge to `target(xo)` (eye half-heights)."""
    table = face.morphs["まばたき"]
    ids = np.array(sorted(table))
    delta = np.array([table[i] for i in ids])
    _, xo, _ = _eye_coords(spec, rest[ids])
    top = _eye_top(xo, spec.eye_tilt) + 0.04
    closed = _eye_closed(xo, spec.eye_tilt)
    share = np.clip((top - target(np.clip(xo, -1, 1))) / (top - closed), 0.0, 1.0)
    return dict(zip(ids.tolist(), delta * share[:, None], strict=True))


def _lift_morph(
    spec: CharacterSpec, rest: np.ndarray, ids: np.ndarray, lift: float, dy
) -> dict[int, np.ndarray]:
    """Vertices of a face layer at `lift` moved up by dy(side, xo, yn) eye half-heights, along
    the face's surface (the offset between two points of the layer, so 0 where dy is 0)."""
    shape = head_shape(spec)
    p = rest[ids]
    side, xo, yn = _eye_coords(spec, p)
    step = dy(side, xo, yn) * spec.eye_half_height
    here, _ = shape.on_face(p[:, 0], p[:, 1], lift)
    there, _ = shape.on_face(p[:, 0], p[:, 1] + step, lift)
    return dict(zip(ids.tolist(), there - here, strict=True))


def _brow_morph(face: _Face, spec: CharacterSpec, rest: np.ndarray, dy) -> dict[int, np.ndarray]:
    ids = np.array(sorted(face.morphs["上"]))
    return _lift_morph(spec, rest, ids, _BROW_LIFT, lambda s, xo, yn: dy(xo))


# ------------------------------------------------------------------------------------ the mouth


class _Mouth:
    """The mouth line (geometry, so the corners can move) and the vowel and corner morphs of
    the mouth interior `procedural._Face.mouth` made."""

    def __init__(self, spec: CharacterSpec, mesh: _Mesh, face: _Face) -> None:
        self.spec, self.mesh, self.face, self.shape = spec, mesh, face, head_shape(spec)
        self.hw = face.mouth_half_width()
        self.open_h = min(1.15 * spec.eye_half_height, 0.8 * (spec.mouth_y - spec.chin_y))
        self.x = self.hw * np.linspace(-1, 1, 11)
        self.frac = np.linspace(0, 1, 4)[:, None]

    def line_y(self, x: np.ndarray) -> np.ndarray:
        return self.spec.mouth_y + 0.025 * (x / self.hw) ** 2

    def build(self) -> None:
        x = 0.8 * self.hw * np.linspace(-1, 1, 21)
        thick = 0.013 * (1 - (x / (0.8 * self.hw)) ** 4) + 0.002
        xx = np.broadcast_to(x, (2, 21))
        yy = self.line_y(x) + np.stack([-thick, thick])
        pos, nrm = self.shape.on_face(xx, yy, _MOUTH_LIFT + 0.003)
        uv = np.broadcast_to([0.5, 0.45], (2, 21, 2))
        self.line_ids = self.mesh.add("mouth", pos, nrm, uv, _grid_triangles(2, 21), _HEAD)
        self.line_x, self.line_dy = xx, yy - self.line_y(x)

    def _interior(self, sx, top, depth) -> tuple[np.ndarray, np.ndarray]:
        """Offsets of the interior (rows from its top edge down) to x → sx(x)·x, top edge at
        line + top(x), opened depth(x) below it."""
        xx = np.broadcast_to(self.x, (4, 11))
        rest, _ = self.shape.on_face(xx, np.broadcast_to(self.line_y(self.x), (4, 11)), _MOUTH_LIFT)
        y = self.line_y(self.x) + top(self.x) - self.frac * depth(self.x)
        moved, _ = self.shape.on_face(xx * sx(self.x), y, _MOUTH_LIFT)
        return self.face.mouth_ids, (moved - rest).reshape(-1, 3)

    def _line(self, sx, top) -> tuple[np.ndarray, np.ndarray]:
        x = self.line_x
        rest, _ = self.shape.on_face(x, self.line_y(x) + self.line_dy, _MOUTH_LIFT + 0.003)
        y = self.line_y(x) + top(x) + self.line_dy
        moved, _ = self.shape.on_face(x * sx(x), y, _MOUTH_LIFT + 0.003)
        return self.line_ids, (moved - rest).reshape(-1, 3)

    def shape_morph(self, sx, top, depth) -> list[tuple[np.ndarray, np.ndarray]]:
        return [self._interior(sx, top, depth), self._line(sx, top)]

    def vowels(self) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
        hw, h = self.hw, self.open_h
        one = lambda x: np.ones_like(x)  # noqa: E731
        zero = lambda x: np.zeros_like(x)  # noqa: E731

        def rounded(x, width):
            return np.sqrt(np.clip(1 - (x / (width * hw)) ** 2, 0, 1))

        return {
            "uuu": self.shape_morph(
                lambda x: 0.5 * one(x),
                lambda x: 0.06 * h * (1 - (x / hw) ** 2),
                lambda x: 0.4 * h * rounded(0.5 * x, 0.5),
            ),
            "eee": self.shape_morph(
                lambda x: 1.15 * one(x),
                zero,
                lambda x: 0.45 * h * np.sqrt(np.clip(1 - (x / hw) ** 4, 0, 1)),
            ),
            "ooo": self.shape_morph(
                lambda x: 0.72 * one(x),
                lambda x: 0.12 * h * (1 - (x / hw) ** 2),
                lambda x: 0.85 * h * rounded(0.72 * x, 0.72),
            ),
            "delta": self.shape_morph(
                lambda x: 0.8 * one(x),
                lambda x: 0.45 * h * np.clip(1 - np.abs(x) / hw, 0, 1),
                lambda x: 0.45 * h * np.clip(1 - np.abs(x) / hw, 0, 1) + 0.2 * h,
            ),
        }

    def corners(self, smirk_side: int) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
        hw, h = self.hw, self.open_h
        one = lambda x: np.ones_like(x)  # noqa: E731
        zero = lambda x: np.zeros_like(x)  # noqa: E731
        return {
            "raised_corner": self.shape_morph(
                lambda x: 1.05 * one(x), lambda x: 0.5 * h * (x / hw) ** 2, zero
            ),
            "lowered_corner": self.shape_morph(one, lambda x: -0.45 * h * (x / hw) ** 2, zero),
            "smirk": self.shape_morph(
                one, lambda x: 0.5 * h * np.clip(smirk_side * x / hw, 0, None) ** 2, zero
            ),
        }

    def widen_i(self) -> tuple[np.ndarray, np.ndarray]:
        """The line's part of い (the base character's い widens the interior by 1.3)."""
        return self._line(lambda x: 1.3 * np.ones_like(x), lambda x: np.zeros_like(x))


# ----------------------------------------------------------------------------------- the body


def _superellipse(y: float, hw: float, hd: float, n: int = 33) -> tuple[np.ndarray, np.ndarray]:
    """One ring of the torso (as procedural._body makes them) and its normals."""
    a = np.linspace(0, 2 * np.pi, n)
    c, s = np.sin(a), -np.cos(a)
    e = 0.6
    pos = np.stack(
        [
            hw * np.sign(c) * np.abs(c) ** e,
            np.full_like(a, y),
            0.15 + hd * np.sign(s) * np.abs(s) ** e,
        ],
        -1,
    )
    return pos, _normalize((pos - [0.0, 0.0, 0.15]) * [1, 0, 1])


def _body_weights(spec: CharacterSpec, pos: np.ndarray, shoulder_y: float):
    """(b0, b1, w0) of torso points: 上半身2 above the waist blend, the shoulders' 肩 outwards
    at the top, 上半身 below."""
    y, ax = pos[:, 1], np.abs(pos[:, 0])
    chest = np.clip((y - (shoulder_y - 4.0)) / 1.6, 0, 1)
    reach = max(0.7 * spec.shoulder_width - spec.neck_radius, 0.2)
    shoulder = np.clip((ax - (spec.neck_radius + 0.35)) / reach, 0, 1)
    shoulder = shoulder * np.clip((y - (shoulder_y - 1.4)) / 0.8, 0, 1)
    side_bone = np.where(pos[:, 0] > 0, LEFT_SHOULDER, RIGHT_SHOULDER)
    top = chest >= 1.0
    b0 = np.where(top, side_bone, CHEST)
    b1 = np.where(top, CHEST, _UPPER)
    w0 = np.where(top, shoulder, chest)
    return b0, b1, w0


def _lower_torso(spec: CharacterSpec, mesh: _Mesh, shoulder_y: float) -> None:
    """The torso from where procedural._body ends down to the waist and hips, below the frame."""
    sw = spec.shoulder_width
    prof = [(-2.8, 0.85 * sw, 0.66), (-4.2, 0.78 * sw, 0.6), (-5.8, 0.82 * sw, 0.63)]
    prof += [(-7.6, 0.9 * sw, 0.7), (-9.6, 0.94 * sw, 0.72)]
    rings = [_superellipse(shoulder_y + dy, hw, hd) for dy, hw, hd in prof]
    pos = np.stack([r[0] for r in rings])
    nrm = _normalize((pos - [0.0, 0.0, 0.15]) * [1, 0, 1])
    flat = pos.reshape(-1, 3)
    b0, b1, w0 = _body_weights(spec, flat, shoulder_y)
    tris = _grid_triangles(len(prof), 33)
    mesh.add("clothes", pos, nrm, np.zeros((*pos.shape[:-1], 2)), tris, b0, b1, w0)


def _front_z(spec: CharacterSpec, y: np.ndarray, shoulder_y: float) -> np.ndarray:
    """z of the torso's front (file frame: the front is -z) at heights y below the shoulders."""
    dys = np.array([0.0, -0.22, -0.55, -1.3, -2.8, -4.2, -5.8])
    hds = np.array([0.5, 0.62, 0.7, 0.72, 0.66, 0.6, 0.63])
    return 0.15 - np.interp(y - shoulder_y, dys[::-1], hds[::-1])


def _tie(spec: CharacterSpec, mesh: _Mesh, shoulder_y: float) -> None:
    """A tie down the front of the chest: what shows which way the torso turned."""
    t = np.linspace(0, 1, 12)
    y = shoulder_y + 0.15 - t * 3.4
    half = 0.12 + 0.1 * t
    x = np.stack([-half, half])
    yy = np.broadcast_to(y, x.shape)
    z = np.broadcast_to(_front_z(spec, y, shoulder_y) - 0.03, x.shape)
    pos = np.stack([x, yy, z], -1)
    nrm = np.broadcast_to([0.0, 0.2, -1.0], pos.shape)
    b0, b1, w0 = _body_weights(spec, pos.reshape(-1, 3), shoulder_y)
    uv = np.zeros((*pos.shape[:-1], 2))
    mesh.add("trim", pos, nrm, uv, _grid_triangles(2, 12), b0, b1, w0)


def _arms(spec: CharacterSpec, mesh: _Mesh, shoulder_y: float) -> None:
    """Sleeved arms hanging at the sides from the shoulders."""
    sw = spec.shoulder_width
    for side, shoulder, arm in ((1, LEFT_SHOULDER, LEFT_ARM), (-1, RIGHT_SHOULDER, RIGHT_ARM)):
        knots = np.array(
            [
                [side * 0.9 * sw, shoulder_y - 0.25, 0.15],
                [side * (sw + 0.28), shoulder_y - 1.6, 0.15],
                [side * (sw + 0.34), shoulder_y - 4.4, 0.2],
                [side * (sw + 0.3), shoulder_y - 8.4, 0.05],
            ]
        )
        s = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(knots, axis=0), axis=1))])
        u = np.linspace(0, s[-1], 18)
        path = np.stack([np.interp(u, s, knots[:, k]) for k in range(3)], 1)
        radius = 0.34 - 0.1 * u / s[-1]
        pos, nrm, uv, tris = _tube(path, radius, sides=10)
        w_arm = np.clip((shoulder_y - 0.25 - pos[..., 1]) / 0.9, 0, 1)
        mesh.add("clothes", pos, nrm, uv, tris, arm, shoulder, w_arm)


def reweight_upper_body(spec: CharacterSpec, v: dict[str, np.ndarray], shoulder_y: float) -> None:
    """The base character's torso hangs on 上半身 and its neck on (首, 上半身): move them onto
    上半身2, 肩 and 上半身 by height (in place on the arrays of `_Mesh.arrays`)."""
    torso = (v["b0"] == _UPPER) & (v["w0"] >= 1.0)
    b0, b1, w0 = _body_weights(spec, v["pos"][torso], shoulder_y)
    v["b0"][torso], v["b1"][torso], v["w0"][torso] = b0, b1, w0
    neck = (v["b0"] == _NECK) & (v["b1"] == _UPPER)
    v["b1"][neck] = CHEST


# ------------------------------------------------------------------------------------ assembly


def add_parts(spec: CharacterSpec, mesh: _Mesh, face: _Face, shoulder_y: float) -> _Parts:
    """Add the eyes, mouth line and upper body to `mesh`; returns what the morphs, bones and
    textures need."""
    eyes = _Eyes(spec, mesh)
    eyes.build()
    mouth = _Mouth(spec, mesh, face)
    mouth.build()
    _lower_torso(spec, mesh, shoulder_y)
    _tie(spec, mesh, shoulder_y)
    _arms(spec, mesh, shoulder_y)
    return _Parts(spec, tha3_spec(spec.seed), mesh, face, eyes, mouth, shoulder_y)


@dataclass
class _Parts:
    spec: CharacterSpec
    truth: Tha3Spec
    mesh: _Mesh
    face: _Face
    eyes: _Eyes
    mouth: _Mouth
    shoulder_y: float

    def shape_tables(self) -> dict[str, dict[int, dict[int, np.ndarray]]]:
        """shape → side (+1 left, -1 right) → {vertex: offset}."""
        spec, face, eyes = self.spec, self.face, self.eyes
        rest = _positions(self.mesh)
        out: dict[str, dict[int, dict[int, np.ndarray]]] = {}

        def by_side(table: dict[int, np.ndarray]) -> dict[int, dict[int, np.ndarray]]:
            sides: dict[int, dict[int, np.ndarray]] = {1: {}, -1: {}}
            for i, d in table.items():
                sides[1 if rest[i, 0] > 0 else -1][i] = d
            return sides

        def add(into: dict[int, np.ndarray], ids: np.ndarray, offsets: np.ndarray) -> None:
            for i, d in zip(np.asarray(ids).tolist(), np.asarray(offsets), strict=True):
                if np.linalg.norm(d) > 1e-6:
                    into[i] = into.get(i, 0) + d

        brows = {
            "troubled": lambda xo: 0.12 - 0.22 * xo,
            "angry": lambda xo: -0.1 + 0.22 * xo,
            "lowered": lambda xo: -0.22 + 0 * xo,
            "happy": lambda xo: 0.1 + 0.18 * (1 - np.clip(xo, -1, 1) ** 2),
            "serious": lambda xo: -0.06 - 0.22 * (1 - np.clip(xo, -1, 1) ** 2),
        }
        for shape, dy in brows.items():
            out[shape] = by_side(_brow_morph(face, spec, rest, dy))
        tilt = spec.eye_tilt

        def smile(xo):  # the closed smile eye's arch (^): its corners on the closed line
            return _eye_closed(xo, tilt) + 1.2 * (1 - xo**2) ** 0.7

        lids = {
            "smile_eyes": smile,
            "relaxed": lambda xo: 0.5 * (_eye_top(xo, tilt) + _eye_closed(xo, tilt)) + 0.08,
            "unimpressed": lambda xo: np.minimum(_eye_top(xo, tilt) + 0.04, 0.2 + tilt * xo),
        }
        for shape, target in lids.items():
            out[shape] = by_side(_lid_morph(face, spec, rest, target))
        lower = np.concatenate(face.lower_lashes)

        def taper(power: float, amount: float):
            return lambda xo: amount * (1 - np.clip(xo, -1, 1) ** 2) ** power

        # びっくり: the lids and the opening's upper edge rise; the iris shrinks a little.
        lid_ids = np.array(sorted(face.morphs["まばたき"]))
        up = taper(0.3, 0.3)
        out["surprised"] = by_side(
            _lift_morph(spec, rest, lid_ids, _LID_LIFT, lambda s, x, y: up(x))
        )
        # 下瞼上げ: the opening's lower edge and the lower lashes rise.
        rise = taper(0.6, 0.35)
        out["lower_lid"] = by_side(
            _lift_morph(spec, rest, lower, _LASH_LIFT, lambda s, x, y: rise(x))
        )

        # 笑い closes the eye from below too: the lower edge and lashes rise to the arch.
        def to_arch(xo):
            return smile(np.clip(xo, -1, 1)) - _eye_bottom(np.clip(xo, -1, 1), tilt)

        arch = by_side(_lift_morph(spec, rest, lower, _LASH_LIFT, lambda s, x, y: to_arch(x)))
        out["iris_small"] = {1: {}, -1: {}}
        for side in (1, -1):
            add(out["surprised"][side], *eyes.ring_move(side, True, up))
            ids, offsets = eyes.iris_small(side)
            add(out["surprised"][side], ids, 0.3 * offsets)
            add(out["iris_small"][side], ids, offsets)
            add(out["lower_lid"][side], *eyes.ring_move(side, False, rise))
            add(out["smile_eyes"][side], *eyes.ring_move(side, False, to_arch))
            out["smile_eyes"][side].update(arch[side])
        for shape, parts in {
            **self.mouth.vowels(),
            **self.mouth.corners(self.truth.smirk_side),
        }.items():
            table: dict[int, np.ndarray] = {}
            for ids, offsets in parts:
                add(table, ids, offsets)
            out[shape] = by_side(table) if shape in PAIRABLE else {0: table}
        return out

    def morphs(self) -> list[PmxVertexMorph]:
        """The THA3 morphs, named as `truth` says (the line's share of い is added to the base
        character's い by `widen_i`)."""
        out = []
        for shape, sides in self.shape_tables().items():
            panel = PANELS[SHAPE_PANEL[shape]]
            if shape in self.truth.pairs:
                left, right = self.truth.pairs[shape]
                items = [(left, sides[1]), (right, sides[-1])]
            else:
                merged: dict[int, np.ndarray] = {}
                for table in sides.values():
                    merged.update(table)
                items = [(self.truth.names[shape], merged)]
            for name, table in items:
                idx = np.array(sorted(table), np.int32)
                out.append(PmxVertexMorph(name, panel, idx, np.array([table[i] for i in idx])))
        return out

    def widen_i(self) -> None:
        """The mouth line follows the base character's い."""
        ids, offsets = self.mouth.widen_i()
        self.face.offset("い", ids, offsets)

    def bones(self, base: list[PmxBone]) -> list[PmxBone]:
        """The base bones with 上半身 moved to the waist, 首 hung on a new 上半身2, the eye bones
        at the centres of the irises' spheres following 両目, and the shoulders and arms added."""
        spec, sy = self.spec, self.shoulder_y
        rot, shown, append = 0x0002, 0x0008 | 0x0010, 0x0100
        bones = list(base)
        bones[_UPPER] = dataclasses.replace(bones[_UPPER], position=(0.0, sy - 4.6, 0.15))
        bones[_NECK] = dataclasses.replace(bones[_NECK], parent=CHEST)
        for index, side in ((_LEFT_EYE, 1), (_RIGHT_EYE, -1)):
            pivot = tuple(float(v) for v in eye_pivot(spec, side))
            bones[index] = dataclasses.replace(
                bones[index],
                position=pivot,
                flags=rot | shown | append,
                append_parent=BOTH_EYES,
                append_ratio=1.0,
            )
        sw = spec.shoulder_width
        bones += [
            PmxBone(
                "上半身2", _UPPER, (0.0, sy - 2.2, 0.1), rot | shown, english_name="upper body2"
            ),
            PmxBone("左肩", CHEST, (0.3, sy - 0.05, 0.15), rot | shown, english_name="shoulder_L"),
            PmxBone(
                "左腕",
                LEFT_SHOULDER,
                (0.9 * sw, sy - 0.25, 0.15),
                rot | shown,
                english_name="arm_L",
            ),
            PmxBone("右肩", CHEST, (-0.3, sy - 0.05, 0.15), rot | shown, english_name="shoulder_R"),
            PmxBone(
                "右腕",
                RIGHT_SHOULDER,
                (-0.9 * sw, sy - 0.25, 0.15),
                rot | shown,
                english_name="arm_R",
            ),
        ]
        return bones


def materials(spec: CharacterSpec) -> dict[str, tuple[str, dict]]:
    """The extra materials, as procedural._materials' table holds them."""
    trim = tuple(1.0 - np.asarray(spec.clothes) * 0.7)
    return {
        "trim": ("タイ", dict(diffuse=(*trim, 1.0), ambient=tuple(np.asarray(trim) * 0.6))),
        "iris": ("瞳", dict(texture=4, ambient=(0.7, 0.7, 0.7), flags=0x02)),
    }


def eye_white_texture(spec: CharacterSpec) -> np.ndarray:
    """The white of the eye, shaded under the upper lid (the patch spans 1.75 eye half-heights
    above the eye's centre to 1.45 below; the lid's rest edge is near 1.05 above)."""
    u, v = _pixels(64, 64, ss=1)
    yn = 1.75 - v * 3.2
    img = np.ones((*u.shape, 3), np.float32) * np.float32((0.98, 0.98, 1.0))
    _blend(img, (0.72, 0.74, 0.86), 0.8 * np.clip(1 - (1.05 - yn) / 0.45, 0, 1))
    return _downsample(img, ss=1)


def iris_texture(spec: CharacterSpec) -> np.ndarray:
    """Both irises side by side (u < 0.5 the right eye's), RGBA, alpha = the iris ellipse."""
    u, v = _pixels(256, 128, ss=2)
    side = np.where(u >= 0.5, 1, -1)
    xo, yn = ((u % 0.5) * 2) * 2 - 1, 1 - v * 2  # -1..1 over the iris's box
    eye = np.asarray(spec.eye_color, np.float32)
    r = np.sqrt(xo**2 + yn**2)
    t = np.clip((1 - yn) / 2, 0, 1)[..., None]
    img = np.zeros((*u.shape, 4), np.float32)
    img[..., :3] = eye * 0.3 * (1 - t) + np.clip(eye * 1.15 + 0.12, 0, 1) * t
    _blend(img, eye * 0.25, (r > 0.82) & (r < 1))
    rp = np.sqrt((xo / 0.42) ** 2 + ((yn + 0.05) / 0.42) ** 2)
    _blend(img, eye * 0.12, rp < 1)
    for hx, hy, hr in ((-0.38, 0.35, 0.3), (0.35, -0.45, 0.13)):
        hr2 = ((xo - side * hx) / hr) ** 2 + ((yn - hy) / (hr * 1.3)) ** 2
        _blend(img, (1.0, 1.0, 1.0), (hr2 < 1) * 0.95)
    img[..., 3] = np.clip((1 - r) * 40, 0, 1)
    return _downsample(img, ss=2)
