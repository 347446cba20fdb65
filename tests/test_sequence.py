"""Pose-sequence CSV: round trip, the contract's header, and clear errors for malformed files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from poses.schema import load_schema
from poses.sequence import PoseSequence, SequenceError, header_for, read_sequence, write_sequence

HEADER = header_for(load_schema("tha1"))

GOOD = (
    "frame,time,tracked,left_eye,right_eye,mouth,head_x,head_y,neck_z\n"
    "0,0.000000,1,0.000000,0.000000,0.100000,0.000000,0.000000,0.000000\n"
    "1,0.040000,0,0.000000,0.000000,0.100000,0.000000,0.000000,0.000000\n"
    "2,0.080000,1,1.000000,0.500000,0.200000,-1.000000,0.250000,1.000000\n"
)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "poses.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.numeric
def test_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    values = np.column_stack([rng.uniform(0, 1, (50, 3)), rng.uniform(-1, 1, (50, 3))])
    tracked = rng.uniform(size=50) > 0.2
    sequence = PoseSequence.regular(values, fps=29.97, tracked=tracked)
    path = write_sequence(tmp_path / "out" / "poses.csv", sequence)
    assert path.read_text().splitlines()[0] == ",".join(HEADER)
    back = read_sequence(path)
    np.testing.assert_allclose(back.values, values, atol=5e-7)
    np.testing.assert_allclose(back.times, sequence.times, atol=5e-7)
    np.testing.assert_array_equal(back.tracked, tracked)
    assert back.fps == pytest.approx(29.97, rel=1e-4)
    # Writing what was read gives the same bytes.
    again = write_sequence(tmp_path / "again.csv", back)
    assert again.read_bytes() == path.read_bytes()


@pytest.mark.numeric
def test_reads_the_contract_example(tmp_path: Path) -> None:
    sequence = read_sequence(_write(tmp_path, GOOD))
    assert len(sequence) == 3
    assert sequence.fps == pytest.approx(25.0)
    assert sequence.tracked.tolist() == [True, False, True]
    assert sequence.pose(2) == {
        "left_eye": 1.0,
        "right_eye": 0.5,
        "mouth": 0.2,
        "head_x": -1.0,
        "head_y": 0.25,
        "neck_z": 1.0,
    }
    np.testing.assert_array_equal(sequence.column("neck_z"), [0.0, 0.0, 1.0])


@pytest.mark.numeric
def test_negative_zero_is_written_as_zero(tmp_path: Path) -> None:
    sequence = PoseSequence.regular(np.array([[0, 0, 0, -1e-9, -0.0, 0]]), fps=10)
    text = write_sequence(tmp_path / "z.csv", sequence).read_text()
    assert "-0.000000" not in text


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", 1, "empty file"),
        ("frame,time,tracked,left_eye,right_eye,mouth,head_x,head_y\n", 1, "header is"),
        (GOOD.replace("1,0.040000,0,", "1,0.040000,0,0.5,"), 3, "10 fields; expected 9"),
        (GOOD.replace("0.040000", "soon"), 3, "time is 'soon', not a number"),
        (GOOD.replace("0.040000", "nan"), 3, "not a finite number"),
        (GOOD.replace("0.080000", "0.010000"), 4, "does not increase"),
        (GOOD.replace("\n2,", "\n3,"), 4, "frame is 3; expected 2"),
        (GOOD.replace("0.040000,0,", "0.040000,yes,"), 3, "tracked is 'yes'"),
        (GOOD.replace("-1.000000", "-1.500000"), 4, "head_x = -1.5 is outside [-1, 1]"),
        (GOOD.replace("2,0.080000,1,1.000000", "2,0.080000,1,-0.2"), 4, "left_eye = -0.2"),
    ],
)
def test_malformed_files_name_file_and_line(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SequenceError) as info:
        read_sequence(path)
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert fragment in str(info.value)


def test_header_only_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SequenceError, match="no frames after the header"):
        read_sequence(_write(tmp_path, ",".join(HEADER) + "\n"))
    with pytest.raises(SequenceError, match="cannot read"):
        read_sequence(tmp_path / "absent.csv")


def test_write_rejects_out_of_range_values(tmp_path: Path) -> None:
    sequence = PoseSequence.regular(np.array([[0, 0, 0, 0, 0, 0], [0, 0, 1.2, 0, 0, 0]]), fps=10)
    with pytest.raises(SequenceError, match=r"frame 1: mouth = 1.2 is outside \[0, 1\]"):
        write_sequence(tmp_path / "bad.csv", sequence)
    assert not (tmp_path / "bad.csv").exists()
