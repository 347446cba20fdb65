"""Pose sequences: one THA1 pose per video frame, as CSV (docs/contracts.md, "Pose sequences").

The header is ``frame,time,tracked,left_eye,right_eye,mouth,head_x,head_y,neck_z``; ``frame``
counts from 0, ``time`` is in seconds and strictly increasing, ``tracked`` is 0 or 1, and the six
values are already in the schema's ranges (morphs in [0, 1], rotations in [-1, 1]).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

POSE_NAMES = ("left_eye", "right_eye", "mouth", "head_x", "head_y", "neck_z")
MORPH_NAMES = POSE_NAMES[:3]
ROTATION_NAMES = POSE_NAMES[3:]
HEADER = ("frame", "time", "tracked", *POSE_NAMES)
RANGES = {name: (0.0, 1.0) for name in MORPH_NAMES} | {name: (-1.0, 1.0) for name in ROTATION_NAMES}


class SequenceError(ValueError):
    """A pose-sequence file that cannot be read; names the file and (when known) the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


def parse_pose_text(
    text: str, ranges: dict[str, tuple[float, float]] | None = None
) -> dict[str, float]:
    """A pose written on a command line: 'left_eye=1,head_y=-0.4' → {'left_eye': 1.0, ...}.

    Names must be keys of `ranges` (default: the THA1 pose) and values inside their range."""
    ranges = RANGES if ranges is None else ranges
    pose: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or name not in ranges:
            raise ValueError(
                f"pose item {item!r}: expected NAME=VALUE, NAME in {', '.join(ranges)}"
            )
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"pose item {item!r}: {value!r} is not a number") from None
        lo, hi = ranges[name]
        if not (lo <= number <= hi):
            raise ValueError(f"pose item {item!r}: {name} must be in [{lo:g}, {hi:g}]")
        pose[name] = number
    return pose


@dataclass(frozen=True)
class PoseSequence:
    """``times`` (n,) seconds, ``tracked`` (n,) bool, ``values`` (n, 6) in ``POSE_NAMES`` order."""

    times: np.ndarray
    tracked: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        times = np.asarray(self.times, dtype=np.float64).reshape(-1)
        tracked = np.asarray(self.tracked, dtype=bool).reshape(-1)
        values = np.asarray(self.values, dtype=np.float64).reshape(-1, len(POSE_NAMES))
        if not len(times) == len(tracked) == len(values):
            raise ValueError(
                f"PoseSequence: {len(times)} times, {len(tracked)} flags, {len(values)} poses"
            )
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "tracked", tracked)
        object.__setattr__(self, "values", values)

    @classmethod
    def regular(cls, values: np.ndarray, fps: float, tracked: np.ndarray | None = None):
        """A sequence sampled at ``fps`` from time 0."""
        values = np.asarray(values, dtype=np.float64).reshape(-1, len(POSE_NAMES))
        flags = np.ones(len(values), bool) if tracked is None else tracked
        return cls(np.arange(len(values)) / float(fps), flags, values)

    def __len__(self) -> int:
        return len(self.times)

    @property
    def fps(self) -> float | None:
        """The frame rate implied by ``time``, to 3 decimals (None for fewer than two frames).

        Times are written with 6 decimals, so the rate is rounded: 0.166667 s steps mean 6 fps.
        """
        if len(self) < 2:
            return None
        return round(float(1.0 / np.median(np.diff(self.times))), 3)

    def pose(self, index: int) -> dict[str, float]:
        """Frame ``index`` as ``{name: value}``, ready for ``render.Pose.tha1(**pose)``."""
        return {name: float(v) for name, v in zip(POSE_NAMES, self.values[index], strict=True)}

    def column(self, name: str) -> np.ndarray:
        return self.values[:, POSE_NAMES.index(name)]


def write_sequence(path: str | Path, sequence: PoseSequence) -> Path:
    """Write ``sequence`` as CSV (6 decimals, deterministic); values are checked first."""
    path = Path(path)
    _check_values(path, sequence)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(HEADER)
        for i in range(len(sequence)):
            row = sequence.values[i]
            writer.writerow(
                [i, f"{sequence.times[i]:.6f}", int(sequence.tracked[i])]
                + [f"{_zero(v):.6f}" for v in row]
            )
    return path


def read_sequence(path: str | Path) -> PoseSequence:
    """Read and validate a pose CSV; every problem is a ``SequenceError`` naming file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise SequenceError(path, f"cannot read: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise SequenceError(path, "not a UTF-8 text file") from e
    rows = list(csv.reader(text.splitlines()))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise SequenceError(path, f"empty file; expected the header {','.join(HEADER)}", 1)
    header = tuple(cell.strip() for cell in rows[0])
    if header != HEADER:
        raise SequenceError(path, f"header is {','.join(header)}; expected {','.join(HEADER)}", 1)
    times, tracked, values = [], [], []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank lines are harmless
        if len(row) != len(HEADER):
            raise SequenceError(path, f"{len(row)} fields; expected {len(HEADER)}", line)
        frame = _number(path, line, "frame", row[0])
        if frame != len(times):
            raise SequenceError(path, f"frame is {row[0]}; expected {len(times)}", line)
        time = _number(path, line, "time", row[1])
        if times and time <= times[-1]:
            raise SequenceError(path, f"time {row[1]} does not increase", line)
        if row[2].strip() not in ("0", "1"):
            raise SequenceError(path, f"tracked is {row[2]!r}; expected 0 or 1", line)
        pose = [
            _number(path, line, name, cell) for name, cell in zip(POSE_NAMES, row[3:], strict=True)
        ]
        for name, value in zip(POSE_NAMES, pose, strict=True):
            lo, hi = RANGES[name]
            if not lo <= value <= hi:
                raise SequenceError(path, f"{name} = {value} is outside [{lo:g}, {hi:g}]", line)
        times.append(time)
        tracked.append(row[2].strip() == "1")
        values.append(pose)
    if not times:
        raise SequenceError(path, "no frames after the header")
    return PoseSequence(np.array(times), np.array(tracked), np.array(values))


def _number(path: Path, line: int, name: str, cell: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise SequenceError(path, f"{name} is {cell!r}, not a number", line) from None
    if not math.isfinite(value):
        raise SequenceError(path, f"{name} is {cell!r}, not a finite number", line)
    return value


def _check_values(path: Path, sequence: PoseSequence) -> None:
    if len(sequence) and not np.all(np.diff(sequence.times) > 0):
        raise SequenceError(path, "times must increase strictly")
    for k, name in enumerate(POSE_NAMES):
        lo, hi = RANGES[name]
        column = sequence.values[:, k]
        bad = np.flatnonzero(~((column >= lo) & (column <= hi)))
        if len(bad):
            i = int(bad[0])
            message = f"frame {i}: {name} = {column[i]} is outside [{lo:g}, {hi:g}]"
            raise SequenceError(path, message)


def _zero(value: float) -> float:
    """Avoid writing ``-0.000000``."""
    return 0.0 if abs(value) < 5e-7 else float(value)
