"""Zips as MMD authors distribute them, read through libarchive: Japanese names decode, hostile
archives are refused. (`tests/test_archive_formats.py` covers RAR, 7z, LZH, tar and nesting.)"""

from __future__ import annotations

import os
import stat
import struct
import tempfile
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmd_loader import load
from mmd_loader.archive import (
    ArchiveError,
    ArchiveLimits,
    check_archive,
    extract_all,
    extract_model_to,
    extracted,
    extracted_model,
    is_archive,
    iter_models,
    list_models,
    split_archive_path,
)
from mmd_loader.errors import ModelLoadError
from mmd_loader.textcodec import decode_names
from tests.test_loader import tiny_pmx

TINY = tiny_pmx()


class WindowsZipInfo(zipfile.ZipInfo):
    """Writes its name as the raw bytes `filename` holds (decoded as cp437) with no UTF-8 flag,
    as Japanese Windows archivers store cp932 names."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:
        return self.filename.encode("cp437"), self.flag_bits & ~0x800


def cp932_info(name: str) -> zipfile.ZipInfo:
    return WindowsZipInfo(name.encode("cp932").decode("cp437"), date_time=(2010, 1, 1, 0, 0, 0))


def make_zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return path


def test_cp932_names_without_flag_decode(tmp_path: Path) -> None:
    names = ["初音ミク/初音ミク.pmx", "初音ミク/表情ソ.bmp", "ﾐｸ/readme.txt"]  # 表, ソ end in 0x5C
    archive = make_zip(tmp_path / "jp.zip", [(cp932_info(n), n.encode()) for n in names])
    raw = archive.read_bytes()
    assert "初音ミク/表情ソ.bmp".encode("cp932") in raw  # stored like a Japanese Windows zip
    with zipfile.ZipFile(archive) as zf:
        assert all(not info.flag_bits & 0x800 for info in zf.infolist())
        assert zf.namelist()[0] != names[0]  # Python alone shows mojibake
        assert decode_names([n.encode("cp932") for n in names]) == names
    assert [m.name for m in check_archive(archive)] == names
    assert list_models(archive) == ["初音ミク/初音ミク.pmx"]
    with extracted(archive, parent=tmp_path) as folder:
        assert (folder / "初音ミク" / "表情ソ.bmp").read_bytes() == names[1].encode()
        assert sorted(p.name for p in (folder / "初音ミク").iterdir()) == [
            "初音ミク.pmx",
            "表情ソ.bmp",
        ]


def test_utf8_names_with_and_without_flag(tmp_path: Path) -> None:
    flagged = make_zip(tmp_path / "utf8.zip", [("ミク/ミク.pmx", b"m"), ("ミク/髪.png", b"p")])
    with zipfile.ZipFile(flagged) as zf:
        assert all(info.flag_bits & 0x800 for info in zf.infolist())
    assert list_models(flagged) == ["ミク/ミク.pmx"]
    unflagged_info = WindowsZipInfo("ミク/ミク.pmx".encode().decode("cp437"))  # Linux `zip`
    unflagged = make_zip(tmp_path / "linux.zip", [(unflagged_info, b"m")])
    assert list_models(unflagged) == ["ミク/ミク.pmx"]


def test_info_zip_unicode_path_field_wins(tmp_path: Path) -> None:
    info = cp932_info("ﾓﾃﾞﾙ.pmx")
    raw = "ﾓﾃﾞﾙ.pmx".encode("cp932")
    body = b"\x01" + struct.pack("<I", zlib.crc32(raw)) + "モデル.pmx".encode()
    info.extra = struct.pack("<HH", 0x7075, len(body)) + body
    archive = make_zip(tmp_path / "u.zip", [(info, b"m")])
    assert list_models(archive) == ["モデル.pmx"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.pmx", "'..'"),
        ("models/../../evil.pmx", "'..'"),
        ("..\\evil.pmx", "'..'"),
        ("models\\..\\..\\evil.pmx", "'..'"),
        ("/etc/evil.pmx", "absolute"),
        ("\\evil.pmx", "absolute"),
        ("C:/evil.pmx", "drive letter"),
        ("C:\\Windows\\evil.pmx", "drive letter"),
    ],
)
def test_escaping_entries_are_refused(tmp_path: Path, name: str, reason: str) -> None:
    archive = make_zip(tmp_path / "evil.zip", [("fine.txt", b"ok"), (zipfile.ZipInfo(name), b"x")])
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(ArchiveError, match=reason) as caught:
        extract_all(archive, dest)
    shown = name.replace("\\", "/")  # libarchive turns a Windows zip's separators into '/'
    assert str(archive) in str(caught.value) and repr(shown) in str(caught.value)
    assert caught.value.member == shown
    assert list(dest.iterdir()) == []  # refused before anything was written
    with pytest.raises(ArchiveError):
        list_models(archive)


def test_symlink_entries_are_refused(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("tex/face.bmp")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = make_zip(tmp_path / "link.zip", [("m.pmx", b"m"), (link, b"/etc/passwd")])
    with pytest.raises(ArchiveError, match="symbolic link"), extracted(archive):
        pass


def test_encrypted_members_are_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "enc.zip", [("m.pmx", b"ciphertext, supposedly")])
    data = bytearray(archive.read_bytes())  # Python cannot encrypt: set the flag bit by hand
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        data[data.find(signature) + flag_at] |= 0x1
    archive.write_bytes(bytes(data))
    with zipfile.ZipFile(archive) as zf:
        assert zf.infolist()[0].flag_bits & 0x1
    with pytest.raises(ArchiveError, match="encrypted") as caught:
        check_archive(archive)
    assert caught.value.member == "m.pmx"


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 MB of zeros deflated to about 100 kB."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model.pmx", b"m")
        with zf.open("zeros.bin", "w") as member:
            chunk = bytes(1 << 20)
            for _ in range(100):
                member.write(chunk)
    return path


def test_zip_bomb_is_refused_from_the_directory(zip_bomb: Path, tmp_path: Path) -> None:
    assert zip_bomb.stat().st_size < 1_000_000
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(ArchiveError, match=r"compression ratio \d+:1 .* zip bomb") as caught:
        extract_all(zip_bomb, dest)
    assert caught.value.member == "zeros.bin"
    assert list(dest.iterdir()) == []
    with pytest.raises(ArchiveError, match="zip bomb"):
        list_models(zip_bomb)


def test_extracted_cleans_up_after_refusal_and_after_use(zip_bomb: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ArchiveError), extracted(zip_bomb, parent=work):
        pass
    assert list(work.iterdir()) == []
    fine = make_zip(tmp_path / "fine.zip", [("a/m.pmx", b"m")])
    with extracted(fine, parent=work) as folder:
        assert (folder / "a" / "m.pmx").read_bytes() == b"m"
    assert not folder.exists() and list(work.iterdir()) == []


def patch_sizes(path: Path, member: str, uncompressed: int) -> None:
    """Rewrite the declared uncompressed size of `member` in its local and central headers."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            if data[start + name_at : start + name_at + len(name)] == name:
                data[start + size_at : start + size_at + 4] = struct.pack("<I", uncompressed)
            start += 4
    path.write_bytes(bytes(data))


