"""THA3's expression morphs (`poses/schemas/tha3.yaml`) for every character.

Each shape is written under a name drawn from the spellings real models use (Japanese, romaji,
English, katakana, half-width), and about a third of the shapes as two one-sided morphs whose
side word is as likely wrong as right (geometry must decide): the eyebrow shapes (困る, 怒り, 下,
にこり, 真面目; 上 is the base character's), the eye shapes (びっくり, なごみ, じと目, 下瞼上げ, and
MMD's both-eyes smile closure 笑い, which tha3 leaves to the shape test of mmd_loader.face), the
mouth vowels (う, え, お, ▲), the corners (口角上げ, 口角下げ) and a one-sided にやり smirk.

`tha3_spec(seed)` is the truth the tests check against (names, which shapes are pairs and which
pair member really moves which side).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from characters.eye_styles import outline
from characters.eyes import Eyes
from characters.face import Face
from characters.layout import BROW_LIFT, LASH_LIFT, LID_LIFT
from characters.mesh import Mesh
from characters.mouth import Mouth
from characters.shape import head_shape
from characters.spec import CharacterSpec
from mmd_loader.pmx_writer import PmxVertexMorph

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


def positions(mesh: Mesh) -> np.ndarray:
    return np.concatenate([c[0] for c in mesh.chunks])


def eye_coords(spec: CharacterSpec, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(side, xo, yn) of points near an eye: the side (+1 left), inner → outer corner in eye
    half-widths, height in eye half-heights."""
    side = np.where(p[:, 0] > 0, 1, -1)
    xo = side * (p[:, 0] - side * spec.eye_x) / spec.eye_half_width
    yn = (p[:, 1] - spec.eye_y) / spec.eye_half_height
    return side, xo, yn


def upper_lid_ids(face: Face) -> np.ndarray:
    """The upper lids' and lashes' vertices that まばたき moves (both eyes)."""
    upper = np.concatenate(face.upper_lids)
    return np.array(sorted(set(face.morphs["まばたき"]) & set(upper.tolist())))


def lid_morph(face: Face, spec: CharacterSpec, rest: np.ndarray, target) -> dict[int, np.ndarray]:
    """A morph of the upper lids and lashes (the upper part of まばたき): each moves by the
    share of its closing that brings the lid's edge to `target(xo)` (eye half-heights)."""
    table, o = face.morphs["まばたき"], outline(spec)
    ids = upper_lid_ids(face)
    delta = np.array([table[i] for i in ids])
    _, xo, _ = eye_coords(spec, rest[ids])
    top = o.top(xo) + 0.04
    closed = o.closed(xo)
    share = np.clip((top - target(np.clip(xo, -1, 1))) / (top - closed), 0.0, 1.0)
    return dict(zip(ids.tolist(), delta * share[:, None], strict=True))


def lift_morph(
    spec: CharacterSpec, rest: np.ndarray, ids: np.ndarray, lift: float, dy
) -> dict[int, np.ndarray]:
    """Vertices of a face layer at `lift` moved up by dy(side, xo, yn) eye half-heights, along
    the face's surface (the offset between two points of the layer, so 0 where dy is 0)."""
    shape = head_shape(spec)
    p = rest[ids]
    side, xo, yn = eye_coords(spec, p)
    step = dy(side, xo, yn) * spec.eye_half_height
    here, _ = shape.on_face(p[:, 0], p[:, 1], lift)
    there, _ = shape.on_face(p[:, 0], p[:, 1] + step, lift)
    return dict(zip(ids.tolist(), there - here, strict=True))


def brow_morph(face: Face, spec: CharacterSpec, rest: np.ndarray, dy) -> dict[int, np.ndarray]:
    ids = np.array(sorted(face.morphs["上"]))
    return lift_morph(spec, rest, ids, BROW_LIFT, lambda s, xo, yn: dy(xo))


@dataclass
class Parts:
    spec: CharacterSpec
    truth: Tha3Spec
    mesh: Mesh
    face: Face
    eyes: Eyes
    mouth: Mouth
    shoulder_y: float

    def shape_tables(self) -> dict[str, dict[int, dict[int, np.ndarray]]]:
        """shape → side (+1 left, -1 right) → {vertex: offset}."""
        spec, face, eyes = self.spec, self.face, self.eyes
        rest = positions(self.mesh)
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
            out[shape] = by_side(brow_morph(face, spec, rest, dy))
        tilt, o = spec.eye_tilt, outline(spec)

        def smile(xo):  # the closed smile eye's arch (^): its corners at the lower edge
            return o.bottom(xo) - 0.06 + 1.2 * (1 - xo**2) ** 0.7

        lids = {
            "smile_eyes": smile,
            "relaxed": lambda xo: 0.5 * (o.top(xo) + o.closed(xo)) + 0.08,
            "unimpressed": lambda xo: np.minimum(o.top(xo) + 0.04, 0.2 + tilt * xo),
        }
        for shape, target in lids.items():
            out[shape] = by_side(lid_morph(face, spec, rest, target))
        lower = np.concatenate(face.lower_lashes)

        def taper(power: float, amount: float):
            return lambda xo: amount * (1 - np.clip(xo, -1, 1) ** 2) ** power

        # びっくり: the lids and the opening's upper edge rise; the iris shrinks a little.
        lid_ids = upper_lid_ids(face)
        up = taper(0.3, 0.3)
        out["surprised"] = by_side(lift_morph(spec, rest, lid_ids, LID_LIFT, lambda s, x, y: up(x)))
        # 下瞼上げ: the opening's lower edge and the lower lashes rise.
        rise = taper(0.6, 0.35)
        out["lower_lid"] = by_side(
            lift_morph(spec, rest, lower, LASH_LIFT, lambda s, x, y: rise(x))
        )

        # 笑い closes the eye from below too: the lower edge and lashes rise to the arch.
        def to_arch(xo):
            return smile(np.clip(xo, -1, 1)) - o.bottom(np.clip(xo, -1, 1))

        arch = by_side(lift_morph(spec, rest, lower, LASH_LIFT, lambda s, x, y: to_arch(x)))
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
