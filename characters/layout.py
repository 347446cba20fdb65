"""The fixed layout every part of a character agrees on: material draw order, bone indices and
how far each face layer lies in front of the skin (MMD units, along the skin normal)."""

from __future__ import annotations

# Materials in draw order: opaque first, the alpha-textured eyes last. A character has only the
# materials it has triangles for (no decal or overlay unless its spec asks for one).
MATERIALS = (
    "skin",
    "clothes",
    "trim",
    "collar",
    "accessory",
    "mic",
    "mouth",
    "brows",
    "lashes",
    "decal",
    "overlay_pale",
    "overlay_anger",
    "overlay_blush",
    "overlay_tears",
    "overlay_sweat",
    "hair",
    "ornament",
    "hair_ornament",
    "headwear",
    "eyes",
    "iris",
)

# Bones, in file order (see characters.skeleton): the base seven, then the upper body's five.
CENTER, UPPER, NECK, HEAD, BOTH_EYES, LEFT_EYE, RIGHT_EYE = 0, 1, 2, 3, 4, 5, 6
CHEST, LEFT_SHOULDER, LEFT_ARM, RIGHT_SHOULDER, RIGHT_ARM = 7, 8, 9, 10, 11
# A named bow's or flower's own bone comes last, after the base seven and the upper body's five,
# whose indices are fixed.
ORNAMENT_BONE = 12

# Offsets of the face's layers along the skin normal. The white of the eye lies just above the
# skin, the iris's centre at IRIS_LIFT and the eyes' socket ring at RING_LIFT: lids, lashes and
# brows lie above them.
LID_LIFT, LASH_LIFT, BROW_LIFT, MOUTH_LIFT = 0.06, 0.07, 0.08, 0.01
DECAL_LIFT = 0.012  # cheek decals and expression overlays: thin layers on the skin
EYE_RADIUS = 0.6  # the iris sphere's radius: its travel is R·tan(angle) (12°: 0.6 eye widths)
IRIS_LIFT = 0.045  # the iris's centre above the skin; the socket ring and lids sit above it
WHITE_LIFT = 0.005  # the white of the eye, on the face below the iris
RING_LIFT = 0.055
