"""Procedural anime characters (head, shoulders and upper body) written as small PMX files with
textures: thagen's own characters, with no third-party model in them, and the tests' fixtures
with known truth.

Everything here is in the FILE's frame: MMD's left-handed one, y up, the character faces -z and
its own left is +x. Triangles are wound so that cross(b - a, c - a) points along the outward
normal in that frame, as in real models (checked on あにまさ式ミク: 99.6 % of its triangles).

The seed decides a `CharacterSpec` (colours, head and eye shape, proportions, hair style,
ornament, wink naming) and a `Tha3Spec` (the THA3 morphs' names); `write_character` turns them
into `out.pmx` plus PNG textures in a folder beside it. The parts live in modules of their own:
`shape` (the head's surface), `face`, `eyes`, `mouth`, `hair`, `ornaments`, `body`,
`skeleton`, `materials`, `textures`, `tha3` (THA3's expression morphs), assembled by `build`.
"""

from characters.build import build_character, spec_dict, write_character, write_spec
from characters.shape import HeadShape, head_shape
from characters.spec import ORNAMENT_NAMES, ORNAMENTS, CharacterSpec, spec_for_seed
from characters.textures import save_png
from characters.tha3 import Tha3Spec, tha3_spec

__all__ = [
    "ORNAMENTS",
    "ORNAMENT_NAMES",
    "CharacterSpec",
    "HeadShape",
    "Tha3Spec",
    "build_character",
    "head_shape",
    "save_png",
    "spec_dict",
    "spec_for_seed",
    "tha3_spec",
    "write_character",
    "write_spec",
]
