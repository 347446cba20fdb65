"""`thagen make-character` and `thagen motion` (`thagen inspect`, which also renders, is
registered by pipeline)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("make-character", help="write a procedural PMX character")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--out", type=Path, required=True, help="output .pmx path")
    p.set_defaults(handler=make_character_command)

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


def make_character_command(args: argparse.Namespace) -> int:
    from mmd_loader.procedural import write_character

    path = write_character(args.seed, args.out)
    print(f"wrote {path}")
    return 0


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
