"""MediaPipe FaceMesh (mediapipe==0.10.14, the ``track`` extra): 478 landmarks per RGB frame.

The model files (``face_landmark*.tflite``) ship inside the wheel; nothing is downloaded.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

NUM_LANDMARKS = 478  # 468 face points + 2 × 5 iris points (refine_landmarks=True)


class FaceLandmarker:
    """One face's landmarks per frame, in pixels: x right, y down, z away from the camera.

    ``z`` is MediaPipe's relative depth, on the same scale as x (image widths), so the three
    coordinates share one unit. ``static_image_mode=False`` tracks the face from frame to frame
    (faster, steadier); ``True`` detects it afresh in every frame.
    """

    def __init__(
        self,
        *,
        static_image_mode: bool = False,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ start-up chatter
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from mediapipe.python.solutions import face_mesh
        except ImportError as e:
            raise ImportError(
                "face tracking needs MediaPipe: pip install 'thagen[track]' (mediapipe==0.10.14)"
            ) from e
        self._mesh = face_mesh.FaceMesh(
            static_image_mode=static_image_mode,
            max_num_faces=1,
            refine_landmarks=True,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        """``(478, 3)`` float64 landmarks of the face in ``frame`` (RGB uint8), or None."""
        frame = np.ascontiguousarray(frame[:, :, :3], dtype=np.uint8)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # protobuf deprecation warnings on every call
            result = self._mesh.process(frame)
        if not result.multi_face_landmarks:
            return None
        h, w = frame.shape[:2]
        points = result.multi_face_landmarks[0].landmark
        return np.array([(p.x * w, p.y * h, p.z * w) for p in points], dtype=np.float64)

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> FaceLandmarker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
