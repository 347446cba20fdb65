"""How a character's eyes look and close (`EyeStyle`): the opening's outline, where the lids'
edges rest when the eye is shut (neutral and smile), the lash lines and liners, the brows, and
the iris's pattern.

The ranges follow what real MMD faces show (`scripts/measure_faces.py` measures them on
../shared/mmd and on these characters): the upper lid sweeps down with its lash line and stops at
about the lower third of the opening in a shallow sag (∪, 0.04-0.42 eye widths deep on the real
models) while the lower lid rises a little to meet it; lash lines range from hairlines to heavy
liners with a flick, in black, brown or a dark shade of the hair or the iris; irises are large,
taller than wide, with a gradient, a dark ring, a pupil and one to three highlights.

Every height here is in eye half-heights above the eye's centre, along `xo`, which runs from the
inner corner (-1) to the outer one (+1); `tilt` raises the outer corner (tsurime, > 0) or lowers
it (tareme).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Color = tuple[float, float, float]


@dataclass(frozen=True)
class EyeStyle:
    """The eye's shape and closing (the face's construction) and its colours and iris (its
    look). Defaults are a plain mid-range eye."""

    top_height: float = 0.95  # the opening's upper edge at its peak
    top_power: float = 0.45  # its profile (1 - xo²)^p: small = square shoulders, large = round
    top_skew: float = 0.1  # > 0 moves the peak towards the outer corner
    bottom_depth: float = 0.8  # the lower edge at its lowest (below the centre)
    bottom_power: float = 0.7
    closed_low: float = -0.5  # the neutral closed line's lowest point
    closed_sag: float = 0.25  # how far its corners lie above that point (∪)
    closed_thin: float = 0.7  # the lash line's thickness when shut, as a share of its rest one
    liner: float = 0.3  # the upper lash line's thickness at the outer corner
    liner_inner: float = 0.12  # … and at the inner corner
    flick: float = 0.16  # how far the line runs past the outer corner (eye half-widths)
    flick_rise: float = 1.0  # the flick's rise per unit of length
    lower_liner: float = 0.45  # share of the lower edge the lower lash covers, from the outer end
    lower_thick: float = 0.07
    brow_height: float = 1.75  # the brow's middle above the eye's centre
    brow_thick: float = 0.09
    brow_arch: float = 0.3
    # The look: colours and the iris's texture (textures.iris_texture).
    lash_colour: Color = (0.12, 0.08, 0.1)
    brow_colour: Color | None = None  # None: a dark shade of the hair
    iris_height: float = 1.3  # the iris's half-height / half-width
    iris_bottom: Color | None = None  # the gradient's lower colour (None: the iris colour lit)
    iris_top_dark: float = 0.3  # the gradient's upper colour, as a share of the iris colour
    ring: float = 0.18  # the dark ring's width (share of the iris's radius; 0: none)
    pupil: float = 0.42  # the pupil's radius (share of the iris's)
    pupil_slit: float = 1.0  # the pupil's width / height (< 1: a slit)
    streaks: float = 0.0  # radial streaks' strength
    lid_shadow: float = 0.0  # the upper lid's shadow on the iris
    highlights: int = 2
    highlight_size: float = 0.3
    highlight_side: int = -1  # the big highlight's side (-1: towards the inner corner)
    white: Color = (0.98, 0.98, 1.0)
    white_shade: Color = (0.72, 0.74, 0.86)


def _arc(xo: np.ndarray, power: float) -> np.ndarray:
    return (1 - np.clip(xo, -1.0, 1.0) ** 2) ** power


class EyeOutline:
    """An eye's edges and closed lines (heights in eye half-heights, see the module)."""

    def __init__(self, style: EyeStyle, tilt: float) -> None:
        self.style, self.tilt = style, tilt

    def top(self, xo: np.ndarray) -> np.ndarray:
        """The upper lid's edge at rest."""
        s, x = self.style, np.clip(xo, -1.0, 1.0)
        return (
            s.top_height * _arc(x, s.top_power)
            + s.top_skew * x * _arc(x, 1.0)
            + self.tilt * x
            + 0.05
        )

    def bottom(self, xo: np.ndarray) -> np.ndarray:
        """The opening's lower edge."""
        s, x = self.style, np.clip(xo, -1.0, 1.0)
        return -s.bottom_depth * _arc(x, s.bottom_power) + self.tilt * x

    def closed(self, xo: np.ndarray) -> np.ndarray:
        """Where the upper lid's edge rests with the eye shut (neutral): a shallow ∪ across the
        lower part of the opening."""
        s, x = self.style, np.clip(xo, -1.0, 1.0)
        return s.closed_low + s.closed_sag * np.abs(x) ** 1.3 + self.tilt * x

    def closed_lower(self, xo: np.ndarray) -> np.ndarray:
        """Where the lower lid's edge rises to with the eye shut: just under the upper lid's
        line, never below where it rests."""
        return np.maximum(self.closed(xo) - 0.04, self.bottom(xo) - 0.03)

    def smiling(self, xo: np.ndarray) -> np.ndarray:
        """Where the lid's edge rests in a smile wink: an upward arc (⌒) across the eye."""
        x = np.clip(xo, -1.0, 1.0)
        return -0.4 + 0.55 * _arc(x, 0.8) + self.tilt * x

    def liner(self, xo: np.ndarray) -> np.ndarray:
        """The upper lash line's thickness along it (thicker towards the outer corner, half as
        thick along the flick)."""
        s = self.style
        t = np.clip((xo + 1) / 2, 0, 1) ** 1.5
        return (s.liner_inner + (s.liner - s.liner_inner) * t) * np.where(xo > 1, 0.5, 1.0)

    def flick(self, xo: np.ndarray) -> np.ndarray:
        """How far the lash line rises past the outer corner."""
        return np.clip(xo - 1, 0, None) * self.style.flick_rise


