"""Procedural anime characters (head and shoulders) written as small PMX files with textures.

Everything here is in the FILE's frame: MMD's left-handed one, y up, the character faces -z and
its own left is +x. Triangles are wound so that cross(b - a, c - a) points along the outward
normal in that frame, as in real models (checked on あにまさ式ミク: 99.6 % of its triangles).

The seed decides a `CharacterSpec` (colours, head and eye shape, proportions, hair style, wink
naming); `write_character` turns it into `out.pmx` plus PNG textures in a folder beside it.
"""

from __future__ import annotations

import colorsys
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mmd_loader.pmx_writer import (
    BDEF1,
    BDEF2,
    PmxBone,
    PmxData,
    PmxMaterial,
    PmxVertexMorph,
    write_pmx,
)

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
ORNAMENTS = ("none", "bow", "headband", "hat", "flower", "headphones")
ORNAMENT_NAMES = {
    "bow": "リボン",
    "headband": "カチューシャ",
    "hat": "帽子",
    "flower": "髪飾り",
    "headphones": "ヘッドホン",
}

# Offsets of the face's layers along the skin normal, in MMD units.
# The irises (procedural_tha3) reach 0.045 and the eyes' socket ring 0.055: lids, lashes and brows
# lie above them.
_LID_LIFT, _LASH_LIFT, _BROW_LIFT, _MOUTH_LIFT = 0.06, 0.07, 0.08, 0.01
_JAW_SHARE = 0.55  # how much of the mouth's opening the jaw's skin follows


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

    def wink_names(self, eye: str) -> tuple[str, str]:
        """(neutral, smile) morph names of the one-eye winks of `eye` ("left" or "right")."""
        own = eye == self.wink_side
        plain = "ウィンク" if own else self.other_wink_name
        second = self.second_wink_names[0 if own else 1]
        return (second, plain) if self.smile_plain else (plain, second)


# ----------------------------------------------------------------------------------- head shape


