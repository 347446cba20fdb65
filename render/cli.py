"""`thagen render` (one pose or a pose sequence) and `thagen preview` (a contact sheet).

Pose names, ranges and degrees come from the schema (`--schema`, default tha1); user errors are
raised and reported once, by `thagen.cli.main`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

BROW_CHOICES = ("modelled", "over", "mix")  # render.brow_layer's (imported lazily: no GL here)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render",
        help="render an MMD model in a pose (or a pose sequence) to PNG / GIF / MP4",
        description="Render MODEL (.pmd, .pmx or .zip) in one pose of a schema (default tha1) "
        "to a PNG, or animate it from a pose CSV (frame,time,tracked,<the schema's parameters>) "
        "to a GIF or MP4.",
    )
    p.add_argument("model", type=Path, help="a .pmd/.pmx file or a .zip holding one model")
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--pose",
        default="",
        help="comma-separated NAME=VALUE of the schema's parameters, e.g. left_eye=1,head_y=-0.4 "
        "(others neutral)",
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
    p.add_argument("--schema", default="tha1", help="tha1, tha2, tha3 or a schema YAML file")
    p.add_argument("--shading", choices=("phong", "toon"), default="phong")
    p.add_argument(
        "--size", type=int, default=None, help="output width = height (default: the schema's)"
    )
    p.add_argument(
        "--head-fraction",
        type=float,
        default=None,
        help="head height / image height (default: the schema's; tha1 0.5, tha3 0.25)",
    )
    p.add_argument("--supersample", type=int, default=2, help="anti-aliasing factor (1 = off)")
    p.add_argument("--msaa", type=int, default=0, help="multisample count (0 = off)")
    p.add_argument("--ambient", type=float, default=0.5)
    p.add_argument("--directional", type=float, default=0.5)
    p.add_argument("--outline", action="store_true", help="draw MMD's edge outline")
    p.add_argument("--specular", action="store_true", help="add material specular highlights")
    p.add_argument(
        "--overrides", type=Path, default=None, help="YAML/CSV of per-model face overrides"
    )
    p.add_argument(
        "--brows",
        default="modelled",
        choices=BROW_CHOICES,
        help="eyebrows as modelled (default), over the hair (as drawings show them), or mix: "
        "one of the two per frame or tile, drawn from its index",
    )


def render_command(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from poses.schema import load_schema
    from poses.text import parse_pose_text
    from render.brow_layer import choose_brows

    schema = load_schema(args.schema)
    try:
        values = parse_pose_text(args.pose, schema.ranges)
    except ValueError as error:
        raise ValueError(f"--pose: {error}") from None
    suffix = args.output.suffix.lower()
    if args.sequence is None and suffix != ".png":
        raise ValueError(f"{args.output}: a single pose is written as .png")
    if args.sequence is not None and suffix not in (".gif", ".mp4"):
        raise ValueError(f"{args.output}: a pose sequence is written as .gif or .mp4")
    lighting = _lighting(args)
    reader = None
    if args.sequence is not None:
        from poses.sequence import SequenceReader

        reader = SequenceReader(args.sequence, schema)  # checked before the model is loaded
    model, roles = _load(args)
    with _renderer(args, schema) as renderer:
        renderer.set_model(model, roles, schema)
        binding = _binding(schema, model, roles)
        if reader is None:
            brows = choose_brows(args.brows, np.random.default_rng(0))
            image = renderer.render(binding.pose(values), lighting, brows=brows)
            args.output.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image, "RGBA").save(args.output)
            print(f"wrote {args.output}")
            return 0
        return _render_sequence(renderer, binding, reader, args, lighting)


def _render_sequence(renderer, binding, reader, args: argparse.Namespace, lighting) -> int:
    import numpy as np
    from tqdm import tqdm

    from media.video import write_video
    from render.brow_layer import choose_brows

    fps = reader.fps or 30.0
    count = 0

    def frames():
        nonlocal count
        for frame in tqdm(reader, desc="render", unit="frame", disable=args.no_progress):
            brows = choose_brows(args.brows, np.random.default_rng(count))
            count += 1
            yield renderer.render(binding.pose(frame.values), lighting, brows=brows)

    write_video(args.output, frames(), fps)
    print(f"wrote {args.output} ({count} frames at {fps:.3g} fps)")
    return 0


def preview_command(args: argparse.Namespace) -> int:
    from poses.schema import load_schema
    from render.preview import contact_sheet, sheet_title

    schema = load_schema(args.schema)
    model, roles = _load(args)
    with _renderer(args, schema) as renderer:
        renderer.set_model(model, roles, schema)
        title = sheet_title(Path(args.model), args.shading)
        sheet = contact_sheet(renderer, title, _binding(schema, model, roles), brows=args.brows)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output)
    print(f"wrote {args.output}")
    return 0


def _lighting(args: argparse.Namespace):
    from render.pose import Lighting

    try:
        return Lighting(args.ambient, args.directional)
    except ValueError as error:
        raise ValueError(f"--ambient/--directional: {error}") from None


def _load(args: argparse.Namespace):
    """(model, roles), honouring the model's sidecar and `--overrides`; raises when the model
    cannot be used."""
    from mmd_loader import detect_face, load
    from mmd_loader.overrides import load_overrides, overrides_for

    table = load_overrides(args.overrides) if args.overrides else None
    model = load(args.model)
    roles = detect_face(model, overrides_for(Path(args.model), table))
    if roles.problems:
        raise ValueError(f"{args.model}: not usable:\n  " + "\n  ".join(roles.problems))
    return model, roles


def _binding(schema, model, roles):
    from render.binding import SchemaBinding

    return SchemaBinding(schema, model, roles)


def _renderer(args: argparse.Namespace, schema):
    """A renderer framed as the schema says, unless --size / --head-fraction say otherwise."""
    from render.renderer import Renderer, RenderSettings

    framing = schema.framing
    settings = RenderSettings(
        size=framing.size if args.size is None else args.size,
        head_fraction=framing.head_fraction if args.head_fraction is None else args.head_fraction,
        head_center=framing.head_center,
        shading=args.shading,
        supersample=args.supersample,
        msaa=args.msaa,
        specular=args.specular,
        outline=args.outline,
    )
    return Renderer(settings)
