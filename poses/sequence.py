"""Pose sequences: one pose per video frame, as CSV (docs/contracts.md, "Pose sequences").

The header is ``frame,time,tracked`` followed by the schema's parameter names in schema order
(for `tha1`: ``left_eye,right_eye,mouth,head_x,head_y,neck_z``); ``frame`` counts from 0,
``time`` is in seconds and strictly increasing, ``tracked`` is 0 or 1, and the values are finite
and inside the schema's ranges.

`SequenceReader` streams a file row by row (memory does not grow with its length); the frame
rate is taken from the first rows. `read_sequence` materialises a whole file as a
`PoseSequence`, for files known to be small.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from media.files import open_regular
from poses.schema import DEFAULT_SCHEMA, Schema, load_schema

FIXED_COLUMNS = ("frame", "time", "tracked")
# MMD motion (VMD) and pose (VPD) files: sequences too, once mapped onto a model's morphs and
# bones (`mmd_loader.motion_schema`); readers without a model refuse them by this suffix.
MOTION_SUFFIXES = (".vmd", ".vpd")
FPS_ROWS = 256  # the frame rate is the median step of the first rows
MAX_FIELD = 64  # characters of a field quoted in an error
MAX_LINE = 1 << 16  # characters in one CSV line


class SequenceError(ValueError):
    """A pose-sequence file that cannot be read; names the file and (when known) the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


def header_for(schema: Schema) -> tuple[str, ...]:
    return (*FIXED_COLUMNS, *schema.names)


def _schema(schema: Schema | None) -> Schema:
    return load_schema(DEFAULT_SCHEMA) if schema is None else schema


@dataclass(frozen=True)
class Frame:
    """One row: its index, time in seconds, whether a face was tracked, and the values."""

    index: int
    time: float
    tracked: bool
    values: dict[str, float]


@dataclass(frozen=True)
class PoseSequence:
    """``times`` (n,) seconds, ``tracked`` (n,) bool, ``values`` (n, k) in ``names`` order
    (default: the default schema's parameters)."""

    times: np.ndarray
    tracked: np.ndarray
    values: np.ndarray
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = tuple(self.names) or tuple(load_schema(DEFAULT_SCHEMA).names)
        times = np.asarray(self.times, dtype=np.float64).reshape(-1)
        tracked = np.asarray(self.tracked, dtype=bool).reshape(-1)
        values = np.asarray(self.values, dtype=np.float64).reshape(-1, len(names))
        if not len(times) == len(tracked) == len(values):
            raise ValueError(
                f"PoseSequence: {len(times)} times, {len(tracked)} flags, {len(values)} poses"
            )
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "tracked", tracked)
        object.__setattr__(self, "values", values)

    @classmethod
    def regular(
        cls,
        values: np.ndarray,
        fps: float,
        tracked: np.ndarray | None = None,
        names: tuple[str, ...] = (),
    ) -> PoseSequence:
        """A sequence sampled at ``fps`` from time 0."""
        values = np.asarray(values, dtype=np.float64)
        count = len(values)
        flags = np.ones(count, bool) if tracked is None else tracked
        return cls(np.arange(count) / float(fps), flags, values, names)

    def __len__(self) -> int:
        return len(self.times)

    @property
    def fps(self) -> float | None:
        return rate_of(self.times)

    def pose(self, index: int) -> dict[str, float]:
        """Frame ``index`` as ``{name: value}``."""
        return {name: float(v) for name, v in zip(self.names, self.values[index], strict=True)}

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.names.index(name)]

    def frames(self) -> Iterator[Frame]:
        for i in range(len(self)):
            yield Frame(i, float(self.times[i]), bool(self.tracked[i]), self.pose(i))


def rate_of(times: np.ndarray) -> float | None:
    """The frame rate implied by ``times`` (the median step), to 3 decimals; None for fewer
    than two frames. Times are written with 6 decimals, so 0.166667 s steps mean 6 fps."""
    if len(times) < 2:
        return None
    return round(float(1.0 / np.median(np.diff(times))), 3)


