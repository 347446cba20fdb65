"""The materials, in draw order, with MMD's usual colours and flags."""

from __future__ import annotations

import numpy as np

from characters.layout import MATERIALS
from characters.ornaments import ornament_colour
from characters.spec import ORNAMENT_NAMES, CharacterSpec
from mmd_loader.pmx_writer import PmxMaterial

OPTIONAL = ("collar", "accessory", "mic")  # materials left out when nothing uses them


def materials(spec: CharacterSpec, counts: dict[str, int]) -> list[PmxMaterial]:
    edge, style = 0x02 | 0x04 | 0x08 | 0x10, spec.eye_style
    brows = style.brow_colour or tuple(np.asarray(spec.hair) * 0.35)

    def plain(rgb, **kw):
        return dict(diffuse=(*rgb, 1.0), ambient=tuple(np.asarray(rgb) * 0.6), **kw)

    table = {
        "skin": ("肌", dict(texture=0, ambient=(0.6, 0.6, 0.6), flags=edge)),
        "clothes": ("服", dict(texture=5, ambient=(0.6, 0.6, 0.6), flags=edge)),
        "mouth": ("口", dict(texture=3, ambient=(0.6, 0.6, 0.6))),
        "brows": ("眉", plain(brows)),
        "lashes": ("まつげ", plain(style.lash_colour)),
        "hair": ("髪", dict(texture=2, ambient=(0.6, 0.6, 0.6), flags=edge | 0x01)),
        "eyes": ("目", dict(texture=1, ambient=(0.7, 0.7, 0.7), flags=0x02)),
    }
    if spec.ornament != "none":
        named = spec.ornament_named
        name = ORNAMENT_NAMES[spec.ornament] if named else f"材質{MATERIALS.index('ornament')}"
        colour = ornament_colour(spec)
        table["ornament"] = (name, plain(colour, flags=edge | 0x01))
    table.update(tha3_materials(spec))
    # The throat's bow or knot and the microphone are named like what they are when the
    # seed names its ornament, else neutrally (as the ornament is: geometry must decide).
    outfit, named = spec.outfit, spec.ornament_named
    throat = "リボン2" if outfit.throat == "bow" else "ネクタイ"
    table["collar"] = ("襟", plain(outfit.collar_colour, flags=edge | 0x01))
    table["accessory"] = (
        throat if named else f"パーツ{MATERIALS.index('accessory')}",
        plain(outfit.throat_colour, flags=edge | 0x01),
    )
    table["mic"] = (
        "マイク" if named else f"パーツ{MATERIALS.index('mic')}",
        plain(outfit.mic_colour, flags=edge),
    )
    mats = []
    for key in MATERIALS:
        if key not in table or (key in OPTIONAL and not counts[key]):
            continue  # no ornament (collar, …): no material for it
        name, kw = table[key]
        english = key if named or key not in ("accessory", "mic") else ""
        if key == "ornament":
            english = spec.ornament if named else ""
        mats.append(PmxMaterial(name, counts[key], english_name=english, **kw))  # type: ignore[arg-type]
    return mats


def tha3_materials(spec: CharacterSpec) -> dict[str, tuple[str, dict]]:
    """The upper body's and the irises' materials, as `materials`' table holds them."""
    trim = tuple(1.0 - np.asarray(spec.clothes) * 0.7)
    return {
        "trim": ("タイ", dict(diffuse=(*trim, 1.0), ambient=tuple(np.asarray(trim) * 0.6))),
        "iris": ("瞳", dict(texture=4, ambient=(0.7, 0.7, 0.7), flags=0x02)),
    }
