"""Mutated shards fed to the training reader: only `DatasetError` (or a clean read) comes out,
each case fast and in bounded memory.

Cases: byte flips and truncations of a tiny valid shard, header fields rewritten with a valid
checksum (type flags, sizes up to 2^88 in base-256, names, link targets), extra GNU/PAX
headers of random sizes, and members spliced, duplicated or dropped. Everything decoded is
also checked: a clean read yields finite poses inside the schema's ranges.
"""

from __future__ import annotations

import io
import tarfile
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from tests import shardhostile as H  # noqa: E402
from training.data import DatasetError, DatasetInfo, decode, read_shard  # noqa: E402

SECONDS_PER_CASE = 2.0  # a clean read of this shard takes about a millisecond
PEAK_HEAP = 16 << 20  # bytes; the shard is 9 kB, a sparse or huge member would be gigabytes
GOOD = H.good_shard()


def _blocks(shard: bytes) -> list[tuple[int, int]]:
    """(start, end) of each member's header and padded data."""
    with tarfile.open(fileobj=io.BytesIO(shard)) as tar:
        return [(m.offset, m.offset_data + -(-m.size // 512) * 512) for m in tar]


BLOCKS = _blocks(GOOD)
HEADERS = [start for start, _ in BLOCKS]
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
TYPES = list(b"0123456789ASLKgxDIMNV\0")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return H.write_dataset(tmp_path_factory.mktemp("fuzz"), GOOD)


def check(folder: Path, data: bytes) -> None:
    """Read and decode every example of `data`; anything but DatasetError fails the test."""
    (folder / "train-000000.tar").write_bytes(data)
    info = DatasetInfo.load(folder)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        for raw in read_shard(folder / "train-000000.tar"):
            item = decode(raw, "rotator", ["head_x", "head_y", "neck_z"], None, info)
            assert torch.isfinite(item["pose"]).all() and item["pose"].abs().max() <= 1
            decode(raw, "morpher", ["left_eye", "right_eye", "mouth"], None, info)
    except DatasetError as error:
        assert "\n" not in str(error) and len(str(error)) < 2000, error
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < SECONDS_PER_CASE, f"{elapsed:.2f} s"
    assert peak < PEAK_HEAP, f"peak heap {peak} bytes"


def test_the_unmutated_shard_reads(folder):
    check(folder, GOOD)
    assert len(HEADERS) == 8


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=8)
)
def test_byte_flips(folder, flips):
    data = bytearray(GOOD)
    for at, value in flips:
        data[at] = value
    check(folder, bytes(data))


@FUZZ
@given(st.integers(0, len(GOOD)), st.binary(max_size=1100))
def test_truncated_and_extended(folder, cut, tail):
    check(folder, GOOD[:cut] + tail)


FIELDS = {
    "name": (0, 100),
    "size": (124, 12),
    "type": (156, 1),
    "link": (157, 100),
    "prefix": (345, 155),
}


def field_values(field: str) -> st.SearchStrategy[bytes]:
    if field == "size":
        octal = st.integers(0, 8**11 - 1).map(lambda n: b"%011o\0" % n)
        base256 = st.integers(0, 2**88 - 1).map(lambda n: b"\x80" + n.to_bytes(11, "big"))
        return st.one_of(octal, base256, st.binary(min_size=12, max_size=12))
    if field == "type":
        return st.sampled_from(TYPES).map(lambda t: bytes([t]))
    return st.one_of(
        st.sampled_from([b"../../etc/passwd", b"/abs.png", b"a" * 99, b"k_000000.rest.png", b""]),
        st.binary(max_size=FIELDS[field][1]),
    )


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(HEADERS),
            st.sampled_from(sorted(FIELDS)).flatmap(
                lambda f: st.tuples(st.just(f), field_values(f))
            ),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_header_fields_with_valid_checksums(folder, edits):
    data = bytearray(GOOD)
    for at, (field, value) in edits:
        start, length = FIELDS[field]
        header = data[at : at + 512]
        header[start : start + length] = value[:length].ljust(length, b"\0")
        H.checksum(header)
        data[at : at + 512] = header
    check(folder, bytes(data))


@FUZZ
@given(
    st.sampled_from(HEADERS),
    st.sampled_from([b"L", b"K", b"x", b"g"]),
    st.integers(0, 1 << 40),
    st.binary(max_size=600),
)
def test_extra_long_name_and_pax_headers(folder, at, kind, size, body):
    header = bytearray(512)
    header[0:13] = b"././@LongLink"
    header[100:108] = b"0000644\0"
    header[124:136] = b"%011o\0" % size if size < 8**11 else b"\x80" + size.to_bytes(11, "big")
    header[156:157] = kind
    header[257:265] = b"ustar\x0000"
    H.checksum(header)
    padded = body + bytes(-len(body) % 512)
    check(folder, GOOD[:at] + bytes(header) + padded + GOOD[at:])


@FUZZ
@given(st.lists(st.sampled_from(range(len(HEADERS))), min_size=0, max_size=12))
def test_members_spliced_duplicated_or_dropped(folder, order):
    end = GOOD[BLOCKS[-1][1] :]
    check(folder, b"".join(GOOD[a:b] for a, b in (BLOCKS[i] for i in order)) + end)
