"""Regenerate the README's pictures in docs/media/ from the project itself, deterministically.

    .venv/bin/python scripts/make_readme_media.py [--out docs/media]

- ``preview.png``: ``thagen preview`` of a procedural character (seed 3).
- ``puppet.gif``: a synthetic clip (scikit-image's ``astronaut()`` turned in the image plane by
  known angles) next to the same procedural character driven by ``thagen track``'s poses.
- ``tracking_plot.png``: the person's angle and the tracked ``neck_z`` over time.
- ``motion.gif``: an MMD motion written in code (VMD) driving a procedural character through
  THA3's pose, beside what the motion says at each frame and the values it becomes
  (``--only motion`` makes this one alone; it needs no extra).

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


def save_gif(frames: list[Image.Image], out: Path, fps: float = FPS) -> Path:
    """One shared 96-colour palette (small, no flicker between frames), looping."""
    strip = Image.new("RGB", (frames[0].width, frames[0].height * len(frames)))
    for i, frame in enumerate(frames):
        strip.paste(frame, (0, i * frame.height))
    palette = strip.quantize(colors=96, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    quantized = [f.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG) for f in frames]
    # Centisecond delays that keep frame i within 5 ms of i / fps (12 fps: 80, 90, 80, ...).
    starts = [round(i * 100 / fps) for i in range(len(frames) + 1)]
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


# --- motion.gif: an MMD motion written in code driving a procedural character ----------------

MOTION_SEED = (
    15  # its smile closure is 笑い, its vowels あ い う え オ: a motion's names reach them
)
MOTION_FPS = 15.0
EASE = ((20, 20, 107, 107),) * 3 + ((64, 0, 64, 127),)  # the rotation eases in and out
# The motion's names as the GIF writes them (its font has no Japanese glyphs).
GLOSS = {
    "まばたき": "mabataki (blink)",
    **dict(zip("あいうえお", "aiueo", strict=True)),
    "笑い": "warai (smile)",
    "ウィンク": "wink",
    "上": "ue (brows up)",
    "頭": "head",
    "首": "neck",
    "上半身": "upper body",
    "両目": "both eyes",
}


def performance() -> bytes:
    """Five seconds of an MMD performance, keyed as an MMD user would (MMD's frame and names):
    blinks, あいうえお, a smile, a wink, raised brows; the head, neck, torso and eyes turning."""
    from mmd_loader.vmd import VmdBoneFrame, VmdMorphFrame, encode_vmd

    def q(x: float = 0.0, y: float = 0.0, z: float = 0.0) -> tuple[float, ...]:
        """MMD's quaternion of a turn about one of its axes (degrees)."""
        axis, degrees = next(((i, a) for i, a in enumerate((x, y, z)) if a), (0, 0.0))
        half = np.radians(degrees) / 2
        out = [0.0, 0.0, 0.0, float(np.cos(half))]
        out[axis] = float(np.sin(half))
        return tuple(out)

    morphs = {
        "まばたき": [(6, 0), (9, 1), (13, 0), (100, 0), (103, 1), (107, 0)],
        **{
            v: [(20 + 6 * k, 0), (23 + 6 * k, 1), (26 + 6 * k, 0)]
            for k, v in enumerate("あいうえお")
        },
        "笑い": [(58, 0), (64, 1), (84, 1), (90, 0)],
        "ウィンク": [(112, 0), (116, 1), (128, 1), (133, 0)],
        "上": [(120, 0), (126, 1), (140, 1), (146, 0)],
    }
    bones = {
        "頭": [(0, q()), (30, q(y=12)), (55, q(x=-9)), (80, q()), (150, q())],
        "首": [(0, q()), (100, q()), (115, q(z=9)), (135, q())],
        "上半身": [(0, q()), (60, q(y=8)), (120, q(y=-8)), (150, q())],
        "両目": [(0, q()), (130, q()), (136, q(y=14)), (146, q())],
    }
    keys = [VmdMorphFrame(m, f, float(w)) for m, ks in morphs.items() for f, w in ks]
    frames = [VmdBoneFrame(b, f, rotation=r, curves=EASE) for b, ks in bones.items() for f, r in ks]
    return encode_vmd("thagen character 15", frames, keys)


def make_motion_gif(folder: Path, out: Path) -> Path:
    """The character (left) as `thagen render --sequence performance.vmd --schema tha3` draws it,
    and (right) what the motion says at that frame (its bones' turns in MMD's axes) and the
    THA3 values it becomes."""
    from mmd_loader.keyframes import (
        euler_angles,
        quaternion_matrices,
        sample_rotation,
        sample_weight,
    )
    from mmd_loader.motion import load_motion
    from mmd_loader.motion_schema import MotionMapping, MotionSequence

    character = write_character(MOTION_SEED, folder / "motion" / "character.pmx")
    vmd = folder / "motion" / "performance.vmd"
    vmd.write_bytes(performance())
    model, schema, motion = load(character), load_schema("tha3"), load_motion(vmd)
    roles = detect_face(model)
    sequence = MotionSequence(MotionMapping.build(schema, model, roles), motion, MOTION_FPS)
    settings = RenderSettings(size=PANEL * 5 // 4, head_fraction=0.42, head_center=(0.5, 0.38))
    font, small = _font(13), _font(11)
    frames = []
    with Renderer(settings) as renderer:
        renderer.set_model(model, roles, schema)
        binding = renderer.bind(schema)
        for row in sequence:
            side = settings.size
            canvas = Image.new("RGB", (2 * side, side), (32, 32, 32))
            layer = Image.fromarray(renderer.render(binding.pose(row.values)), "RGBA")
            back = Image.new("RGB", (side, side), BACKGROUND)
            back.paste(layer, (0, 0), layer)
            canvas.paste(back, (0, 0))
            draw = ImageDraw.Draw(canvas)
            mmd = row.time * 30.0
            lines = [f"VMD frame {mmd:.0f}"]
            for k, name in enumerate(motion.morph_names):
                weight = float(sample_weight(motion.morph_track(k), np.array([mmd]))[0])
                if weight > 0.005:
                    lines.append(f"  {GLOSS.get(name, name)} {weight:.2f}")
            for k, name in enumerate(motion.bone_names):
                turn = sample_rotation(motion.bone_track(k), np.array([mmd])) * (-1, -1, 1, 1)
                angles = euler_angles(quaternion_matrices(turn))[0]  # mirrored back to MMD's
                axes = zip("xyz", angles, strict=True)
                turns = " ".join(f"{a} {v:+.1f}°" for a, v in axes if abs(v) > 0.05)
                if turns:
                    lines.append(f"  {GLOSS.get(name, name)} {turns}")
            lines.append("")
            lines.append("tha3 pose")
            moving = sorted(
                ((n, v) for n, v in row.values.items() if abs(v) > 0.005), key=lambda x: -abs(x[1])
            )
            lines += [f"  {n} {v:+.2f}" for n, v in moving[:5]]
            for i, line in enumerate(lines[:14]):
                face = font if not line.startswith(" ") else small
                draw.text((side + 8, 6 + 13.5 * i), line, fill=(240, 240, 240), font=face)
            frames.append(canvas)
    return save_gif(frames, out, MOTION_FPS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "media")
    parser.add_argument(
        "--only", choices=("motion",), help="regenerate only this picture (motion.gif)"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        make_motion_gif(Path(tmp), args.out / "motion.gif")
    if args.only == "motion":
        return _sizes(args.out, ("motion.gif",))
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
    return _sizes(args.out, ("preview.png", "puppet.gif", "tracking_plot.png", "motion.gif"))


def _sizes(folder: Path, names: tuple[str, ...]) -> int:
    for name in names:
        path = folder / name
        print(
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
            f"{path.stat().st_size / 1024:.0f} KiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
