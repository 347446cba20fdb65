"""The frame loop: video → landmarks → calibrated, smoothed poses of a schema → pose CSV.

Two passes: every frame's face is measured first (the calibration needs the first second, or a
chosen neutral frame), then each tracked frame is calibrated and one-euro filtered. A frame without
a face is marked ``tracked = 0`` and holds the previous frame's (filtered) pose; frames before the
first face hold the schema's neutral pose. Which parameters the tracker drives, and how angles
scale, comes from the schema (`tracking.mapping`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from poses.schema import DEFAULT_SCHEMA, Schema, load_schema
from poses.sequence import PoseSequence, write_sequence
from tracking.calibrate import CalibrationSettings, Neutral, measure, neutral_from
from tracking.geometry import FaceFeatures, face_features
from tracking.mapping import PoseMapper
from tracking.smoothing import OneEuroFilter, OneEuroSettings

DEFAULT_SMOOTHING = OneEuroSettings()
DEFAULT_CALIBRATION = CalibrationSettings()


class TrackingError(ValueError):
    """No sequence possible (no face anywhere, a bad neutral frame); names the source."""

    def __init__(self, source: str | Path, message: str) -> None:
        self.source = str(source)
        self.message = message
        super().__init__(f"{source}: {message}")


@dataclass(frozen=True)
class TrackResult:
    """``sequence`` is what the CSV holds; ``raw`` the same before smoothing."""

    sequence: PoseSequence
    raw: PoseSequence
    neutral: Neutral
    fps: float
    source: Path | None = None
    out_csv: Path | None = None

    @property
    def frame_count(self) -> int:
        return len(self.sequence)

    @property
    def tracked_count(self) -> int:
        return int(self.sequence.tracked.sum())


def track_video(
    source: str | Path,
    out_csv: str | Path | None = None,
    *,
    fps: float | None = None,
    neutral_frame: int | None = None,
    smoothing: OneEuroSettings | None = DEFAULT_SMOOTHING,
    calibration: CalibrationSettings = DEFAULT_CALIBRATION,
    static_image_mode: bool = False,
    progress: bool = True,
    schema: Schema | None = None,
) -> TrackResult:
    """Track a video file or image folder; write the pose CSV to ``out_csv`` when given.

    ``fps`` overrides the video's rate (a folder defaults to 30); ``smoothing=None`` turns the
    filter off; ``schema`` (default tha1) names the parameters written. Raises
    ``media.video.VideoError`` for unreadable input, ``TrackingError`` when no face is found or
    ``neutral_frame`` is unusable.
    """
    from media.video import open_frames

    schema = schema or load_schema(DEFAULT_SCHEMA)
    frames = open_frames(source, fps)
    result = track_frames(
        frames,
        frames.fps,
        neutral_frame=neutral_frame,
        smoothing=smoothing,
        calibration=calibration,
        static_image_mode=static_image_mode,
        progress=progress,
        total=frames.count,
        name=str(source),
        schema=schema,
    )
    out = None if out_csv is None else write_sequence(out_csv, result.sequence, schema)
    return TrackResult(result.sequence, result.raw, result.neutral, result.fps, Path(source), out)


def track_frames(
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    neutral_frame: int | None = None,
    smoothing: OneEuroSettings | None = DEFAULT_SMOOTHING,
    calibration: CalibrationSettings = DEFAULT_CALIBRATION,
    static_image_mode: bool = False,
    progress: bool = False,
    total: int | None = None,
    name: str = "frames",
    schema: Schema | None = None,
) -> TrackResult:
    """Track RGB frames sampled at ``fps`` (see ``track_video``)."""
    features = measure_frames(
        frames, static_image_mode=static_image_mode, progress=progress, total=total
    )
    return poses_from_features(
        features,
        fps,
        neutral_frame=neutral_frame,
        smoothing=smoothing,
        calibration=calibration,
        name=name,
        schema=schema,
    )


def poses_from_features(
    features: Sequence[FaceFeatures | None],
    fps: float,
    *,
    neutral_frame: int | None = None,
    smoothing: OneEuroSettings | None = DEFAULT_SMOOTHING,
    calibration: CalibrationSettings = DEFAULT_CALIBRATION,
    name: str = "frames",
    schema: Schema | None = None,
) -> TrackResult:
    """The second pass: calibrate, map to the schema (default tha1), filter, and fill frames
    without a face (None)."""
    if not features:
        raise TrackingError(name, "no frames")
    times = np.arange(len(features)) / float(fps)
    try:
        neutral = neutral_from(
            features, times, frame=neutral_frame, seconds=calibration.neutral_seconds
        )
    except ValueError as e:
        raise TrackingError(name, str(e)) from e
    mapper = PoseMapper(schema or load_schema(DEFAULT_SCHEMA))
    tracked = np.array([f is not None for f in features])
    raw = np.zeros((len(features), len(mapper.names)))
    smoothed = np.zeros_like(raw)
    filter_ = OneEuroFilter(smoothing) if smoothing is not None else None
    for i, f in enumerate(features):
        if f is None:  # hold the last pose (the neutral before the first face)
            raw[i] = raw[i - 1] if i else mapper.neutral
            smoothed[i] = smoothed[i - 1] if i else mapper.neutral
            continue
        raw[i] = mapper(measure(f, neutral, calibration))
        smoothed[i] = raw[i] if filter_ is None else filter_(times[i], raw[i])
    return TrackResult(
        sequence=PoseSequence(times, tracked, smoothed, mapper.names),
        raw=PoseSequence(times, tracked, raw, mapper.names),
        neutral=neutral,
        fps=float(fps),
    )


def measure_frames(
    frames: Iterable[np.ndarray],
    *,
    static_image_mode: bool = False,
    progress: bool = False,
    total: int | None = None,
) -> list[FaceFeatures | None]:
    """Each frame's face measurements, None where no face is found."""
    from tracking.landmarks import FaceLandmarker

    features: list[FaceFeatures | None] = []
    with FaceLandmarker(static_image_mode=static_image_mode) as landmarker:
        for frame in tqdm(frames, total=total, desc="tracking", unit="frame", disable=not progress):
            landmarks = landmarker(frame)
            features.append(None if landmarks is None else face_features(landmarks))
    return features
