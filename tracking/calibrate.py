"""Per-video calibration: a neutral face, and raw measurements relative to it.

The neutral is the median of the tracked frames in the first second (or one chosen frame).
Relative to it: an eye is 0 (open) at the neutral aspect ratio and 1 (closed) at
``eye_closed_fraction`` of it; the mouth is 0 at the neutral opening and 1 when it is
``mouth_open_span`` eye-corner spans wider; the head's rotation relative to the neutral is split
into (pitch, yaw, roll) in degrees; a brow is 0 at its neutral height and 1 when it sits
``brow_raise_span`` eye-corner spans higher; the irises' gaze is ±1 when they are
``gaze_span`` eye half-widths off their neutral place (pitch > 0 looking down, yaw > 0 to the
person's left, as the schema's iris rotations). `tracking.mapping` turns these into a schema's
parameters (the angles divided by each parameter's `degrees`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from poses.roles import TRACKED
from tracking.geometry import FaceFeatures, euler_angles, mean_rotation


@dataclass(frozen=True)
class CalibrationSettings:
    eye_closed_fraction: float = 0.3
    mouth_open_span: float = 0.35
    neutral_seconds: float = 1.0
    brow_raise_span: float = 0.06
    gaze_span: float = 0.4


@dataclass(frozen=True)
class Neutral:
    """The neutral face's measurements and the frames they came from."""

    left_eye: float
    right_eye: float
    mouth: float
    rotation: np.ndarray
    frames: tuple[int, ...]
    left_brow: float = 0.0
    right_brow: float = 0.0
    gaze: tuple[float, float] = (0.0, 0.0)


def neutral_from(
    features: Sequence[FaceFeatures | None],
    times: Sequence[float],
    *,
    frame: int | None = None,
    seconds: float = 1.0,
) -> Neutral:
    """The neutral from ``frame`` or from the tracked frames with ``time < times[0] + seconds``.

    When no face is tracked in that first second, the first second of tracked frames is used.
    Raises ValueError when ``frame`` is out of range or untracked, or nothing is tracked.
    """
    tracked = [i for i, f in enumerate(features) if f is not None]
    if frame is not None:
        if not 0 <= frame < len(features):
            raise ValueError(f"neutral frame {frame} is outside 0..{len(features) - 1}")
        if features[frame] is None:
            raise ValueError(f"no face was found in the neutral frame {frame}")
        chosen = [frame]
    else:
        if not tracked:
            raise ValueError(f"no face was found in any of the {len(features)} frames")
        chosen = [i for i in tracked if times[i] < times[0] + seconds]
        if not chosen:
            start = times[tracked[0]]
            chosen = [i for i in tracked if times[i] < start + seconds]
    picked = [features[i] for i in chosen]
    return Neutral(
        left_eye=float(np.median([f.left_eye for f in picked])),
        right_eye=float(np.median([f.right_eye for f in picked])),
        mouth=float(np.median([f.mouth for f in picked])),
        rotation=mean_rotation(np.array([f.rotation for f in picked])),
        frames=tuple(chosen),
        left_brow=float(np.median([f.left_brow for f in picked])),
        right_brow=float(np.median([f.right_brow for f in picked])),
        gaze=tuple(float(v) for v in np.median([f.gaze for f in picked], axis=0)),
    )


# The order of `measure`'s values: the names schemas' `track:` fields use (poses.roles.TRACKED).
MEASUREMENTS = TRACKED
ANGLES = ("pitch", "yaw", "roll")  # in degrees; the others in their parameters' own units


def measure(
    features: FaceFeatures, neutral: Neutral, settings: CalibrationSettings = CalibrationSettings()
) -> np.ndarray:
    """``MEASUREMENTS`` relative to the neutral: closures, opening and brow raises in [0, 1],
    angles in degrees (the head in the neutral head's frame), gaze in [-1, 1]."""
    relative = neutral.rotation.T @ features.rotation
    pitch, yaw, roll = euler_angles(relative)
    span = settings.brow_raise_span
    gx = (features.gaze[0] - neutral.gaze[0]) / settings.gaze_span
    gy = (features.gaze[1] - neutral.gaze[1]) / settings.gaze_span
    return np.array(
        [
            eye_closure(features.left_eye, neutral.left_eye, settings.eye_closed_fraction),
            eye_closure(features.right_eye, neutral.right_eye, settings.eye_closed_fraction),
            float(np.clip((features.mouth - neutral.mouth) / settings.mouth_open_span, 0, 1)),
            pitch,
            yaw,
            roll,
            float(np.clip((features.left_brow - neutral.left_brow) / span, 0, 1)),
            float(np.clip((features.right_brow - neutral.right_brow) / span, 0, 1)),
            float(np.clip(-gy, -1, 1)),  # looking down (y falls) is a positive iris pitch
            float(np.clip(gx, -1, 1)),
        ]
    )


def eye_closure(ratio: float, neutral_ratio: float, closed_fraction: float) -> float:
    """0 at the neutral (open) aspect ratio, 1 at ``closed_fraction`` of it, clipped to [0, 1]."""
    openness = ratio / max(neutral_ratio, 1e-9)
    return float(np.clip((1.0 - openness) / (1.0 - closed_fraction), 0.0, 1.0))
