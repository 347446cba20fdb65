"""Face tracking on real photographs shipped by scikit-image, with known in-plane rotations.

Videos are built from ``astronaut()`` (a frontal face) rotated about the face's centre, written as
mp4 with our writer and read back; ``camera()`` (the cameraman, face turned ~50° to the image's
right) checks the sign of yaw on a real turned head.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data, draw, transform

from media.video import open_frames, write_video
from poses.schema import load_schema
from poses.sequence import read_sequence
from tracking import OneEuroSettings, TrackingError, track_frames, track_video
from tracking.calibrate import measure, neutral_from
from tracking.geometry import (
    LEFT_EYE,
    RIGHT_EYE,
    euler_angles,
    face_features,
    rotation_from_euler,
    to_model_frame,
)
from tracking.landmarks import NUM_LANDMARKS, FaceLandmarker
from tracking.mapping import PoseMapper
from tracking.smoothing import smooth
from tracking.track import measure_frames, poses_from_features

FPS = 6.0
FACE_CENTRE = (222, 125)  # (x, y) of the astronaut's face, the rotation centre
ANGLES = np.arange(-12.0, 12.1, 3.0)  # degrees, counter-clockwise on screen
# Roll tolerance. Measured on a 1°-step sweep of −12…+12° through mp4 (crf 18): error rms 0.45°,
# max 0.95° (landmark jitter plus compression; identical frames jitter by up to 1.2° in pitch).
# 1.5° (0.1 unit of neck_z) leaves room for CPU-dependent float differences; a wrong sign is
# 24° off at 12°, and the scale is checked separately by the fitted slope (within 5%).
ROLL_TOLERANCE_DEG = 1.5
CROSS_TALK_TOLERANCE_DEG = 3.0  # pitch/yaw while only roll changes: measured max 2.2°


def rotated(angle: float, image: np.ndarray | None = None) -> np.ndarray:
    """The photograph turned ``angle`` degrees counter-clockwise about the face's centre."""
    image = data.astronaut() if image is None else image
    out = transform.rotate(image, angle, center=FACE_CENTRE, mode="edge", preserve_range=True)
    return np.rint(out).astype(np.uint8)


def blanked(image: np.ndarray) -> np.ndarray:
    out = image.copy()
    out[40:210, 150:300] = 128  # the whole head, filled grey
    return out