class SequenceReader:
    """A pose CSV opened for streaming: the header is checked and the frame rate read from the
    first rows at once; iterating yields validated `Frame`s, one row at a time."""

    def __init__(self, path: str | Path, schema: Schema | None = None) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() in MOTION_SUFFIXES:
            raise SequenceError(
                self.path,
                "an MMD motion, not a pose CSV: it becomes poses only on the model it drives "
                "(give --model, or convert it with `thagen motion MOTION --model MODEL`)",
            )
        self.schema = _schema(schema)
        self.header = header_for(self.schema)
        first = []
        for frame in self._frames():
            first.append(frame.time)
            if len(first) >= FPS_ROWS:
                break
        if not first:
            raise SequenceError(self.path, "no frames after the header")
        self.fps = rate_of(np.array(first))

    @property
    def names(self) -> list[str]:
        return self.schema.names

    def __iter__(self) -> Iterator[Frame]:
        return self._frames()

    def _frames(self) -> Iterator[Frame]:
        with self._open() as f:
            rows = csv.reader(self._lines(f))
            header = self._row(rows, 1)
            if header is None or not any(cell.strip() for cell in header):
                message = f"empty file; expected the header {','.join(self.header)}"
                raise SequenceError(self.path, message, 1)
            found = tuple(cell.strip() for cell in header)
            if found != self.header:
                raise SequenceError(
                    self.path,
                    f"header is {','.join(found)[:400]}; expected {','.join(self.header)}",
                    1,
                )
            line, index, last = 1, 0, -math.inf
            while (row := self._row(rows, line + 1)) is not None:
                line += 1
                if not any(cell.strip() for cell in row):
                    continue  # blank lines are harmless
                frame = self._frame(row, line, index, last)
                index, last = index + 1, frame.time
                yield frame

    def _open(self) -> io.TextIOWrapper:
        raw = open_regular(self.path, "pose sequence", error=lambda p, why: SequenceError(p, why))
        return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")

    def _lines(self, f: io.TextIOWrapper) -> Iterator[str]:
        """Lines of at most MAX_LINE characters (a longer one is an error, never read whole)."""
        number = 0
        while line := f.readline(MAX_LINE + 1):
            number += 1
            if len(line) > MAX_LINE:
                raise SequenceError(self.path, f"line longer than {MAX_LINE} characters", number)
            yield line

    def _row(self, rows: Iterator[list[str]], line: int) -> list[str] | None:
        try:
            return next(rows, None)
        except (csv.Error, UnicodeDecodeError) as error:
            reason = "not a UTF-8 text file" if isinstance(error, UnicodeDecodeError) else error
            raise SequenceError(self.path, str(reason), line) from None

    def _frame(self, row: list[str], line: int, index: int, last: float) -> Frame:
        if len(row) != len(self.header):
            raise SequenceError(self.path, f"{len(row)} fields; expected {len(self.header)}", line)
        frame = _number(self.path, line, "frame", row[0])
        if frame != index:
            raise SequenceError(self.path, f"frame is {row[0][:MAX_FIELD]}; expected {index}", line)
        time = _number(self.path, line, "time", row[1])
        if time <= last:
            raise SequenceError(self.path, f"time {row[1][:MAX_FIELD]} does not increase", line)
        flag = row[2].strip()
        if flag not in ("0", "1"):
            raise SequenceError(
                self.path, f"tracked is {flag[:MAX_FIELD]!r}; expected 0 or 1", line
            )
        values = {}
        for param, cell in zip(self.schema.parameters, row[3:], strict=True):
            value = _number(self.path, line, param.name, cell)
            if not param.contains(value):
                lo, hi = param.range
                message = f"{param.name} = {value} is outside [{lo:g}, {hi:g}]"
                raise SequenceError(self.path, message, line)
            values[param.name] = value
        return Frame(index, time, flag == "1", values)


