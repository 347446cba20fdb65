"""Face measurements from FaceMesh landmarks: eye openness, mouth opening, head rotation, brow
height and where the irises look (FaceMesh's refined iris landmarks 468-477).

Everything is computed in the *model frame* of docs/contracts.md, seen from the camera: X to the
image's right (a person facing the camera has their left on the image's right, so +X is the
person's left), Y up, Z towards the viewer. A frontal, upright face has the identity rotation.

Head rotation ``R`` has the head's axes as columns (x = the person's left, y = up, z = out of the
face) and is decomposed as ``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)``: the renderer's composition for
``Pose.tha1`` (the neck's Rz is the parent of the head's Ry · Rx, render/pose.py). Positive angles
follow the right-hand rule:
- pitch (head_x) > 0: the face tilts down, chin towards the chest;
- yaw (head_y) > 0: the face turns towards the person's own left (the image's right);
- roll (neck_z) > 0: the top of the head moves to the image's left (counter-clockwise on screen).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# FaceMesh indices. MediaPipe's "right" eye is the person's right (the image's left).
# Eye aspect ratio: (|upper1 - lower1| + |upper2 - lower2|) / (2 |outer - inner|).
RIGHT_EYE = {"outer": 33, "inner": 133, "upper": (160, 158), "lower": (144, 153)}
LEFT_EYE = {"outer": 263, "inner": 362, "upper": (387, 385), "lower": (373, 380)}
# Inner-lip pairs (upper, lower): middle and either side of it.
MOUTH_PAIRS = ((13, 14), (82, 87), (312, 317))
# Symmetric pairs (person's right → person's left) on the rigid upper face: eye corners, cheeks.
LATERAL_PAIRS = ((33, 263), (133, 362), (234, 454))
# Bottom of the nose → forehead and nose bridge: "up" without the jaw (which moves with the mouth).
VERTICAL_PAIRS = ((2, 10), (2, 168))
# Brows (upper edge, middle three points) over each eye's upper lid, and the iris centres of
# the refined landmarks (468 the person's right iris, 473 the left).
RIGHT_BROW, LEFT_BROW = (63, 105, 66), (293, 334, 296)
RIGHT_LID, LEFT_LID = 159, 386
RIGHT_IRIS, LEFT_IRIS = 468, 473


@dataclass(frozen=True)
class FaceFeatures:
    """Raw per-frame measurements, before calibration.

    ``left_eye``/``right_eye``: eye aspect ratios of the person's left/right eye (larger = more
    open); ``mouth``: inner-lip gap ÷ eye-corner span; ``rotation``: the head's 3×3 rotation;
    ``left_brow``/``right_brow``: brow-to-lid height ÷ eye-corner span; ``gaze``: the irises'
    mean offset from their eyes' centres in the head's own frame (x to the person's left, y
    up) ÷ the eye's half-width (0, 0 without iris landmarks).
    """

    left_eye: float
    right_eye: float
    mouth: float
    rotation: np.ndarray
    left_brow: float = 0.0
    right_brow: float = 0.0
    gaze: tuple[float, float] = (0.0, 0.0)


def to_model_frame(landmarks: np.ndarray) -> np.ndarray:
    """FaceMesh pixels (x right, y down, z away) → model frame (X right, Y up, Z to the viewer)."""
    points = np.asarray(landmarks, dtype=np.float64)
    return points * np.array([1.0, -1.0, -1.0])


def face_features(landmarks: np.ndarray) -> FaceFeatures:
    """Measurements of one face from its ``(478, 3)`` (or 468) FaceMesh landmarks in pixels."""
    points = to_model_frame(landmarks)
    rotation = head_rotation(points)
    return FaceFeatures(
        left_eye=eye_aspect_ratio(points, LEFT_EYE),
        right_eye=eye_aspect_ratio(points, RIGHT_EYE),
        mouth=mouth_opening(points),
        rotation=rotation,
        left_brow=brow_height(points, LEFT_BROW, LEFT_LID),
        right_brow=brow_height(points, RIGHT_BROW, RIGHT_LID),
        gaze=gaze(points, rotation),
    )


def brow_height(points: np.ndarray, brow: tuple[int, ...], lid: int) -> float:
    """How far the brow's middle sits above the eye's upper lid, over the eye-corner span."""
    span = np.linalg.norm(points[LEFT_EYE["outer"]] - points[RIGHT_EYE["outer"]])
    return float(np.linalg.norm(points[list(brow)].mean(axis=0) - points[lid]) / max(span, 1e-9))


def gaze(points: np.ndarray, rotation: np.ndarray) -> tuple[float, float]:
    """The irises' mean offset from their eyes' corner midpoints, in the head's frame (x to the
    person's left, y up), over each eye's half-width; (0, 0) for 468 landmarks (no irises)."""
    if len(points) <= LEFT_IRIS:
        return (0.0, 0.0)
    offsets = []
    for eye, iris in ((RIGHT_EYE, RIGHT_IRIS), (LEFT_EYE, LEFT_IRIS)):
        outer, inner = points[eye["outer"]], points[eye["inner"]]
        half = max(np.linalg.norm(outer - inner) / 2.0, 1e-9)
        local = rotation.T @ (points[iris] - (outer + inner) / 2.0)
        offsets.append(local[:2] / half)
    x, y = np.mean(offsets, axis=0)
    return (float(x), float(y))


def eye_aspect_ratio(points: np.ndarray, eye: dict) -> float:
    """Eyelid gap over eye width, in 3D so that turning the head changes it little."""
    gaps = [
        np.linalg.norm(points[u] - points[d])
        for u, d in zip(eye["upper"], eye["lower"], strict=True)
    ]
    width = np.linalg.norm(points[eye["outer"]] - points[eye["inner"]])
    return float(np.mean(gaps) / max(width, 1e-9))


def mouth_opening(points: np.ndarray) -> float:
    """Mean inner-lip gap over the span between the outer eye corners (a rigid length)."""
    gap = np.mean([np.linalg.norm(points[u] - points[d]) for u, d in MOUTH_PAIRS])
    span = np.linalg.norm(points[LEFT_EYE["outer"]] - points[RIGHT_EYE["outer"]])
    return float(gap / max(span, 1e-9))


def head_rotation(points: np.ndarray) -> np.ndarray:
    """The head's rotation (columns: its x, y, z axes) from model-frame landmarks.

    x is the mean direction of the lateral pairs, y the mean of the vertical pairs made
    orthogonal to x, z = x × y.
    """
    x = _mean_direction(points, LATERAL_PAIRS)
    y = _mean_direction(points, VERTICAL_PAIRS)
    y = y - np.dot(y, x) * x
    y /= np.linalg.norm(y)
    return np.column_stack([x, y, np.cross(x, y)])


def euler_angles(rotation: np.ndarray) -> tuple[float, float, float]:
    """``(pitch, yaw, roll)`` in degrees with ``rotation = Rz(roll) @ Ry(yaw) @ Rx(pitch)``."""
    r = np.asarray(rotation, dtype=np.float64)
    yaw = np.arcsin(np.clip(-r[2, 0], -1.0, 1.0))
    pitch = np.arctan2(r[2, 1], r[2, 2])
    roll = np.arctan2(r[1, 0], r[0, 0])
    return tuple(float(np.degrees(a)) for a in (pitch, yaw, roll))


def rotation_from_euler(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """Inverse of ``euler_angles`` (degrees)."""
    a, b, c = np.radians([pitch, yaw, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def mean_rotation(rotations: np.ndarray) -> np.ndarray:
    """The rotation nearest (Frobenius) to the mean of ``(n, 3, 3)`` rotations."""
    u, _, vt = np.linalg.svd(np.mean(np.asarray(rotations), axis=0))
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def _mean_direction(points: np.ndarray, pairs: tuple[tuple[int, int], ...]) -> np.ndarray:
    vectors = np.array([points[b] - points[a] for a, b in pairs])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    mean = vectors.mean(axis=0)
    return mean / np.linalg.norm(mean)
