"""Expression overlays (`CharacterSpec.overlays`): thin layers on the face that a PMX hides at
rest and raises with a material morph (`overlay_style="morph"`), or that its PMD-like variant
draws in every pose (`"shown"`): a pale band over the forehead, an anger mark beside the eye, a
blush on each cheek, a tear under each eye, and a sweat drop floating beside the head (the one
overlay that is not on the face). `mmd_loader.overlays` must find them; these are its truth."""

from __future__ import annotations

import numpy as np

from characters.layout import DECAL_LIFT, HEAD
from characters.mesh import Mesh, grid_triangles
from characters.shape import head_shape
from characters.spec import CharacterSpec
from mmd_loader.pmx_writer import PmxMaterialMorph, PmxMaterialOffset

OVERLAY_NAMES = {
    "pale": "青ざめ",
    "anger": "怒りマーク",
    "blush": "照れ",
    "tears": "涙",
    "sweat": "汗",
}
OVERLAY_COLOURS = {
    "pale": (0.45, 0.45, 0.85),
    "anger": (0.9, 0.1, 0.1),
    "blush": (1.0, 0.45, 0.5),
    "tears": (0.6, 0.85, 1.0),
    "sweat": (0.6, 0.85, 1.0),
}
SHOWN_ALPHA = 0.8  # an overlay's alpha when shown (raised by its morph, or always: "shown")


def overlay_materials(spec: CharacterSpec) -> dict[str, tuple[str | None, dict]]:
    """The overlays' materials, as `characters.materials.material_table` holds them (name None:
    named neutrally)."""
    alpha = 0.0 if spec.overlay_style == "morph" else SHOWN_ALPHA
    out = {}
    for kind in spec.overlays:
        rgb = OVERLAY_COLOURS[kind]
        name = OVERLAY_NAMES[kind] if spec.overlay_named else None
        fields = dict(diffuse=(*rgb, alpha), ambient=tuple(np.asarray(rgb) * 0.6), flags=0x01)
        out[f"overlay_{kind}"] = (name, fields)
    return out


def overlay_morphs(spec: CharacterSpec, keys: list[str]) -> list[PmxMaterialMorph]:
    """One material morph per overlay raising its alpha (only for `overlay_style="morph"`);
    `keys`: the character's material keys in file order."""
    if spec.overlay_style != "morph":
        return []
    return [
        PmxMaterialMorph(
            OVERLAY_NAMES[kind],
            4,
            [PmxMaterialOffset(keys.index(f"overlay_{kind}"), 1, (0.0, 0.0, 0.0, SHOWN_ALPHA))],
            english_name=kind,
        )
        for kind in spec.overlays
    ]


def add_overlays(spec: CharacterSpec, mesh: Mesh) -> None:
    """The overlays' geometry, each in its own material."""
    shape = head_shape(spec)
    ew, eh = spec.eye_half_width, spec.eye_half_height

    def patch(kind: str, x: np.ndarray, y: np.ndarray) -> None:
        """A patch on the face over the (rows, cols) grid of points (x, y)."""
        pos, nrm = shape.on_face(x, y, DECAL_LIFT)
        uv = np.zeros((*x.shape, 2))
        mesh.add(f"overlay_{kind}", pos, nrm, uv, grid_triangles(*x.shape), HEAD)

    def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 9):
        a, r = np.meshgrid(np.linspace(0, 2 * np.pi, n), np.linspace(0.05, 1.0, 4), indexing="ij")
        return cx + rx * r * np.cos(a), cy + ry * r * np.sin(a)

    for kind in spec.overlays:
        if kind == "pale":  # a band over the forehead, between the brows and the hairline
            x, y = np.meshgrid(
                np.linspace(-(spec.eye_x + ew), spec.eye_x + ew, 9),
                spec.eye_y + eh * np.linspace(2.1, 3.4, 4),
                indexing="ij",
            )
            patch(kind, x, y)
        elif kind == "anger":  # a cross of four short bars beside the left eye's outer corner
            cx, cy = spec.eye_x + 1.3 * ew, spec.eye_y + 1.4 * eh
            for dx, dy, wide in ((-1, 0, False), (1, 0, False), (0, -1, True), (0, 1, True)):
                hx, hy = (0.35 * ew, 0.07 * ew) if wide else (0.07 * ew, 0.35 * ew)
                x, y = np.meshgrid(
                    cx + 0.22 * ew * dx + np.linspace(-hx, hx, 3),
                    cy + 0.22 * ew * dy + np.linspace(-hy, hy, 3),
                    indexing="ij",
                )
                patch(kind, x, y)
        elif kind == "blush":  # an ellipse on each cheek
            for side in (1, -1):
                patch(kind, *ellipse(side * spec.eye_x, spec.eye_y - 1.7 * eh, 0.8 * ew, 0.35 * eh))
        elif kind == "tears":  # a narrow streak under each eye
            for side in (1, -1):
                x, y = np.meshgrid(
                    side * (spec.eye_x + 0.3 * ew) + np.linspace(-0.08, 0.08, 2) * ew,
                    spec.eye_y - eh * np.linspace(0.95, 2.2, 5),
                    indexing="ij",
                )
                patch(kind, x, y)
        elif kind == "sweat":  # a drop beside the head, off the skin, facing the camera
            cx = spec.head_width + 0.35
            cy = spec.eye_y + 1.5 * eh
            a = np.linspace(0, 2 * np.pi, 13)[:-1]
            ring = np.stack(
                [cx + 0.18 * np.sin(a), cy - 0.25 * np.cos(a), np.full_like(a, -0.3)], -1
            )
            pos = np.concatenate([[[cx, cy, -0.3]], ring])
            nrm = np.tile([0.0, 0.0, -1.0], (len(pos), 1))  # the file's frame: -z faces out
            tris = np.stack([np.zeros(12, int), 1 + np.arange(12), 1 + (np.arange(12) + 1) % 12], 1)
            mesh.add("overlay_sweat", pos, nrm, np.zeros((len(pos), 2)), tris, HEAD)
