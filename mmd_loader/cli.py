"""`thagen inspect` and `thagen make-character`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="load models and report their face roles and usability")
    p.add_argument("paths", nargs="+", type=Path, help="model files, folders or zips")
    p.add_argument("--json", action="store_true", help="one JSON object per model, per line")
    p.add_argument("--overrides", type=Path, help="YAML/CSV file of per-model face overrides")
    p.set_defaults(handler=inspect_command)

    p = sub.add_parser("make-character", help="write a procedural PMX character")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--out", type=Path, required=True, help="output .pmx path")
    p.set_defaults(handler=make_character_command)


def inspect_command(args: argparse.Namespace) -> int:
    from mmd_loader.inspection import inspect_paths
    from mmd_loader.overrides import load_overrides

    overrides = load_overrides(args.overrides) if args.overrides else None
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"no such file or folder: {', '.join(missing)}")
    reports = inspect_paths(args.paths, overrides)
    if args.json:
        for report in reports:
            print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print(format_table(reports))
    return 0 if reports else 1


def format_table(reports: list) -> str:
    """A human-readable block per model."""
    from poses.roles import BONE_ROLES, MORPH_ROLES

    lines = []
    for r in reports:
        where = f"{r.path}!{r.member}" if r.member else r.path
        lines.append(where)
        if r.format:
            lines.append(
                f"  {r.format}  {r.vertices} vertices  {r.faces} faces  {r.materials} materials"
                f"  {r.bones} bones  {r.morphs} morphs"
            )
        for role in (*MORPH_ROLES, *BONE_ROLES):
            if role in r.roles:
                lines.append(f"  {role:<9} {r.roles[role]}")
            if role in r.eyes:
                lines.append(f"  {'':<9} {r.eyes[role]['reason']}")
        for role in sorted(set(r.roles) - {"left_eye", "right_eye", "mouth", "neck", "head"}):
            lines.append(f"  {role:<9} {r.roles[role]}")
        if r.head_box:
            box = r.head_box
            lines.append(f"  head box  top {box['top']:.3f}  chin {box['chin']:.3f}")
            lines.extend(f"  {'':<9} {note}" for note in box.get("notes", []))
        for flag in r.flags:
            role = f" [{flag['role']}]" if flag["role"] else ""
            lines.append(f"  flag      {flag['code']}{role}: {flag['message']}")
        for warning in r.warnings:
            lines.append(f"  warning   {warning}")
        verdict = "yes" if r.usable else "no: " + "; ".join(r.reasons)
        lines.append(f"  usable    {verdict}")
    usable = sum(r.usable for r in reports)
    lines.append(f"{len(reports)} models, {usable} usable for the THA1 pose")
    return "\n".join(lines)


def make_character_command(args: argparse.Namespace) -> int:
    from mmd_loader.procedural import write_character

    path = write_character(args.seed, args.out)
    print(f"wrote {path}")
    return 0
