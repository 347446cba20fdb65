"""Puppeteering end to end: `thagen track` a synthetic clip, `thagen render --sequence` a model.

The clip is scikit-image's ``astronaut()`` turned in the image plane by a known angle per frame:
one still second (the calibration), then a sine sweep to +12° and −12° and back. The rendered
video is read back and each frame's head roll is read off the pixels by matching it against a
bank of reference renders at ``neck_z`` ∈ {−1, −0.9, …, 1} (same settings, composited over white
like the video writer): the picked roll must follow the person's angle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from characters import write_character
from media.video import read_frames, write_video
from mmd_loader import detect_face, load
from poses.schema import load_schema
from poses.sequence import PoseSequence, read_sequence
from render import Renderer, RenderSettings
from tests.conftest import require_mmd_dir, tha1
from thagen.cli import main
from tracking import synthetic

FPS = 12.0
CLIP_PX = 112  # the photo's upper half, scaled: the face is ~45 px wide
RENDER_PX = 96
MAX_DEGREES = load_schema("tha1").parameter("neck_z").degrees  # neck_z ±1 ↦ ±15°
BANK = np.round(np.linspace(-1.0, 1.0, 21), 2)  # reference neck_z, 0.1 = 1.5° apart
# The default one-euro smoothing lags about a frame: measured error up to 2.5° (rms 1.4°) on this
# sweep, so the sign is required where the person is turned at least 6°; Pearson and Spearman
# correlations (measured 0.98) must reach 0.9.
CLEAR_DEG = 6.0
WHITE = (255, 255, 255)  # write_video's default background


def person_angles(fps: float = FPS) -> np.ndarray:
    return synthetic.person_angles(fps)


def person_frame(angle: float, size: int = CLIP_PX) -> np.ndarray:
    return synthetic.person_frame(angle, size)


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The clip as mp4 and its poses from the real `thagen track`."""
    folder = tmp_path_factory.mktemp("puppeteer")
    angles = person_angles()
    clip = write_video(folder / "clip.mp4", [person_frame(a) for a in angles], FPS)
    poses = folder / "poses.csv"
    assert main(["track", str(clip), "-o", str(poses), "--no-progress"]) == 0
    return {"angles": angles, "poses": poses, "sequence": read_sequence(poses)}


def miku() -> Path:
    return require_mmd_dir() / "animasa_miku_v2_3" / "miku_v2.pmd"


def procedural(folder: Path) -> Path:
    return write_character(3, folder / "seed3.pmx")


@pytest.mark.numeric
def test_tracked_roll_follows_the_person(tracked: dict) -> None:
    sequence: PoseSequence = tracked["sequence"]
    angles = tracked["angles"]
    assert len(sequence) == len(angles) and sequence.fps == pytest.approx(FPS)
    assert sequence.tracked.all()
    roll = sequence.column("neck_z") * MAX_DEGREES
    still = angles == 0.0
    assert np.abs(roll[: round(FPS)]).max() < 1.5  # the calibration second is neutral
    clear = np.abs(angles) >= CLEAR_DEG
    assert np.all(np.sign(roll[clear]) == np.sign(angles[clear]))
    assert np.corrcoef(roll[~still], angles[~still])[0, 1] >= 0.9


@pytest.mark.numeric
@pytest.mark.parametrize("which", ["miku_v2", "procedural"])
def test_rendered_head_roll_follows_the_person(tracked: dict, which: str, tmp_path: Path) -> None:
    model_path = miku() if which == "miku_v2" else procedural(tmp_path)
    anim = str(tmp_path / "anim.mp4")
    poses, size = str(tracked["poses"]), str(RENDER_PX)
    assert main(["render", str(model_path), "--sequence", poses, "-o", anim, "--size", size]) == 0
    frames, fps = read_frames(anim)
    sequence: PoseSequence = tracked["sequence"]
    assert fps == pytest.approx(FPS) and len(frames) == len(sequence)
    bank = _bank(model_path)
    picked = BANK[[_closest(frame, bank) for frame in frames]]
    angles = tracked["angles"]
    # The pixels show the CSV's roll to within one bank step (1.5°)…
    np.testing.assert_allclose(picked, sequence.column("neck_z"), atol=0.1 + 1e-9)
    # …and so follow the person: still at first, the same sign when clearly turned, in step.
    assert np.all(picked[: round(FPS)] == 0.0), picked
    clear = np.abs(angles) >= CLEAR_DEG
    assert np.all(np.sign(picked[clear]) == np.sign(angles[clear])), (picked, angles)
    moving = angles != 0.0
    assert np.corrcoef(picked[moving], angles[moving])[0, 1] >= 0.9
    assert spearmanr(picked[moving], angles[moving]).statistic >= 0.9


def _bank(model_path: Path) -> np.ndarray:
    """(21, size, size, 3) float renders at ``BANK``'s neck_z, flattened over white."""
    model = load(model_path)
    with Renderer(RenderSettings(size=RENDER_PX)) as renderer:
        renderer.set_model(model, detect_face(model))
        images = [renderer.render(tha1(renderer, neck_z=float(z))) for z in BANK]
    return np.stack([_over(image, WHITE) for image in images])


def _over(rgba: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    alpha = rgba[:, :, 3:].astype(np.float32) / 255.0
    return rgba[:, :, :3] * alpha + np.asarray(background, np.float32) * (1.0 - alpha)


def _closest(frame: np.ndarray, bank: np.ndarray) -> int:
    """Index of the reference with the smallest mean absolute difference from ``frame``."""
    difference = np.abs(bank - frame[:RENDER_PX, :RENDER_PX].astype(np.float32))
    return int(difference.mean(axis=(1, 2, 3)).argmin())
