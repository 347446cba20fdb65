"""What to draw: morph weights and bone rotations (`Pose`), and the light (`Lighting`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ROLE_NAMES = ("left_eye", "right_eye", "mouth")
ROTATION_ROLES = ("head", "neck")
THA1_NAMES = ("left_eye", "right_eye", "mouth", "head_x", "head_y", "neck_z")


@dataclass(frozen=True)
class Pose:
    """Morph weights and bone rotations.

    `morphs` keys are role names (`left_eye`, `right_eye`, `mouth`) or model morph names.
    `rotations` keys are `"head"`, `"neck"` (the roles' bones) or bone names; values are Euler
    angles about the model frame's x, y, z, in units of `unit` degrees (`unit=None`: the
    renderer's `max_degrees`, which is what `Pose.tha1` makes). The rotation matrix is
    Ry · Rx · Rz (roll, then pitch, then yaw), right-handed, so positive y turns the face
    towards the character's left (the image's right).
    """

    morphs: dict[str, float] = field(default_factory=dict)
    rotations: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    unit: float | None = 1.0

    @classmethod
    def tha1(
        cls,
        left_eye: float = 0.0,
        right_eye: float = 0.0,
        mouth: float = 0.0,
        head_x: float = 0.0,
        head_y: float = 0.0,
        neck_z: float = 0.0,
        max_degrees: float | None = None,
    ) -> Pose:
        """THA1's pose vector: morphs in [0, 1]; rotations in [-1, 1] × `max_degrees`
        (None: the renderer's `RenderSettings.max_degrees`)."""
        return cls(
            morphs={"left_eye": left_eye, "right_eye": right_eye, "mouth": mouth},
            rotations={"head": (head_x, head_y, 0.0), "neck": (0.0, 0.0, neck_z)},
            unit=max_degrees,
        )

    def degrees(self, max_degrees: float) -> dict[str, tuple[float, float, float]]:
        """The rotations in degrees, given the renderer's `max_degrees`."""
        scale = max_degrees if self.unit is None else self.unit
        return {k: tuple(float(a) * scale for a in v) for k, v in self.rotations.items()}


@dataclass(frozen=True)
class Lighting:
    """White lights: `ambient` everywhere, `directional` along -z (from the viewer)."""

    ambient: float = 0.5
    directional: float = 0.5


def euler_matrix(degrees: tuple[float, float, float]) -> np.ndarray:
    """The 3×3 rotation Ry · Rx · Rz for Euler angles in degrees about x, y, z."""
    x, y, z = np.radians(np.asarray(degrees, dtype=np.float64))
    cx, sx, cy, sy, cz, sz = np.cos(x), np.sin(x), np.cos(y), np.sin(y), np.cos(z), np.sin(z)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return ry @ rx @ rz
