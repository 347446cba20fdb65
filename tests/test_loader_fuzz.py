"""Malformed input never escapes as anything but a ModelLoadError, and fails fast in bounded memory.

Cases: hypothesis mutations of a tiny PMX 2.1 file written by the tests, and seeded
mutations of real PMD/PMX files (truncations, byte flips, counts inflated at known offsets).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmd_loader import ModelLoadError
from mmd_loader.loader import parse
from mmd_loader.model import Model
from tests.bounds import bounded
from tests.conftest import MMD_DIR
from tests.test_loader import tiny_pmx

TINY = tiny_pmx()
REAL = [
    "yw_test_model_cc0/yw_test_model.pmx",
    "goblin/goblin_v02.pmx",
    "mmd_bundled/model/Dammy_Bone.pmd",
    "mmd_bundled/model/Haku_Yowane.pmd",
]
FUZZ = settings(
    max_examples=600,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def check(data: bytes, measure_memory: bool = False) -> Model | ModelLoadError:
    """Parse `data`; anything but a Model or a ModelLoadError (with offset) fails the test."""
    with bounded(len(data), measure_memory):
        try:
            outcome: Model | ModelLoadError = parse(data, Path("fuzz.bin"))
        except ModelLoadError as e:
            outcome = e
            assert e.offset is None or 0 <= e.offset <= len(data), e
    return outcome


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(TINY) - 1), st.integers(0, 255)), max_size=8))
def test_tiny_pmx_byte_flips(flips: list[tuple[int, int]]) -> None:
    data = bytearray(TINY)
    for at, value in flips:
        data[at] = value
    check(bytes(data))


@FUZZ
@given(st.integers(0, len(TINY)), st.integers(0, len(TINY) - 4), st.integers(-(2**31), 2**31 - 1))
def test_tiny_pmx_truncated_and_inflated(cut: int, at: int, value: int) -> None:
    check(TINY[:cut])
    data = bytearray(TINY)
    data[at : at + 4] = struct.pack("<i", value)
    check(bytes(data))


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([b"PMX ", b"Pmd", b"PMX \x00\x00\x00@\x08"]))
def test_garbage_after_magic(tail: bytes, magic: bytes) -> None:
    check(magic + tail)


def _count_offsets(data: bytes) -> list[int]:
    """Byte offsets of the leading counts of a real file (vertices, then indices)."""
    if data.startswith(b"Pmd"):
        n_vertices = struct.unpack_from("<I", data, 283)[0]
        return [283, 287 + 38 * n_vertices]
    at = 17
    for _ in range(4):  # name, English name, comment, English comment
        at += 4 + struct.unpack_from("<i", data, at)[0]
    return [at]


@pytest.mark.parametrize("name", REAL)
def test_real_file_mutations(name: str) -> None:
    path = MMD_DIR / name
    if not path.is_file():
        pytest.skip(f"{path} not found")
    data = path.read_bytes()
    rng = np.random.default_rng(sum(map(ord, name)))
    full = check(data)
    assert isinstance(full, Model)
    for i, cut in enumerate(sorted(rng.integers(0, len(data), 150))):
        outcome = check(data[:cut], measure_memory=i % 25 == 0)
        if isinstance(outcome, Model):  # only PMD, cut where an optional section would begin
            assert full.format == "pmd" and repr(outcome) == repr(full), cut
    for i in range(300):
        mutated = bytearray(data)
        for at in rng.integers(0, len(data), int(rng.integers(1, 6))):
            mutated[at] = int(rng.integers(0, 256))
        check(bytes(mutated), measure_memory=i % 50 == 0)
    for at in _count_offsets(data):
        for value in (0xFFFFFFFF, 0x7FFFFFFF, 0x10000, 65535, 3):
            mutated = bytearray(data)
            mutated[at : at + 4] = struct.pack("<I", value)
            check(bytes(mutated), measure_memory=True)
