"""Malformed motion and pose files never escape as anything but a MotionLoadError, fail fast in
bounded memory, and what does parse converts to finite poses.

Cases: hypothesis mutations of a small VMD and VPD written by the tests (byte flips, cuts,
counts inflated), and seeded mutations of the real VMD in ../shared/mmd."""

from __future__ import annotations

import functools
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmd_loader.errors import MotionLoadError
from mmd_loader.motion import Motion, parse_motion
from mmd_loader.motion_schema import MotionConverter, MotionMapping
from mmd_loader.vmd import VmdBoneFrame, VmdMorphFrame, encode_vmd
from tests.bounds import bounded

SMALL = encode_vmd(
    "fuzz",
    [VmdBoneFrame("頭", 0), VmdBoneFrame("頭", 9, rotation=(0.1, 0, 0, 1)), VmdBoneFrame("首", 3)],
    [VmdMorphFrame("まばたき", 0, 0.0), VmdMorphFrame("まばたき", 5, 1.0)],
    cameras=1,
    lights=1,
    shadows=1,
)
COUNTS = [50, 54 + 3 * 111, 54 + 3 * 111 + 4 + 2 * 23]  # bone, morph, camera counts
VPD = (
    "Vocaloid Pose Data file\n\nm.osm;\n1;\n\nBone0{頭\n0,0,0;\n0,0.1,0,1;\n}\n\n"
    "Morph0{まばたき\n0.5;\n}\n"
).encode("cp932")
FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@functools.cache
def mapping() -> MotionMapping:
    """tha3 on a procedural character, built once."""
    import tempfile

    from characters import write_character
    from mmd_loader import detect_face, load
    from poses.schema import load_schema

    model = load(write_character(2, Path(tempfile.mkdtemp(prefix="fuzz_")) / "c.pmx"))
    return MotionMapping.build(load_schema("tha3"), model, detect_face(model))


def check(data: bytes, measure_memory: bool = False) -> Motion | MotionLoadError:
    """Parse `data`; anything but a Motion or a one-line MotionLoadError fails the test. A
    Motion must convert to finite values at a few frames."""
    with bounded(len(data), measure_memory):
        try:
            outcome: Motion | MotionLoadError = parse_motion(data, Path("fuzz.bin"))
        except MotionLoadError as e:
            outcome = e
            assert e.offset is None or 0 <= e.offset <= len(data), e
            assert "\n" not in str(e)
    if isinstance(outcome, Motion):
        frames = np.array([0.0, 2.5, float(outcome.last_frame)])
        values = MotionConverter(mapping(), outcome).values(frames)
        assert np.isfinite(values).all()
    return outcome


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(SMALL) - 1), st.integers(0, 255)), max_size=8))
def test_vmd_byte_flips(flips):
    data = bytearray(SMALL)
    for at, value in flips:
        data[at] = value
    check(bytes(data))


@FUZZ
@given(st.integers(0, len(SMALL)), st.sampled_from(COUNTS), st.integers(0, 2**32 - 1))
def test_vmd_cut_and_counts_inflated(cut, at, value):
    check(SMALL[:cut])
    data = bytearray(SMALL)
    data[at : at + 4] = struct.pack("<I", value)
    check(bytes(data), measure_memory=value > 1 << 20)


@FUZZ
@given(st.binary(max_size=300))
def test_garbage_after_the_headers(tail):
    check(b"Vocaloid Motion Data 0002\0\0\0\0\0" + tail)
    check(b"Vocaloid Pose Data file\n" + tail)


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, len(VPD) - 1), st.sampled_from(list(b"{};,.0159-e\n\r /Bone"))),
        max_size=6,
    )
)
def test_vpd_character_flips(flips):
    data = bytearray(VPD)
    for at, value in flips:
        data[at] = value
    check(bytes(data))


def test_real_vmd_mutations(mmd_dir):
    path = mmd_dir / "j3_animasa_miku_pmx" / "im5066365.vmd"
    data = path.read_bytes()
    rng = np.random.default_rng(5066365)
    assert isinstance(check(data), Motion)
    for i, cut in enumerate(sorted(rng.integers(0, len(data), 150))):
        check(data[:cut], measure_memory=i % 25 == 0)
    for i in range(300):
        mutated = bytearray(data)
        for at in rng.integers(0, len(data), int(rng.integers(1, 6))):
            mutated[at] = int(rng.integers(0, 256))
        check(bytes(mutated), measure_memory=i % 50 == 0)


def test_a_keyframe_years_away_or_none_at_all_is_refused_when_converted():
    from mmd_loader.motion_schema import MotionSequence

    far = encode_vmd("m", [VmdBoneFrame("頭", 2**32 - 1)])
    with pytest.raises(MotionLoadError, match="more than thagen converts"):
        MotionSequence(mapping(), parse_motion(far, Path("far.vmd")))
    camera = encode_vmd("m", cameras=3, lights=1)
    with pytest.raises(MotionLoadError, match="no bone or morph keyframes"):
        MotionSequence(mapping(), parse_motion(camera, Path("camera.vmd")))
