"""`thagen track`: a person's face in a video → a pose-sequence CSV of a schema."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_commands(sub: argparse._SubParsersAction) -> None:
    track = sub.add_parser("track", help="track a face in a video: a pose-sequence CSV")
    track.add_argument("video", type=Path, help="a video file or a folder of frames")
    track.add_argument("--out", "-o", type=Path, required=True, help="the CSV to write")
    track.add_argument("--schema", default="tha1", help="tha1, tha2, … or a schema YAML file")
    track.add_argument("--neutral", type=int, default=None, help="frame of the neutral face")
    track.add_argument("--min-cutoff", type=float, default=None, help="one-euro min cutoff (Hz)")
    track.add_argument("--beta", type=float, default=None, help="one-euro speed coefficient")
    track.add_argument("--fps", type=float, default=None, help="frame rate of an image folder")
    track.add_argument("--no-smoothing", action="store_true")
    track.add_argument("--no-progress", action="store_true")
    track.set_defaults(handler=track_command)


def track_command(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from poses.schema import load_schema
    from tracking.track import DEFAULT_SMOOTHING, track_video

    smoothing = None
    if not args.no_smoothing:
        changes = {"min_cutoff": args.min_cutoff, "beta": args.beta}
        smoothing = replace(
            DEFAULT_SMOOTHING, **{k: v for k, v in changes.items() if v is not None}
        )
    result = track_video(
        args.video,
        args.out,
        fps=args.fps,
        neutral_frame=args.neutral,
        smoothing=smoothing,
        progress=not args.no_progress,
        schema=load_schema(args.schema),
    )
    frames, tracked = len(result.sequence.times), int(result.sequence.tracked.sum())
    print(f"wrote {args.out}: {frames} frames at {result.fps:g} fps, {tracked} with a face")
    return 0
