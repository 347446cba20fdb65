"""Streams stay bounded: a pose CSV of 300k rows is read in flat memory (by `SequenceReader` and
by `thagen pose --sequence`), and GIF output, which must hold its frames, is capped with a
message pointing to .mp4 instead of growing without bound."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import psutil
import pytest

import media.video
from media.video import MAX_GIF_PIXELS, VideoError, write_video
from poses.sequence import SequenceError, SequenceReader

ROWS = 300_000
HEADER = "frame,time,tracked,left_eye,right_eye,mouth,head_x,head_y,neck_z\n"


def write_csv(path: Path, rows: int, bad_last: bool = False) -> Path:
    """A valid 30 fps pose CSV of `rows` rows (the last one out of range when `bad_last`)."""
    with path.open("w", encoding="utf-8") as f:
        f.write(HEADER)
        for i in range(rows):
            eye = 2.0 if bad_last and i == rows - 1 else (i % 100) / 100
            f.write(f"{i},{i / 30:.6f},1,{eye:.2f},0.5,0.25,0.1,-0.1,0\n")
    return path


@pytest.fixture(scope="module")
def long_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("csv") / "long.csv", ROWS, bad_last=True)


def rss() -> int:
    return psutil.Process().memory_info().rss


def test_a_300k_row_csv_streams_in_flat_memory(long_csv):
    """Resident memory, sampled every 10k rows, stays within 32 MB of where it started (the
    rows held as frames would take hundreds of MB; the file is 14 MB)."""
    reader = SequenceReader(long_csv)
    start, peak, count, last = rss(), 0, 0, None
    with pytest.raises(SequenceError, match=f"long.csv:{ROWS + 1}: left_eye = 2.0"):
        for frame in reader:
            count, last = count + 1, frame.index
            if count % 10_000 == 0:
                peak = max(peak, rss() - start)
    assert count == ROWS - 1 and last == ROWS - 2 and reader.fps == 30.0
    assert peak < 32 << 20, f"resident memory grew by {peak} bytes over {ROWS} rows"


def test_pose_sequence_streams_the_csv(long_csv, tmp_path, monkeypatch):
    """`thagen pose --sequence` hands the writer a lazy stream: frames are posed as they are
    read (the bad last row is never reached when the writer stops early), in flat memory."""
    torch = pytest.importorskip("torch")
    from PIL import Image

    from poses.schema import load_schema
    from training.posing import Poser, animate

    class Identity(torch.nn.Module):
        def forward(self, image, pose):
            return image

    names = ["left_eye", "right_eye", "mouth"]
    poser = Poser(Identity(), names, size=32, schema=load_schema("tha1").to_json())
    image = tmp_path / "face.png"
    Image.fromarray(np.zeros((32, 32, 4), np.uint8), "RGBA").save(image)
    seen = []

    def write(path, frames, fps, **kwargs):
        tracemalloc.start()
        try:
            for _ in range(300):
                seen.append(next(frames).shape)
            seen.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        return path

    monkeypatch.setattr(media.video, "write_video", write)
    animate(poser, image, long_csv, tmp_path / "anim.mp4")
    assert seen[:-1] == [(32, 32, 4)] * 300
    assert seen[-1] < 4 << 20, f"peak heap {seen[-1]} bytes"


def test_gif_output_is_capped_with_a_message(tmp_path, monkeypatch):
    assert MAX_GIF_PIXELS // (256 * 256) == 1000  # the documented default: 1,000 frames at 256²
    monkeypatch.setattr(media.video, "MAX_GIF_PIXELS", 64 * 64 * 50)
    made = 0

    def frames():
        nonlocal made
        for i in range(6000):
            made += 1
            yield np.full((64, 64, 3), i % 256, np.uint8)

    out = tmp_path / "long.gif"
    with pytest.raises(VideoError) as caught:
        write_video(out, frames(), fps=30)
    message = str(caught.value)
    assert "more than 50 frames of 64×64" in message and "write .mp4" in message
    assert "\n" not in message and made == 51 and not out.exists()
    short = write_video(
        tmp_path / "short.gif", (np.zeros((64, 64, 3), np.uint8) for _ in range(50)), fps=30
    )
    assert short.is_file()
