"""Whether each parameter of a schema visibly changes a model's image, for `thagen review`.

From the contact sheet's own renders (`render.preview.sheet_tiles`: rest, each morph at its top,
each rotation at both ends), per parameter: the pixels that change against the rest image (a
channel moving by more than `CHANGED` levels), as a share of the head box's pixels (the box
from the top of the head to the chin and the head's width, as the framing projects it). A
rotation counts its larger end.

For a schema with eyebrows (tha2, tha3) the review renders the head at 128 px (tiles shown at
128 px over a 256-px render framing the head at half the height); the brows are drawn as the
run would draw them (`review_brows`: over the hair for "mix" and "over").

`parameter_invisible` (tha3): eyebrow, eye and mouth parameters the model has that change fewer
than `MIN_VISIBLE` of the head box's pixels. The threshold comes from the measured
distribution (`scripts/rendering_flag_rates.py`): on ../shared/mmd and the procedural characters the
least visible of these parameters (a smirk, にやり) changes 0.03 % (about 6 pixels of a 128-px
head), every brow drawn over the hair at least 0.25 %, while a brow under the bangs drawn as
modelled changes nothing at all (0.00 %).
"""

from __future__ import annotations

from typing import Any

import numpy as np

CHANGED = 8  # a pixel changed when a channel moves by more than this (as pipeline.quality)
MIN_VISIBLE = 0.0002  # of the head box's pixels (about 4 pixels of a 128-px head)
# Parameters whose invisibility is flagged (THA3's face morpher's eyebrow, eye and mouth shapes).
FLAGGED_PREFIXES = ("eyebrow_", "eye_", "iris_small_", "mouth_")
FLAGGED_SCHEMAS = ("tha3",)


def review_brows(choice: str) -> str:
    """The brow mode the review renders for a run's choice: what the layer shows for "mix"."""
    return "modelled" if choice == "modelled" else "over"


def head_box_pixels(renderer: Any, roles: Any) -> float:
    """The head box's area in the renderer's output pixels."""
    box = roles.head_box
    corners = np.array(
        [
            [box.center[0] - box.half_width, box.top, box.center[2]],
            [box.center[0] + box.half_width, box.chin, box.center[2]],
        ]
    )
    (x0, y0), (x1, y1) = renderer.framing.project(corners, renderer.settings.size)
    return max(abs(x1 - x0) * abs(y1 - y0), 1.0)


def parameter_visibility(
    tiles: list[tuple[str, dict[str, float], np.ndarray]], binding: Any, box_pixels: float
) -> list[dict]:
    """Per schema parameter: {"name", "bound", "share"} (share None when the model lacks it),
    from the sheet's tiles (the first is the rest image)."""
    rest = tiles[0][2].astype(np.int16)
    shares: dict[str, float] = {}
    for _, values, image in tiles[1:]:
        if len(values) != 1:
            continue  # "all morphs", "all rotations"
        (name,) = values
        changed = (np.abs(image.astype(np.int16) - rest).max(axis=2) > CHANGED).sum()
        shares[name] = max(shares.get(name, 0.0), float(changed) / box_pixels)
    out = []
    for p in binding.schema.parameters:
        bound = binding.bound(p.name)
        share = shares.get(p.name) if bound else None
        out.append({"name": p.name, "bound": bound, "share": share})
    return out


def invisible_flag(visibility: list[dict], schema_name: str) -> dict | None:
    """`parameter_invisible` naming the flagged parameters that change almost nothing (None when
    there is none, or for a schema other than tha3)."""
    from pipeline.quality import flag

    if schema_name not in FLAGGED_SCHEMAS:
        return None
    names = [
        v["name"]
        for v in visibility
        if v["bound"]
        and v["name"].startswith(FLAGGED_PREFIXES)
        and (v["share"] or 0.0) < MIN_VISIBLE
    ]
    if not names:
        return None
    message = (
        f"{len(names)} parameter(s) change less than {MIN_VISIBLE:.2%} of the head box at "
        f"their top: {', '.join(names)}"
    )
    return flag("parameter_invisible", message[:1200], None, float(len(names)))


def review_renderer_settings(schema: Any, sheet_size: int) -> Any:
    """The review's renderer: tiles of `sheet_size` px, the head at half their height; for a
    schema with eyebrows rendered at twice that (the head 128 px high for 128-px tiles), so a
    brow's move shows."""
    from render import RenderSettings

    fine = any(p.group == "eyebrow" for p in schema.parameters)
    return RenderSettings(size=2 * sheet_size if fine else sheet_size, threads=0)


def visibility_html(visibility: list[dict]) -> str:
    """The per-parameter table of a review card: each parameter's share of the head box that
    changes at its top, "—" for one the model lacks; invisible flagged ones marked."""
    import html

    cells = []
    for v in visibility:
        if not v["bound"]:
            text, cls = "—", "muted"
        else:
            share = v["share"] or 0.0
            text = f"{share:.2%}"
            weak = share < MIN_VISIBLE and v["name"].startswith(FLAGGED_PREFIXES)
            cls = "flags" if weak else ""
        cells.append(
            f"<tr class={cls or 'n'}><td>{html.escape(v['name'])}</td><td>{text}</td></tr>"
        )
    return (
        "<details><summary>What each parameter changes (share of the head box at its top)"
        f"</summary><table>{''.join(cells)}</table></details>"
    )
