"""The face: skin, upper and lower lids with their lashes, brows and the mouth interior, and the
base morphs (まばたき, each eye's neutral and smile wink, あ, い, 上)."""

from __future__ import annotations

import numpy as np

from characters.layout import BROW_LIFT, HEAD, LASH_LIFT, LID_LIFT, MOUTH_LIFT
from characters.lowpoly import faceted_skin
from characters.mesh import Mesh, grid_triangles
from characters.shape import head_shape
from characters.spec import CharacterSpec

JAW_SHARE = 0.55  # how much of the mouth's opening the jaw's skin follows


def eye_top(xo: np.ndarray, tilt: float) -> np.ndarray:
    """The upper lid's edge in eye half-heights; xo runs from the inner (-1) to the outer corner."""
    xo = np.clip(xo, -1.0, 1.0)
    return 0.95 * (1 - xo**2) ** 0.45 + tilt * xo + 0.05


def eye_bottom(xo: np.ndarray, tilt: float) -> np.ndarray:
    xo = np.clip(xo, -1.0, 1.0)
    return -0.8 * (1 - xo**2) ** 0.7 + tilt * xo


def eye_closed(xo: np.ndarray, tilt: float) -> np.ndarray:
    """Where the lid's edge rests with the eye shut: just below the lower edge."""
    return eye_bottom(xo, tilt) - 0.06


