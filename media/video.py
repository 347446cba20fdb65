"""Frames in and out: videos through imageio's ffmpeg plugin, image folders, mp4 and GIF output.

Frames are ``(H, W, 3)`` uint8 RGB arrays. Output frames may also be RGBA (the renderer's straight
alpha), which is composited over a background colour.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mov", ".mkv", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
OUTPUT_SUFFIXES = (".mp4", ".gif")
DEFAULT_FOLDER_FPS = 30.0
# A GIF is written in one go (Pillow keeps every frame, RGB and palette copies, ~4 bytes per
# pixel): at most this many pixels of frames, i.e. 1,000 frames at 256² (about 260 MB).
# An .mp4 is streamed frame by frame and has no limit.
MAX_GIF_PIXELS = 256 * 256 * 1000


class VideoError(ValueError):
    """A video or image folder that cannot be read or written; names the path."""

    def __init__(self, path: str | Path, message: str) -> None:
        self.path = Path(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")


@dataclass(frozen=True)
class FrameSource:
    """Frames of a video file or an image folder; iterate for RGB frames (re-iterable).

    ``count`` is exact for folders and an estimate from the container's metadata for videos
    (None when unknown); it is meant for progress bars.
    """

    path: Path
    fps: float
    count: int | None
    images: tuple[Path, ...] = ()

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.images:
            for image in self.images:
                yield _read_image(image)
            return
        reader = _open_reader(self.path)
        try:
            for frame in reader:
                yield _as_rgb(np.asarray(frame))
        except (OSError, RuntimeError) as e:
            raise VideoError(self.path, f"decoding failed: {e}") from e
        finally:
            reader.close()


def open_frames(source: str | Path, fps: float | None = None) -> FrameSource:
    """A video file (mp4/avi/webm/...) or a folder of images sorted naturally (2 before 10).

    ``fps`` overrides the video's own rate; a folder has no rate of its own and defaults to 30.
    """
    path = Path(source)
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise VideoError(path, f"fps must be a positive number, got {fps}")
    if path.is_dir():
        images = tuple(
            sorted(
                (p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                key=natural_key,
            )
        )
        if not images:
            raise VideoError(path, f"no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        return FrameSource(path, float(fps or DEFAULT_FOLDER_FPS), len(images), images)
    if not path.is_file():
        raise VideoError(path, "no such video file or image folder")
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise VideoError(path, f"unsupported suffix; expected one of {', '.join(VIDEO_SUFFIXES)}")
    reader = _open_reader(path)
    try:
        meta = reader.get_meta_data()
    finally:
        reader.close()
    native = float(meta.get("fps") or 0.0)
    rate = float(fps) if fps is not None else native
    if not (math.isfinite(rate) and rate > 0):
        raise VideoError(path, "the video has no frame rate; pass fps")
    count = meta.get("nframes")
    if not (isinstance(count, int) or (isinstance(count, float) and math.isfinite(count))):
        duration = float(meta.get("duration") or 0.0)
        count = round(duration * native) if duration > 0 and native > 0 else None
    return FrameSource(path, rate, None if count is None else int(count))


def read_frames(source: str | Path, fps: float | None = None) -> tuple[list[np.ndarray], float]:
    """All frames of ``source`` in memory, with the frame rate."""
    frames = open_frames(source, fps)
    return list(frames), frames.fps


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    background: tuple[int, int, int] = (255, 255, 255),
    crf: int = 18,
) -> Path:
    """Write ``.mp4`` (libx264, yuv420p, sizes padded to even) or ``.gif`` at ``fps``.

    ``frames`` is consumed lazily. An mp4 is streamed; a GIF holds its frames in memory, so it
    is refused (``VideoError``, nothing written) once it would exceed ``MAX_GIF_PIXELS``.
    GIF delays are whole centiseconds; they are chosen so that frame ``i`` starts within 10 ms
    of ``i / fps`` (e.g. 30 fps alternates 30 and 40 ms), keeping the rate on average.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise VideoError(path, f"unsupported output; expected one of {', '.join(OUTPUT_SUFFIXES)}")
    if not (math.isfinite(fps) and fps > 0):
        raise VideoError(path, f"fps must be a positive number, got {fps}")
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = (_flatten(f, background) for f in frames)
    try:
        count = _write_gif(path, rgb, fps) if suffix == ".gif" else _write_mp4(path, rgb, fps, crf)
    except BaseException:
        path.unlink(missing_ok=True)  # no half-written videos
        raise
    if count == 0:
        path.unlink(missing_ok=True)
        raise VideoError(path, "no frames to write")
    return path


def natural_key(path: Path) -> tuple:
    """Sort key where digit runs compare as numbers: frame2 < frame10."""
    parts = re.split(r"(\d+)", path.name.lower())
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def _open_reader(path: Path):
    import imageio.v2 as imageio

    try:
        return imageio.get_reader(path, format="FFMPEG")
    except (OSError, RuntimeError, ValueError) as e:
        raise VideoError(path, f"cannot open as a video: {e}") from e


def _read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as e:
        raise VideoError(path, f"cannot read image: {e}") from e


def _as_rgb(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    return np.ascontiguousarray(frame[:, :, :3], dtype=np.uint8)


def _flatten(frame: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """RGB uint8; RGBA (straight alpha) is composited over ``background``."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim not in (2, 3):
        raise ValueError(f"frames must be uint8 (H, W[, C]), not {frame.dtype} {frame.shape}")
    if frame.ndim == 3 and frame.shape[2] == 4:
        alpha = frame[:, :, 3:].astype(np.float32) / 255.0
        back = np.asarray(background, np.float32)
        mixed = frame[:, :, :3] * alpha + back * (1.0 - alpha)
        return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return _as_rgb(frame)


def _write_mp4(path: Path, frames: Iterator[np.ndarray], fps: float, crf: int) -> int:
    import imageio.v2 as imageio

    writer = imageio.get_writer(
        path,
        format="FFMPEG",
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",
        macro_block_size=1,
        quality=None,
        ffmpeg_log_level="error",
        output_params=["-crf", str(int(crf))],
    )
    count, size = 0, None
    try:
        for frame in frames:
            if size is None:
                size = frame.shape
            elif frame.shape != size:
                raise VideoError(path, f"frame {count} is {frame.shape}, the first was {size}")
            h, w = frame.shape[:2]
            # yuv420p needs even sizes: repeat the last row/column when odd.
            writer.append_data(np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge"))
            count += 1
    finally:
        writer.close()
    return count


def _write_gif(path: Path, frames: Iterator[np.ndarray], fps: float) -> int:
    images: list[Image.Image] = []
    for frame in frames:
        if images and frame.shape[1::-1] != images[0].size:
            raise VideoError(path, f"frame {len(images)} is {frame.shape}, unlike the first")
        cap = max(1, MAX_GIF_PIXELS // max(1, frame.shape[0] * frame.shape[1]))
        if len(images) >= cap:
            h, w = frame.shape[:2]
            raise VideoError(
                path,
                f"more than {cap} frames of {w}×{h}: a GIF keeps every frame in memory, so it "
                "is limited to that; write .mp4 for longer sequences (streamed, no limit)",
            )
        images.append(Image.fromarray(frame))
    if not images:
        return 0
    starts = [round(i * 100.0 / fps) for i in range(len(images) + 1)]
    delays = [10 * max(1, b - a) for a, b in itertools.pairwise(starts)]
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=delays, loop=0, optimize=False
    )
    return len(images)
