"""How a character's mouth looks and opens (`MouthStyle`): its width, the shape あ opens it to,
how far the jaw follows, the line at rest, and the interior's colours, teeth and tongue.

Real MMD mouths at rest are a short line or a small closed shape; あ opens them to a D, an oval
or a rounded triangle of dark red to pink, with or without a row of teeth and a tongue, while the
chin drops a little (`scripts/measure_faces.py` compares the open mouths' sizes and colours).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Color = tuple[float, float, float]

# mouth.png: the interior fills v in [0, MOUTH_INSIDE] (teeth at the top, tongue at the bottom);
# below it, a swatch of the line's colour, which the mouth line samples at LINE_V.
MOUTH_INSIDE, LINE_V = 0.84, 0.93


@dataclass(frozen=True)
class MouthStyle:
    """The mouth's construction (width, opening, jaw, line) and its look (colours, teeth,
    tongue). Defaults are a plain mid-range mouth."""

    width: float = 0.8  # half-width, in eye half-widths
    opening: float = 1.15  # あ's depth, in eye half-heights (held above the chin)
    roundness: float = 0.6  # the open edge's profile (1 - x²)^p: small = a D, large = a V
    top_lift: float = 0.0  # the upper lip's rise at the middle when open, share of the depth
    jaw: float = 0.55  # share of the opening the jaw's skin follows
    curve: float = 0.025  # the line's corners above its middle (a smile), model units
    line_thick: float = 0.013  # the line's half-thickness at its middle, model units
    line_width: float = 0.8  # the line's half-length, share of the half-width
    # The look: mouth.png (textures.mouth_texture).
    interior: Color = (0.35, 0.08, 0.1)
    line_colour: Color = (0.35, 0.08, 0.1)
    teeth: str = "top"  # "none", "top" or "both"
    teeth_size: float = 0.16  # share of the interior's height
    tongue: float = 0.38  # the tongue's half-width (share of the interior's; 0: none)
    tongue_colour: Color = (0.85, 0.4, 0.42)


def draw_mouth_shape(rng: np.random.Generator) -> dict:
    """The construction half of a `MouthStyle` (what あ moves): a dict of fields."""
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    return dict(
        width=u(0.65, 1.2),
        opening=u(0.75, 1.35),
        roundness=u(0.3, 1.2),
        top_lift=u(-0.05, 0.25),
        jaw=u(0.3, 0.75),
        curve=u(-0.015, 0.04),
        line_thick=u(0.008, 0.02),  # at 256² in THA3 framing, 0.4 px and more
        line_width=u(0.45, 0.95),
    )


def draw_mouth_look(rng: np.random.Generator, hsv) -> dict:  # hsv: characters.spec.hsv
    """The look half of a `MouthStyle`."""
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    interior = hsv(u(-0.04, 0.02), u(0.45, 0.85), u(0.45, 0.92))
    # The line at rest: dark, the interior's colour, or faint (a pink barely off the skin, as
    # many real mouths are at 128 px: the mouth must then be found from the face around it).
    kind = rng.random()
    if kind < 0.45:
        line = hsv(u(-0.04, 0.05), u(0.3, 0.8), u(0.2, 0.55))
    elif kind < 0.75:
        line = interior
    else:
        line = hsv(u(-0.03, 0.05), u(0.15, 0.4), u(0.7, 0.9))
    teeth = ("none", "top", "both")[int(rng.choice(3, p=[0.4, 0.48, 0.12]))]
    return dict(
        interior=interior,
        line_colour=line,
        teeth=teeth,
        teeth_size=u(0.1, 0.22),
        tongue=u(0.25, 0.45) if rng.random() < 0.65 else 0.0,
        tongue_colour=hsv(u(-0.03, 0.03), u(0.35, 0.6), u(0.7, 0.95)),
    )
