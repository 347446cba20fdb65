"""What face detection finds in a model: the THA1 roles, the head bones and the head box, how
each eye's closure was chosen, and flags for a person to review."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from poses.roles import EYE_ROLES, HAPPY_ROLES, MORPH_ROLES

__all__ = [
    "EYE_ROLES",
    "HAPPY_ROLES",
    "MORPH_ROLES",
    "ClosureCandidate",
    "EyeChoice",
    "FaceRoles",
    "Flag",
    "HeadBox",
    "RoleMorph",
]


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
    # The top of the dome under the piece the top ends on, when that piece may be headwear and
    # geometry cannot tell (mmd_loader.head_top); None when the top is certain.
    uncertain_top: float | None = None

    @property
    def height(self) -> float:
        return self.top - self.chin


@dataclass
class ClosureCandidate:
    """One way to close one eye, measured on the closed lid (see `mmd_loader.closures`)."""

    morph: str
    how: str  # "wink" (a one-eye morph) or "split" (that side of a both-eyes morph)
    arch: float | None  # closed lid's centre above its corners, per eye width; > 0 is ⌒
    raised: float  # share of the displacement that moves up (cheek, lower lid)
    elsewhere: float  # share of the displacement away from the eye (brow, cheek, other eye)
    smile: bool
    score: float  # lower is more neutral


@dataclass
class EyeChoice:
    """Which closure an eye role got and why; `candidates` most neutral first."""

    role: str
    chosen: str | None  # morph name, None when nothing closes the eye
    reason: str
    candidates: list[ClosureCandidate] = field(default_factory=list)


@dataclass
class Flag:
    """Something a person should look at; the model stays usable."""

    code: str
    message: str
    role: str | None = None
    value: float | None = None


@dataclass
class FaceRoles:
    morphs: dict[str, RoleMorph] = field(default_factory=dict)
    neck: int = -1  # bone index of the neck root (首)
    head: int = -1  # bone index of the head (頭)
    head_box: HeadBox | None = None
    problems: list[str] = field(default_factory=list)  # why the model is not usable
    eyes: dict[str, EyeChoice] = field(default_factory=dict)  # per eye role
    flags: list[Flag] = field(default_factory=list)
    # Per eye role, the eye's centre (x, y, z) as every closure of it found sees it, whichever
    # was chosen (see `mmd_loader.face.eye_anchor`): what the head box is measured from.
    eye_anchors: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return not self.problems
