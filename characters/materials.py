"""The materials, in draw order, with MMD's usual colours and flags."""

from __future__ import annotations

import numpy as np

from characters.layout import MATERIALS
from characters.ornaments import ornament_colour
from characters.spec import ORNAMENT_NAMES, CharacterSpec
from mmd_loader.pmx_writer import PmxMaterial


def materials(spec: CharacterSpec, counts: dict[str, int]) -> list[PmxMaterial]:
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
        name = ORNAMENT_NAMES[spec.ornament] if named else f"材質{MATERIALS.index('ornament')}"
        colour = ornament_colour(spec)
        table["ornament"] = (name, plain(colour, flags=edge | 0x01))
    table.update(tha3_materials(spec))
    mats = []
    for key in MATERIALS:
        if key not in table:
            continue  # no ornament: no material for it
        name, kw = table[key]
        english = (spec.ornament if spec.ornament_named else "") if key == "ornament" else key
        mats.append(PmxMaterial(name, counts[key], english_name=english, **kw))  # type: ignore[arg-type]
    return mats


def tha3_materials(spec: CharacterSpec) -> dict[str, tuple[str, dict]]:
    """The upper body's and the irises' materials, as `materials`' table holds them."""
    trim = tuple(1.0 - np.asarray(spec.clothes) * 0.7)
    return {
        "trim": ("タイ", dict(diffuse=(*trim, 1.0), ambient=tuple(np.asarray(trim) * 0.6))),
        "iris": ("瞳", dict(texture=4, ambient=(0.7, 0.7, 0.7), flags=0x02)),
    }