def read_sequence(path: str | Path, schema: Schema | None = None) -> PoseSequence:
    """Read and validate a whole pose CSV (default schema: tha1); every problem is a
    ``SequenceError`` naming file and line. For long files iterate a `SequenceReader`."""
    reader = SequenceReader(path, schema)
    names = tuple(reader.names)
    chunks: list[np.ndarray] = []
    times, tracked, values = [], [], []
    for frame in reader:
        times.append(frame.time)
        tracked.append(frame.tracked)
        values.append([frame.values[n] for n in names])
        if len(values) == 4096:
            chunks.append(np.column_stack([times, tracked, np.array(values)]))
            times, tracked, values = [], [], []
    if values:
        chunks.append(np.column_stack([times, tracked, np.array(values)]))
    table = np.concatenate(chunks)
    return PoseSequence(table[:, 0], table[:, 1] > 0.5, table[:, 2:], names)


def write_sequence(path: str | Path, sequence: PoseSequence, schema: Schema | None = None) -> Path:
    """Write ``sequence`` as CSV (6 decimals, deterministic); names and values are checked
    against the schema first (default: the default schema)."""
    path = Path(path)
    schema = _schema(schema)
    if tuple(sequence.names) != tuple(schema.names):
        raise SequenceError(path, f"columns {sequence.names} are not the {schema.name} parameters")
    _check_values(path, sequence, schema)
    with SequenceWriter(path, schema) as writer:
        writer.write(sequence.times, sequence.tracked, sequence.values)
    return path


class SequenceWriter:
    """A pose CSV written a chunk of rows at a time (as `write_sequence` writes it), for
    sequences too long to hold: `write(times, tracked, values)` checks each chunk (times
    increasing across chunks, values inside the schema's ranges) before writing it."""

    def __init__(self, path: str | Path, schema: Schema | None = None) -> None:
        self.path = Path(path)
        self.schema = _schema(schema)
        self.rows = 0
        self.last = -math.inf
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file, lineterminator="\n")
        self._csv.writerow(header_for(self.schema))

    def write(self, times: np.ndarray, tracked: np.ndarray, values: np.ndarray) -> None:
        chunk = PoseSequence(times, tracked, values, tuple(self.schema.names))
        if len(chunk) and chunk.times[0] <= self.last:
            raise SequenceError(self.path, "times must increase strictly")
        _check_values(self.path, chunk, self.schema, first=self.rows)
        # one %-format per row (the csv module's quoting never applies to numbers)
        line = "%d,%.6f,%d" + ",%.6f" * len(self.schema.names) + "\n"
        values = np.where(np.abs(chunk.values) < 5e-7, 0.0, chunk.values)  # no "-0.000000"
        self._file.write(
            "".join(
                line % (self.rows + i, t, f, *row)
                for i, (t, f, row) in enumerate(
                    zip(chunk.times.tolist(), chunk.tracked.tolist(), values.tolist(), strict=True)
                )
            )
        )
        self.rows += len(chunk)
        if len(chunk):
            self.last = float(chunk.times[-1])

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SequenceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _number(path: Path, line: int, name: str, cell: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise SequenceError(path, f"{name} is {cell[:MAX_FIELD]!r}, not a number", line) from None
    if not math.isfinite(value):
        raise SequenceError(path, f"{name} is {cell[:MAX_FIELD]!r}, not a finite number", line)
    return value


def _check_values(path: Path, sequence: PoseSequence, schema: Schema, first: int = 0) -> None:
    if len(sequence) and not np.all(np.diff(sequence.times) > 0):
        raise SequenceError(path, "times must increase strictly")
    for k, param in enumerate(schema.parameters):
        lo, hi = param.range
        column = sequence.values[:, k]
        bad = np.flatnonzero(~((column >= lo) & (column <= hi)))
        if len(bad):
            i = int(bad[0])
            message = f"frame {first + i}: {param.name} = {column[i]} is outside [{lo:g}, {hi:g}]"
            raise SequenceError(path, message)
