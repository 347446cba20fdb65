"""What to draw: morph weights and bone rotations (`Pose`), and the light (`Lighting`).

A `Pose` is model-level: weights of face roles or model morphs, and bone rotations in degrees.
Schema values (`left_eye=1, head_y=-0.4`) become a `Pose` through `render.binding`, the one road
from a schema's parameters to the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Pose:
    """Morph weights and bone rotations.

    `morphs` keys are face roles (`poses.roles.MORPH_ROLES`: `left_eye`, …) or model morph
    names. `rotations` keys are bone roles (`"head"`, `"neck"`) or bone names; values are Euler
    angles in degrees about the model frame's x, y, z. The rotation matrix is Ry · Rx · Rz (roll,
    then pitch, then yaw), right-handed, so positive y turns the face towards the character's
    left (the image's right).
    """

    morphs: dict[str, float] = field(default_factory=dict)
    rotations: dict[str, tuple[float, float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Lighting:
    """White lights: `ambient` everywhere, `directional` along -z (from the viewer)."""

    ambient: float = 0.5
    directional: float = 0.5

    def __post_init__(self) -> None:
        for name in ("ambient", "directional"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 16.0):
                raise ValueError(f"lighting {name} must be a number in [0, 16], not {value!r}")


def euler_matrix(degrees: tuple[float, float, float]) -> np.ndarray:
    """The 3×3 rotation Ry · Rx · Rz for Euler angles in degrees about x, y, z."""
    x, y, z = np.radians(np.asarray(degrees, dtype=np.float64))
    cx, sx, cy, sy, cz, sz = np.cos(x), np.sin(x), np.cos(y), np.sin(y), np.cos(z), np.sin(z)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return ry @ rx @ rz