def outline(spec) -> EyeOutline:
    """The eye outline of a `CharacterSpec`."""
    return EyeOutline(spec.eye_style, spec.eye_tilt)


def draw_eye_shape(rng: np.random.Generator, eye_width: float, eye_height: float) -> dict:
    """The construction half of an `EyeStyle` (what the eye's morphs move): a dict of fields."""
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    # The neutral closed line's sag, drawn in eye widths (as mmd_loader.closures measures a lid:
    # neutral closures of real models sag 0.04-0.42 widths), kept in half-heights here.
    sag = u(0.08, 0.3) * 2 * eye_width / eye_height
    low = u(-0.75, -0.35)
    return dict(
        top_height=u(0.8, 1.0),
        top_power=u(0.22, 0.65),
        top_skew=u(-0.15, 0.35),
        bottom_depth=u(0.55, 0.95),
        bottom_power=u(0.45, 1.0),
        closed_low=low,
        closed_sag=min(sag, -0.02 - low),
        closed_thin=u(0.55, 1.1),
        liner=u(0.16, 0.42),
        liner_inner=u(0.05, 0.16),
        flick=u(0.0, 0.28),
        flick_rise=u(0.3, 1.5),
        lower_liner=float(rng.choice([0.0, u(0.2, 0.6), u(0.6, 1.0)], p=[0.3, 0.45, 0.25])),
        lower_thick=u(0.04, 0.1),
        brow_height=u(1.45, 2.2),
        brow_thick=u(0.05, 0.12),
        brow_arch=u(0.05, 0.4),
    )


def draw_eye_look(
    rng: np.random.Generator, iris: Color, hair: Color, hsv
) -> dict:  # hsv: characters.spec.hsv
    """The look half of an `EyeStyle`: colours and the iris's pattern."""
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    dark_hair = tuple(round(float(c) * u(0.15, 0.35), 4) for c in hair)
    dark_iris = tuple(round(float(c) * u(0.15, 0.35), 4) for c in iris)
    lashes = [(0.1, 0.07, 0.08), (0.04, 0.03, 0.04), hsv(u(0.02, 0.08), u(0.5, 0.8), u(0.15, 0.3))]
    lashes += [dark_hair, dark_iris]
    lash = lashes[int(rng.choice(5, p=[0.3, 0.2, 0.2, 0.15, 0.15]))]
    brow = None if rng.random() < 0.6 else tuple(round(float(c) * u(0.55, 0.9), 4) for c in hair)
    second = None
    if rng.random() < 0.45:  # the gradient runs into a second hue
        h, s, v = _to_hsv(iris)
        second = hsv(h + u(-0.15, 0.15), min(1.0, s * u(0.6, 1.1)), min(1.0, v * u(1.0, 1.3) + 0.1))
    white_warmth = u(-0.03, 0.02)
    return dict(
        lash_colour=lash,
        brow_colour=brow,
        iris_height=u(1.1, 1.55),
        iris_bottom=second,
        iris_top_dark=u(0.12, 0.55),
        ring=float(rng.choice([0.0, u(0.06, 0.14), u(0.14, 0.26)], p=[0.2, 0.4, 0.4])),
        pupil=u(0.2, 0.5),
        pupil_slit=1.0 if rng.random() < 0.85 else u(0.35, 0.6),
        streaks=u(0.0, 0.35) if rng.random() < 0.5 else 0.0,
        lid_shadow=u(0.0, 0.45),
        highlights=int(rng.integers(1, 4)),
        highlight_size=u(0.16, 0.36),
        highlight_side=-1 if rng.random() < 0.7 else 1,
        white=(round(0.98 + white_warmth, 4), 0.98, round(1.0 - max(white_warmth, 0) * 2, 4)),
        white_shade=hsv(u(0.55, 0.7), u(0.05, 0.25), u(0.65, 0.9)),
    )


def _to_hsv(rgb: Color) -> tuple[float, float, float]:
    import colorsys

    return colorsys.rgb_to_hsv(*rgb)
