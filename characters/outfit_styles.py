"""What a character wears round the neck and face (`OutfitStyle`, drawn per look seed;
`characters.outfits` builds it): a collar, a bow or tie knot at the throat, a headset
microphone. Colours come from the whole range, red and pink bows next to the mouth included."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Color = tuple[float, float, float]
COLLARS = ("none", "high", "sailor", "shirt", "scarf", "choker")
THROAT = ("none", "bow", "knot")
PATTERNS = ("plain", "stripes", "trim", "seams", "two-tone")


@dataclass(frozen=True)
class OutfitStyle:
    """The neckline: a collar, what sits at the throat, a headset microphone."""

    collar: str = "none"  # one of COLLARS
    collar_height: float = 0.7  # how far up the neck a high collar or scarf reaches (share)
    collar_colour: Color = (0.95, 0.95, 0.95)
    throat: str = "none"  # one of THROAT
    throat_colour: Color = (0.8, 0.1, 0.15)
    throat_size: float = 1.0
    mic: int = 0  # the side of a headset microphone (+1 the character's left, -1 right, 0 none)
    mic_colour: Color = (0.15, 0.15, 0.17)
    pattern: str = "plain"  # the clothes texture: one of PATTERNS


def draw_outfit(rng: np.random.Generator, clothes: Color, hsv) -> OutfitStyle:
    """An outfit for a look seed (hsv: characters.spec.hsv)."""
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731

    def colour() -> Color:
        kind = rng.random()
        if kind < 0.25:
            return hsv(0.0, 0.0, u(0.85, 0.98))  # white
        if kind < 0.4:
            return hsv(0.0, 0.0, u(0.1, 0.3))  # black
        if kind < 0.55:
            return clothes
        if kind < 0.75:
            return hsv(u(-0.04, 0.02), u(0.5, 0.9), u(0.6, 0.95))  # reds and pinks
        return hsv(u(0, 1), u(0.3, 0.9), u(0.3, 0.95))

    collar = COLLARS[int(rng.choice(len(COLLARS), p=[0.2, 0.2, 0.2, 0.15, 0.1, 0.15]))]
    throat = THROAT[int(rng.choice(len(THROAT), p=[0.4, 0.35, 0.25]))]
    mic = int(rng.choice([0, 1, -1], p=[0.65, 0.175, 0.175]))
    return OutfitStyle(
        collar=collar,
        collar_height=u(0.35, 0.9),
        collar_colour=colour(),
        throat=throat,
        throat_colour=colour(),
        throat_size=u(0.7, 1.3),
        mic=mic,
        mic_colour=hsv(0.0, 0.0, u(0.1, 0.9)) if rng.random() < 0.8 else colour(),
        pattern=PATTERNS[int(rng.integers(len(PATTERNS)))],
    )
