"""`thagen make-character`: a procedural character's PMX and textures."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("make-character", help="write a procedural PMX character")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--out", type=Path, required=True, help="output .pmx path")
    p.set_defaults(handler=make_character_command)


def make_character_command(args: argparse.Namespace) -> int:
    from characters import write_character

    if not 0 <= args.seed < 2**63:
        raise ValueError(f"--seed must be in 0..2^63-1, not {args.seed}")
    path = write_character(args.seed, args.out)
    print(f"wrote {path}")
    return 0