def test_lying_header_cannot_write_past_its_declared_size(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "liar.zip", [("m.pmx", b"m"), ("big.bin", bytes(5 << 20))])
    patch_sizes(archive, "big.bin", 1000)  # claims 1000 bytes: ratio looks harmless
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(ArchiveError) as caught:
        extract_all(archive, dest)
    assert caught.value.member == "big.bin"
    written = dest / "big.bin"
    assert not written.exists() or written.stat().st_size <= 1000


def test_total_size_and_member_count_limits(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "many.zip", [(f"f{i}.txt", bytes(600)) for i in range(5)])
    check_archive(archive)
    with pytest.raises(ArchiveError, match="more than the limit 2000"):
        check_archive(archive, ArchiveLimits(max_total_size=2000))
    with pytest.raises(ArchiveError, match="more than 3 members, the limit"):
        list_models(archive, ArchiveLimits(max_members=3))


def test_overlapping_entries_are_read_once(tmp_path: Path) -> None:
    """Two directory entries sharing one local file (the non-recursive zip bomb trick): libarchive
    reads each local file once, so the twin adds no member and no bytes (and partial overlaps are
    bounded by the streaming limits, like any other output)."""
    archive = make_zip(tmp_path / "overlap.zip", [("a.pmx", b"model data " * 100)])
    data = archive.read_bytes()
    eocd = data.rfind(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack_from("<II", data, eocd + 12)
    entry = data[cd_offset : cd_offset + cd_size]
    twin = entry.replace(b"a.pmx", b"b.pmx")
    tail = bytearray(data[eocd:])
    struct.pack_into("<HHI", tail, 8, 2, 2, cd_size * 2)
    archive.write_bytes(data[: cd_offset + cd_size] + twin + bytes(tail))
    with zipfile.ZipFile(archive) as zf:
        assert zf.namelist() == ["a.pmx", "b.pmx"]
    assert [m.name for m in check_archive(archive)] == ["a.pmx"]
    with extracted(archive, parent=tmp_path) as folder:
        assert [p.name for p in folder.iterdir()] == ["a.pmx"]
        assert (folder / "a.pmx").read_bytes() == b"model data " * 100


def test_several_models_are_listed_and_iterated(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "pack.zip",
        [
            ("readme.txt", b"r"),
            ("b/B.PMD", b"pmd"),
            ("a\\a.pmx", TINY),  # backslash separator from a Windows archiver
            (cp932_info("c/ミク.pmx"), b"jp"),
            ("__MACOSX/a/._a.pmx", b"resource fork"),
            ("a/TEX/Body.png", b"png"),  # TINY's material names "tex\\body.png"
            ("a/tex2/face.png", b"unused"),
        ],
    )
    assert list_models(archive) == ["a/a.pmx", "b/B.PMD", "c/ミク.pmx"]
    seen = []
    for name, path in iter_models(archive):
        seen.append((name, path.read_bytes()))
        top = path.parents[len(name.split("/")) - 2]
        if name == "a/a.pmx":
            assert (path.parent / "TEX" / "Body.png").read_bytes() == b"png"
        assert not (top / "__MACOSX").exists() and not (top / "readme.txt").exists()
        assert not (top / "a" / "tex2").exists()  # referenced by nothing: never extracted
    assert seen == [("a/a.pmx", TINY), ("b/B.PMD", b"pmd"), ("c/ミク.pmx", b"jp")]
    assert not path.exists()  # the extraction is gone once the iteration ends


def test_extracted_model_picks_one(tmp_path: Path) -> None:
    entries = [("Model/Miku.pmx", TINY), ("Model/tex/body.png", b"t"), ("Model/t.png", b"t")]
    single = make_zip(tmp_path / "one.zip", entries)
    with extracted_model(single) as path:
        assert path.name == "Miku.pmx" and (path.parent / "tex" / "body.png").exists()
        assert not (path.parent / "t.png").exists()
    pack = make_zip(tmp_path / "two.zip", [("a/x.pmx", b"x"), ("b/y.pmd", b"y")])
    with extracted_model(pack, "B\\Y.PMD") as path:
        assert path.read_bytes() == b"y"
    refusals = [
        (None, r"holds 2 models.*'a/x.pmx', 'b/y.pmd'"),
        ("c/z.pmx", "no such model"),
        ("../a/x.pmx", r"'\.\.' in path refused"),
    ]
    for member, message in refusals:
        with pytest.raises(ArchiveError, match=message), extracted_model(pack, member):
            pass


def test_extract_model_to_checks_the_member_before_writing(tmp_path: Path) -> None:
    pack = make_zip(tmp_path / "two.zip", [("a/x.pmx", b"x"), ("B/Y.pmd", b"y"), ("B/t.png", b"t")])
    dest = tmp_path / "out"
    dest.mkdir()
    for member, message in [(None, "holds 2 models"), ("c/z.pmx", "no such model")]:
        with pytest.raises(ArchiveError, match=message):
            extract_model_to(pack, member, dest)
        assert list(dest.iterdir()) == []
    path = extract_model_to(pack, "b\\y.PMD", dest)
    assert path == dest / "B" / "Y.pmd" and path.read_bytes() == b"y"
    # only the model: b"y" does not parse, so it references nothing; the other model stays packed
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == ["B", "B/Y.pmd"]


def test_not_a_zip_and_paths_into_archives(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.zip"
    bogus.write_bytes(b"PMX not a zip at all")
    with pytest.raises(ArchiveError, match="not a readable archive") as caught:
        list_models(bogus)
    assert isinstance(caught.value, ModelLoadError) and caught.value.path == str(bogus)
    with pytest.raises(ArchiveError, match="no such file"):
        list_models(tmp_path / "missing.zip")
    real = make_zip(tmp_path / "pack.zip", [("a/m.pmx", b"m")])
    assert is_archive(real) and not is_archive(bogus)
    assert split_archive_path(real / "a" / "m.pmx") == (real, "a/m.pmx")
    assert split_archive_path(real) == (real, None)
    assert split_archive_path(tmp_path / "plain" / "m.pmx") == (tmp_path / "plain" / "m.pmx", None)


# --- zip features libarchive cannot read, corrupt directories, ratio over the archive -----------

CD, LOCAL, EOCD = b"PK\x01\x02", b"PK\x03\x04", b"PK\x05\x06"


def model_zip(path: Path, extra: list[tuple[str, bytes]] | None = None) -> Path:
    """A zip of one tiny model and the texture it names, plus `extra` members."""
    entries = [("Pack/Tiny.pmx", TINY), ("Pack/tex/body.png", b"png bytes " * 20)]
    return make_zip(path, entries + (extra or []))


def patch(path: Path, signature: bytes, at: int, fmt: str, value: int, nth: int = 0) -> None:
    """Overwrite the field at offset `at` of the `nth` header starting with `signature`."""
    data = bytearray(path.read_bytes())
    start = -1
    for _ in range(nth + 1):
        start = data.index(signature, start + 1)
    struct.pack_into(fmt, data, start + at, value)
    path.write_bytes(bytes(data))


def refused(archive: Path, match: str, tmp_path: Path, listed: bool = True) -> ArchiveError:
    """The archive is refused alike by a check (when `listed`: refused from its headers, before
    anything is written), an extraction and a load, naming it."""
    dest = tmp_path / "dest"
    dest.mkdir(exist_ok=True)
    if listed:
        with pytest.raises(ArchiveError, match=match) as caught:
            check_archive(archive)
        assert caught.value.path == str(archive)
    with pytest.raises(ArchiveError, match=match) as extracting:
        extract_all(archive, dest)
    if listed:
        assert list(dest.iterdir()) == []
    with pytest.raises(ModelLoadError, match=match) as loaded:
        load(archive)
    assert str(archive) in str(loaded.value)
    return caught.value if listed else extracting.value


@pytest.mark.parametrize(
    ("patches", "match", "listed"),
    [
        ([(CD, 10, "<H", 99), (LOCAL, 8, "<H", 99)], r"compression method \(99: aes\)", False),
        ([(CD, 10, "<H", 9), (LOCAL, 8, "<H", 9)], r"compression method \(9: deflation-64", False),
        ([(CD, 10, "<H", 98), (LOCAL, 8, "<H", 98)], "PPMd8", False),  # PPMd over deflate data
        ([(CD, 8, "<H", 0x41), (LOCAL, 6, "<H", 0x41)], "encrypted: refused", True),  # strong
        ([(CD, 8, "<H", 0x1), (LOCAL, 6, "<H", 0x1)], "encrypted: refused", True),  # ZipCrypto
    ],
)
def test_unreadable_zip_features_are_refused(patches, match, listed, tmp_path: Path) -> None:
    """Each refusal is one line naming the archive and the member."""
    archive = model_zip(tmp_path / "feature.zip")
    for signature, at, fmt, value in patches:
        patch(archive, signature, at, fmt, value)
    error = refused(archive, match, tmp_path, listed)
    assert error.member == "Pack/Tiny.pmx" and "\n" not in str(error)


@pytest.mark.parametrize(
    "field",
    [
        (CD, 6, "<H", 99),  # version needed 9.9
        (LOCAL, 6, "<H", 0x20),  # "compressed patched data" flag, data not patched
        (CD, 34, "<H", 1),  # starts on disk 1
        (EOCD, 4, "<H", 1),  # the end record names disk 1
        (EOCD, 6, "<H", 2),
        (CD, 10, "<H", 99),  # the directory's method alone: the local header's is the one used
    ],
)
def test_zip_fields_libarchive_reads_past(field, tmp_path: Path) -> None:
    """Fields Python's zipfile refused on (versions, flags, disk numbers) but the data does not
    depend on: libarchive reads the members from their local headers, byte for byte."""
    archive = model_zip(tmp_path / "field.zip")
    signature, at, fmt, value = field
    patch(archive, signature, at, fmt, value)
    model = load(archive)
    assert model.name == "tiny" and model.materials[0].texture.read_bytes() == b"png bytes " * 20


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ((EOCD, 16, "<I"), 10**9),  # central directory offset past the end
        ((EOCD, 12, "<I"), 10**6),  # central directory larger than the file
        ((EOCD, 12, "<I"), 30),  # central directory smaller than its first entry
        ((CD, 0, "<I"), 0x12345678),  # bad magic of the first entry
        ((CD, 28, "<H"), 60000),  # a name length running past the directory
        ((CD, 30, "<H"), 9),  # an extra field that is not one
        ((CD, 42, "<I"), 10**8),  # a local header offset past the end
    ],
)
def test_corrupt_central_directories(field, value, tmp_path: Path) -> None:
    """A corrupt directory is refused with a ModelLoadError naming the archive, or libarchive
    finds the members from their local headers and they load as they were written."""
    archive = model_zip(tmp_path / "corrupt.zip")
    signature, at, fmt = field
    patch(archive, signature, at, fmt, value)
    try:
        model = load(archive)
    except ModelLoadError as error:  # e.g. "holds 0 models" when no local header is found
        assert str(archive) in str(error) and "\n" not in str(error)
    else:
        assert model.name == "tiny"
        assert model.materials[0].texture.read_bytes() == b"png bytes " * 20