def eye_smiling(xo: np.ndarray, tilt: float) -> np.ndarray:
    """Where the lid's edge rests in a smile wink: an upward arc (⌒) across the eye."""
    xo = np.clip(xo, -1.0, 1.0)
    return -0.4 + 0.55 * (1 - xo**2) ** 0.8 + tilt * xo


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
        """One eye; side +1 is the character's left (+x), -1 its right."""
        s, tilt = self.spec, self.spec.eye_tilt
        ew, eh, cx = s.eye_half_width, s.eye_half_height, side * s.eye_x
        world = lambda xo, yn: (cx + side * xo * ew, s.eye_y + yn * eh)  # noqa: E731
        name = "left" if side > 0 else "right"

        # The white, the iris and the socket round the opening: characters.eyes.Eyes.

        # The upper lid: a skin patch above the eye whose lower edge slides down over it.
        xo = np.linspace(-1.15, 1.15, 15)
        frac = np.linspace(0, 1, 5)[:, None]
        upper = eye_top(xo, tilt) + 0.5
        rest_y = eye_top(xo, tilt) + 0.04 + frac * (upper - eye_top(xo, tilt) - 0.04)
        shut_y = eye_closed(xo, tilt) + frac * (upper - eye_closed(xo, tilt))
        smile_y = eye_smiling(xo, tilt) + frac * (upper - eye_smiling(xo, tilt))
        xx = np.broadcast_to(xo, rest_y.shape)
        rest, nrm = self.shape.on_face(*world(xx, rest_y), LID_LIFT)
        shut, shut_nrm = self.shape.on_face(*world(xx, shut_y), LID_LIFT)
        smiling, _ = self.shape.on_face(*world(xx, smile_y), LID_LIFT)
        nrm = nrm + shut_nrm  # morphs keep normals: halfway shades well open and shut
        ids = self.mesh.add("skin", rest, nrm, face_uv(s, rest), grid_triangles(5, 15), HEAD)
        self._blink(name, ids, shut - rest, smiling - rest)

        # The lower lid: skin lying below the eye, unseen at rest; a smile wink lifts its upper
        # edge to meet the arc of the upper lid (a neutral closure leaves it).
        bottom = eye_bottom(xo, tilt) - 0.03
        low_rest = bottom - frac[::-1] * 0.55
        low_smile = low_rest + (1 - frac[::-1]) * (eye_smiling(xo, tilt) - 0.06 - bottom)
        rest, nrm = self.shape.on_face(*world(xx, low_rest), LID_LIFT - 0.004)
        lifted, _ = self.shape.on_face(*world(xx, low_smile), LID_LIFT - 0.004)
        ids = self.mesh.add("skin", rest, nrm, face_uv(s, rest), grid_triangles(5, 15), HEAD)
        self.offset(self.spec.wink_names(name)[1], ids, lifted - rest)

        # The upper lash line, thicker towards the outer corner, with a flick past it.
        xo = np.linspace(-1.02, 1.16, 14)
        top = eye_top(xo, tilt) + np.clip(xo - 1, 0, None) * 1.2
        thick = (0.14 + 0.2 * np.clip((xo + 1) / 2, 0, 1) ** 1.5) * np.where(xo > 1, 0.5, 1.0)
        lash_y = np.stack([top - 0.08, top + thick])
        delta_y = eye_closed(xo, tilt) - eye_top(xo, tilt)
        smile_dy = eye_smiling(xo, tilt) - eye_top(xo, tilt)
        xx = np.broadcast_to(xo, lash_y.shape)
        rest, nrm = self.shape.on_face(*world(xx, lash_y), LASH_LIFT)
        shut, _ = self.shape.on_face(*world(xx, lash_y + delta_y), LASH_LIFT)
        smiling, _ = self.shape.on_face(*world(xx, lash_y + smile_dy), LASH_LIFT)
        ids = self.mesh.add("lashes", rest, nrm, np.zeros((28, 2)), grid_triangles(2, 14), HEAD)
        self._blink(name, ids, shut - rest, smiling - rest)

        # A short lower lash towards the outer corner (a smile wink lifts it with the lower lid).
        xo = np.linspace(0.15, 1.0, 6)
        low = np.stack([eye_bottom(xo, tilt) - 0.07, eye_bottom(xo, tilt) + 0.0])
        lift_y = eye_smiling(xo, tilt) - 0.06 - (eye_bottom(xo, tilt) - 0.03)
        xx = np.broadcast_to(xo, low.shape)
        pos, nrm = self.shape.on_face(*world(xx, low), LASH_LIFT)
        lifted, _ = self.shape.on_face(*world(xx, low + lift_y), LASH_LIFT)
        ids = self.mesh.add("lashes", pos, nrm, np.zeros((12, 2)), grid_triangles(2, 6), HEAD)
        self.offset(self.spec.wink_names(name)[1], ids, lifted - pos)
        self.lower_lashes.append(ids)
        if s.smile_cheek:
            self._lift_cheek(side)

        # The brow, arched, tapering outwards; 上 raises it.
        xo = np.linspace(-1.0, 1.1, 10)
        mid = 1.6 + 0.3 * (1 - xo**2) + 0.3 * tilt * xo
        half = 0.09 * (1.0 - 0.6 * (xo + 1) / 2.1)
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
        """The mouth interior: collapsed onto the mouth line at rest, opened by あ and い."""
        s = self.spec
        hw = self.mouth_half_width()
        open_h = min(1.15 * s.eye_half_height, 0.8 * (s.mouth_y - s.chin_y))
        x = hw * np.linspace(-1, 1, 11)
        frac = np.linspace(0, 1, 4)[:, None]
        line = s.mouth_y + 0.025 * (x / hw) ** 2
        xx = np.broadcast_to(x, (4, 11))
        rest, nrm = self.shape.on_face(xx, np.broadcast_to(line, (4, 11)), MOUTH_LIFT)
        # あ: the lower edge rides on the skin below, which itself drops with the jaw.
        depth = frac * open_h * (1 - (x / hw) ** 2) ** 0.6
        a_pos, _ = self.shape.on_face(xx, line - (1 - JAW_SHARE) * depth, MOUTH_LIFT)
        a_pos[..., 1] -= JAW_SHARE * depth
        i_y = line - frac * 0.3 * open_h * (1 - (x / hw) ** 4)
        i_pos, _ = self.shape.on_face(xx * 1.3, i_y, MOUTH_LIFT)
        uv = np.stack(np.meshgrid((x / hw + 1) / 2, frac[:, 0]), -1)
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
        drop[:, 1] = -JAW_SHARE * open_h * weight
        self.offset("あ", self.skin_ids, drop)

    def mouth_half_width(self) -> float:
        return 0.8 * self.spec.eye_half_width
