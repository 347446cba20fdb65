"""Poses written on a command line: ``left_eye=1,head_y=-0.4`` → ``{"left_eye": 1.0, ...}``."""

from __future__ import annotations

import math
from collections.abc import Mapping

MAX_POSE_TEXT = 65536


def parse_pose_text(text: str, ranges: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """The values a pose string names; names must be keys of `ranges` (a schema's `ranges`),
    values finite and inside their range.

    Parameters not named are left out (callers fill them with `Schema.neutral()`)."""
    if len(text) > MAX_POSE_TEXT:
        raise ValueError(f"pose text of {len(text)} characters is too long")
    pose: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or name not in ranges:
            shown = ", ".join(ranges) if len(ranges) <= 12 else f"the {len(ranges)} parameters"
            raise ValueError(f"pose item {item[:80]!r}: expected NAME=VALUE, NAME in {shown}")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"pose item {item[:80]!r}: {value[:40]!r} is not a number") from None
        lo, hi = ranges[name]
        if not math.isfinite(number) or not lo <= number <= hi:
            raise ValueError(f"pose item {item[:80]!r}: {name} must be in [{lo:g}, {hi:g}]")
        pose[name] = number
    return pose