def test_a_local_header_that_disagrees_fails_the_load(tmp_path: Path) -> None:
    archive = model_zip(tmp_path / "liar.zip")
    patch(archive, LOCAL, 26, "<H", 3)  # the model's local header names another file
    with pytest.raises(ArchiveError) as caught:
        load(archive)
    assert caught.value.path == str(archive) and "\n" not in str(caught.value)


def raw_zip(path: Path, entries: list[tuple[str, bytes, int, int]]) -> Path:
    """A zip written by hand from (name, deflated bytes, crc32, size): large declared contents
    cost nothing to build."""
    local, central = bytearray(), bytearray()
    for name, packed, crc, size in entries:
        raw = name.encode()
        head = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(packed), size,
                           len(raw), 0)  # fmt: skip
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc,
                               len(packed), size, len(raw), 0, 0, 0, 0, 0, len(local))  # fmt: skip
        central += raw
        local += head + raw + packed
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central),
                      len(local), 0)  # fmt: skip
    path.write_bytes(bytes(local + central) + end)
    return path


def test_many_small_members_are_refused_by_the_ratio_over_the_archive(tmp_path: Path) -> None:
    """1,900 members of 1 MiB zeros (a 2 MB zip): each is at the per-member threshold, so only
    the ratio over the whole archive (about 1000:1) catches the 1.9 GB it would write."""
    mib = bytes(1 << 20)
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = squeeze.compress(mib) + squeeze.flush()
    crc = zlib.crc32(mib)
    model = zlib.compressobj(9, zlib.DEFLATED, -15)
    model_packed = model.compress(TINY) + model.flush()
    entries = [("m/Tiny.pmx", model_packed, zlib.crc32(TINY), len(TINY))]
    entries += [(f"m/zeros/{i:04d}.bin", packed, crc, len(mib)) for i in range(1900)]
    archive = raw_zip(tmp_path / "zeros.zip", entries)
    assert archive.stat().st_size < 3_000_000
    with zipfile.ZipFile(archive) as zf:  # a well-formed zip
        assert len(zf.infolist()) == 1901 and zf.read("m/zeros/0000.bin") == mib
    error = refused(archive, r"compression ratio \d+:1 over the archive", tmp_path)
    assert error.member is None and "zip bomb" in str(error)


