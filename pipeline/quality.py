"""Quality flags from a model's own renders: what a person should look at before its examples
poison a dataset.

Each flag is `{"code", "role", "value", "message"}` (`role` for flags about one face role, else
None). Face detection adds the flags geometry can decide (`mmd_loader.roles.FaceRoles.flags`:
smile closures, odd head-box proportions); this module adds those only pixels show, from a few
renders at `QUALITY_SIZE` px, once per model:

- `eye_closure_invisible` (role = the eye): closing the eye changes fewer than
  `MIN_CHANGE` × u² pixels, u the eye separation in pixels, or fewer than `MIN_SHARE` of what
  closing the other eye changes (an eye under an eyepatch, hair over it, a closure morph of the
  wrong mesh). Measured on ../shared/mmd and procedural characters: 0.08–0.27 u² for real
  closures, the two eyes of a model within a factor 0.65 of each other; an eyepatch leaves
  0.04 u² of lid edges against 0.25 for the open eye.
- `mouth_barely_opens`: the same for the mouth (0.11–1.2 u² measured).
- `missing_texture_in_head`: a material whose texture file is missing draws inside the head box
  (it renders in its flat material colour there); value = its triangles in the box.
- `texture_unreadable`: a texture file exists but was not drawn: undecodable, out of memory,
  or over the renderer's texture budget (`Renderer.texture_problems`).
- `dark_face`: opaque near-black pixels cover more than `MAX_DARK` of the face between the eyes
  and the chin (0–0.02 measured; a colour texture that lost its alpha draws a black patch).
- `semi_transparent_head`: more than `MAX_SEMI` of the head's silhouette (eroded by 2 px, so
  anti-aliased edges do not count) is semi-transparent (0–0.03 measured).
- `face_shading_artifacts`, `overlay_visible`: how the face is drawn (`pipeline.face_flags`).
- `parameter_invisible`: set by `thagen review` for tha3 (`pipeline.visibility`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Every flag code: face detection's (geometry) and this module's (pixels).
FLAG_CODES = (
    "smile_closure",
    "head_box_proportions",
    "eye_closure_invisible",
    "mouth_barely_opens",
    "missing_texture_in_head",
    "texture_unreadable",
    "dark_face",
    "semi_transparent_head",
    "face_shading_artifacts",
    "overlay_visible",
    "parameter_invisible",
    "render_failed",
)
QUALITY_SIZE = 128
CHANGED = 8  # a pixel changed when a channel moves by more than this
MIN_CHANGE = 0.03  # × u² pixels
MIN_SHARE = 0.3  # of the other eye's change
MAX_DARK = 0.15
MAX_SEMI = 0.08
DARK_LEVEL = 24


def quality_settings():
    """The renderer settings of the quality renders (small, the default shading)."""
    from render import RenderSettings

    return RenderSettings(size=QUALITY_SIZE, threads=0)


def flag(code: str, message: str, role: str | None = None, value: float | None = None) -> dict:
    return {"code": code, "role": role, "value": value, "message": message}


def render_flags(renderer: Any, model: Any, roles: Any) -> list[dict]:
    """The pixel flags of `model` (already uploaded to `renderer`, whose size is the quality
    size) with its face `roles`."""
    from mmd_loader.face import morph_centre
    from pipeline.face_flags import face_flags
    from poses.roles import EYE_ROLES, MOUTH_ROLE
    from render import Pose

    size = renderer.settings.size
    framing = renderer.framing
    rest = renderer.render(Pose()).astype(np.int16)

    def pixel(point: np.ndarray) -> np.ndarray:
        return framing.project(np.asarray(point, np.float64)[None], size)[0]

    centres = {r: pixel(morph_centre(model, roles.morphs[r])) for r in roles.morphs}
    eyes = [centres[r] for r in EYE_ROLES if r in centres]
    u = abs(eyes[0][0] - eyes[1][0]) if len(eyes) == 2 else 0.25 * size * 0.5
    u = max(float(u), 1.0)
    change = {}
    for role in (*EYE_ROLES, MOUTH_ROLE):
        if role in roles.morphs:
            moved = renderer.render(Pose(morphs={role: 1.0})).astype(np.int16)
            change[role] = float((np.abs(moved - rest).max(axis=2) > CHANGED).sum()) / u**2
    flags = []
    for role, changed in change.items():
        others = [v for r, v in change.items() if r in EYE_ROLES and r != role]
        least = MIN_CHANGE
        if role != MOUTH_ROLE and others:
            least = max(least, MIN_SHARE * others[0])
        if changed < least:
            code = "mouth_barely_opens" if role == MOUTH_ROLE else "eye_closure_invisible"
            what = "opening the mouth" if role == MOUTH_ROLE else f"closing the {role}"
            message = (
                f"{what} ({roles.morphs[role].morph}) changes almost no pixel "
                f"({changed:.3f} u², u = the eye separation)"
            )
            flags.append(flag(code, message, role, round(changed, 4)))
    flags += _texture_flags(renderer, model, roles)
    box = roles.head_box
    top = pixel([box.center[0], box.top, box.center[2]])[1]
    chin = pixel([box.center[0], box.chin, box.center[2]])[1]
    if len(eyes) == 2:
        dark = _dark_share(rest, eyes, chin, u)
        if dark > MAX_DARK:
            message = f"{dark:.0%} of the face below the eyes is opaque near-black"
            flags.append(flag("dark_face", message, None, round(dark, 4)))
    semi = _semi_share(rest, top, chin)
    if semi > MAX_SEMI:
        message = f"{semi:.0%} of the head's silhouette is semi-transparent"
        flags.append(flag("semi_transparent_head", message, None, round(semi, 4)))
    flags += face_flags(renderer, model, roles, rest.astype(np.uint8), eyes, u)
    return flags


def _texture_flags(renderer: Any, model: Any, roles: Any) -> list[dict]:
    flags = []
    box = roles.head_box
    x, y = model.positions[:, 0], model.positions[:, 1]
    in_box = (np.abs(x - box.center[0]) <= box.half_width) & (y >= box.chin) & (y <= box.top)
    for index, material in enumerate(model.materials):
        if not (material.texture_ref or "").strip() or material.texture is not None:
            continue
        lo, hi = material.face_start, material.face_start + material.face_count
        triangles = model.triangles[lo:hi]
        inside = int(in_box[triangles].all(axis=1).sum()) if len(triangles) else 0
        if inside and float(material.diffuse[3]) > 0.0:
            message = (
                f"material {index} {material.name!r}: texture {material.texture_ref.strip()!r} "
                f"is missing and {inside} of its triangles are in the head box"
            )
            flags.append(flag("missing_texture_in_head", message, None, float(inside)))
    for problem in renderer.texture_problems:  # refused by a budget, undecodable, out of memory
        message = (
            f"material {problem.material} {problem.name!r}: {problem.slot} {problem.path} not "
            f"drawn: {problem.reason}"
        )
        flags.append(flag("texture_unreadable", message[:300]))
    return flags


def _dark_share(rest: np.ndarray, eyes: list[np.ndarray], chin: float, u: float) -> float:
    """Share of opaque near-black pixels between the eye centres, from below the eyes to the
    chin (the cheeks, nose and mouth)."""
    y0 = int(max(e[1] for e in eyes) + 0.25 * u)
    y1 = int(chin - 0.05 * u)
    x0, x1 = int(min(e[0] for e in eyes)), int(max(e[0] for e in eyes))
    region = rest[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)]
    if region.size == 0:
        return 0.0
    dark = (region[..., 3] == 255) & (region[..., :3].max(axis=2) < DARK_LEVEL)
    return float(dark.mean())


def _semi_share(rest: np.ndarray, top: float, chin: float) -> float:
    """Share of semi-transparent pixels among the covered pixels of the head's silhouette, 2 px
    in from every edge (anti-aliased edges and the gaps between strands do not count)."""
    alpha = rest[..., 3]
    head = alpha > 0
    head[: max(int(top), 0)] = False
    head[int(chin) + 1 :] = False
    inner = _erode(head, 2)
    if not inner.any():
        return 0.0
    return float((inner & (alpha < 250)).sum() / inner.sum())


def _erode(mask: np.ndarray, steps: int) -> np.ndarray:
    """Binary erosion by `steps` pixels with a cross-shaped neighbourhood."""
    for _ in range(steps):
        padded = np.pad(mask, 1, constant_values=False)
        mask = (
            padded[1:-1, 1:-1]
            & padded[:-2, 1:-1]
            & padded[2:, 1:-1]
            & padded[1:-1, :-2]
            & padded[1:-1, 2:]
        )
    return mask
