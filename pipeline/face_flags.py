"""Flags about how the face is drawn, from the model's own quality renders (`pipeline.quality`):

- `face_shading_artifacts`: dark plates or lines on the face that the renderer's face shading
  (`mmd_loader.face_parts`: the face lit through its toon ramp) does not remove: a ramp that
  is dark where our light meets the face, geometry in the face's materials that is not part of
  the face, or the face shading switched off (`RenderSettings.face_ramp`). Measured on the
  face's own materials where they are seen, below the eyes (the cheeks, the eyes' lower rims,
  the nose, the mouth): the share of pixels whose light term at the default lighting falls
  below `DARK_LIGHT` of the flat term (ambient 1, no directional light: the colour the author
  painted). Value: that share.
- `overlay_visible`: an expression overlay (`mmd_loader.overlays`) named as one but not lying on
  the face (a sweat drop beside the head, or a name on something else) is drawn at rest;
  value: the pixels it changes, in u² (u the eye separation in pixels, as the eye flags).

Thresholds come from measured distributions: `scripts/rendering_flag_rates.py` prints each
flag's values and false-positive rate on ../shared/mmd and the procedural characters (README,
Quality flags).
"""

from __future__ import annotations

from typing import Any

import numpy as np

DARK_LIGHT = 0.8  # a pixel is dark when lit below this share of its flat colour
MAX_DARK_SHARE = 0.04  # of the face's pixels: more is a flag
MIN_OVERLAY = 0.01  # × u² pixels changed by overlays at rest: more is a flag
CHANGED = 8  # a pixel changed when a channel moves by more than this (as pipeline.quality)


def face_flags(renderer: Any, model: Any, roles: Any, rest: np.ndarray, eyes, u: float) -> list:
    """The flags of this module for a model uploaded to `renderer` (the quality renderer), with
    its rest render `rest` (default lighting) and the eyes' pixel centres."""
    from pipeline.quality import flag

    flags = []
    dark = dark_face_share(renderer, rest, eyes, roles, u)
    if dark is not None and dark > MAX_DARK_SHARE:
        message = (
            f"{dark:.0%} of the face is lit below {DARK_LIGHT:.0%} of its flat colour: "
            "grey plates or lines the face shading could not remove"
        )
        flags.append(flag("face_shading_artifacts", message, None, round(dark, 4)))
    shown = visible_overlays(renderer, model, roles, rest, u)
    if shown is not None and shown[0] > MIN_OVERLAY:
        message = f"expression overlay drawn at rest: {shown[1]} ({shown[0]:.3f} u²)"
        flags.append(flag("overlay_visible", message[:300], None, round(shown[0], 4)))
    return flags


def face_region(rest: np.ndarray, eyes, chin: float, u: float) -> tuple[slice, slice] | None:
    """Rows and columns of the face below the eyes: from a fifth of u under the eyes' centres
    to just above the chin, between the eyes' centres and a quarter of u beyond (the cheeks,
    the lower rims of the eyes, the nose and the mouth: bangs and side locks rarely reach it)."""
    if len(eyes) != 2:
        return None
    size = rest.shape[0]
    x0 = int(max(min(e[0] for e in eyes) - 0.25 * u, 0))
    x1 = int(min(max(e[0] for e in eyes) + 0.25 * u, size))
    y0 = int(max(max(e[1] for e in eyes) + 0.2 * u, 0))
    y1 = int(min(chin - 0.05 * u, size))
    if x1 <= x0 or y1 <= y0:
        return None
    return slice(y0, y1), slice(x0, x1)


def dark_face_share(renderer: Any, rest: np.ndarray, eyes, roles: Any, u: float) -> float | None:
    """The share of the face's seen pixels (its own materials, `mmd_loader.face_parts`, where
    nothing covers them, below the eyes) lit below DARK_LIGHT of their flat colour."""
    from mmd_loader.face_parts import face_parts
    from render import Lighting, Pose

    scene = renderer.scene
    face = scene.face if scene.face.skin else face_parts(scene.model, roles)
    own = face_materials(scene.model, face)
    box = roles.head_box
    point = np.array([[box.center[0], box.chin, box.center[2]]])
    chin = float(renderer.framing.project(point, rest.shape[0])[0, 1])
    region = face_region(rest, eyes, chin, u)
    if region is None or not own:
        return None
    alone = renderer.render(Pose(), only=own)[region]
    flat = renderer.render(Pose(), Lighting(1.0, 0.0), only=own)[region].astype(np.float64)
    seen = (alone == rest[region]).all(axis=2) & (alone[..., 3] == 255)
    bright = flat[..., :3].sum(axis=2)
    measured = seen & (bright > 3 * 24)  # near-black paint (lines, pupils) says nothing
    if not measured.any():
        return None
    ratio = alone[..., :3].astype(np.float64).sum(axis=2) / np.maximum(bright, 1.0)
    return float((measured & (ratio < DARK_LIGHT)).sum() / measured.sum())


def face_materials(model: Any, face: Any) -> frozenset[int]:
    """The face's own materials: its skin, and the materials most of whose triangles are face
    (not the hair a small face part shares a material with)."""
    from mmd_loader.face_parts import material_of_triangles

    owner = material_of_triangles(model)
    lit = face.vertices[model.triangles].all(axis=1) if len(face.vertices) else owner < -1
    mostly = set()
    for i in face.materials(model):
        mine = owner == i
        if lit[mine].mean() >= 0.5:
            mostly.add(i)
    return frozenset(mostly) | face.skin


def visible_overlays(
    renderer: Any, model: Any, roles: Any, rest: np.ndarray, u: float
) -> tuple[float, str] | None:
    """(pixels changed in u², their names) by the overlays the renderer shows although they are
    named as overlays (`Overlays.suspects`); None when there is none."""
    import copy
    import dataclasses

    from render import Pose

    scene = renderer.scene
    suspects = sorted(scene.overlays.suspects)
    if not suspects:
        return None
    hidden = copy.copy(model)
    hidden.materials = [
        dataclasses.replace(m, diffuse=np.array([*m.diffuse[:3], 0.0], np.float32))
        if i in suspects
        else m
        for i, m in enumerate(model.materials)
    ]
    try:
        renderer.set_model(hidden, roles)
        without = renderer.render(Pose())
    finally:
        renderer.set_model(model, roles)
    changed = (np.abs(rest.astype(np.int16) - without.astype(np.int16)).max(axis=2) > CHANGED).sum()
    names = ", ".join(f"material {i} {model.materials[i].name!r}" for i in suspects)
    return float(changed) / u**2, names
