"""What a seed decides about a character: colours, proportions, the eyes' and mouth's styles,
hair, ornament and how its winks are named (`CharacterSpec`, `spec_for_seed`)."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np

from characters.eye_styles import EyeStyle, draw_eye_look, draw_eye_shape
from characters.mouth_styles import MouthStyle, draw_mouth_look, draw_mouth_shape
from characters.outfit_styles import OutfitStyle, draw_outfit
from characters.shape import HeadShape, cap_lift_for

Color = tuple[float, float, float]

# Names the second wink appears under in real models (the bare ウィンク is the first wink).
OTHER_WINK_NAMES = ("ウィンク右", "ウィンク右", "ウィンク２", "ウィンク2", "ウィンクL", "ウィンクR")
BACK_HAIR = ("short", "medium", "long")
# Second names for the smile/neutral pair of winks: (the ウィンク eye, the other eye).
SECOND_WINK_NAMES = (
    ("ウィンク２", "ｳｨﾝｸ２右"),
    ("ウィンク２", "ウィンク２右"),
    ("ウインク２", "ウインク２右"),
    ("ｳｨﾝｸ2", "ｳｨﾝｸ2R"),
)
# Head ornaments: the head box must leave them out. An ornament's material is named like one
# (`ORNAMENT_NAMES`) or neutrally (材質N) by seed, except the hat: geometry alone cannot tell an
# unnamed hat from hair (see mmd_loader.head_box), so the hat is always named.
NOSES = ("none", "dot", "shadow", "line")  # the nose's mark on the face texture
ORNAMENTS = ("none", "bow", "headband", "hat", "flower", "headphones")
# Expression overlays (characters.overlays): a pale forehead, an anger mark, a blush, tears under
# the eyes (all on the face), and a sweat drop floating beside the head.
OVERLAY_KINDS = ("pale", "anger", "blush", "tears", "sweat")
# "morph": hidden at rest (alpha 0) and raised by a material morph, as a PMX does; "shown":
# drawn at rest with no material morph, as the PMD variant of such a model is.
OVERLAY_STYLES = ("morph", "shown")
ORNAMENT_NAMES = {
    "bow": "リボン",
    "headband": "カチューシャ",
    "hat": "帽子",
    "flower": "髪飾り",
    "headphones": "ヘッドホン",
}
# Buns (hair tied up), where they sit on the head: never part of the head box either.
BUN_PLACES = ("none", "top", "back", "low", "side", "double")
# Headwear over the hair (characters.headwear); the names real models give each (a spec's
# `headwear_name` is one of them, or "" for an unnamed material).
HEADWEAR = ("none", "hat", "cap", "beret", "hood")
HEADWEAR_NAMES = {
    "hat": ("帽子", "hat", "ハット"),
    "cap": ("キャップ", "cap"),
    "beret": ("ベレー", "beret"),
    "hood": ("フード", "hood"),
}
# Names real models give hair sticks and flowers clustered on a bun.
CLUSTER_NAMES = ("簪", "かんざし", "花", "髪飾り")


@dataclass(frozen=True)
class CharacterSpec:
    """What varies with the seed. Lengths in MMD units; colours RGB in 0..1."""

    seed: int
    skin: Color
    hair: Color
    eye_color: Color
    clothes: Color
    head_centre_y: float  # centre of the cranium
    head_width: float  # half-widths of the cranium
    head_height: float
    head_depth: float
    chin_width: float  # fraction of the width left towards the chin
    jaw: float  # how far the chin reaches below the cranium, as a fraction of head_height
    eye_x: float  # |x| of each eye's centre
    eye_y: float
    eye_half_width: float
    eye_half_height: float
    eye_tilt: float  # outer corner raised (> 0, tsurime) or lowered, in eye half-heights
    iris_size: float  # iris half-width as a fraction of the eye's half-width
    mouth_y: float
    neck_length: float  # chin to shoulders
    neck_radius: float
    shoulder_width: float  # half-width
    bangs: int
    bang_length: float  # 0 = bangs end at the brows, 1 = at mid-eye
    back_hair: str  # one of BACK_HAIR
    side_locks: bool
    ahoge: bool  # a single strand sticking up from the crown
    spikes: int  # hair spikes sticking up (0 = none)
    twin_tails: bool
    wink_side: str  # "left" or "right": the eye the bare name ウィンク closes
    other_wink_name: str  # the morph closing the other eye
    head_top_y: float  # the true head top: the hair cap's top, not ahoge/spikes/tails
    chin_y: float  # the lowest point of the chin at rest
    # Each eye has a neutral wink and a smile wink (lid closing in an arc ⌒, lower lid raised):
    # the plain names (ウィンク, other_wink_name) are the smile ones when `smile_plain`, and the
    # `second_wink_names` (for the ウィンク eye, for the other eye) the neutral ones; else the
    # other way round. Names mislead on purpose: geometry must decide.
    smile_plain: bool = False
    second_wink_names: tuple[str, str] = SECOND_WINK_NAMES[0]
    ornament: str = "none"  # one of ORNAMENTS
    ornament_named: bool = True  # whether its material (and bone) say what it is
    # Features the head box must see through (characters.buns, characters.headwear). Their
    # defaults add nothing, so every seed's character is unchanged; none moves the true top
    # (`head_top_y`, the hair cap's), which lies under or beside them.
    bun: str = "none"  # one of BUN_PLACES ("back": of the crown; "double": odango)
    bun_size: float = 0.3  # the bun's radius, as a share of head_width
    bun_joined: bool = False  # one mesh with the hair cap (a band of hair welded to both)
    bun_ornaments: int = 0  # hair sticks and flowers in a cluster on and above the (back) bun
    bun_ornament_name: str = ""  # their material's name; "" = unnamed (材質N)
    headwear: str = "none"  # one of HEADWEAR, over the hair
    headwear_name: str = ""  # its material's name; "" = unnamed (材質N)
    skin_name: str = "肌"  # the face skin's material name (real ones: 顔, 肌, 顔・耳, ...)
    smile_cheek: float = 0.0  # how far the smile winks lift the cheek, in eye half-heights
    # Rendering's hard cases (issue 19), never drawn by `spec_for_seed`: the defaults leave every
    # seed's character as it was; tests set them with dataclasses.replace.
    face_facets: int = 0  # > 0: a low-poly skin of that many rows, each triangle flat-shaded
    decal_tilt: float = 0.0  # degrees: > 0 adds cheek decals whose normals tilt down that much
    overlays: tuple[str, ...] = ()  # expression overlays (OVERLAY_KINDS)
    overlay_style: str = "morph"  # one of OVERLAY_STYLES
    overlay_named: bool = True  # overlay materials named as the expression (青ざめ, ...) or 材質N
    fringe: bool = False  # a fringe over the brows, down to just above the lashes
    # Variety drawn by `spec_for_seed` (issue 22): the face's construction and its styles.
    face_seed: int = 0  # the seed of the face's construction (characters sharing it: one family)
    eye_style: EyeStyle = field(default_factory=EyeStyle)
    mouth_style: MouthStyle = field(default_factory=MouthStyle)
    blush: float = 0.45  # the blush's strength under the eyes (0: none)
    nose: str = "shadow"  # one of NOSES
    outfit: OutfitStyle = field(default_factory=OutfitStyle)  # collar, throat, headset mic

    def __post_init__(self) -> None:
        unknown = [k for k in self.overlays if k not in OVERLAY_KINDS]
        if unknown or self.overlay_style not in OVERLAY_STYLES:
            raise ValueError(
                f"overlays must be among {OVERLAY_KINDS} ({unknown}) and overlay_style one of "
                f"{OVERLAY_STYLES} ({self.overlay_style!r})"
            )
        if self.face_facets < 0 or self.face_facets == 1 or self.decal_tilt < 0:
            raise ValueError("face_facets must be 0 or >= 2, decal_tilt >= 0")

    def wink_names(self, eye: str) -> tuple[str, str]:
        """(neutral, smile) morph names of the one-eye winks of `eye` ("left" or "right")."""
        own = eye == self.wink_side
        plain = "ウィンク" if own else self.other_wink_name
        second = self.second_wink_names[0 if own else 1]
        return (second, plain) if self.smile_plain else (plain, second)


def hsv(h: float, s: float, v: float) -> Color:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (round(r, 4), round(g, 4), round(b, 4))


def spec_for_seed(seed: int, face_seed: int | None = None) -> CharacterSpec:
    """The character a seed stands for (deterministic: numpy's PCG64 streams).

    Two streams decide it: the face's construction (head, eye placement, eye and mouth shapes:
    what the eye and mouth morphs move) comes from `face_seed` (default: `seed`), everything
    else (colours, hair, ornament, the iris's and mouth's looks, morph names) from `seed`. So
    characters sharing a face seed are one face mesh under different looks: one family
    (`pipeline.families`), as a real model's edits are."""
    face_seed = seed if face_seed is None else face_seed
    face = np.random.default_rng([face_seed, 0x7A6])
    look = np.random.default_rng([seed, 0x10C])
    f = lambda lo, hi: float(face.uniform(lo, hi))  # noqa: E731
    u = lambda lo, hi: float(look.uniform(lo, hi))  # noqa: E731

    # The face's construction.
    scale = f(0.9, 1.12)
    w, hh = scale * f(1.02, 1.2), scale * f(1.12, 1.3)
    d, chin_w, jaw = scale * f(1.08, 1.22), f(0.25, 0.42), f(0.22, 0.42)
    cy = f(18.4, 18.9)
    shape = HeadShape(cy, w, hh, d, chin_w, jaw)
    chin_y = float(shape.mesh_vertices()[:, 1].min())
    eye_y = cy - hh * f(0.17, 0.34)
    ew = scale * f(0.19, 0.26)
    eh = ew * f(0.7, 1.15)
    eye_x = w * f(0.36, 0.45)
    tilt = f(-0.25, 0.3)
    iris_size = f(0.55, 0.82)
    mouth_y = eye_y - (eye_y - chin_y) * f(0.46, 0.64)
    eye_shape = draw_eye_shape(face, ew, eh)
    mouth_shape = draw_mouth_shape(face)

    # The look.
    natural = [(0.07, 0.25, 0.12), (0.07, 0.55, 0.3), (0.1, 0.45, 0.85), (0.05, 0.6, 0.45)]
    if look.random() < 0.35:
        h, s, v = natural[int(look.integers(len(natural)))]
        hair = hsv(h + u(-0.02, 0.02), s, v)
    else:
        hair = hsv(u(0, 1), u(0.35, 0.8), u(0.45, 0.95))
    t = u(0, 1) ** 1.3
    skin = tuple(
        round(a + (b - a) * t, 4) for a, b in zip((1.0, 0.95, 0.9), (0.86, 0.72, 0.6), strict=True)
    )
    eye_color = hsv(u(0, 1), u(0.55, 1.0), u(0.5, 0.95))
    other = OTHER_WINK_NAMES[int(look.integers(len(OTHER_WINK_NAMES)))]
    spikes = int(look.integers(3, 6)) if look.random() < 0.25 else 0
    pairs = [p for p in SECOND_WINK_NAMES if other not in p]
    ornament = ORNAMENTS[int(look.choice(len(ORNAMENTS), p=[0.3, 0.14, 0.14, 0.14, 0.14, 0.14]))]
    clothes = hsv(u(0, 1), u(0.1, 0.7), u(0.3, 0.95))
    return CharacterSpec(
        seed=seed,
        skin=skin,  # type: ignore[arg-type]
        hair=hair,
        eye_color=eye_color,
        clothes=clothes,
        head_centre_y=cy,
        head_width=w,
        head_height=hh,
        head_depth=d,
        chin_width=chin_w,
        jaw=jaw,
        eye_x=eye_x,
        eye_y=eye_y,
        eye_half_width=ew,
        eye_half_height=eh,
        eye_tilt=tilt,
        iris_size=iris_size,
        mouth_y=mouth_y,
        neck_length=scale * u(0.3, 0.65),
        neck_radius=scale * u(0.24, 0.32),
        shoulder_width=u(1.55, 2.25),
        bangs=int(look.integers(5, 10)),
        bang_length=u(0.0, 1.35),
        back_hair=BACK_HAIR[int(look.integers(3))],
        side_locks=bool(look.random() < 0.7),
        ahoge=bool(look.random() < 0.4),
        spikes=spikes,
        twin_tails=bool(look.random() < 0.3),
        wink_side="left" if look.random() < 0.5 else "right",
        other_wink_name=other,
        head_top_y=cy + hh + cap_lift_for(hh),
        chin_y=chin_y,
        smile_plain=bool(look.random() < 0.5),
        second_wink_names=pairs[int(look.integers(len(pairs)))],
        ornament=ornament,
        ornament_named=ornament == "hat" or bool(look.random() < 0.5),
        face_seed=face_seed,
        eye_style=EyeStyle(**eye_shape, **draw_eye_look(look, eye_color, hair, hsv)),
        mouth_style=MouthStyle(**mouth_shape, **draw_mouth_look(look, hsv)),
        blush=u(0.0, 0.5) if look.random() < 0.45 else 0.0,
        nose=NOSES[int(look.integers(len(NOSES)))],
        outfit=draw_outfit(look, clothes, hsv),
    )
