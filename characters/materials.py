"""The materials, in draw order, with MMD's usual colours and flags."""

from __future__ import annotations

import numpy as np

from characters.layout import MATERIALS
from characters.ornaments import ornament_colour
from characters.spec import ORNAMENT_NAMES, CharacterSpec, hsv
from mmd_loader.pmx_writer import PmxMaterial


def materials(spec: CharacterSpec, counts: dict[str, int]) -> list[PmxMaterial]:
    edge, dark = 0x02 | 0x04 | 0x08 | 0x10, tuple(np.asarray(spec.hair) * 0.35)

    def plain(rgb, **kw):
        return dict(diffuse=(*rgb, 1.0), ambient=tuple(np.asarray(rgb) * 0.6), **kw)

    table = {
        "skin": (spec.skin_name, dict(texture=0, ambient=(0.6, 0.6, 0.6), flags=edge)),
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
    table.update(headwear_materials(spec))
    table.update(tha3_materials(spec))
    mats = []
    for key in MATERIALS:
        if key not in table:
            continue  # no ornament: no material for it
        name, kw = table[key]
        english = _english(spec, key)
        mats.append(PmxMaterial(name, counts[key], english_name=english, **kw))  # type: ignore[arg-type]
    return mats


def tha3_materials(spec: CharacterSpec) -> dict[str, tuple[str, dict]]:
    """The upper body's and the irises' materials, as `materials`' table holds them."""
    trim = tuple(1.0 - np.asarray(spec.clothes) * 0.7)
    return {
        "trim": ("タイ", dict(diffuse=(*trim, 1.0), ambient=tuple(np.asarray(trim) * 0.6))),
        "iris": ("瞳", dict(texture=4, ambient=(0.7, 0.7, 0.7), flags=0x02)),
    }


def headwear_materials(spec: CharacterSpec) -> dict[str, tuple[str, dict]]:
    """The headwear's and the bun ornaments' materials, when the character has them: named as
    the spec says, else neutrally (材質N, as real models' unnamed materials are)."""
    rng = np.random.default_rng([spec.seed, 0x4EA])
    table = {}
    for key, present, name in (
        ("hair_ornament", spec.bun_ornaments > 0, spec.bun_ornament_name),
        ("headwear", spec.headwear != "none", spec.headwear_name),
    ):
        if present:
            colour = hsv(float(rng.uniform(0, 1)), float(rng.uniform(0.3, 0.8)), 0.75)
            flags = 0x01 | 0x02 | 0x04 | 0x08 | 0x10
            table[key] = (name or f"材質{MATERIALS.index(key)}", dict(
                diffuse=(*colour, 1.0), ambient=tuple(np.asarray(colour) * 0.6), flags=flags
            ))  # fmt: skip
    return table


def _english(spec: CharacterSpec, key: str) -> str:
    """A material's English name: what it is, except for ornaments and headwear left unnamed."""
    if key == "ornament":
        return spec.ornament if spec.ornament_named else ""
    if key == "headwear":
        return spec.headwear if spec.headwear_name else ""
    if key == "hair_ornament":
        return "hair ornament" if spec.bun_ornament_name else ""
    return key