@dataclass(frozen=True)
class HeadShape:
    """The skin of the head as a deformed sphere: theta from the crown (0) to below (pi), phi
    about y with 0 facing the front (-z) and phi > 0 towards +x."""

    cy: float
    w: float
    h: float
    d: float
    chin_w: float
    jaw: float

    def point(self, theta: np.ndarray, phi: np.ndarray, lift: float | np.ndarray = 0.0):
        theta, phi = np.asarray(theta, float), np.asarray(phi, float)
        p = self._raw(theta, phi)
        if np.any(lift):
            p = p + self.normal(theta, phi) * np.asarray(lift)[..., None]
        return p

    def _raw(self, theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
        st = np.sin(theta)
        dx, dy, dz = st * np.sin(phi), np.cos(theta), -st * np.cos(phi)
        s = np.clip(-dy, 0.0, 1.0)
        front = np.clip(-dz, 0.0, 1.0)
        x = self.w * dx * (1.0 - (1.0 - self.chin_w) * s**1.5)
        y = self.cy + self.h * dy - self.h * self.jaw * s**1.5 * front**2
        z = self.d * dz * (1.0 - 0.3 * s)
        return np.stack([x, y, z], axis=-1)

    def normal(self, theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
        theta = np.clip(np.asarray(theta, float), 1e-3, np.pi - 1e-3)
        phi = np.asarray(phi, float)
        e = 1e-4
        t_theta = self._raw(theta + e, phi) - self._raw(theta - e, phi)
        t_phi = self._raw(theta, phi + e) - self._raw(theta, phi - e)
        n = np.cross(t_theta, t_phi)
        out = self._raw(theta, phi) - np.array([0.0, self.cy, 0.0])
        n *= np.sign(np.sum(n * out, axis=-1, keepdims=True) + 1e-12)
        return n / np.linalg.norm(n, axis=-1, keepdims=True)

    def locate(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(theta, phi) of the front surface point at (x, y), by Newton's method."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        theta = np.arccos(np.clip((y - self.cy) / self.h, -0.9, 0.9))
        phi = np.arcsin(np.clip(x / (self.w * np.sin(theta)), -0.9, 0.9))
        e = 1e-5
        for _ in range(9):
            p = self._raw(theta, phi)[..., :2]
            r = p - np.stack([x, y], axis=-1)
            j_t = (self._raw(theta + e, phi)[..., :2] - p) / e
            j_p = (self._raw(theta, phi + e)[..., :2] - p) / e
            det = j_t[..., 0] * j_p[..., 1] - j_t[..., 1] * j_p[..., 0]
            d_t = (r[..., 0] * j_p[..., 1] - r[..., 1] * j_p[..., 0]) / det
            d_p = (j_t[..., 0] * r[..., 1] - j_t[..., 1] * r[..., 0]) / det
            theta = np.clip(theta - np.clip(d_t, -0.2, 0.2), 0.02, np.pi - 0.02)
            phi = np.clip(phi - np.clip(d_p, -0.2, 0.2), -1.5, 1.5)
        return theta, phi

    def on_face(self, x: np.ndarray, y: np.ndarray, lift: float) -> tuple[np.ndarray, np.ndarray]:
        """Points `lift` in front of the face at (x, y), and the skin normals there."""
        theta, phi = self.locate(x, y)
        n = self.normal(theta, phi)
        return self._raw(theta, phi) + lift * n, n

    def grid(self, rows: int = 34, cols: int = 44) -> tuple[np.ndarray, np.ndarray]:
        """The (theta, phi) samples of the head mesh: rows x cols plus the two poles."""
        theta = np.linspace(0.0, np.pi, rows + 2)[1:-1]
        phi = np.linspace(-np.pi, np.pi, cols, endpoint=False)
        t, p = np.meshgrid(theta, phi, indexing="ij")
        return t.ravel(), p.ravel()

    def mesh_vertices(self) -> np.ndarray:
        t, p = self.grid()
        return np.concatenate(
            [[[0.0, self.cy + self.h, 0.0]], self.point(t, p), [self._raw(np.pi, 0.0)]]
        )


def head_shape(spec: CharacterSpec) -> HeadShape:
    return HeadShape(
        spec.head_centre_y,
        spec.head_width,
        spec.head_height,
        spec.head_depth,
        spec.chin_width,
        spec.jaw,
    )


def _cap_lift(spec: CharacterSpec) -> float:
    return _cap_lift_for(spec.head_height)


# ------------------------------------------------------------------------------------ the spec


def _hsv(h: float, s: float, v: float) -> Color:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (round(r, 4), round(g, 4), round(b, 4))


def spec_for_seed(seed: int) -> CharacterSpec:
    """The character a seed stands for (deterministic: numpy's PCG64 stream)."""
    rng = np.random.default_rng([seed, 0x7A6])
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731

    natural = [(0.07, 0.25, 0.12), (0.07, 0.55, 0.3), (0.1, 0.45, 0.85), (0.05, 0.6, 0.45)]
    if rng.random() < 0.35:
        h, s, v = natural[int(rng.integers(len(natural)))]
        hair = _hsv(h + u(-0.02, 0.02), s, v)
    else:
        hair = _hsv(u(0, 1), u(0.35, 0.8), u(0.45, 0.95))
    t = u(0, 1) ** 1.5
    skin = tuple(
        round(a + (b - a) * t, 4) for a, b in zip((1.0, 0.93, 0.87), (0.9, 0.72, 0.58), strict=True)
    )

    scale = u(0.9, 1.12)
    w, hh = scale * u(1.02, 1.2), scale * u(1.12, 1.3)
    d, chin_w, jaw = scale * u(1.08, 1.22), u(0.25, 0.42), u(0.22, 0.42)
    cy = u(18.4, 18.9)
    shape = HeadShape(cy, w, hh, d, chin_w, jaw)
    chin_y = float(shape.mesh_vertices()[:, 1].min())
    eye_y = cy - hh * u(0.15, 0.3)
    eh = scale * u(0.19, 0.27)
    neck_length = scale * u(0.45, 0.9)
    other = OTHER_WINK_NAMES[int(rng.integers(len(OTHER_WINK_NAMES)))]
    bangs = int(rng.integers(5, 10))
    spikes = int(rng.integers(3, 6)) if rng.random() < 0.25 else 0
    spec = CharacterSpec(
        seed=seed,
        skin=skin,  # type: ignore[arg-type]
        hair=hair,
        eye_color=_hsv(u(0, 1), u(0.45, 0.9), u(0.55, 0.95)),
        clothes=_hsv(u(0, 1), u(0.1, 0.7), u(0.3, 0.95)),
        head_centre_y=cy,
        head_width=w,
        head_height=hh,
        head_depth=d,
        chin_width=chin_w,
        jaw=jaw,
        eye_x=w * u(0.36, 0.44),
        eye_y=eye_y,
        eye_half_width=scale * u(0.17, 0.23),
        eye_half_height=eh,
        eye_tilt=u(-0.12, 0.22),
        iris_size=u(0.5, 0.66),
        mouth_y=eye_y - (eye_y - chin_y) * u(0.6, 0.68),
        neck_length=neck_length,
        neck_radius=scale * u(0.24, 0.32),
        shoulder_width=u(1.45, 1.9),
        bangs=bangs,
        bang_length=u(0.0, 1.0),
        back_hair=BACK_HAIR[int(rng.integers(3))],
        side_locks=bool(rng.random() < 0.7),
        ahoge=bool(rng.random() < 0.4),
        spikes=spikes,
        twin_tails=bool(rng.random() < 0.3),
        wink_side="left" if rng.random() < 0.5 else "right",
        other_wink_name=other,
        head_top_y=cy + hh + _cap_lift_for(hh),
        chin_y=chin_y,
    )
    # Drawn after everything above, so older fields keep their values for every seed.
    pairs = [p for p in SECOND_WINK_NAMES if other not in p]
    ornament = ORNAMENTS[int(rng.choice(len(ORNAMENTS), p=[0.3, 0.14, 0.14, 0.14, 0.14, 0.14]))]
    return dataclasses.replace(
        spec,
        smile_plain=bool(rng.random() < 0.5),
        second_wink_names=pairs[int(rng.integers(len(pairs)))],
        ornament=ornament,
        ornament_named=ornament == "hat" or bool(rng.random() < 0.5),
    )


def _cap_lift_for(head_height: float) -> float:
    return 0.11 * head_height / 1.2


# ---------------------------------------------------------------------------------- mesh parts

# Materials in draw order: opaque first, the alpha-textured eyes last.
_MATERIALS = (
    "skin",
    "clothes",
    "trim",
    "mouth",
    "brows",
    "lashes",
    "hair",
    "ornament",
    "eyes",
    "iris",
)
_HEAD, _NECK, _UPPER, _LEFT_EYE, _RIGHT_EYE = 3, 2, 1, 5, 6  # bone indices, see _bones()
# A named bow's or flower's own bone comes last, after the base seven and procedural_tha3's five
# (上半身2, the shoulders, the arms), whose indices are fixed.
_ORNAMENT_BONE = 12


def _grid_triangles(rows: int, cols: int) -> np.ndarray:
    """Two triangles per cell of a rows x cols vertex grid (row-major)."""
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols - 1), indexing="ij")
    a = (r * cols + c).ravel()
    b, d = a + 1, a + cols
    return np.concatenate([np.stack([a, b, d + 1], 1), np.stack([a, d + 1, d], 1)])


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


class _Mesh:
    """Vertices in creation order; triangles collected per material."""

    def __init__(self) -> None:
        self.chunks: list[tuple[np.ndarray, ...]] = []
        self.tris: dict[str, list[np.ndarray]] = {m: [] for m in _MATERIALS}
        self.count = 0

    def add(
        self,
        material: str,
        pos: np.ndarray,
        nrm: np.ndarray,
        uv: np.ndarray,
        tris: np.ndarray,
        bone: int | np.ndarray,
        bone2: int | np.ndarray = 0,
        weight: float | np.ndarray = 1.0,
        shape: np.ndarray | None = None,
    ) -> np.ndarray:
        """Add vertices and triangles; returns the new vertices' indices. Triangles are turned to
        face along the vertex normals, judged on `shape` (e.g. an opened mouth) when given; without
        it, triangles of zero area are dropped."""
        pos, nrm = pos.reshape(-1, 3), _normalize(nrm.reshape(-1, 3))
        n = len(pos)
        ref = pos if shape is None else shape.reshape(-1, 3)
        a, b, c = ref[tris[:, 0]], ref[tris[:, 1]], ref[tris[:, 2]]
        geo = np.cross(b - a, c - a)
        if shape is None:
            tris = tris[np.linalg.norm(geo, axis=1) > 1e-10]
            geo = geo[np.linalg.norm(geo, axis=1) > 1e-10]
        flip = np.sum(geo * nrm[tris].sum(1), axis=1) < 0
        tris = np.where(flip[:, None], tris[:, [0, 2, 1]], tris)
        bones = np.broadcast_to(np.ravel(bone), (n,))
        bones2 = np.broadcast_to(np.ravel(bone2), (n,))
        weights = np.broadcast_to(np.ravel(np.asarray(weight, float)), (n,))
        self.chunks.append((pos, nrm, uv.reshape(-1, 2), bones, bones2, weights))
        self.tris[material].append(tris + self.count)
        self.count += n
        return np.arange(self.count - n, self.count)

    def arrays(self) -> dict[str, np.ndarray]:
        cols = [np.concatenate(c) for c in zip(*self.chunks, strict=True)]
        return dict(zip(("pos", "nrm", "uv", "b0", "b1", "w0"), cols, strict=True))


def _ribbon(path: np.ndarray, out: np.ndarray, width: np.ndarray):
    """A strand: three vertices across (edge, raised middle, edge) at each path point."""
    tangent = _normalize(np.gradient(path, axis=0))
    across = _normalize(np.cross(tangent, out))
    half = (width / 2)[:, None]
    pos = np.stack([path - across * half, path + out * half * 0.35, path + across * half], 1)
    nrm = np.stack([_normalize(out - across * 0.5), out, _normalize(out + across * 0.5)], 1)
    n = len(path)
    uv = np.stack(np.meshgrid([0.0, 0.5, 1.0], np.linspace(0, 1, n)), -1)[..., ::1]
    return pos, nrm, uv, _grid_triangles(n, 3)


def _tube(path: np.ndarray, radius: np.ndarray, sides: int = 7):
    """A closed tube around `path` (seam duplicated for the texture)."""
    tangent = _normalize(np.gradient(path, axis=0))
    ref = np.where(np.abs(tangent[:, 1:2]) > 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    e1 = _normalize(np.cross(tangent, ref))
    e2 = np.cross(tangent, e1)
    a = np.linspace(0, 2 * np.pi, sides + 1)
    ring = np.cos(a)[None, :, None] * e1[:, None] + np.sin(a)[None, :, None] * e2[:, None]
    pos = path[:, None] + ring * radius[:, None, None]
    uv = np.stack(np.meshgrid(a / (2 * np.pi), np.linspace(0, 1, len(path))), -1)
    return pos, ring, uv, _grid_triangles(len(path), sides + 1)


def _resample(points: np.ndarray, n: int) -> np.ndarray:
    """`n` points evenly spaced along a polyline."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0, s[-1], n)
    return np.stack([np.interp(t, s, points[:, k]) for k in range(points.shape[1])], 1)


def _bezier(p0, p1, p2, n: int) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t**2 * np.asarray(p2)


# ------------------------------------------------------------------------------------ the face


def _eye_top(xo: np.ndarray, tilt: float) -> np.ndarray:
    """The upper lid's edge in eye half-heights; xo runs from the inner (-1) to the outer corner."""
    xo = np.clip(xo, -1.0, 1.0)
    return 0.95 * (1 - xo**2) ** 0.45 + tilt * xo + 0.05


def _eye_bottom(xo: np.ndarray, tilt: float) -> np.ndarray:
    xo = np.clip(xo, -1.0, 1.0)
    return -0.8 * (1 - xo**2) ** 0.7 + tilt * xo


def _eye_closed(xo: np.ndarray, tilt: float) -> np.ndarray:
    """Where the lid's edge rests with the eye shut: just below the lower edge."""
    return _eye_bottom(xo, tilt) - 0.06


def _eye_smiling(xo: np.ndarray, tilt: float) -> np.ndarray:
    """Where the lid's edge rests in a smile wink: an upward arc (⌒) across the eye."""
    xo = np.clip(xo, -1.0, 1.0)
    return -0.4 + 0.55 * (1 - xo**2) ** 0.8 + tilt * xo


def _face_box(spec: CharacterSpec) -> tuple[float, float]:
    """(half-size, centre y) of the square of the face the face texture covers."""
    return 1.6 * spec.head_width, spec.eye_y - 0.3


def _face_uv(spec: CharacterSpec, pos: np.ndarray) -> np.ndarray:
    half, yc = _face_box(spec)
    return np.stack([(pos[..., 0] + half) / (2 * half), (yc + half - pos[..., 1]) / (2 * half)], -1)


class _Face:
    """The parts of the head: skin, eyes with lids and lashes, brows, mouth; and their morphs."""

    def __init__(self, spec: CharacterSpec, mesh: _Mesh) -> None:
        self.spec, self.mesh, self.shape = spec, mesh, head_shape(spec)
        self.morphs: dict[str, dict[int, np.ndarray]] = {}
        self.lower_lashes: list[np.ndarray] = []  # vertex ids, for procedural_tha3's morphs
        self.mouth_ids = np.zeros(0, np.int64)

    def offset(self, morph: str, indices: np.ndarray, delta: np.ndarray) -> None:
        moved = np.linalg.norm(delta.reshape(-1, 3), axis=1) > 1e-6
        table = self.morphs.setdefault(morph, {})
        for i, d in zip(indices[moved].tolist(), delta.reshape(-1, 3)[moved], strict=True):
            table[i] = table.get(i, 0) + d

    def skin(self) -> None:
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
        self.skin_ids = self.mesh.add(
            "skin", pos, nrm, _face_uv(self.spec, pos), np.concatenate(cells), _HEAD
        )
        self.skin_pos = pos

    def eye(self, side: int) -> None:
        """One eye; side +1 is the character's left (+x), -1 its right."""
        s, tilt = self.spec, self.spec.eye_tilt
        ew, eh, cx = s.eye_half_width, s.eye_half_height, side * s.eye_x
        world = lambda xo, yn: (cx + side * xo * ew, s.eye_y + yn * eh)  # noqa: E731
        name = "left" if side > 0 else "right"

        # The white, the iris and the socket round the opening: procedural_tha3._Eyes.

        # The upper lid: a skin patch above the eye whose lower edge slides down over it.
        xo = np.linspace(-1.15, 1.15, 15)
        frac = np.linspace(0, 1, 5)[:, None]
        upper = _eye_top(xo, tilt) + 0.5
        rest_y = _eye_top(xo, tilt) + 0.04 + frac * (upper - _eye_top(xo, tilt) - 0.04)
        shut_y = _eye_closed(xo, tilt) + frac * (upper - _eye_closed(xo, tilt))
        smile_y = _eye_smiling(xo, tilt) + frac * (upper - _eye_smiling(xo, tilt))
        xx = np.broadcast_to(xo, rest_y.shape)
        rest, nrm = self.shape.on_face(*world(xx, rest_y), _LID_LIFT)
        shut, shut_nrm = self.shape.on_face(*world(xx, shut_y), _LID_LIFT)
        smiling, _ = self.shape.on_face(*world(xx, smile_y), _LID_LIFT)
        nrm = nrm + shut_nrm  # morphs keep normals: halfway shades well open and shut
        ids = self.mesh.add("skin", rest, nrm, _face_uv(s, rest), _grid_triangles(5, 15), _HEAD)
        self._blink(name, ids, shut - rest, smiling - rest)

        # The lower lid: skin lying below the eye, unseen at rest; a smile wink lifts its upper
        # edge to meet the arc of the upper lid (a neutral closure leaves it).
        bottom = _eye_bottom(xo, tilt) - 0.03
        low_rest = bottom - frac[::-1] * 0.55
        low_smile = low_rest + (1 - frac[::-1]) * (_eye_smiling(xo, tilt) - 0.06 - bottom)
        rest, nrm = self.shape.on_face(*world(xx, low_rest), _LID_LIFT - 0.004)
        lifted, _ = self.shape.on_face(*world(xx, low_smile), _LID_LIFT - 0.004)
        ids = self.mesh.add("skin", rest, nrm, _face_uv(s, rest), _grid_triangles(5, 15), _HEAD)
        self.offset(self.spec.wink_names(name)[1], ids, lifted - rest)

        # The upper lash line, thicker towards the outer corner, with a flick past it.
        xo = np.linspace(-1.02, 1.16, 14)
        top = _eye_top(xo, tilt) + np.clip(xo - 1, 0, None) * 1.2
        thick = (0.14 + 0.2 * np.clip((xo + 1) / 2, 0, 1) ** 1.5) * np.where(xo > 1, 0.5, 1.0)
        lash_y = np.stack([top - 0.08, top + thick])
        delta_y = _eye_closed(xo, tilt) - _eye_top(xo, tilt)
        smile_dy = _eye_smiling(xo, tilt) - _eye_top(xo, tilt)
        xx = np.broadcast_to(xo, lash_y.shape)
        rest, nrm = self.shape.on_face(*world(xx, lash_y), _LASH_LIFT)
        shut, _ = self.shape.on_face(*world(xx, lash_y + delta_y), _LASH_LIFT)
        smiling, _ = self.shape.on_face(*world(xx, lash_y + smile_dy), _LASH_LIFT)
        ids = self.mesh.add("lashes", rest, nrm, np.zeros((28, 2)), _grid_triangles(2, 14), _HEAD)
        self._blink(name, ids, shut - rest, smiling - rest)

        # A short lower lash towards the outer corner (a smile wink lifts it with the lower lid).
        xo = np.linspace(0.15, 1.0, 6)
        low = np.stack([_eye_bottom(xo, tilt) - 0.07, _eye_bottom(xo, tilt) + 0.0])
        lift_y = _eye_smiling(xo, tilt) - 0.06 - (_eye_bottom(xo, tilt) - 0.03)
        xx = np.broadcast_to(xo, low.shape)
        pos, nrm = self.shape.on_face(*world(xx, low), _LASH_LIFT)
        lifted, _ = self.shape.on_face(*world(xx, low + lift_y), _LASH_LIFT)
        ids = self.mesh.add("lashes", pos, nrm, np.zeros((12, 2)), _grid_triangles(2, 6), _HEAD)
        self.offset(self.spec.wink_names(name)[1], ids, lifted - pos)
        self.lower_lashes.append(ids)

        # The brow, arched, tapering outwards; 上 raises it.
        xo = np.linspace(-1.0, 1.1, 10)
        mid = 1.6 + 0.3 * (1 - xo**2) + 0.3 * tilt * xo
        half = 0.09 * (1.0 - 0.6 * (xo + 1) / 2.1)
        brow_y = np.stack([mid - half, mid + half])
        xx = np.broadcast_to(xo, brow_y.shape)
        rest, nrm = self.shape.on_face(*world(xx, brow_y), _BROW_LIFT)
        up, _ = self.shape.on_face(*world(xx, brow_y + 0.18), _BROW_LIFT)
        ids = self.mesh.add("brows", rest, nrm, np.zeros((20, 2)), _grid_triangles(2, 10), _HEAD)
        self.offset("上", ids, up - rest)

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
        rest, nrm = self.shape.on_face(xx, np.broadcast_to(line, (4, 11)), _MOUTH_LIFT)
        # あ: the lower edge rides on the skin below, which itself drops with the jaw.
        depth = frac * open_h * (1 - (x / hw) ** 2) ** 0.6
        a_pos, _ = self.shape.on_face(xx, line - (1 - _JAW_SHARE) * depth, _MOUTH_LIFT)
        a_pos[..., 1] -= _JAW_SHARE * depth
        i_y = line - frac * 0.3 * open_h * (1 - (x / hw) ** 4)
        i_pos, _ = self.shape.on_face(xx * 1.3, i_y, _MOUTH_LIFT)
        uv = np.stack(np.meshgrid((x / hw + 1) / 2, frac[:, 0]), -1)
        tris = _grid_triangles(4, 11)
        ids = self.mesh.add("mouth", rest, nrm, uv, tris, _HEAD, shape=a_pos)
        self.mouth_ids = ids
        self.offset("あ", ids, a_pos - rest)
        self.offset("い", ids, i_pos - rest)

        # The jaw drops with あ: skin below the mouth line, in front, near the centre line.
        p = self.skin_pos
        below = np.clip((s.mouth_y - p[:, 1]) / 0.25, 0, 1)
        weight = below**2 * (3 - 2 * below) * np.exp(-((p[:, 0] / (3 * hw)) ** 2))
        weight *= np.clip(-p[:, 2] / (0.5 * s.head_depth), 0, 1)
        drop = np.zeros_like(p)
        drop[:, 1] = -_JAW_SHARE * open_h * weight
        self.offset("あ", self.skin_ids, drop)

    def mouth_half_width(self) -> float:
        return 0.8 * self.spec.eye_half_width


# ----------------------------------------------------------------------------------------- hair


def _hair(spec: CharacterSpec, mesh: _Mesh, rng: np.random.Generator) -> None:
    shape, lift = head_shape(spec), _cap_lift(spec)

    # The cap: the skull's surface lifted, down to a hairline high in front and low behind.
    rows, cols = 14, 45
    phi = np.linspace(-np.pi, np.pi, cols)
    back = (1 - np.cos(phi)) / 2
    end = 0.62 + (2.3 - 0.62) * back**0.6
    theta = np.linspace(0, 1, rows)[:, None] * end[None, :]
    pos = shape.point(theta, phi[None, :], lift)
    pos[0] = [0.0, spec.head_top_y, 0.0]
    nrm = shape.normal(theta, phi[None, :])
    nrm[0] = [0, 1, 0]
    uv = np.stack(np.meshgrid((phi + np.pi) / (2 * np.pi), np.linspace(0, 0.55, rows)), -1)
    mesh.add("hair", pos, nrm, uv, _grid_triangles(rows, cols), _HEAD)

    def strand(path: np.ndarray, out: np.ndarray, width: np.ndarray) -> None:
        pos, nrm, uv, tris = _ribbon(path, out, width)
        mesh.add("hair", pos, nrm, uv, tris, _HEAD)

    def surface_path(phi0: float, theta0: float, theta1: float, curl: float, lift_: float, n=12):
        t = np.linspace(0, 1, n)
        th, ph = theta0 + (theta1 - theta0) * t, phi0 + curl * t**2
        return shape.point(th, ph, lift_ + 0.04 * t), shape.normal(th, ph)

    def theta_at(phi0: float, y: float) -> float:
        th = np.linspace(0.05, 2.2, 200)
        ys = shape.point(th, np.full_like(th, phi0))[:, 1]
        return float(np.interp(-y, -ys, th))

    # Bangs over the forehead; the outer ones longer.
    n = spec.bangs
    spread = 1.25
    brow = spec.eye_y + 1.75 * spec.eye_half_height
    for i in range(n):
        phi0 = -spread + 2 * spread * i / (n - 1) + float(rng.uniform(-0.05, 0.05))
        side = abs(phi0) / spread
        tip_y = brow - spec.bang_length * 1.6 * spec.eye_half_height - side**2 * 0.6
        tip_y += float(rng.uniform(-0.12, 0.12))
        path, out = surface_path(
            phi0,
            0.2,
            theta_at(phi0, tip_y),
            float(rng.uniform(-0.12, 0.12)),
            lift + 0.025 * (i % 2),
        )
        t = np.linspace(0, 1, len(path))
        strand(path, out, 2 * spread / (n - 1) * 1.45 * (1 - t) ** 0.75 * shape.w + 0.005)

    # Side locks hang in front of the ears.
    if spec.side_locks:
        length = float(rng.uniform(0.3, 1.6))
        for side in (-1, 1):
            path, out = surface_path(side * 1.35, 0.8, 1.75, 0.0, lift + 0.03, n=8)
            drop = path[-1] + np.linspace(0, 1, 10)[1:, None] * [
                0.0,
                -(path[-1, 1] - spec.chin_y + length),
                -0.1,
            ]
            full = _resample(np.concatenate([path, drop]), 16)
            outs = _normalize(full * [1, 0, 1])
            t = np.linspace(0, 1, 16)
            strand(full, outs, 0.42 * (1 - t) ** 0.6 + 0.01)

    # Back hair hanging behind.
    if spec.back_hair != "short":
        bottom = spec.chin_y - (0.6 if spec.back_hair == "medium" else 3.2)
        for phi0 in np.linspace(np.pi * 0.55, np.pi * 1.45, 8):
            phi0 = (phi0 + np.pi) % (2 * np.pi) - np.pi
            path, _ = surface_path(phi0, 1.0, 2.0, 0.0, lift + 0.03, n=6)
            drop = path[-1] + np.linspace(0, 1, 9)[1:, None] * [0.0, bottom - path[-1, 1], 0.15]
            full = _resample(np.concatenate([path, drop]), 14)
            t = np.linspace(0, 1, 14)
            strand(full, _normalize(full * [1, 0, 1]), 0.75 * (1 - t) ** 0.5 + 0.02)

    top = np.array([0.0, spec.head_top_y, 0.0])
    if spec.ahoge:
        h = spec.head_height
        path = _bezier(
            top - np.array([0, 0.05, 0]),
            top + np.array([0.05, 0.6 * h, 0.1]),
            top + np.array([0.12, 0.45 * h, -0.5]),
            10,
        )
        tangent = _normalize(np.gradient(path, axis=0))
        out = _normalize(np.cross(tangent, [[1.0, 0.0, 0.0]]))
        strand(path, out, 0.16 * (1 - np.linspace(0, 1, 10)) ** 0.8 + 0.005)

    for k in range(spec.spikes):
        phi0 = np.pi + (k - (spec.spikes - 1) / 2) * 0.7
        root = shape.point(0.55, phi0, lift - 0.05)
        direction = _normalize(shape.normal(0.55, phi0) + np.array([0.0, 1.2, 0.0]))
        path = root + np.linspace(0, 1, 6)[:, None] * direction * float(rng.uniform(0.5, 0.8))
        pos, nrm, uv, tris = _tube(path, 0.2 * (1 - np.linspace(0, 1, 6)) + 0.003, sides=6)
        mesh.add("hair", pos, nrm, uv, tris, _HEAD)

    if spec.twin_tails:
        bottom = spec.chin_y - float(rng.uniform(1.5, 3.5))
        for side in (-1, 1):
            root = shape.point(0.75, side * 1.9, lift)
            p1 = root + np.array([side * 0.9, 0.25, 0.1])
            p2 = [side * (shape.w + 0.7), bottom, root[2] + 0.3]
            path = _bezier(root, p1, p2, 16)
            t = np.linspace(0, 1, 16)
            radius = 0.16 + 0.2 * np.sin(np.pi * np.clip(t * 1.6, 0, 1)) ** 0.7 * (1 - t) + 0.0
            radius = radius * (1 - t**3) + 0.01
            pos, nrm, uv, tris = _tube(path, radius, sides=7)
            mesh.add("hair", pos, nrm, uv, tris, _HEAD)


# ------------------------------------------------------------------------------------ ornaments


def _revolution(
    profile: list[tuple[float, float, float]], rx: float, rz: float, segments: int = 28
):
    """A surface of revolution about the y axis: `profile` rows of (y, radius scale, normal y)
    on an ellipse of radii (rx, rz); returns pos, nrm, uv, tris."""
    a = np.linspace(0, 2 * np.pi, segments + 1)
    ring = np.stack([np.sin(a) * rx, np.zeros_like(a), -np.cos(a) * rz], -1)
    pos = np.array([ring * k + [0.0, y, 0.0] for y, k, _ in profile])
    out = np.stack([np.sin(a) / rx, np.zeros_like(a), -np.cos(a) / rz], -1)
    nrm = np.array([_normalize(out + np.array([0.0, ny, 0.0])) for _, _, ny in profile])
    uv = np.zeros((*pos.shape[:-1], 2))
    return pos, nrm, uv, _grid_triangles(len(profile), segments + 1)


def _ornament(spec: CharacterSpec, mesh: _Mesh) -> None:
    """The seed's head ornament (see `ORNAMENTS`), above or beside the hair: never part of the
    head box, whose true top stays `spec.head_top_y`."""
    if spec.ornament == "none":
        return
    shape, lift = head_shape(spec), _cap_lift(spec)
    w, h, top = spec.head_width, spec.head_height, spec.head_top_y
    bone = _ORNAMENT_BONE if _has_ornament_bone(spec) else _HEAD

    def add(pos, nrm, uv, tris):
        mesh.add("ornament", pos, nrm, uv, tris, bone)

    def band(path: np.ndarray, out: np.ndarray, width: float):
        add(*_ribbon(path, out, np.full(len(path), width)))

    if spec.ornament == "bow":
        # A bow on the crown, to the front: a knot and two ribbon loops rising sideways.
        knot = shape.point(0.5, 0.0, lift + 0.06)
        for side in (-1, 1):
            t = np.linspace(0, 2 * np.pi, 25)
            reach, rise = 0.85 * w, top + 0.45 * h - knot[1]
            loop = knot + np.stack(
                [
                    side * reach * (1 - np.cos(t)) / 2,
                    rise * (1 - np.cos(t)) / 2 * 0.8 + 0.32 * h * np.sin(t),
                    -0.12 * np.sin(t) ** 2,
                ],
                -1,
            )
            band(loop, np.tile([0.0, 0.0, -1.0], (len(loop), 1)), 0.42 * h)
        add(*_tube(knot + np.array([[-0.12, 0, 0], [0.12, 0, 0]]), np.full(2, 0.16), sides=8))
    elif spec.ornament == "headband":
        # A band over the crown from ear to ear, lying on the hair.
        theta = np.linspace(-1.55, 1.55, 31)
        path = shape.point(np.abs(theta), np.sign(theta) * 1.3, lift + 0.05)
        band(path, shape.normal(np.abs(theta), np.sign(theta) * 1.3), 0.22)
    elif spec.ornament == "hat":
        # A hat whose crown encloses the top of the hair, with a brim.
        base = top - 0.3 * h
        k = np.sqrt(max(1 - ((base - spec.head_centre_y) / (h + lift)) ** 2, 0.05)) + 0.08
        crown = [(base, 1.5, -0.3), (base, 1.0, 0.0), (top + 0.5 * h, 0.9, 0.3)]
        crown += [(top + 0.55 * h, 0.5, 1.0), (top + 0.56 * h, 0.0, 1.0)]
        add(*_revolution(crown, k * w, k * spec.head_depth))
    elif spec.ornament == "flower":
        # A flower pinned to the side of the head, above the ear.
        side = 1 if spec.wink_side == "left" else -1
        theta, phi = 0.8, side * 1.25
        centre = shape.point(theta, phi, lift + 0.05)
        normal = shape.normal(theta, phi)
        e1 = _normalize(np.cross(normal, [0.0, 1.0, 0.0]))
        e2 = np.cross(normal, e1)
        for k in range(5):
            a = 2 * np.pi * k / 5
            d = np.cos(a) * e1 + np.sin(a) * e2
            path = centre + np.linspace(0.03, 0.42, 6)[:, None] * d + 0.02 * normal
            width = 0.28 * np.sin(np.linspace(0.2, np.pi - 0.2, 6))
            add(*_ribbon(path, np.tile(normal, (6, 1)), width))
        add(*_tube(centre + np.outer([0.0, 0.06], normal), np.full(2, 0.08), sides=8))
    else:  # headphones: a band standing off the hair and a cup over each ear
        theta = np.linspace(-1.5, 1.5, 31)
        path = shape.point(np.abs(theta), np.sign(theta) * np.pi / 2, lift + 0.14)
        add(*_tube(path, np.full(len(path), 0.07), sides=8))
        for side in (-1, 1):
            x = side * (w + lift + 0.1)
            axis = np.array([[x, spec.eye_y + 0.05, 0.0], [x + side * 0.3, spec.eye_y + 0.05, 0.0]])
            add(*_tube(axis, np.array([0.42, 0.38]), sides=12))


# --------------------------------------------------------------------------------- neck, torso


def _body(spec: CharacterSpec, mesh: _Mesh) -> tuple[float, float]:
    """Neck (skin) and shoulders (clothes); returns (neck base y, head bone y)."""
    shoulder_y = spec.chin_y - spec.neck_length
    head_y = spec.chin_y + 0.1
    r = spec.neck_radius
    a = np.linspace(0, 2 * np.pi, 17)
    y = np.linspace(shoulder_y - 0.4, spec.chin_y + 0.7, 10)
    ring = np.stack([np.sin(a), np.zeros_like(a), -np.cos(a)], -1)
    pos = ring[None] * r + np.stack([np.zeros_like(y), y, np.full_like(y, 0.15)], -1)[:, None]
    nrm = np.broadcast_to(ring, pos.shape)
    # 頭 above the jaw line, 首 below, blended (BDEF2) across the seam; 上半身 at the base.
    w_head = np.clip((pos[..., 1] - (head_y - 0.3)) / 0.6, 0, 1)
    w_neck = np.clip((pos[..., 1] - (shoulder_y - 0.25)) / 0.4, 0, 1)
    lower = w_head <= 0
    b0 = np.where(lower, _NECK, _HEAD)
    b1 = np.where(lower, _UPPER, _NECK)
    w0 = np.where(lower, w_neck, w_head)
    uv = np.broadcast_to([0.5, 0.985], (*pos.shape[:-1], 2))
    mesh.add("skin", pos, nrm, uv, _grid_triangles(10, 17), b0, b1, w0)

    # Shoulders: superellipse rings from a collar round the neck down to the chest.
    sw = spec.shoulder_width
    prof = [  # (dy, half-width, half-depth)
        (0.22, r + 0.07, r + 0.07),
        (0.0, r + 0.3, 0.5),
        (-0.22, 0.8 * sw, 0.62),
        (-0.55, sw, 0.7),
        (-1.3, 0.97 * sw, 0.72),
        (-2.8, 0.85 * sw, 0.66),
    ]
    a = np.linspace(0, 2 * np.pi, 33)
    c, s = np.sin(a), -np.cos(a)
    e = 0.6
    pos = np.array(
        [
            np.stack(
                [
                    hw * np.sign(c) * np.abs(c) ** e,
                    np.full_like(a, shoulder_y + dy),
                    0.15 + hd * np.sign(s) * np.abs(s) ** e,
                ],
                -1,
            )
            for dy, hw, hd in prof
        ]
    )
    # Outwards from each ring's own centre (not the origin, whose y made them point up).
    nrm = _normalize((pos - [0.0, 0.0, 0.15]) * [1, 0, 1] + [0, 0.3, 0])
    mesh.add("clothes", pos, nrm, np.zeros((*pos.shape[:-1], 2)), _grid_triangles(6, 33), _UPPER)
    return shoulder_y, head_y


# ------------------------------------------------------------------------------------ textures


def _pixels(width: int, height: int, ss: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates u, v in 0..1 of a supersampled image (float32)."""
    u = (np.arange(width * ss, dtype=np.float32) + 0.5) / (width * ss)
    v = (np.arange(height * ss, dtype=np.float32) + 0.5) / (height * ss)
    return np.meshgrid(u, v)


def _downsample(img: np.ndarray, ss: int = 2) -> np.ndarray:
    h, w, c = img.shape
    small = img.reshape(h // ss, ss, w // ss, ss, c).mean(axis=(1, 3))
    return np.clip(np.round(small * 255), 0, 255).astype(np.uint8)


def _blend(img: np.ndarray, color, alpha: np.ndarray) -> None:
    """Paint `color` over `img` with per-pixel `alpha` (only where it is positive)."""
    alpha = np.broadcast_to(alpha, img.shape[:2])
    where = alpha > 0
    a = np.minimum(alpha[where], 1).astype(np.float32)[:, None]
    color = np.asarray(color, np.float32)
    if color.ndim > 1:
        color = color[where]
    img[where, :3] = img[where, :3] * (1 - a) + color * a


def _face_texture(spec: CharacterSpec) -> np.ndarray:
    """Skin, blush under the eyes and the nose (the mouth line is geometry: procedural_tha3)."""
    half, yc = _face_box(spec)
    u, v = _pixels(512, 512, ss=1)  # features have smooth edges of their own
    x, y = u * 2 * half - half, yc + half - v * 2 * half
    img = np.ones((*u.shape, 3), np.float32) * np.float32(spec.skin)
    for side in (-1, 1):
        bx, by = side * (spec.eye_x + 0.04), spec.eye_y - 1.5 * spec.eye_half_height
        r2 = ((x - bx) / (1.1 * spec.eye_half_width)) ** 2 + ((y - by) / 0.08) ** 2
        _blend(img, (1.0, 0.45, 0.5), 0.45 * np.clip(1 - r2, 0, 1) ** 1.5)
    nose_y = spec.eye_y - 0.6 * (spec.eye_y - spec.mouth_y)
    r2 = ((x - 0.015) / 0.028) ** 2 + ((y - nose_y) / 0.014) ** 2
    _blend(img, np.asarray(spec.skin) * 0.7, 0.8 * np.clip((1 - r2) * 3, 0, 1))
    return _downsample(img, ss=1)


def _hair_texture(spec: CharacterSpec, rng: np.random.Generator) -> np.ndarray:
    u, v = _pixels(128, 256)
    shade = np.ones_like(u)
    for freq, amp in ((7, 0.07), (13, 0.06), (29, 0.05)):
        shade += amp * np.sin(2 * np.pi * (freq * u + rng.uniform()))
    shade *= 1 - 0.28 * v
    img = np.asarray(spec.hair) * shade[..., None]
    band = 0.2 + 0.012 * np.sin(2 * np.pi * (5 * u + rng.uniform()))
    light = np.clip(1 - np.abs(v - band) / 0.035, 0, 1)
    _blend(img, np.clip(np.asarray(spec.hair) * 0.6 + 0.4, 0, 1), 0.35 * light)
    return _downsample(np.clip(img, 0, 1))


def _mouth_texture() -> np.ndarray:
    u, v = _pixels(64, 64)
    img = np.ones((*u.shape, 3), np.float32) * np.float32((0.35, 0.08, 0.1))
    _blend(img, (0.97, 0.97, 0.97), v < 0.16)
    tongue = ((u - 0.5) / 0.38) ** 2 + ((v - 1.0) / 0.4) ** 2 < 1
    _blend(img, (0.85, 0.4, 0.42), tongue)
    return _downsample(img)


def _save_png(path: Path, pixels: np.ndarray) -> None:
    mode = "RGBA" if pixels.shape[-1] == 4 else "RGB"
    Image.fromarray(pixels, mode).save(path, format="PNG", optimize=False, compress_level=6)


# ------------------------------------------------------------------------------------ assembly


def _bones(spec: CharacterSpec, shoulder_y: float, head_y: float) -> list[PmxBone]:
    shape = head_shape(spec)
    eye_z = float(shape.on_face(np.array(spec.eye_x), np.array(spec.eye_y), 0.0)[0][2]) + 0.35
    rot, move, shown = 0x0002, 0x0004, 0x0008 | 0x0010
    return [
        PmxBone("センター", -1, (0.0, 8.0, 0.0), rot | move | shown, english_name="center"),
        PmxBone(
            "上半身",
            0,
            (0.0, shoulder_y - 2.2, 0.1),
            rot | shown | 1,
            tail_bone=2,
            english_name="upper body",
        ),
        PmxBone(
            "首", 1, (0.0, shoulder_y, 0.15), rot | shown | 1, tail_bone=3, english_name="neck"
        ),
        PmxBone(
            "頭",
            2,
            (0.0, head_y, 0.1),
            rot | shown,
            tail_offset=(0.0, 1.2, 0.0),
            english_name="head",
        ),
        PmxBone("両目", 3, (0.0, spec.head_top_y + 0.6, 0.0), rot | shown, english_name="eyes"),
        PmxBone("左目", 3, (spec.eye_x, spec.eye_y, eye_z), rot | shown, english_name="eye_L"),
        PmxBone("右目", 3, (-spec.eye_x, spec.eye_y, eye_z), rot | shown, english_name="eye_R"),
    ]


def _with_ornament_bone(spec: CharacterSpec, bones: list[PmxBone]) -> list[PmxBone]:
    """`bones` (all the others) plus the ornament's own bone, hung on 頭, when it has one."""
    if not _has_ornament_bone(spec):
        return bones
    if len(bones) != _ORNAMENT_BONE:
        raise RuntimeError(
            f"the ornament bone is {_ORNAMENT_BONE}, but {len(bones)} bones precede it"
        )
    rot, shown = 0x0002, 0x0008 | 0x0010
    top = (0.0, spec.head_top_y, 0.0)
    return [*bones, PmxBone(ORNAMENT_NAMES[spec.ornament], _HEAD, top, rot | shown)]


def _has_ornament_bone(spec: CharacterSpec) -> bool:
    """A named bow or flower hangs on a bone of its own (named like it), as in real models."""
    return spec.ornament_named and spec.ornament in ("bow", "flower")


def _materials(spec: CharacterSpec, counts: dict[str, int]) -> list[PmxMaterial]:
    from mmd_loader import procedural_tha3 as tha3

    edge, dark = 0x02 | 0x04 | 0x08 | 0x10, tuple(np.asarray(spec.hair) * 0.35)

    def plain(rgb, **kw):
        return dict(diffuse=(*rgb, 1.0), ambient=tuple(np.asarray(rgb) * 0.6), **kw)

    table = {
        "skin": ("肌", dict(texture=0, ambient=(0.6, 0.6, 0.6), flags=edge)),
        "clothes": ("服", plain(spec.clothes, flags=edge)),
        "mouth": ("口", dict(texture=3, ambient=(0.6, 0.6, 0.6))),
        "brows": ("眉", plain(dark)),
        "lashes": ("まつげ", plain((0.12, 0.08, 0.1))),
        "hair": ("髪", dict(texture=2, ambient=(0.6, 0.6, 0.6), flags=edge | 0x01)),
        "eyes": ("目", dict(texture=1, ambient=(0.7, 0.7, 0.7), flags=0x02)),
    }
    if spec.ornament != "none":
        named = spec.ornament_named
        name = ORNAMENT_NAMES[spec.ornament] if named else f"材質{_MATERIALS.index('ornament')}"
        colour = _ornament_colour(spec)
        table["ornament"] = (name, plain(colour, flags=edge | 0x01))
    table.update(tha3.materials(spec))
    mats = []
    for key in _MATERIALS:
        if key not in table:
            continue  # no ornament: no material for it
        name, kw = table[key]
        english = (spec.ornament if spec.ornament_named else "") if key == "ornament" else key
        mats.append(PmxMaterial(name, counts[key], english_name=english, **kw))  # type: ignore[arg-type]
    return mats


def _ornament_colour(spec: CharacterSpec) -> Color:
    rng = np.random.default_rng([spec.seed, 0x0A8])
    if spec.ornament in ("bow", "headband") and rng.random() < 0.5:
        return (0.96, 0.96, 0.97)  # white ribbons, as Rin's
    return _hsv(
        float(rng.uniform(0, 1)), float(rng.uniform(0.4, 0.9)), float(rng.uniform(0.3, 0.9))
    )


def build_character(spec: CharacterSpec, texture_dir: str) -> tuple[PmxData, dict[str, np.ndarray]]:
    """The PMX data and the texture images (file name -> pixels) for `spec`; textures are
    referenced as `texture_dir` + separator + file name."""
    from mmd_loader import procedural_tha3 as tha3  # it builds on this module's parts

    rng = np.random.default_rng([spec.seed, 0x4A1])
    mesh = _Mesh()
    face = _Face(spec, mesh)
    face.skin()
    for side in (1, -1):
        face.eye(side)
    face.mouth()
    _hair(spec, mesh, rng)
    _ornament(spec, mesh)
    shoulder_y, head_y = _body(spec, mesh)
    parts = tha3.add_parts(spec, mesh, face, shoulder_y)
    parts.widen_i()

    v = mesh.arrays()
    tha3.reweight_upper_body(spec, v, shoulder_y)
    tris = {m: np.concatenate(t) if t else np.zeros((0, 3), int) for m, t in mesh.tris.items()}
    n = len(v["pos"])
    bone_indices = np.zeros((n, 4), np.int32)
    bone_indices[:, 0], bone_indices[:, 1] = v["b0"], v["b1"]
    bone_weights = np.zeros((n, 4), np.float32)
    bone_weights[:, 0], bone_weights[:, 1] = v["w0"], 1 - v["w0"]
    blended = (v["w0"] > 0) & (v["w0"] < 1)
    bone_weights[~blended] = [1, 0, 0, 0]
    bone_indices[~blended, 1] = 0
    bone_indices[(v["w0"] <= 0), 0] = v["b1"][v["w0"] <= 0]

    winks = [*spec.wink_names("left"), *spec.wink_names("right")]
    panels = {"まばたき": 2, **dict.fromkeys(winks, 2), "あ": 3, "い": 3, "上": 1}
    morphs = []
    for name, panel in panels.items():
        table = face.morphs[name]
        idx = np.array(sorted(table), np.int32)
        morphs.append(PmxVertexMorph(name, panel, idx, np.array([table[i] for i in idx])))
    morphs += parts.morphs()

    files = ("face.png", "eye.png", "hair.png", "mouth.png", "iris.png")
    refs = [f"{texture_dir}\\{f}" for f in files]
    refs[2] = f"{texture_dir}/{files[2]}"  # real models mix both separators
    data = PmxData(
        name=f"thagen character {spec.seed}",
        english_name=f"thagen character {spec.seed}",
        comment=f"Procedural character, seed {spec.seed}. Made by thagen make-character.",
        positions=v["pos"].astype(np.float32),
        normals=v["nrm"].astype(np.float32),
        uvs=v["uv"].astype(np.float32),
        bone_indices=bone_indices,
        bone_weights=bone_weights,
        deform=np.where(blended, BDEF2, BDEF1).astype(np.uint8),
        triangles=np.concatenate([tris[m] for m in _MATERIALS]).astype(np.int32),
        materials=_materials(spec, {m: len(t) for m, t in tris.items()}),
        bones=_with_ornament_bone(spec, parts.bones(_bones(spec, shoulder_y, head_y))),
        morphs=morphs,
        textures=refs,
    )
    images = {
        "face.png": _face_texture(spec),
        "eye.png": tha3.eye_white_texture(spec),
        "iris.png": tha3.iris_texture(spec),
        "hair.png": _hair_texture(spec, rng),
        "mouth.png": _mouth_texture(),
    }
    return data, images


def write_character(seed: int, out: Path) -> Path:
    """Write the character for `seed` to `out` (.pmx) and its textures to `<stem>_tex/` beside
    it. Same seed, same bytes."""
    out = Path(out)
    if out.suffix.lower() != ".pmx":
        raise ValueError(f"{out}: a character is written as .pmx")
    spec = spec_for_seed(seed)
    tex_dir = out.parent / f"{out.stem}_tex"
    data, images = build_character(spec, tex_dir.name)
    tex_dir.mkdir(parents=True, exist_ok=True)
    for name, pixels in images.items():
        _save_png(tex_dir / name, pixels)
    return write_pmx(out, data)


def spec_dict(spec: CharacterSpec) -> dict:
    """The spec as plain JSON-ready values."""
    return dataclasses.asdict(spec)
