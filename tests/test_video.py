"""Video in and out: mp4/avi/webm through imageio's ffmpeg plugin, image folders, GIF timing."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image
from skimage import data

from media.video import VideoError, open_frames, read_frames, write_video


def _frames(count: int, height: int = 96, width: int = 128) -> list[np.ndarray]:
    """A crop of a real photograph sliding right by 4 px per frame (so frames differ)."""
    photo = data.astronaut()
    return [photo[100 : 100 + height, 150 + 4 * i :][:, :width].copy() for i in range(count)]


def _close(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.mark.numeric
def test_mp4_round_trip_keeps_rate_count_and_content(tmp_path: Path) -> None:
    frames = _frames(12)
    path = write_video(tmp_path / "clip.mp4", frames, fps=12.5)
    source = open_frames(path)
    assert source.fps == pytest.approx(12.5)
    assert source.count == 12
    back = list(source)
    assert len(back) == 12
    assert back[0].shape == (96, 128, 3) and back[0].dtype == np.uint8
    # crf 18 is visually lossless: mean error of a few levels, and each frame matches its own
    # source better than its neighbour (order kept).
    for i, frame in enumerate(back):
        assert _close(frame, frames[i]) < 4.0
        if i:
            assert _close(frame, frames[i]) < _close(frame, frames[i - 1])


@pytest.mark.numeric
def test_odd_sizes_are_padded_to_even(tmp_path: Path) -> None:
    frames = _frames(3, height=51, width=77)
    back, fps = read_frames(write_video(tmp_path / "odd.mp4", frames, fps=10))
    assert fps == pytest.approx(10)
    assert back[0].shape == (52, 78, 3)
    assert _close(back[1][:51, :77], frames[1]) < 4.0


@pytest.mark.numeric
def test_rgba_is_composited_over_the_background(tmp_path: Path) -> None:
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[8:24, 8:24] = (255, 0, 0, 255)
    back, _ = read_frames(write_video(tmp_path / "a.mp4", [rgba] * 2, 5, background=(0, 0, 255)))
    assert np.abs(back[0][2, 2].astype(int) - (0, 0, 255)).max() < 12  # transparent → blue
    assert np.abs(back[0][16, 16].astype(int) - (255, 0, 0)).max() < 12  # opaque → red


@pytest.mark.numeric
@pytest.mark.parametrize(("fps", "delays"), [(25, {40}), (30, {30, 40}), (10, {100})])
def test_gif_keeps_the_frame_rate(tmp_path: Path, fps: float, delays: set[int]) -> None:
    path = write_video(tmp_path / "clip.gif", _frames(30, 32, 32), fps=fps)
    with Image.open(path) as gif:
        durations = []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
    assert len(durations) == 30
    assert set(durations) == delays
    assert sum(durations) == pytest.approx(30 / fps * 1000, abs=10)


@pytest.mark.numeric
@pytest.mark.parametrize(("suffix", "codec"), [(".avi", "mpeg4"), (".webm", "libvpx-vp9")])
def test_reads_other_containers(tmp_path: Path, suffix: str, codec: str) -> None:
    path = tmp_path / f"clip{suffix}"
    writer = imageio.get_writer(path, format="FFMPEG", fps=15, codec=codec, macro_block_size=1)
    for frame in _frames(5):
        writer.append_data(frame)
    writer.close()
    frames, fps = read_frames(path)
    assert fps == pytest.approx(15)
    assert len(frames) == 5 and frames[0].shape == (96, 128, 3)


def test_image_folder_is_sorted_naturally(tmp_path: Path) -> None:
    frames = _frames(12, 32, 32)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"frame{i + 1}.png")  # frame1 … frame12
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_frames(tmp_path, fps=24)
    assert source.fps == 24 and source.count == 12
    assert [p.name for p in source.images][:3] == ["frame1.png", "frame2.png", "frame3.png"]
    for got, want in zip(source, frames, strict=True):
        np.testing.assert_array_equal(got, want)
    assert open_frames(tmp_path).fps == 30.0  # a folder's default rate


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="no such video file or image folder"):
        open_frames(tmp_path / "absent.mp4")
    with pytest.raises(VideoError, match="no images"):
        open_frames(tmp_path)
    (tmp_path / "clip.txt").write_text("text")
    with pytest.raises(VideoError, match="unsupported suffix"):
        open_frames(tmp_path / "clip.txt")
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    with pytest.raises(VideoError, match=r"broken\.mp4"):
        open_frames(tmp_path / "broken.mp4")
    with pytest.raises(VideoError, match="fps must be a positive number"):
        open_frames(tmp_path, fps=0)
    with pytest.raises(VideoError, match="unsupported output"):
        write_video(tmp_path / "out.avi", _frames(2), fps=10)
    with pytest.raises(VideoError, match="no frames to write"):
        write_video(tmp_path / "empty.mp4", [], fps=10)
    assert not (tmp_path / "empty.mp4").exists()
    with pytest.raises(VideoError, match="frame 1 is"):
        write_video(tmp_path / "sizes.gif", [_frames(1)[0], _frames(1, 10, 10)[0]], fps=10)
