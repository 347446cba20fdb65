"""The bones: センター, 上半身 at the waist, 上半身2 at the chest, 首, 頭, 両目 and the eye bones at
the centres of the irises' spheres, the shoulders and arms, and a named ornament's own bone."""

from __future__ import annotations

import dataclasses

import numpy as np

from characters.eyes import eye_pivot
from characters.layout import (
    BOTH_EYES,
    CHEST,
    HEAD,
    LEFT_EYE,
    LEFT_SHOULDER,
    NECK,
    ORNAMENT_BONE,
    RIGHT_EYE,
    RIGHT_SHOULDER,
    UPPER,
)
from characters.ornaments import has_ornament_bone
from characters.shape import head_shape
from characters.spec import ORNAMENT_NAMES, CharacterSpec
from mmd_loader.pmx_writer import PmxBone


def base_bones(spec: CharacterSpec, shoulder_y: float, head_y: float) -> list[PmxBone]:
    shape = head_shape(spec)
    eye_z = float(shape.on_face(np.array(spec.eye_x), np.array(spec.eye_y), 0.0)[0][2]) + 0.35
    rot, move, shown = 0x0002, 0x0004, 0x0008 | 0x0010
    return [
        PmxBone("センター", -1, (0.0, 8.0, 0.0), rot | move | shown, english_name="center"),
        PmxBone(
            "上半身",
            0,
            (0.0, shoulder_y - 2.2, 0.1),
            rot | shown | 1,
            tail_bone=2,
            english_name="upper body",
        ),
        PmxBone(
            "首", 1, (0.0, shoulder_y, 0.15), rot | shown | 1, tail_bone=3, english_name="neck"
        ),
        PmxBone(
            "頭",
            2,
            (0.0, head_y, 0.1),
            rot | shown,
            tail_offset=(0.0, 1.2, 0.0),
            english_name="head",
        ),
        PmxBone("両目", 3, (0.0, spec.head_top_y + 0.6, 0.0), rot | shown, english_name="eyes"),
        PmxBone("左目", 3, (spec.eye_x, spec.eye_y, eye_z), rot | shown, english_name="eye_L"),
        PmxBone("右目", 3, (-spec.eye_x, spec.eye_y, eye_z), rot | shown, english_name="eye_R"),
    ]


def with_ornament_bone(spec: CharacterSpec, bones: list[PmxBone]) -> list[PmxBone]:
    """`bones` (all the others) plus the ornament's own bone, hung on 頭, when it has one."""
    if not has_ornament_bone(spec):
        return bones
    if len(bones) != ORNAMENT_BONE:
        raise RuntimeError(
            f"the ornament bone is {ORNAMENT_BONE}, but {len(bones)} bones precede it"
        )
    rot, shown = 0x0002, 0x0008 | 0x0010
    top = (0.0, spec.head_top_y, 0.0)
    return [*bones, PmxBone(ORNAMENT_NAMES[spec.ornament], HEAD, top, rot | shown)]


def upper_body_bones(spec: CharacterSpec, base: list[PmxBone], shoulder_y: float) -> list[PmxBone]:
    """The base bones with 上半身 moved to the waist, 首 hung on a new 上半身2, the eye bones
    at the centres of the irises' spheres following 両目, and the shoulders and arms added."""
    sy = shoulder_y
    rot, shown, append = 0x0002, 0x0008 | 0x0010, 0x0100
    bones = list(base)
    bones[UPPER] = dataclasses.replace(bones[UPPER], position=(0.0, sy - 4.6, 0.15))
    bones[NECK] = dataclasses.replace(bones[NECK], parent=CHEST)
    for index, side in ((LEFT_EYE, 1), (RIGHT_EYE, -1)):
        pivot = tuple(float(v) for v in eye_pivot(spec, side))
        bones[index] = dataclasses.replace(
            bones[index],
            position=pivot,
            flags=rot | shown | append,
            append_parent=BOTH_EYES,
            append_ratio=1.0,
        )
    sw = spec.shoulder_width
    bones += [
        PmxBone("上半身2", UPPER, (0.0, sy - 2.2, 0.1), rot | shown, english_name="upper body2"),
        PmxBone("左肩", CHEST, (0.3, sy - 0.05, 0.15), rot | shown, english_name="shoulder_L"),
        PmxBone(
            "左腕",
            LEFT_SHOULDER,
            (0.9 * sw, sy - 0.25, 0.15),
            rot | shown,
            english_name="arm_L",
        ),
        PmxBone("右肩", CHEST, (-0.3, sy - 0.05, 0.15), rot | shown, english_name="shoulder_R"),
        PmxBone(
            "右腕",
            RIGHT_SHOULDER,
            (-0.9 * sw, sy - 0.25, 0.15),
            rot | shown,
            english_name="arm_R",
        ),
    ]
    return bones
