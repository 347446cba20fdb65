"""Zips as MMD authors distribute them: Japanese names decode, hostile archives are refused."""

from __future__ import annotations

import stat
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from mmd_loader.archive import (
    ArchiveError,
    ArchiveLimits,
    check_archive,
    decode_name,
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
        assert [decode_name(info) for info in zf.infolist()] == names
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
    assert str(archive) in str(caught.value) and repr(name) in str(caught.value)
    assert caught.value.member == name
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
    with pytest.raises(ArchiveError, match="5 members, more than the limit 3"):
        list_models(archive, ArchiveLimits(max_members=3))


def test_overlapping_entries_are_refused(tmp_path: Path) -> None:
    """Two directory entries sharing one local file (the non-recursive zip bomb trick)."""
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
    with pytest.raises(ArchiveError, match="overlaps"):
        check_archive(archive)


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
    with pytest.raises(ArchiveError, match="not a readable zip") as caught:
        list_models(bogus)
    assert isinstance(caught.value, ModelLoadError) and caught.value.path == str(bogus)
    with pytest.raises(ArchiveError, match="no such file"):
        list_models(tmp_path / "missing.zip")
    real = make_zip(tmp_path / "pack.zip", [("a/m.pmx", b"m")])
    assert is_archive(real) and not is_archive(bogus)
    assert split_archive_path(real / "a" / "m.pmx") == (real, "a/m.pmx")
    assert split_archive_path(real) == (real, None)
    assert split_archive_path(tmp_path / "plain" / "m.pmx") == (tmp_path / "plain" / "m.pmx", None)