@pytest.fixture(scope="module")
def roll_clip(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """1 s neutral, then the rotations, a blanked frame, and one more rotated frame, as mp4."""
    frames = [rotated(0.0)] * int(FPS) + [rotated(a) for a in ANGLES]
    frames += [blanked(rotated(6.0)), rotated(6.0)]
    folder = tmp_path_factory.mktemp("roll")
    video = write_video(folder / "roll.mp4", frames, FPS)
    result = track_video(video, folder / "poses.csv", smoothing=None, progress=False)
    return {"video": video, "result": result, "n_neutral": int(FPS), "blank": len(frames) - 2}


@pytest.fixture(scope="module")
def landmarks() -> np.ndarray:
    with FaceLandmarker(static_image_mode=True) as landmarker:
        points = landmarker(data.astronaut())
    assert points is not None and points.shape == (NUM_LANDMARKS, 3)
    return points


@pytest.mark.numeric
def test_neck_z_follows_the_in_plane_rotation(roll_clip: dict) -> None:
    result, n0 = roll_clip["result"], roll_clip["n_neutral"]
    rows = slice(n0, n0 + len(ANGLES))
    assert result.sequence.tracked[rows].all()
    roll = result.sequence.column("neck_z")[rows] * 15.0
    error = roll - ANGLES
    assert np.abs(error).max() < ROLL_TOLERANCE_DEG, f"roll error (deg): {error.round(2)}"
    assert np.all(np.sign(roll[ANGLES != 0]) == np.sign(ANGLES[ANGLES != 0]))
    slope = np.polyfit(ANGLES, roll, 1)[0]
    assert slope == pytest.approx(1.0, abs=0.05)
    for name in ("head_x", "head_y"):
        still = result.sequence.column(name)[rows] * 15.0
        assert np.abs(still).max() < CROSS_TALK_TOLERANCE_DEG, f"{name} (deg): {still.round(2)}"


@pytest.mark.numeric
def test_calibration_zeroes_the_neutral_second(roll_clip: dict) -> None:
    result, n0 = roll_clip["result"], roll_clip["n_neutral"]
    assert result.neutral.frames == tuple(range(n0))
    neutral = result.sequence.values[:n0]
    assert np.abs(neutral[:, 3:]).max() < 0.1  # angles within 1.5°
    assert np.abs(neutral[:, :2]).max() < 0.15  # eyes: jitter of a static face after compression
    assert np.abs(neutral[:, 2]).max() < 0.1  # mouth
    # A chosen neutral frame is exactly zero; a later one shifts roll by its angle.
    features = _features(roll_clip)
    at_zero = poses_from_features(features, FPS, neutral_frame=0, smoothing=None)
    np.testing.assert_allclose(at_zero.raw.values[0], 0.0, atol=1e-9)
    at_last = poses_from_features(features, FPS, neutral_frame=n0 - 1 + len(ANGLES))  # +12°
    assert at_last.raw.column("neck_z")[0] == pytest.approx(-12 / 15, abs=0.07)


def test_faceless_frame_is_untracked_and_holds_the_last_pose(roll_clip: dict) -> None:
    result, blank = roll_clip["result"], roll_clip["blank"]
    tracked = result.sequence.tracked
    assert not tracked[blank] and tracked[blank + 1] and tracked.sum() == len(tracked) - 1
    for sequence in (result.sequence, result.raw):
        np.testing.assert_array_equal(sequence.values[blank], sequence.values[blank - 1])
    # Smoothed: the filter skips the untracked frame and the hold is of the filtered pose.
    smoothed = poses_from_features(_features(roll_clip), FPS)
    np.testing.assert_array_equal(
        smoothed.sequence.values[blank], smoothed.sequence.values[blank - 1]
    )
    assert not np.array_equal(smoothed.sequence.values[blank - 1], smoothed.raw.values[blank - 1])


@pytest.mark.numeric
def test_csv_holds_the_result(roll_clip: dict) -> None:
    result = roll_clip["result"]
    assert result.out_csv is not None
    back = read_sequence(result.out_csv)
    assert back.fps == pytest.approx(FPS)
    np.testing.assert_array_equal(back.tracked, result.sequence.tracked)
    np.testing.assert_allclose(back.values, result.sequence.values, atol=5e-7)


@pytest.mark.numeric
def test_mirrored_video_flips_roll() -> None:
    angles = [0.0, 9.0, -9.0]
    frames = [rotated(a)[:, ::-1].copy() for a in angles]
    features = measure_frames(frames, static_image_mode=True)
    roll = poses_from_features(features, FPS, neutral_frame=0).raw.column("neck_z") * 15.0
    np.testing.assert_allclose(roll, [0.0, -9.0, 9.0], atol=ROLL_TOLERANCE_DEG)


def test_yaw_sign_on_a_turned_head() -> None:
    """The cameraman faces the image's right = his own left: yaw > 0; mirrored, yaw < 0."""
    camera = transform.rescale(data.camera(), 2, preserve_range=True)  # his face is small
    gray = np.rint(camera).astype(np.uint8)
    image = np.repeat(gray[:, :, None], 3, axis=2)
    features = measure_frames([image, image[:, ::-1].copy()], static_image_mode=True)
    assert all(f is not None for f in features)
    yaw, mirrored_yaw = (euler_angles(f.rotation)[1] for f in features)
    assert yaw > 30.0 and mirrored_yaw < -30.0, (yaw, mirrored_yaw)


@pytest.mark.numeric
@pytest.mark.parametrize(
    ("pitch", "yaw", "roll"), [(10.0, 0.0, 0.0), (0.0, 10.0, 0.0), (0.0, 0.0, 10.0), (6, -8, 4)]
)
def test_geometry_signs_on_rotated_landmarks(
    landmarks: np.ndarray, pitch: float, yaw: float, roll: float
) -> None:
    """Real landmarks turned by a known rotation in the head's own frame come back exactly."""
    neutral_features = face_features(landmarks)
    r0 = neutral_features.rotation
    points = to_model_frame(landmarks)
    centre = points.mean(axis=0)
    turn = r0 @ rotation_from_euler(pitch, yaw, roll) @ r0.T
    moved = to_model_frame((points - centre) @ turn.T + centre)  # back to pixels (self-inverse)
    neutral = neutral_from([neutral_features], [0.0])
    pose = PoseMapper(load_schema("tha1"))(measure(face_features(moved), neutral))
    np.testing.assert_allclose(pose[3:] * 15.0, [pitch, yaw, roll], atol=1e-6)
    np.testing.assert_allclose(pose[:3], 0.0, atol=1e-9)  # rigid motion: eyes, mouth unchanged
    # What the signs mean on screen (pixels: y grows downwards).
    nose, forehead = 1, 10
    if pitch > 0 and yaw == roll == 0:
        assert moved[nose, 1] > landmarks[nose, 1]  # face tilts down: the nose drops
    if yaw > 0 and pitch == roll == 0:
        assert moved[nose, 0] > landmarks[nose, 0]  # turns to the person's left: image right
    if roll > 0 and pitch == yaw == 0:
        assert moved[forehead, 0] < landmarks[forehead, 0]  # head top to the image's left


def close_eye(image: np.ndarray, points: np.ndarray, eye: dict) -> np.ndarray:
    """Paint the eye over with skin colour from just below it and draw a lash line."""
    out = image.copy()
    corners = points[[eye["outer"], eye["inner"], *eye["upper"], *eye["lower"]], :2]
    cx, cy = corners.mean(axis=0)
    width = np.ptp(corners[:, 0])
    below = out[int(cy + 0.5 * width) : int(cy + 0.8 * width), int(cx - 0.3 * width) :][
        :, : int(0.6 * width)
    ]
    rows, cols = draw.ellipse(cy, cx, 0.45 * width, 0.75 * width, shape=out.shape)
    out[rows, cols] = np.median(below.reshape(-1, 3), axis=0)
    rows, cols = draw.line(int(cy + 1), int(cx - width / 2), int(cy + 1), int(cx + width / 2))
    out[rows, cols] = (out[rows, cols] * 0.4).astype(np.uint8)
    return out


def test_closing_one_eye_raises_that_side(landmarks: np.ndarray, tmp_path: Path) -> None:
    photo = data.astronaut()
    left_closed = close_eye(photo, landmarks, LEFT_EYE)  # the person's left: the image's right
    right_closed = close_eye(photo, landmarks, RIGHT_EYE)
    Image.fromarray(left_closed[60:190, 170:280]).save(tmp_path / "left_closed.png")
    frames = [photo, left_closed, right_closed, left_closed[:, ::-1].copy()]
    features = measure_frames(frames, static_image_mode=True)
    eyes = poses_from_features(features, FPS, neutral_frame=0, smoothing=None).raw.values[:, :2]
    mirrored_photo = measure_frames([photo[:, ::-1].copy()], static_image_mode=True)
    # The mirrored frame is compared with the mirrored photo's own neutral.
    mirrored = measure(features[3], neutral_from(mirrored_photo, [0.0]))[:2]
    left, right = 0, 1
    assert eyes[1, left] > 0.7 and eyes[1, right] < 0.2, eyes[1]
    assert eyes[2, right] > 0.7 and eyes[2, left] < 0.2, eyes[2]
    assert mirrored[right] > 0.7 and mirrored[left] < 0.2, mirrored


@pytest.mark.numeric
def test_image_folder_input_in_natural_order(tmp_path: Path) -> None:
    # At 2 fps the first second is f1, f2; f10 and f11 only come first in a lexicographic sort.
    for name, angle in [("f1", 0.0), ("f2", 0.0), ("f10", 8.0), ("f11", -8.0)]:
        Image.fromarray(rotated(angle)).save(tmp_path / f"{name}.png")
    result = track_video(tmp_path, fps=2.0, smoothing=None, progress=False)
    assert result.fps == 2.0 and result.neutral.frames == (0, 1)
    np.testing.assert_allclose(
        result.sequence.column("neck_z") * 15, [0, 0, 8, -8], atol=ROLL_TOLERANCE_DEG
    )


def test_no_face_or_bad_neutral_is_a_clear_error(roll_clip: dict) -> None:
    grey = np.full((128, 128, 3), 128, np.uint8)
    with pytest.raises(TrackingError, match="no face was found in any of the 2 frames"):
        track_frames([grey, grey], FPS, name="grey.mp4")
    features = _features(roll_clip)
    with pytest.raises(TrackingError, match="neutral frame 99 is outside"):
        poses_from_features(features, FPS, neutral_frame=99)
    with pytest.raises(TrackingError, match="no face was found in the neutral frame"):
        poses_from_features(features, FPS, neutral_frame=roll_clip["blank"])


@pytest.mark.numeric
def test_one_euro_filter_reduces_jitter_and_follows_a_step() -> None:
    rng = np.random.default_rng(0)
    times = np.arange(120) / 30.0
    clean = np.where(np.arange(120) >= 60, 1.0, 0.0)
    noisy = clean + rng.normal(0.0, 0.05, 120)
    out = smooth(times, noisy[:, None], OneEuroSettings())[:, 0]
    assert out[10:60].std() < 0.6 * noisy[10:60].std()  # still: jitter at least 40% lower
    assert out[90:].std() < 0.6 * noisy[90:].std()
    assert abs(out[64] - 1.0) < 0.1  # the step is followed within 5 frames (1/6 s)…
    assert np.abs(out[64:] - 1.0).max() < 0.1  # …and stays
    lazy = smooth(times, noisy[:, None], OneEuroSettings(min_cutoff=0.1, beta=0.0))[:, 0]
    assert lazy[64] < 0.5  # a low fixed cutoff lags: the settings matter
    with pytest.raises(ValueError, match="min_cutoff must be a positive number"):
        OneEuroSettings(min_cutoff=0.0)


def _features(roll_clip: dict) -> list:
    """The clip's per-frame measurements (cached: MediaPipe runs once per clip)."""
    if "features" not in roll_clip:
        roll_clip["features"] = measure_frames(open_frames(roll_clip["video"]))
    return roll_clip["features"]