def test_a_model_is_extracted_with_only_the_files_it_references(tmp_path: Path) -> None:
    """TINY's material names `tex\\body.png`: the member `TEX/Body.png` (another case) and its
    same-stem sibling are extracted, nothing else: not the other model, not the readme, not the
    thousand unrelated members."""
    noise = [(f"Pack/unused/{i:04d}.bin", os.urandom(64)) for i in range(1000)]
    archive = make_zip(
        tmp_path / "pack.zip",
        [
            ("Pack/Tiny.pmx", TINY),
            ("Pack/TEX/Body.png", b"texture"),
            ("Pack/TEX/body.alpha.png", b"alpha"),
            ("Pack/TEX/other.png", b"unused"),
            ("Pack/readme.txt", b"readme"),
            ("Other/two.pmx", TINY),
            *noise,
        ],
    )
    model = load(archive, "Pack/Tiny.pmx")
    top = model.root.parent
    found = sorted(p.relative_to(top).as_posix() for p in top.rglob("*") if p.is_file())
    assert found == ["Pack/TEX/Body.png", "Pack/TEX/body.alpha.png", "Pack/Tiny.pmx"]
    assert model.materials[0].texture == model.root / "TEX" / "Body.png"
    with extracted_model(archive, "Other/two.pmx", parent=tmp_path) as path:
        assert sorted(p.name for p in path.parent.parent.rglob("*")) == ["Other", "two.pmx"]


