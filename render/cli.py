"""`thagen render` (one pose or a pose sequence, a pose CSV or an MMD motion), `thagen motion` (an
MMD motion on a model → a pose CSV) and `thagen preview` (a contact sheet).

Pose names, ranges and degrees come from the schema (`--schema`, default tha1); user errors are
raised and reported once, by `thagen.cli.main`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mmd_loader.brows import BROW_CHOICES


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
    what.add_argument(
        "--sequence",
        type=Path,
        help="pose CSV, or an MMD motion (.vmd) or pose (.vpd) mapped onto MODEL; the output is "
        ".gif or .mp4",
    )
    p.add_argument("-o", "--output", type=Path, required=True, help=".png, or .gif/.mp4")
    p.add_argument(
        "--fps", type=float, default=None, help="frames per second a motion is sampled at (30)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (--sequence)")
    _settings_arguments(p)
    p.set_defaults(handler=render_command)

    p = sub.add_parser(
        "motion",
        help="an MMD motion (.vmd) or pose (.vpd) on a model → a pose CSV of a schema",
        description="Sample MOTION at --fps with MMD's interpolation and map it onto the schema by "
        "what each morph and bone does in MODEL: row i is time i/fps; the CSV is what "
        "`render --sequence` and `pose --sequence` read.",
    )
    p.add_argument("motion", type=Path, help="a .vmd motion or .vpd pose file")
    p.add_argument("--model", type=Path, required=True, help="the .pmd/.pmx/.zip it drives")
    p.add_argument("--schema", default="tha1", help="tha1, tha2, tha3 or a schema YAML file")
    p.add_argument("--fps", type=float, default=30.0, help="rows per second (default 30, MMD's)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output pose CSV")
    p.add_argument("--overrides", type=Path, help="YAML/CSV of per-model face overrides")
    p.add_argument("--describe", action="store_true", help="also print what drives each parameter")
    p.set_defaults(handler=motion_command)

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
    reader = motion = None
    if args.sequence is not None:
        from poses.sequence import MOTION_SUFFIXES, SequenceReader

        if args.sequence.suffix.lower() in MOTION_SUFFIXES:
            from mmd_loader.motion import load_motion
            from mmd_loader.motion_schema import check_fps

            check_fps(30.0 if args.fps is None else args.fps)
            motion = load_motion(args.sequence)  # checked before the model is loaded
        else:
            reader = SequenceReader(args.sequence, schema)
    if args.fps is not None and motion is None:
        raise ValueError("--fps applies to a motion (.vmd/.vpd); a pose CSV has its own times")
    model, roles = _load(args)
    if motion is not None:
        from mmd_loader.motion_schema import MotionMapping, MotionSequence

        mapping = MotionMapping.build(schema, model, roles)
        reader = MotionSequence(mapping, motion, 30.0 if args.fps is None else args.fps)
    with _renderer(args, schema) as renderer:
        renderer.set_model(model, roles, schema)
        binding = _binding(schema, model, roles)
        if reader is None:
            brows = choose_brows(args.brows, np.random.default_rng(0))
            image = renderer.render(binding.pose(values), lighting, brows=brows)
            args.output.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image, "RGBA").save(args.output)
            print(f"wrote {args.output}")
            warn_textures(args.model, model, renderer)
            return 0
        _render_sequence(renderer, binding, reader, args, lighting)
        warn_textures(args.model, model, renderer)
    if motion is not None:
        for line in reader.report.lines():
            print(f"  {line}")
    return 0


def _render_sequence(renderer, binding, reader, args: argparse.Namespace, lighting) -> None:
    """Draw every frame of `reader` (a pose CSV's `SequenceReader` or a `MotionSequence`)."""
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


def preview_command(args: argparse.Namespace) -> int:
    from poses.schema import load_schema
    from render.preview import contact_sheet, sheet_title

    schema = load_schema(args.schema)
    model, roles = _load(args)
    with _renderer(args, schema) as renderer:
        renderer.set_model(model, roles, schema)
        title = sheet_title(Path(args.model), args.shading)
        sheet = contact_sheet(renderer, title, _binding(schema, model, roles), brows=args.brows)
        warn_textures(args.model, model, renderer)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output)
    print(f"wrote {args.output}")
    return 0


def warn_textures(label: Path, model, renderer) -> int:
    """One warning line (stderr) per texture the drawing went without, drawn in its material's
    colour instead: missing, refused (outside the model's folder, over a budget) or unreadable
    (from the loader's lookups and the renderer's decoding). Returns how many."""
    import sys

    from mmd_loader.textures import describe_textures

    lines: dict[tuple[int, str], str] = {}  # one line per material and slot
    for row in describe_textures(model):
        for slot in ("texture", "sphere", "toon"):
            entry = row.get(slot)
            if entry and entry["status"] in ("missing", "refused", "unreadable"):
                detail = f": {entry['detail']}" if entry.get("detail") else ""
                lines[row["material"], slot] = (
                    f"material {row['material']} {row['name']!r}: {slot} "
                    f"{entry['reference']!r} {entry['status']}{detail}"
                )
    for p in renderer.texture_problems:
        lines.setdefault(
            (p.material, p.slot), f"material {p.material} {p.name!r}: {p.slot} {p.path}: {p.reason}"
        )
    for line in lines.values():
        print(f"warning: {label}: {line}; drawn without it", file=sys.stderr)
    return len(lines)


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


def motion_command(args: argparse.Namespace) -> int:
    from mmd_loader.motion_schema import load_mapped
    from mmd_loader.overrides import load_overrides
    from poses.schema import load_schema
    from poses.sequence import SequenceWriter

    if args.output.suffix.lower() != ".csv":
        raise ValueError(f"{args.output}: poses are written as .csv")
    schema = load_schema(args.schema)
    table = load_overrides(args.overrides) if args.overrides else None
    sequence = load_mapped(args.motion, args.model, schema, args.fps, table)
    with SequenceWriter(args.output, schema) as writer:
        for times, values in sequence.chunks():
            writer.write(times, [True] * len(times), values)
    seconds = (len(sequence) - 1) / sequence.fps
    print(
        f"wrote {args.output}: {len(sequence)} poses at {sequence.fps:g} fps ({seconds:.2f} s) "
        f"of {schema.name} from {args.motion.name} on {args.model.name}"
    )
    for line in sequence.report.lines():
        print(f"  {line}")
    if args.describe:
        for name, drivers in sequence.converter.mapping.describe().items():
            print(f"  {name}: {', '.join(drivers) or '-'}")
    return 0
