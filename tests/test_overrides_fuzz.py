"""Fuzzing overrides tables and sidecars: whatever the bytes, only a valid table or an
OverridesError comes back, each case fast and in bounded memory.

Cases: YAML assembled from the tokens that matter (keys, anchors and aliases, tags, flow
collections, odd numbers), arbitrary data dumped as YAML, byte mutations of a valid file, and
CSV assembled the same way. Every input is built here.
"""

from __future__ import annotations

import math
import tempfile
import time
import tracemalloc
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmd_loader.overrides import (
    MAX_COORDINATE,
    MAX_NAME,
    NAME_FIELDS,
    FaceOverrides,
    OverridesError,
    load_overrides,
    overrides_for,
    table_from_json,
)

SECONDS_PER_CASE = 2.0
HEAP_OVER_INPUT = 64  # peak Python heap at most this many times the input (+ 16 MiB)
FUZZ = settings(
    max_examples=250, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
KEYS = [*NAME_FIELDS, "head_top", "chin", "model", "eyes", "<<"]
TOKENS = [
    "m.pmx:", "'*.pmd':", "\n", "\n  ", "  ", ": ", "- ", "? ", ",", "[", "]", "{", "}", "'", '"',
    "#", "|", ">", "&a ", "*a", "&b ", "*b", "!!python/object:os.system ", "!!binary ",
    "!!float ", "!!str ", "<<: ", "---", "...", "%YAML 1.1\n", "\t", "\ufeff", "\x00",
    "mouth", "left_eye", "right_eye", "neck", "head", "head_top", "chin", "eyes",
    "あ", "まばたき@left", "@up", "yes", "null", "~", "12", "-3.5", "1e300", "-1e300", ".nan",
    ".inf", "-.inf", "0x1F", "1_000", "2001-01-01", "x" * 300,
]  # fmt: skip
CSV_TOKENS = ["model", "mouth", "chin", "head_top", "eyes", ",", "\n", "\r\n", '"', '""',
              "m.pmx", "あ", "nan", "1e300", "12", "", "\x00", "x" * 300]  # fmt: skip


def check_table(table: dict) -> None:
    """A table that loaded holds only valid values."""
    for pattern, overrides in table.items():
        assert isinstance(pattern, str) and isinstance(overrides, FaceOverrides)
        check_overrides(overrides)


def check_overrides(o: FaceOverrides) -> None:
    for name in NAME_FIELDS:
        value = getattr(o, name)
        assert value is None or (isinstance(value, str) and 0 < len(value) <= MAX_NAME)
    for value in (o.head_top, o.chin):
        assert value is None or (math.isfinite(value) and abs(value) <= MAX_COORDINATE)
    assert o.head_top is None or o.chin is None or o.head_top > o.chin


def bounded(run, size: int):
    """Run `run()`; an OverridesError is a fine outcome. Checks time and peak heap."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        return run()
    except OverridesError as error:
        assert len(str(error)) < 2000, "an error message grows with its input"
        return error
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert elapsed < SECONDS_PER_CASE, f"{elapsed:.2f} s"
        assert peak <= HEAP_OVER_INPUT * size + (16 << 20), f"peak heap {peak} bytes"


def fuzz_file(data: bytes, suffix: str = ".yaml") -> None:
    """`data` as an overrides table and as a sidecar."""
    with tempfile.TemporaryDirectory() as folder:
        table = Path(folder) / f"overrides{suffix}"
        table.write_bytes(data)
        outcome = bounded(lambda: load_overrides(table), len(data))
        if not isinstance(outcome, OverridesError):
            check_table(outcome)
        if suffix == ".yaml":
            (Path(folder) / "m.pmx.thagen.yaml").write_bytes(data)
            outcome = bounded(lambda: overrides_for(Path(folder) / "m.pmx"), len(data))
            if not isinstance(outcome, OverridesError):
                check_overrides(outcome)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_fuzz_yaml_from_tokens(tokens: list[str]) -> None:
    fuzz_file("".join(tokens).encode("utf-8", "surrogatepass"))


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**40), 10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.dates()
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=24,
)


@FUZZ
@given(st.dictionaries(st.text(max_size=10) | st.integers(), _VALUES, max_size=4))
def test_fuzz_data_dumped_as_yaml(data: dict) -> None:
    text = yaml.safe_dump(data, allow_unicode=True)
    fuzz_file(text.encode("utf-8", "surrogatepass"))
    outcome = bounded(lambda: table_from_json(data, "config"), len(text))
    if not isinstance(outcome, OverridesError):
        check_table(outcome)


VALID = (
    "'*.pmd':\n  left_eye: ウィンク@left\n  right_eye: ウィンク右\n  chin: 16.5\n"
    "m.pmx:\n  mouth: あ\n  head_top: 21.0\n  neck: 首\n  head: 頭\n"
).encode()


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255) | st.sampled_from(TOKENS)),
        min_size=1,
        max_size=6,
    ),
    st.integers(0, len(VALID)),
)
def test_fuzz_mutations_of_a_valid_file(edits: list[tuple[int, object]], cut: int) -> None:
    data = bytearray(VALID)
    for at, change in edits:
        if isinstance(change, int):
            data[min(at, len(data) - 1)] = change
        else:
            data[at:at] = change.encode("utf-8", "surrogatepass")
    fuzz_file(bytes(data))
    fuzz_file(VALID[:cut])


@FUZZ
@given(st.lists(st.sampled_from(CSV_TOKENS), max_size=40))
def test_fuzz_csv_from_tokens(tokens: list[str]) -> None:
    fuzz_file("".join(tokens).encode(), suffix=".csv")
