"""Regenerate the README's pictures in docs/media/ from the project itself, deterministically.

    .venv/bin/python scripts/make_readme_media.py [--out docs/media]

- ``preview.png``: ``thagen preview`` of a procedural character (seed 3).
- ``puppet.gif``: a synthetic clip (scikit-image's ``astronaut()`` turned in the image plane by
  known angles) next to the same procedural character driven by ``thagen track``'s poses.
- ``tracking_plot.png``: the person's angle and the tracked ``neck_z`` over time.

Only procedural characters appear here: the real models' licences forbid redistribution. Needs
the ``track`` and ``dev`` extras (mediapipe, which brings matplotlib; scikit-image).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from characters import write_character
from media.video import write_video
from mmd_loader import detect_face, load
from poses.schema import load_schema
from poses.sequence import PoseSequence, read_sequence
from render import Renderer, RenderSettings
from render.preview import FONT_PATHS
from thagen.cli import main as thagen
from tracking import synthetic

ROOT = Path(__file__).resolve().parent.parent
SEED = 3
FPS = 12.0
PANEL = 160  # px, each half of the GIF
CAPTION = 20  # px under the panels
BACKGROUND = (236, 240, 245)  # behind the character
MAX_DEGREES = load_schema("tha1").parameter("neck_z").degrees


def person_angles(fps: float = FPS) -> np.ndarray:
    return synthetic.person_angles(fps)


def person_frame(angle: float, size: int = PANEL) -> np.ndarray:
    return synthetic.person_frame(angle, size)


def make_preview(character: Path, out: Path) -> Path:
    """The contact sheet, through the CLI as a user would run it."""
    code = thagen(["preview", str(character), "-o", str(out), "--size", "192"])
    if code:
        raise SystemExit(f"thagen preview failed ({code})")
    return out


def track_clip(folder: Path, angles: np.ndarray) -> tuple[list[np.ndarray], PoseSequence]:
    """Write the clip as mp4, ``thagen track`` it; the frames shown and the poses."""
    frames = [person_frame(a) for a in angles]
    clip = write_video(folder / "clip.mp4", frames, FPS)
    poses = folder / "poses.csv"
    if thagen(["track", str(clip), "-o", str(poses), "--no-progress"]):
        raise SystemExit("thagen track failed")
    return frames, read_sequence(poses)


def render_sequence(character: Path, sequence: PoseSequence) -> list[np.ndarray]:
    """The character in each pose (what ``thagen render --sequence`` draws), over BACKGROUND."""
    model = load(character)
    settings = RenderSettings(size=PANEL)  # the CLI's defaults
    with Renderer(settings) as renderer:
        renderer.set_model(model, detect_face(model))
        binding = renderer.bind(load_schema("tha1"))
        images = [renderer.render(binding.pose(frame.values)) for frame in sequence.frames()]
    back = Image.new("RGB", (PANEL, PANEL), BACKGROUND)
    out = []
    for rgba in images:
        frame = back.copy()
        layer = Image.fromarray(rgba, "RGBA")
        frame.paste(layer, (0, 0), layer)
        out.append(np.asarray(frame))
    return out


def make_gif(
    people: list[np.ndarray], puppets: list[np.ndarray], angles: np.ndarray, rolls: np.ndarray
) -> list[Image.Image]:
    """Side-by-side frames with the person's angle and the tracked roll written underneath."""
    font = _font(12)
    frames = []
    for person, puppet, angle, roll in zip(people, puppets, angles, rolls, strict=True):
        canvas = Image.new("RGB", (2 * PANEL, PANEL + CAPTION), (32, 32, 32))
        canvas.paste(Image.fromarray(person), (0, 0))
        canvas.paste(Image.fromarray(puppet), (PANEL, 0))
        draw = ImageDraw.Draw(canvas)
        y = PANEL + 3
        draw.text((6, y), f"person {angle:+5.1f}°", fill=(240, 240, 240), font=font)
        label = f"neck_z {roll:+.2f} ({roll * MAX_DEGREES:+.1f}°)"
        draw.text((PANEL + 6, y), label, fill=(240, 240, 240), font=font)
        frames.append(canvas)
    return frames


def save_gif(frames: list[Image.Image], out: Path) -> Path:
    """One shared 96-colour palette (small, no flicker between frames), looping."""
    strip = Image.new("RGB", (frames[0].width, frames[0].height * len(frames)))
    for i, frame in enumerate(frames):
        strip.paste(frame, (0, i * frame.height))
    palette = strip.quantize(colors=96, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    quantized = [f.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG) for f in frames]
    # Centisecond delays that keep frame i within 5 ms of i / FPS (12 fps: 80, 90, 80, ...).
    starts = [round(i * 100 / FPS) for i in range(len(frames) + 1)]
    delays = [10 * (b - a) for a, b in itertools.pairwise(starts)]
    quantized[0].save(
        out, save_all=True, append_images=quantized[1:], duration=delays, loop=0, optimize=True
    )
    return out


def make_plot(angles: np.ndarray, sequence: PoseSequence, out: Path) -> Path:
    """Person's angle vs tracked neck_z (both in degrees) over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = sequence.times
    fig, ax = plt.subplots(figsize=(6.4, 2.8), dpi=100)
    ax.axvspan(0, 1.0, color="0.88", label="calibration (1st second)")
    ax.plot(times, angles, "o-", ms=3, color="0.3", label="person's roll (ground truth)")
    roll = sequence.column("neck_z") * MAX_DEGREES
    ax.plot(times, roll, "o-", ms=3, color="tab:blue", label="tracked neck_z × 15°")
    ax.set(xlabel="time (s)", ylabel="roll (°)", ylim=(-15, 15), xlim=(0, times[-1]))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(out, metadata={"Software": None})
    plt.close(fig)
    return out


def _font(size: int) -> ImageFont.ImageFont:
    for path in FONT_PATHS:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "media")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    angles = person_angles()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # A fixed folder name: the preview's title shows `folder/file`, and the media must be
        # byte-identical from run to run.
        character = write_character(SEED, folder / f"character_{SEED:03d}" / f"seed{SEED}.pmx")
        make_preview(character, args.out / "preview.png")
        people, sequence = track_clip(folder, angles)
        puppets = render_sequence(character, sequence)
    frames = make_gif(people, puppets, angles, sequence.column("neck_z"))
    save_gif(frames, args.out / "puppet.gif")
    make_plot(angles, sequence, args.out / "tracking_plot.png")
    for name in ("preview.png", "puppet.gif", "tracking_plot.png"):
        path = args.out / name
        print(
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
            f"{path.stat().st_size / 1024:.0f} KiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
