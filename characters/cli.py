"""`thagen make-character`: a procedural character's PMX and textures, or a batch of them."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("make-character", help="write procedural PMX characters")
    p.add_argument(
        "--seed", type=int, default=0, help="the character's seed (with --count: the first)"
    )
    p.add_argument(
        "--face-seed",
        type=int,
        help="the seed of the face's construction (default: --seed); characters sharing it "
        "are one face under different looks: one family",
    )
    p.add_argument(
        "--count",
        type=int,
        help="write this many characters (seeds --seed…) into the folder -o, skipping those "
        "already there as this code writes them",
    )
    p.add_argument(
        "--looks-per-face",
        type=int,
        default=1,
        help="with --count: each face construction shared by this many characters (seed // N)",
    )
    p.add_argument("--workers", type=int, default=0, help="processes with --count (0: cores)")
    p.add_argument(
        "-o", "--out", type=Path, required=True, help="output .pmx path (with --count: a folder)"
    )
    p.set_defaults(handler=make_character_command)


def make_character_command(args: argparse.Namespace) -> int:
    last = args.seed + (args.count or 1) - 1
    if not (args.seed >= 0 and last < 2**63):
        raise ValueError(f"--seed (and the seeds --count adds) must be in 0..2^63-1, not {last}")
    if args.face_seed is not None and not 0 <= args.face_seed < 2**63:
        raise ValueError(f"--face-seed must be in 0..2^63-1, not {args.face_seed}")
    if args.looks_per_face < 1 or args.workers < 0:
        raise ValueError("--looks-per-face takes a positive number, --workers 0 or more")
    if args.count is None:
        from characters import write_character

        path = write_character(args.seed, args.out, face_seed=args.face_seed)
        print(f"wrote {path}")
        return 0
    from characters.batch import shared_faces, write_characters

    if args.count < 1 or args.face_seed is not None:
        raise ValueError("--count takes a positive number, and no --face-seed (--looks-per-face)")
    seeds = list(range(args.seed, args.seed + args.count))
    begin = time.perf_counter()
    paths, written = write_characters(
        args.out, seeds, shared_faces(seeds, args.looks_per_face), workers=args.workers
    )
    seconds = time.perf_counter() - begin
    each = f", {seconds / written:.2f} s per character written" if written else ""
    print(f"{args.out}: {len(paths)} characters, {written} written ({seconds:.1f} s{each})")
    return 0
