"""Procedural characters for rendering's hard cases, with their truth: the tests and
`scripts/rendering_flag_rates.py` build them the same way.

- `faceted`: a low-poly face with split normals (`CharacterSpec.face_facets`).
- `tilted_decal`: cheek decals whose normals tilt away from the skin's (`decal_tilt`).
- `overlay_pair`: a PMX whose expression overlays a material morph raises, and beside it the
  PMD-like variant drawing them at rest with neutral names and no material morph.
- `overlays_shown`: only the variant, named or not, with no sibling to tell.
- `fringed`: brows under a fringe (`fringe`).
- `dark_ramp`: the skin lit through a toon ramp that darkens on the lit side (a face the face
  shading cannot make flat: `face_shading_artifacts` must say so).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from characters.build import build_character, write_spec
from characters.spec import OVERLAY_KINDS, CharacterSpec, spec_for_seed
from characters.textures import save_png
from mmd_loader.pmx_writer import write_pmx

FACETS = 9  # rows of the low-poly face
DECAL_TILT = 70.0  # degrees


def variant(seed: int, **fields) -> CharacterSpec:
    """`spec_for_seed(seed)` with `fields` replaced."""
    return dataclasses.replace(spec_for_seed(seed), **fields)


def faceted(seed: int, out: Path) -> Path:
    return write_spec(variant(seed, face_facets=FACETS), out)


def tilted_decal(seed: int, out: Path) -> Path:
    return write_spec(variant(seed, decal_tilt=DECAL_TILT), out)


def fringed(seed: int, out: Path) -> Path:
    return write_spec(variant(seed, fringe=True), out)


def overlay_pair(seed: int, folder: Path) -> tuple[Path, Path]:
    """(the PMX hiding its overlays at rest, the PMD-like variant beside it) in `folder`."""
    kinds = OVERLAY_KINDS
    pmx = write_spec(variant(seed, overlays=kinds), Path(folder) / "character.pmx")
    shown = variant(seed, overlays=kinds, overlay_style="shown", overlay_named=False)
    return pmx, write_spec(shown, Path(folder) / "character_pmd_like.pmx")


def overlays_shown(seed: int, out: Path, named: bool = True) -> Path:
    """The PMD-like variant alone in its folder: overlays drawn at rest, no material morph."""
    spec = variant(seed, overlays=OVERLAY_KINDS, overlay_style="shown", overlay_named=named)
    return write_spec(spec, out)


def dark_ramp(seed: int, out: Path) -> Path:
    """Character `seed` whose skin's toon ramp falls from white to grey across its lit half (the
    face, lit through it, darkens from its centre outwards)."""
    out = Path(out)
    data, images = build_character(spec_for_seed(seed), f"{out.stem}_tex")
    v = (np.arange(32) + 0.5) / 32
    grey = np.clip(255 - 255 * 0.9 * v / 0.5, 60, 255)  # white at n·l = 1, dark by n·l = 0
    ramp = np.repeat(np.repeat(grey[:, None], 32, axis=1)[..., None], 3, axis=2)
    images["toon_dark.png"] = np.concatenate([ramp, np.full((32, 32, 1), 255.0)], axis=2).astype(
        np.uint8
    )
    data.textures = [*data.textures, f"{out.stem}_tex/toon_dark.png"]
    skin = data.materials[0]
    data.materials[0] = dataclasses.replace(skin, toon_shared=None, toon=len(data.textures) - 1)
    tex = out.parent / f"{out.stem}_tex"
    tex.mkdir(parents=True, exist_ok=True)
    for name, pixels in images.items():
        save_png(tex / name, pixels)
    return write_pmx(out, data)
