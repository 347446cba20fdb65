"""Quality flags from a model's own renders: what a person should look at before its examples
poison a dataset.

Each flag is `{"code", "role", "value", "message"}` (`role` for flags about one face role, else
None). Face detection adds the flags geometry can decide (`mmd_loader.roles.FaceRoles.flags`:
smile closures, odd head-box proportions); this module adds those only pixels show, from a few
renders at `QUALITY_SIZE` px, once per model:

- `eye_closure_invisible` (role = the eye): closing the eye changes fewer than
  `MIN_EYE_CHANGE` × u² pixels, u the eye separation in pixels, or fewer than `MIN_SHARE` of
  what closing the other eye changes (an eye under an eyepatch, hair over it, a closure morph
  of the wrong mesh).
- `mouth_barely_opens`: opening the mouth changes fewer than `MIN_MOUTH_CHANGE` × u² pixels.
- `missing_texture_in_head`: a material whose texture file is missing reaches at least
  `MIN_SEEN` × u² pixels of the head box's rows in the rest render (drawn in two contrasting
  flat colours, the pixels that differ are those a texture would paint; one hidden behind the
  eyes reaches none); value = those pixels / u².
- `texture_unreadable`: a texture file exists but was not drawn: undecodable, out of memory,
  or over the renderer's texture budget (`Renderer.texture_problems`).
- `dark_face`: opaque near-black pixels cover more than `MAX_DARK` of the face between the eyes
  and the chin (a colour texture that lost its alpha draws a black patch).
- `semi_transparent_head`: more than `MAX_SEMI` of the head's silhouette (eroded by 2 px, so
  anti-aliased edges do not count) is semi-transparent.
- `face_shading_artifacts`, `overlay_visible`: how the face is drawn (`pipeline.face_flags`;
  their thresholds are derived there).
- `parameter_invisible`: set by `thagen review` for tha3 (`pipeline.visibility`).

Every threshold is derived from the values `scripts/flag_rates.py` measures on clean characters
(the 20 face models of ../shared/mmd, 108 procedural characters with buns, headwear and
misleading names) and on procedural characters broken in known ways (`pipeline.flag_survey`);
the derivation is written beside each. Values that vary like sizes (pixel counts, shares of a
silhouette) are fitted log-normally: the threshold lies 4 standard deviations (the wider of the
real and the procedural spread) beyond the pooled log mean, where a normal tail leaves 3 in
100,000 characters; values that are 0 on most clean characters take the geometric middle of
the gap between the largest clean and the smallest broken value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Every flag code: face detection's (geometry) and this module's (pixels).
FLAG_CODES = (
    "smile_closure",
    "head_box_proportions",
    "head_top_uncertain",
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
# The thresholds below come from `scripts/flag_rates.py` (20 real face models, 84 clean and 24
# headwear procedural characters, 6 broken ones).
# Clean characters' less-changed eye: 0.088-0.35 u² (log mean -1.621, widest sd 0.353): 4 sd
# below, 0.048; an eyepatch leaves 0.045 of lid edges.
MIN_EYE_CHANGE = 0.048  # × u² pixels
# The two eyes of a clean character change within 0.73-1 of each other (log mean -0.047,
# widest sd 0.100): 4 sd below, 0.64; the eyepatch's eye changes 0.19 of the other's.
MIN_SHARE = 0.64  # of the other eye's change
# Clean mouths: 0.095-1.2 u² (log mean -1.771, widest sd 0.484): 4 sd below, 0.025; one that
# barely opens (its あ at 1 %) changes 0.0018.
MIN_MOUTH_CHANGE = 0.025  # × u² pixels
# Dark share: 0 on most clean faces, at most 0.111 (procedural black hair over the face); a
# face texture painted black: 0.82. The gap's geometric middle: 0.30.
MAX_DARK = 0.30
# Semi-transparent share of clean heads: 0-0.011 (log mean -6.727, widest sd 0.837): 4 sd
# above, 0.034; a skin at alpha 0.5: 0.47.
MAX_SEMI = 0.034
DARK_LEVEL = 24
# Pixels a missing texture reaches: exactly 0 for one hidden behind the eyes, 2.5 u² for a
# missing face texture; 0.01 u² (5 pixels at the quality size) leaves an edge's sliver out.
MIN_SEEN = 0.01  # × u² pixels a missing texture reaches
MAX_MISSING = 32  # materials with a missing texture measured per model


def quality_settings():
    """The renderer settings of the quality renders (small, the default shading)."""
    from render import RenderSettings

    return RenderSettings(size=QUALITY_SIZE, threads=0)


def flag(code: str, message: str, role: str | None = None, value: float | None = None) -> dict:
    return {"code": code, "role": role, "value": value, "message": message}


@dataclass
class Measures:
    """What a model's quality renders measure: the values the flags' thresholds are set on
    (`scripts/flag_rates.py` prints their distributions)."""

    u: float  # the eye separation, in pixels
    change: dict[str, float] = field(default_factory=dict)  # role -> changed pixels / u²
    dark: float | None = None  # near-black share of the face below the eyes (needs both eyes)
    semi: float = 0.0  # semi-transparent share of the head's silhouette
    # (material index, name, texture reference, pixels of the head box it reaches / u²) for
    # every material whose texture file is missing
    missing: list[tuple[int, str, str, float]] = field(default_factory=list)
    problems: list = field(default_factory=list)  # textures the renderer could not draw
    face: list[dict] = field(default_factory=list)  # how the face is drawn: pipeline.face_flags


def render_flags(renderer: Any, model: Any, roles: Any) -> list[dict]:
    """The pixel flags of `model` (already uploaded to `renderer`, whose size is the quality
    size) with its face `roles`."""
    return flags_of(measure(renderer, model, roles), roles)


def measure(renderer: Any, model: Any, roles: Any) -> Measures:
    """Measure `model` (uploaded to `renderer`) in its quality renders."""
    from mmd_loader.face import eye_centre
    from pipeline.face_flags import face_flags
    from poses.roles import EYE_ROLES, MOUTH_ROLE
    from render import Pose

    size = renderer.settings.size
    framing = renderer.framing
    rest = renderer.render(Pose()).astype(np.int16)

    def pixel(point: np.ndarray) -> np.ndarray:
        return framing.project(np.asarray(point, np.float64)[None], size)[0]

    eyes = [pixel(eye_centre(model, roles, r)) for r in EYE_ROLES if r in roles.morphs]
    u = abs(eyes[0][0] - eyes[1][0]) if len(eyes) == 2 else 0.25 * size * 0.5
    measures = Measures(u=max(float(u), 1.0))
    u = measures.u
    for role in (*EYE_ROLES, MOUTH_ROLE):
        if role in roles.morphs:
            moved = renderer.render(Pose(morphs={role: 1.0})).astype(np.int16)
            measures.change[role] = float((np.abs(moved - rest).max(axis=2) > CHANGED).sum()) / u**2
    box = roles.head_box
    top = pixel([box.center[0], box.top, box.center[2]])[1]
    chin = pixel([box.center[0], box.chin, box.center[2]])[1]
    rows = slice(max(int(np.floor(top)), 0), max(int(np.ceil(chin)) + 1, 0))
    measures.missing = _missing_textures(renderer, model, rows, u)
    measures.problems = list(renderer.texture_problems)
    if len(eyes) == 2:
        measures.dark = _dark_share(rest, eyes, chin, u)
    measures.semi = _semi_share(rest, top, chin)
    measures.face = face_flags(renderer, model, roles, rest.astype(np.uint8), eyes, u)
    return measures


def flags_of(measures: Measures, roles: Any) -> list[dict]:
    """The flags the measures raise (the thresholds are this module's constants)."""
    from poses.roles import EYE_ROLES, MOUTH_ROLE

    flags = []
    change = measures.change
    for role, changed in change.items():
        others = [v for r, v in change.items() if r in EYE_ROLES and r != role]
        least = MIN_MOUTH_CHANGE if role == MOUTH_ROLE else MIN_EYE_CHANGE
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
    for index, name, reference, seen in measures.missing:
        if seen >= MIN_SEEN:
            message = (
                f"material {index} {name!r}: texture {reference!r} is missing and its flat "
                f"colour covers {seen:.3f} u² of the head (u = the eye separation)"
            )
            flags.append(flag("missing_texture_in_head", message, None, round(seen, 4)))
    for problem in measures.problems:  # refused by a budget, undecodable, out of memory
        message = (
            f"material {problem.material} {problem.name!r}: {problem.slot} {problem.path} not "
            f"drawn: {problem.reason}"
        )
        flags.append(flag("texture_unreadable", message[:300]))
    if measures.dark is not None and measures.dark > MAX_DARK:
        message = f"{measures.dark:.0%} of the face below the eyes is opaque near-black"
        flags.append(flag("dark_face", message, None, round(measures.dark, 4)))
    if measures.semi > MAX_SEMI:
        message = f"{measures.semi:.0%} of the head's silhouette is semi-transparent"
        flags.append(flag("semi_transparent_head", message, None, round(measures.semi, 4)))
    return flags + measures.face


def _missing_textures(
    renderer: Any, model: Any, rows: slice, u: float
) -> list[tuple[int, str, str, float]]:
    """For each material whose texture file is missing (drawn in its flat material colour):
    the pixels of the head box's rows it reaches in the rest render, / u². Each is drawn in two
    contrasting flat colours (`Renderer.flat_colours`); the pixels that differ are those a
    texture would paint, whatever lies in front of or behind it."""
    from render import Pose

    out = []
    for index, material in enumerate(model.materials):
        reference = (material.texture_ref or "").strip()
        if not reference or material.texture is not None or float(material.diffuse[3]) <= 0:
            continue
        if len(out) == MAX_MISSING:
            break
        renders = []
        for colour in ((1.0, 0.0, 1.0), (0.0, 1.0, 0.0)):
            with renderer.flat_colours({index: colour}):
                renders.append(renderer.render(Pose()).astype(np.int16)[rows])
        seen = float((np.abs(renders[0] - renders[1]).max(axis=2) > CHANGED).sum()) / u**2
        out.append((index, material.name, reference, seen))
    return out


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
