"""Face tracking: a person's face in a video → a THA1 pose sequence (see ``track.track_video``).

MediaPipe is imported only when frames are tracked, so importing this package is cheap.
"""

from tracking.calibrate import CalibrationSettings, Neutral
from tracking.smoothing import OneEuroFilter, OneEuroSettings
from tracking.track import TrackingError, TrackResult, track_frames, track_video

__all__ = [
    "CalibrationSettings",
    "Neutral",
    "OneEuroFilter",
    "OneEuroSettings",
    "TrackResult",
    "TrackingError",
    "track_frames",
    "track_video",
]