# --- fuzz: mutated zips give a model or an ArchiveError, fast and in bounded memory ---------------

SECONDS_PER_CASE = 2.0
HEAP_BOUND = 32 << 20
ZIP_FUZZ = settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


@pytest.fixture(scope="module")
def fuzz_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("fuzz") / "seed.zip"
    return model_zip(path, [("Pack/readme.txt", b"hello " * 50)]).read_bytes()


def _header_fields(data: bytes) -> list[int]:
    """Offsets of every field of every header (local, central, end), where mutations bite."""
    out = []
    for signature, length in ((LOCAL, 30), (CD, 46), (EOCD, 22)):
        start = data.find(signature)
        while start >= 0:
            out += range(start, start + length)
            start = data.find(signature, start + 1)
    return out


def load_outcome(data: bytes, suffix: str = ".zip") -> None:
    """Load `data` as an archive: a model or a one-line ModelLoadError naming it, within the
    time and memory bounds."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"case{suffix}"
        path.write_bytes(data)
        tracemalloc.start()
        start = time.perf_counter()
        try:
            load(path)
        except ModelLoadError as error:
            assert str(path) in str(error) and "\n" not in str(error)
        finally:
            elapsed = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert elapsed < SECONDS_PER_CASE, f"{elapsed:.2f} s"
        assert peak < HEAP_BOUND, f"peak heap {peak} bytes"


@ZIP_FUZZ
@given(data=st.data())
def test_fuzz_mutated_zips(fuzz_zip: bytes, data: st.DataObject) -> None:
    raw = bytearray(fuzz_zip)
    fields = _header_fields(fuzz_zip)
    shape = data.draw(st.sampled_from(["flip", "field", "truncate", "shape"]))
    if shape == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    elif shape == "field":
        for _ in range(data.draw(st.integers(1, 3))):
            at = min(data.draw(st.sampled_from(fields)), len(raw) - 4)
            raw[at : at + 4] = struct.pack("<I", data.draw(st.sampled_from(_EDGES)))
    elif shape == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    else:  # the shapes of the tests above, in any header
        signature, at, fmt, value = data.draw(st.sampled_from(_SHAPES))
        starts = [i for i in range(len(raw)) if raw.startswith(signature, i)]
        start = data.draw(st.sampled_from(starts))
        struct.pack_into(fmt, raw, start + at, value)
    load_outcome(bytes(raw))


_EDGES = [0, 1, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 0x10000, 63, 64, 99]
_SHAPES = [
    (CD, 10, "<H", 99),
    (CD, 10, "<H", 12),  # bzip2 over deflated data
    (CD, 10, "<H", 14),  # lzma over deflated data
    (LOCAL, 8, "<H", 14),
    (CD, 6, "<H", 99),
    (CD, 8, "<H", 0x41),
    (LOCAL, 6, "<H", 0x20),
    (CD, 34, "<H", 3),
    (EOCD, 4, "<H", 1),
    (CD, 24, "<I", 0xFFFFFFFF),  # zip64 marker without a zip64 field
    (CD, 20, "<I", 0xFFFFFFFF),
    (CD, 42, "<I", 0xFFFFFFFF),
    (EOCD, 16, "<I", 0xFFFFFFFF),
    (LOCAL, 26, "<H", 0xFFFF),
    (LOCAL, 22, "<I", 0),
    (CD, 38, "<I", 0xA1FF0000),  # a symlink
]
