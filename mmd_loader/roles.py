"""What face detection finds in a model: the THA1 roles, the head bones and the head box."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EYE_ROLES = ("left_eye", "right_eye")
MORPH_ROLES = ("left_eye", "right_eye", "mouth")


@dataclass
class RoleMorph:
    """A face role bound to model geometry, resolved to a plain vertex morph at weight 1."""

    role: str
    morph: str  # name of the model morph it comes from
    indices: np.ndarray  # (N,) int32 vertex indices
    offsets: np.ndarray  # (N, 3) float32, model frame
    how: str = "name"  # "name", "geometry", "split" (one side of a both-eyes blink), "override"


@dataclass
class HeadBox:
    """The head in model units: y of head top and chin, and the face centre (x, y, z)."""

    top: float
    chin: float
    center: np.ndarray  # (3,)
    half_width: float
    notes: list[str] = field(default_factory=list)  # how top and chin were found

    @property
    def height(self) -> float:
        return self.top - self.chin


@dataclass
class FaceRoles:
    morphs: dict[str, RoleMorph] = field(default_factory=dict)
    neck: int = -1  # bone index of the neck root (首)
    head: int = -1  # bone index of the head (頭)
    head_box: HeadBox | None = None
    problems: list[str] = field(default_factory=list)  # why the model is not usable

    @property
    def usable(self) -> bool:
        return not self.problems
