"""The face: skin, upper and lower lids with their lashes, brows and the mouth interior, and the
base morphs (まばたき, each eye's neutral and smile wink, あ, い, 上)."""

from __future__ import annotations

import numpy as np

from characters.eye_styles import outline
from characters.layout import BROW_LIFT, HEAD, LASH_LIFT, LID_LIFT, MOUTH_LIFT
from characters.lowpoly import faceted_skin
from characters.mesh import Mesh, grid_triangles
from characters.mouth_styles import MOUTH_INSIDE
from characters.shape import head_shape
from characters.spec import CharacterSpec


def face_box(spec: CharacterSpec) -> tuple[float, float]:
    """(half-size, centre y) of the square of the face the face texture covers."""
    return 1.6 * spec.head_width, spec.eye_y - 0.3


def face_uv(spec: CharacterSpec, pos: np.ndarray) -> np.ndarray:
    half, yc = face_box(spec)
    return np.stack([(pos[..., 0] + half) / (2 * half), (yc + half - pos[..., 1]) / (2 * half)], -1)


class Face:
    """The parts of the head: skin, eyes with lids and lashes, brows, mouth; and their morphs."""

    def __init__(self, spec: CharacterSpec, mesh: Mesh) -> None:
        self.spec, self.mesh, self.shape = spec, mesh, head_shape(spec)
        self.morphs: dict[str, dict[int, np.ndarray]] = {}
        self.lower_lashes: list[np.ndarray] = []  # vertex ids, for characters.tha3's morphs
        self.upper_lids: list[np.ndarray] = []  # per eye: the upper lid's and lash's vertex ids
        self.lower_lids: list[np.ndarray] = []  # per eye: the lower lid's and lash's
        self.mouth_ids = np.zeros(0, np.int64)

    def offset(self, morph: str, indices: np.ndarray, delta: np.ndarray) -> None:
        moved = np.linalg.norm(delta.reshape(-1, 3), axis=1) > 1e-6
        table = self.morphs.setdefault(morph, {})
        for i, d in zip(indices[moved].tolist(), delta.reshape(-1, 3)[moved], strict=True):
            table[i] = table.get(i, 0) + d

    def skin(self) -> None:
        if self.spec.face_facets:  # low-poly, split normals (characters.lowpoly)
            pos, nrm, tris = faceted_skin(self.shape, self.spec.face_facets)
        else:
            t, p = self.shape.grid()
            rows, cols = 34, 44
            pos = self.shape.mesh_vertices()
            nrm = np.concatenate([[[0, 1, 0]], self.shape.normal(t, p), [[0, -1, 0]]])
            grid = 1 + np.arange(rows * cols).reshape(rows, cols)
            nxt = np.roll(grid, -1, axis=1)
            cells = [
                np.stack([grid[:-1], nxt[:-1], nxt[1:]], -1).reshape(-1, 3),
                np.stack([grid[:-1], nxt[1:], grid[1:]], -1).reshape(-1, 3),
                np.stack([np.zeros(cols, int), nxt[0], grid[0]], -1),
                np.stack([np.full(cols, rows * cols + 1), grid[-1], nxt[-1]], -1),
            ]
            tris = np.concatenate(cells)
        self.skin_ids = self.mesh.add("skin", pos, nrm, face_uv(self.spec, pos), tris, HEAD)
        self.skin_pos = pos

    def eye(self, side: int) -> None:
        """One eye; side +1 is the character's left (+x), -1 its right. Shapes and sizes follow
        the spec's `EyeStyle` (characters.eye_styles)."""
        s, o, style = self.spec, outline(self.spec), self.spec.eye_style
        ew, eh, cx = s.eye_half_width, s.eye_half_height, side * s.eye_x
        world = lambda xo, yn: (cx + side * xo * ew, s.eye_y + yn * eh)  # noqa: E731
        name = "left" if side > 0 else "right"

        # The white, the iris and the socket round the opening: characters.eyes.Eyes.

        # The upper lid: a skin patch above the eye whose lower edge slides down over it.
        xo = np.linspace(-1.15, 1.15, 15)
        frac = np.linspace(0, 1, 5)[:, None]
        top = o.top(xo)
        upper = top + 0.5
        rest_y = top + 0.04 + frac * (upper - top - 0.04)
        shut_y = o.closed(xo) + frac * (upper - o.closed(xo))
        smile_y = o.smiling(xo) + frac * (upper - o.smiling(xo))
        xx = np.broadcast_to(xo, rest_y.shape)
        rest, nrm = self.shape.on_face(*world(xx, rest_y), LID_LIFT)
        shut, shut_nrm = self.shape.on_face(*world(xx, shut_y), LID_LIFT)
        smiled, _ = self.shape.on_face(*world(xx, smile_y), LID_LIFT)
        nrm = nrm + shut_nrm  # morphs keep normals: halfway shades well open and shut
        ids = self.mesh.add("skin", rest, nrm, face_uv(s, rest), grid_triangles(5, 15), HEAD)
        self._blink(name, ids, shut - rest, smiled - rest)
        upper_ids = [ids]

        # The lower lid: skin lying below the eye, unseen at rest. A neutral closure lifts its
        # upper edge to just under the upper lid's closed line (as real models' lids meet); a
        # smile wink lifts it to the arc of the upper lid.
        bottom = o.bottom(xo) - 0.03
        share = 1 - frac[::-1]  # the upper edge moves all the way, the lowest row not at all
        low_rest = bottom - frac[::-1] * 0.55
        low_shut = low_rest + share * (o.closed_lower(xo) - bottom)
        low_smile = low_rest + share * (o.smiling(xo) - 0.06 - bottom)
        rest, nrm = self.shape.on_face(*world(xx, low_rest), LID_LIFT - 0.004)
        shut, _ = self.shape.on_face(*world(xx, low_shut), LID_LIFT - 0.004)
        lifted, _ = self.shape.on_face(*world(xx, low_smile), LID_LIFT - 0.004)
        ids = self.mesh.add("skin", rest, nrm, face_uv(s, rest), grid_triangles(5, 15), HEAD)
        self._blink(name, ids, shut - rest, lifted - rest)
        lower_ids = [ids]

        # The upper lash line, thicker towards the outer corner, with a flick past it; shut, it
        # lies along the closed line, thinner by `closed_thin`.
        xo = np.linspace(-1.02, 1.02 + style.flick, 14)
        flick, thick, k = o.flick(xo), o.liner(xo), style.closed_thin
        lash_y = np.stack([o.top(xo) - 0.08, o.top(xo) + thick]) + flick
        shut_y = np.stack([o.closed(xo) - 0.08 * k, o.closed(xo) + thick * k]) + flick
        smile_y = lash_y + (o.smiling(xo) - o.top(xo))
        xx = np.broadcast_to(xo, lash_y.shape)
        rest, nrm = self.shape.on_face(*world(xx, lash_y), LASH_LIFT)
        shut, _ = self.shape.on_face(*world(xx, shut_y), LASH_LIFT)
        smiled, _ = self.shape.on_face(*world(xx, smile_y), LASH_LIFT)
        ids = self.mesh.add("lashes", rest, nrm, np.zeros((28, 2)), grid_triangles(2, 14), HEAD)
        self._blink(name, ids, shut - rest, smiled - rest)
        upper_ids.append(ids)

        # The lower lash along the outer part of the lower edge (none when `lower_liner` is 0:
        # its vertices stay, with no area, for the morphs that move them); it rises with the
        # lower lid.
        reach = max(style.lower_liner, 0.15)
        xo = np.linspace(1 - 2 * reach, 1.0, 6)
        thick = style.lower_thick if style.lower_liner > 0 else 0.0
        low = np.stack([o.bottom(xo) - thick, o.bottom(xo)])
        lift_shut = o.closed_lower(xo) - (o.bottom(xo) - 0.03)
        lift_smile = o.smiling(xo) - 0.06 - (o.bottom(xo) - 0.03)
        xx = np.broadcast_to(xo, low.shape)
        pos, nrm = self.shape.on_face(*world(xx, low), LASH_LIFT)
        shut, _ = self.shape.on_face(*world(xx, low + lift_shut), LASH_LIFT)
        lifted, _ = self.shape.on_face(*world(xx, low + lift_smile), LASH_LIFT)
        ids = self.mesh.add("lashes", pos, nrm, np.zeros((12, 2)), grid_triangles(2, 6), HEAD)
        self._blink(name, ids, shut - pos, lifted - pos)
        self.lower_lashes.append(ids)
        lower_ids.append(ids)
        self.upper_lids.append(np.concatenate(upper_ids))
        self.lower_lids.append(np.concatenate(lower_ids))
        if s.smile_cheek:
            self._lift_cheek(side)

        # The brow, arched, tapering outwards; 上 raises it.
        xo = np.linspace(-1.0, 1.1, 10)
        mid = style.brow_height + style.brow_arch * (1 - xo**2) + 0.3 * s.eye_tilt * xo
        half = style.brow_thick * (1.0 - 0.6 * (xo + 1) / 2.1)
        brow_y = np.stack([mid - half, mid + half])
        xx = np.broadcast_to(xo, brow_y.shape)
        rest, nrm = self.shape.on_face(*world(xx, brow_y), BROW_LIFT)
        up, _ = self.shape.on_face(*world(xx, brow_y + 0.18), BROW_LIFT)
        ids = self.mesh.add("brows", rest, nrm, np.zeros((20, 2)), grid_triangles(2, 10), HEAD)
        self.offset("上", ids, up - rest)

    def _lift_cheek(self, side: int) -> None:
        """The smile wink of the eye on `side` also lifts the cheek's skin below its outer corner
        (as real smile winks do), `spec.smile_cheek` eye half-heights at most."""
        s = self.spec
        p = self.skin_pos
        centre = np.array([side * (s.eye_x + 0.8 * s.eye_half_width), s.eye_y - s.eye_half_height])
        d2 = ((p[:, 0] - centre[0]) / (1.6 * s.eye_half_width)) ** 2
        d2 += ((p[:, 1] - centre[1]) / (2.0 * s.eye_half_height)) ** 2
        weight = np.exp(-d2) * (p[:, 2] < -0.3 * s.head_depth)
        lift = np.zeros_like(p)
        lift[:, 1] = s.smile_cheek * s.eye_half_height * weight
        name = "left" if side > 0 else "right"
        self.offset(s.wink_names(name)[1], self.skin_ids, lift)

    def _blink(self, eye: str, ids: np.ndarray, delta: np.ndarray, smile: np.ndarray) -> None:
        """The lid part `ids` closes by `delta` in まばたき and the eye's neutral wink, by
        `smile` in its smile wink."""
        neutral, smiling = self.spec.wink_names(eye)
        self.offset("まばたき", ids, delta)
        self.offset(neutral, ids, delta)
        self.offset(smiling, ids, smile)

    def mouth(self) -> None:
        """The mouth interior: collapsed onto the mouth line at rest, opened by あ (to the
        spec's `MouthStyle`: its depth, profile and upper lip) and い."""
        s, style = self.spec, self.spec.mouth_style
        hw, open_h = self.mouth_half_width(), self.mouth_opening()
        x = hw * np.linspace(-1, 1, 11)
        frac = np.linspace(0, 1, 4)[:, None]
        line = self.mouth_line(x)
        xx = np.broadcast_to(x, (4, 11))
        rest, nrm = self.shape.on_face(xx, np.broadcast_to(line, (4, 11)), MOUTH_LIFT)
        # あ: the lower edge rides on the skin below, which itself drops with the jaw; the upper
        # edge rises by the upper lip's lift.
        across = 1 - (x / hw) ** 2
        depth = frac * open_h * np.clip(across, 0, 1) ** style.roundness
        lift = (1 - frac) * style.top_lift * open_h * across
        a_pos, _ = self.shape.on_face(xx, line + lift - (1 - style.jaw) * depth, MOUTH_LIFT)
        a_pos[..., 1] -= style.jaw * depth
        i_y = line - frac * 0.3 * open_h * (1 - (x / hw) ** 4)
        i_pos, _ = self.shape.on_face(xx * 1.3, i_y, MOUTH_LIFT)
        uv = np.stack(np.meshgrid((x / hw + 1) / 2, frac[:, 0] * MOUTH_INSIDE), -1)
        tris = grid_triangles(4, 11)
        ids = self.mesh.add("mouth", rest, nrm, uv, tris, HEAD, shape=a_pos)
        self.mouth_ids = ids
        self.offset("あ", ids, a_pos - rest)
        self.offset("い", ids, i_pos - rest)

        # The jaw drops with あ: skin below the mouth line, in front, near the centre line.
        p = self.skin_pos
        below = np.clip((s.mouth_y - p[:, 1]) / 0.25, 0, 1)
        weight = below**2 * (3 - 2 * below) * np.exp(-((p[:, 0] / (3 * hw)) ** 2))
        weight *= np.clip(-p[:, 2] / (0.5 * s.head_depth), 0, 1)
        drop = np.zeros_like(p)
        drop[:, 1] = -style.jaw * open_h * weight
        self.offset("あ", self.skin_ids, drop)

    def mouth_half_width(self) -> float:
        return self.spec.mouth_style.width * self.spec.eye_half_width

    def mouth_opening(self) -> float:
        """How deep あ opens the mouth (model units): at least 0.17 (about 7 % of the head's
        height, as the real models' smallest), kept above the chin."""
        s = self.spec
        depth = max(s.mouth_style.opening * s.eye_half_height, 0.17)
        return min(depth, 0.8 * (s.mouth_y - s.chin_y))

    def mouth_line(self, x: np.ndarray) -> np.ndarray:
        """The mouth line's height at x (its corners `curve` above its middle)."""
        hw = self.mouth_half_width()
        return self.spec.mouth_y + self.spec.mouth_style.curve * (x / hw) ** 2
