"""`thagen render` (one pose or a pose sequence) and `thagen preview` (a contact sheet)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

THA1_NAMES = ("left_eye", "right_eye", "mouth", "head_x", "head_y", "neck_z")


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render",
        help="render an MMD model in a THA1 pose (or a pose sequence) to PNG / GIF / MP4",
        description="Render MODEL (.pmd, .pmx or .zip) in one THA1 pose to a PNG, or animate it "
        "from a pose CSV (frame,time,tracked,left_eye,...,neck_z) to a GIF or MP4.",
    )
    p.add_argument("model", type=Path, help="a .pmd/.pmx file or a .zip holding one model")
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--pose",
        default="",
        help="comma-separated NAME=VALUE, NAME in " + ", ".join(THA1_NAMES) + " (others 0)",
    )
    what.add_argument("--sequence", type=Path, help="pose CSV; the output is .gif or .mp4")
    p.add_argument("-o", "--output", type=Path, required=True, help=".png, or .gif/.mp4")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (--sequence)")
    _settings_arguments(p)
    p.set_defaults(handler=render_command)

    p = sub.add_parser(
        "preview",
        help="a labelled contact sheet of a model's poses, to see at once whether it works",
    )
    p.add_argument("model", type=Path, help="a .pmd/.pmx file or a .zip holding one model")
    p.add_argument("-o", "--output", type=Path, required=True, help="output .png")
    _settings_arguments(p)
    p.set_defaults(handler=preview_command)


def _settings_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shading", choices=("phong", "toon"), default="phong")
    p.add_argument("--size", type=int, default=256, help="output width = height (default 256)")
    p.add_argument("--head-fraction", type=float, default=0.5, help="head height / image height")
    p.add_argument("--supersample", type=int, default=2, help="anti-aliasing factor (1 = off)")
    p.add_argument("--msaa", type=int, default=0, help="multisample count (0 = off)")
    p.add_argument("--ambient", type=float, default=0.5)
    p.add_argument("--directional", type=float, default=0.5)
    p.add_argument("--max-degrees", type=float, default=15.0, help="rotation ±1 ↦ ±degrees")
    p.add_argument("--outline", action="store_true", help="draw MMD's edge outline")
    p.add_argument("--specular", action="store_true", help="add material specular highlights")


def render_command(args: argparse.Namespace) -> int:
    from PIL import Image

    from render.pose import Lighting, Pose

    try:
        pose = parse_pose(args.pose)
    except ValueError as error:
        return _fail(f"--pose: {error}")
    suffix = args.output.suffix.lower()
    if args.sequence is None and suffix != ".png":
        return _fail(f"{args.output}: a single pose is written as .png")
    if args.sequence is not None and suffix not in (".gif", ".mp4"):
        return _fail(f"{args.output}: a pose sequence is written as .gif or .mp4")
    loaded = _load(args.model)
    if loaded is None:
        return 2
    lighting = Lighting(args.ambient, args.directional)
    with _renderer(args) as renderer:
        if (error := _set_model(renderer, *loaded)) is not None:
            return error
        if args.sequence is None:
            image = renderer.render(Pose.tha1(**pose), lighting)
            args.output.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image, "RGBA").save(args.output)
        else:
            return _render_sequence(renderer, args, lighting)
    print(f"wrote {args.output}")
    return 0


def _render_sequence(renderer, args: argparse.Namespace, lighting) -> int:
    from tqdm import tqdm

    from pipeline.sequence import SequenceError, read_sequence
    from pipeline.video import VideoError, write_video
    from render.pose import Pose

    try:
        sequence = read_sequence(args.sequence)
    except SequenceError as error:
        return _fail(str(error))
    fps = sequence.fps or 30.0
    frames = (
        renderer.render(Pose.tha1(**sequence.pose(i)), lighting)
        for i in tqdm(range(len(sequence)), desc="render", unit="frame", disable=args.no_progress)
    )
    try:
        write_video(args.output, frames, fps)
    except VideoError as error:
        return _fail(str(error))
    print(f"wrote {args.output} ({len(sequence)} frames at {fps:.3g} fps)")
    return 0


def preview_command(args: argparse.Namespace) -> int:
    from render.preview import contact_sheet, sheet_title

    loaded = _load(args.model)
    if loaded is None:
        return 2
    model, roles = loaded
    with _renderer(args) as renderer:
        if (error := _set_model(renderer, model, roles)) is not None:
            return error
        title = sheet_title(Path(args.model), args.shading)
        sheet = contact_sheet(renderer, title)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output)
    print(f"wrote {args.output}")
    return 0


def parse_pose(text: str) -> dict[str, float]:
    """'left_eye=1,head_y=-0.4' → {'left_eye': 1.0, 'head_y': -0.4}; ranges are checked."""
    from pipeline.sequence import parse_pose_text

    return parse_pose_text(text)


def _load(path: Path):
    """(model, roles), or None after printing why the model cannot be used."""
    from mmd_loader import ModelLoadError, detect_face, load

    try:
        model = load(path)
    except ModelLoadError as error:
        _fail(str(error))
        return None
    roles = detect_face(model)
    if roles.problems:
        _fail(f"{path}: not usable for the THA1 pose:\n  " + "\n  ".join(roles.problems))
        return None
    return model, roles


def _renderer(args: argparse.Namespace):
    from render.renderer import Renderer, RenderSettings

    settings = RenderSettings(
        size=args.size,
        head_fraction=args.head_fraction,
        shading=args.shading,
        supersample=args.supersample,
        msaa=args.msaa,
        max_degrees=args.max_degrees,
        specular=args.specular,
        outline=args.outline,
    )
    return Renderer(settings)


def _set_model(renderer, model, roles) -> int | None:
    from render.context import RenderError

    try:
        renderer.set_model(model, roles)
    except RenderError as error:
        return _fail(str(error))
    return None


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2
