"""The materials, in draw order, with MMD's usual colours and flags."""

from __future__ import annotations

import numpy as np

from characters.layout import MATERIALS
from characters.ornaments import ornament_colour
from characters.overlays import overlay_materials
from characters.spec import ORNAMENT_NAMES, CharacterSpec, hsv
from mmd_loader.pmx_writer import PmxMaterial

PLAIN = None  # a material named neutrally: 材質N, N its index among the character's materials


def material_table(spec: CharacterSpec) -> dict[str, tuple[str | None, dict]]:
    """Material key → (name or PLAIN, PmxMaterial fields) for the materials `spec` has."""
    edge, style = 0x02 | 0x04 | 0x08 | 0x10, spec.eye_style
    brows = style.brow_colour or tuple(np.asarray(spec.hair) * 0.35)

    def plain(rgb, **kw):
        return dict(diffuse=(*rgb, 1.0), ambient=tuple(np.asarray(rgb) * 0.6), **kw)

    table: dict[str, tuple[str | None, dict]] = {
        "skin": (spec.skin_name, dict(texture=0, ambient=(0.6, 0.6, 0.6), flags=edge)),
        "clothes": ("服", dict(texture=5, ambient=(0.6, 0.6, 0.6), flags=edge)),
        "mouth": ("口", dict(texture=3, ambient=(0.6, 0.6, 0.6))),
        "brows": ("眉", plain(brows)),
        "lashes": ("まつげ", plain(style.lash_colour)),
        "hair": ("髪", dict(texture=2, ambient=(0.6, 0.6, 0.6), flags=edge | 0x01)),
        "eyes": ("目", dict(texture=1, ambient=(0.7, 0.7, 0.7), flags=0x02)),
    }
    if spec.ornament != "none":
        name = ORNAMENT_NAMES[spec.ornament] if spec.ornament_named else PLAIN
        table["ornament"] = (name, plain(ornament_colour(spec), flags=edge | 0x01))
    if spec.decal_tilt > 0:
        table["decal"] = ("チーク", plain((0.96, 0.72, 0.72)))
    table.update(overlay_materials(spec))
    table.update(headwear_materials(spec))
    table.update(tha3_materials(spec))
    table.update(outfit_materials(spec, plain, edge))
    return table


def material_keys(spec: CharacterSpec) -> list[str]:
    """The keys of `spec`'s materials, in draw order (a material's index is its place here)."""
    table = material_table(spec)
    return [key for key in MATERIALS if key in table]


def materials(spec: CharacterSpec, counts: dict[str, int]) -> list[PmxMaterial]:
    table = material_table(spec)
    keys = [key for key in MATERIALS if key in table]
    mats = []
    for index, key in enumerate(keys):
        name, kw = table[key]
        english = _english(spec, key, named=name is not PLAIN)
        name = f"材質{index}" if name is PLAIN else name
        mats.append(PmxMaterial(name, counts[key], english_name=english, **kw))  # type: ignore[arg-type]
    return mats


def tha3_materials(spec: CharacterSpec) -> dict[str, tuple[str, dict]]:
    """The upper body's and the irises' materials, as `materials`' table holds them."""
    trim = tuple(1.0 - np.asarray(spec.clothes) * 0.7)
    return {
        "trim": ("タイ", dict(diffuse=(*trim, 1.0), ambient=tuple(np.asarray(trim) * 0.6))),
        "iris": ("瞳", dict(texture=4, ambient=(0.7, 0.7, 0.7), flags=0x02)),
    }


def outfit_materials(spec: CharacterSpec, plain, edge: int) -> dict[str, tuple[str | None, dict]]:
    """The collar's, the throat's bow or knot's and the microphone's materials, for the parts
    the outfit has. The bow or knot and the microphone are named like what they are when the
    seed names its ornament, else neutrally (as the ornament is: geometry must decide)."""
    outfit, named = spec.outfit, spec.ornament_named
    table: dict[str, tuple[str | None, dict]] = {}
    if outfit.collar != "none":
        table["collar"] = ("襟", plain(outfit.collar_colour, flags=edge | 0x01))
    if outfit.throat != "none":
        throat = "リボン2" if outfit.throat == "bow" else "ネクタイ"
        table["accessory"] = (
            throat if named else PLAIN,
            plain(outfit.throat_colour, flags=edge | 0x01),
        )
    if outfit.mic:
        table["mic"] = ("マイク" if named else PLAIN, plain(outfit.mic_colour, flags=edge))
    return table


def headwear_materials(spec: CharacterSpec) -> dict[str, tuple[str | None, dict]]:
    """The headwear's and the bun ornaments' materials, when the character has them: named as
    the spec says, else neutrally (材質N, as real models' unnamed materials are)."""
    rng = np.random.default_rng([spec.seed, 0x4EA])
    table: dict[str, tuple[str | None, dict]] = {}
    for key, present, name in (
        ("hair_ornament", spec.bun_ornaments > 0, spec.bun_ornament_name),
        ("headwear", spec.headwear != "none", spec.headwear_name),
    ):
        if present:
            colour = hsv(float(rng.uniform(0, 1)), float(rng.uniform(0.3, 0.8)), 0.75)
            flags = 0x01 | 0x02 | 0x04 | 0x08 | 0x10
            table[key] = (name or PLAIN, dict(
                diffuse=(*colour, 1.0), ambient=tuple(np.asarray(colour) * 0.6), flags=flags
            ))  # fmt: skip
    return table


def _english(spec: CharacterSpec, key: str, named: bool) -> str:
    """A material's English name: what it is, except for pieces left unnamed (材質N)."""
    if not named:
        return ""
    if key == "ornament":
        return spec.ornament
    if key == "headwear":
        return spec.headwear
    if key == "hair_ornament":
        return "hair ornament"
    if key in ("accessory", "mic") and not spec.ornament_named:
        return ""
    if key.startswith("overlay_"):
        return key.removeprefix("overlay_")
    return key
