"""The mouth line (geometry, so its corners can move) and the vowel and corner shapes."""

from __future__ import annotations

import numpy as np

from characters.face import Face
from characters.layout import HEAD, MOUTH_LIFT
from characters.mesh import Mesh, grid_triangles
from characters.mouth_styles import LINE_V
from characters.shape import head_shape
from characters.spec import CharacterSpec


class Mouth:
    """The mouth line (geometry, so the corners can move) and the vowel and corner morphs of
    the mouth interior `characters.face.Face.mouth` made."""

    def __init__(self, spec: CharacterSpec, mesh: Mesh, face: Face) -> None:
        self.spec, self.mesh, self.face, self.shape = spec, mesh, face, head_shape(spec)
        self.hw, self.open_h = face.mouth_half_width(), face.mouth_opening()
        self.x = self.hw * np.linspace(-1, 1, 11)
        self.frac = np.linspace(0, 1, 4)[:, None]

    def line_y(self, x: np.ndarray) -> np.ndarray:
        return self.face.mouth_line(x)

    def build(self) -> None:
        """The line, in the style's length, thickness and colour; あ lifts it with the upper
        lip."""
        style = self.spec.mouth_style
        reach = style.line_width * self.hw
        x = reach * np.linspace(-1, 1, 21)
        thick = style.line_thick * (1 - 0.6 * (x / reach) ** 4) + 0.002  # ends: 40 %, they move
        xx = np.broadcast_to(x, (2, 21))
        yy = self.line_y(x) + np.stack([-thick, thick])
        pos, nrm = self.shape.on_face(xx, yy, MOUTH_LIFT + 0.003)
        uv = np.broadcast_to([0.5, LINE_V], (2, 21, 2))
        self.line_ids = self.mesh.add("mouth", pos, nrm, uv, grid_triangles(2, 21), HEAD)
        self.line_x, self.line_dy = xx, yy - self.line_y(x)
        if style.top_lift:
            lift = lambda x: style.top_lift * self.open_h * (1 - (x / self.hw) ** 2)  # noqa: E731
            self.face.offset("あ", *self._line(lambda x: np.ones_like(x), lift))

    def _interior(self, sx, top, depth) -> tuple[np.ndarray, np.ndarray]:
        """Offsets of the interior (rows from its top edge down) to x → sx(x)·x, top edge at
        line + top(x), opened depth(x) below it."""
        xx = np.broadcast_to(self.x, (4, 11))
        rest, _ = self.shape.on_face(xx, np.broadcast_to(self.line_y(self.x), (4, 11)), MOUTH_LIFT)
        y = self.line_y(self.x) + top(self.x) - self.frac * depth(self.x)
        moved, _ = self.shape.on_face(xx * sx(self.x), y, MOUTH_LIFT)
        return self.face.mouth_ids, (moved - rest).reshape(-1, 3)

    def _line(self, sx, top) -> tuple[np.ndarray, np.ndarray]:
        x = self.line_x
        rest, _ = self.shape.on_face(x, self.line_y(x) + self.line_dy, MOUTH_LIFT + 0.003)
        y = self.line_y(x) + top(x) + self.line_dy
        moved, _ = self.shape.on_face(x * sx(x), y, MOUTH_LIFT + 0.003)
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
        """口角上げ, 口角下げ and にやり: the corners move most at the drawn line's ends (a short
        line's ends are its corners), as much beyond them."""
        h = self.open_h
        reach = self.spec.mouth_style.line_width * self.hw
        one = lambda x: np.ones_like(x)  # noqa: E731
        zero = lambda x: np.zeros_like(x)  # noqa: E731

        def bend(x):  # 0 at the middle, 1 at the line's ends and beyond
            return np.clip(np.abs(x) / reach, 0, 1) ** 2

        return {
            "raised_corner": self.shape_morph(
                lambda x: 1.05 * one(x), lambda x: 0.5 * h * bend(x), zero
            ),
            "lowered_corner": self.shape_morph(one, lambda x: -0.45 * h * bend(x), zero),
            "smirk": self.shape_morph(
                one, lambda x: 0.5 * h * bend(x) * (smirk_side * x > 0), zero
            ),
        }

    def widen_i(self) -> tuple[np.ndarray, np.ndarray]:
        """The line's part of い (the base character's い widens the interior by 1.3)."""
        return self._line(lambda x: 1.3 * np.ones_like(x), lambda x: np.zeros_like(x))
