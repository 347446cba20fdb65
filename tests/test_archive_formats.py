"""Every archive format MMD models are shared in, through libarchive: 7z, zip, tar.* and LZH made
here in code (libarchive writes all but LZH, whose stored `-lh0-` headers are written by hand),
RAR 4 and 5 from ../shared/archives (nothing here can write RAR). Each reads a model with its
textures; each refuses hostile members with one line naming the archive and the member; one
archive inside another is followed one level."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import libarchive
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from libarchive.entry import FileType

from mmd_loader import load
from mmd_loader.archive import (
    ArchiveError,
    ArchiveLimits,
    check_archive,
    extract_all,
    is_archive,
    iter_archive_models,
    iter_models,
    list_models,
)
from mmd_loader.archive_io import library_version
from tests.conftest import ROOT
from tests.test_archive import load_outcome
from tests.test_loader import tiny_pmx

TINY = tiny_pmx()  # its material names "tex\\body.png"
# (libarchive write format, filter, suffix)
WRITABLE = [
    ("7zip", None, ".7z"),
    ("zip", None, ".zip"),
    ("gnutar", None, ".tar"),
    ("pax", "gzip", ".tar.gz"),
    ("gnutar", "bzip2", ".tar.bz2"),
    ("ustar", "xz", ".tar.xz"),
    ("pax", "zstd", ".tar.zst"),
]
PACK = [
    ("Pack/Tiny.pmx", TINY),
    ("Pack/tex/body.png", b"body texture"),
    ("Pack/tex/unused.png", b"nobody uses me"),
    ("Pack/readme.txt", "改造OK".encode("cp932")),
]


def pack(path: Path, entries: list, fmt: str = "7zip", filt: str | None = None, **kw) -> Path:
    """An archive written by libarchive: each entry (name, bytes) or (name, attributes)."""
    with libarchive.file_writer(str(path), fmt, filt, **kw) as writer:
        for name, item in entries:
            if isinstance(item, bytes):
                writer.add_file_from_memory(name, len(item), item)
            else:
                attributes = dict(item)
                data = attributes.pop("data", b"")
                writer.add_file_from_memory(name, len(data), data, **attributes)
    return path


def crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def lzh(path: Path, entries: list[tuple[str, bytes]], encoding: str = "cp932") -> Path:
    """An LZH archive of stored (-lh0-) level-0 headers, names in `encoding` with '\\'
    separators, as LHA for Windows writes them."""
    out = bytearray()
    for name, data in entries:
        raw = name.replace("/", "\\").encode(encoding)
        body = b"-lh0-" + struct.pack(
            "<IIIBBB", len(data), len(data), 0x3C210000, 0x20, 0, len(raw)
        )
        body += raw + struct.pack("<H", crc16(data))
        out += struct.pack("<BB", len(body), sum(body) & 0xFF) + body + data
    path.write_bytes(bytes(out + b"\x00"))
    return path


def all_formats(tmp_path: Path, entries: list, name: str = "pack") -> list[Path]:
    """The entries in every writable format, plus LZH when they are all plain bytes."""
    out = [pack(tmp_path / f"{name}{s}", entries, f, flt) for f, flt, s in WRITABLE]
    if all(isinstance(item, bytes) for _, item in entries):
        out.append(lzh(tmp_path / f"{name}.lzh", entries))
    return out


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_every_format_loads_a_model_with_only_its_files(tmp_path: Path) -> None:
    for archive in all_formats(tmp_path, PACK):
        assert is_archive(archive), archive.name
        assert list_models(archive) == ["Pack/Tiny.pmx"], archive.name
        model = load(archive)
        assert model.path == archive / "Pack" / "Tiny.pmx" and model.name == "tiny"
        assert model.materials[0].texture.read_bytes() == b"body texture", archive.name
        assert files_under(model.archive_root) == ["Pack/Tiny.pmx", "Pack/tex/body.png"]
        with_terms = load(archive, companions=True)
        assert files_under(with_terms.archive_root) == [
            "Pack/Tiny.pmx",
            "Pack/readme.txt",
            "Pack/tex/body.png",
        ], archive.name


def test_extract_all_writes_every_member_of_every_format(tmp_path: Path) -> None:
    for archive in all_formats(tmp_path, PACK):
        dest = tmp_path / f"out-{archive.name}"
        dest.mkdir()
        extract_all(archive, dest)
        assert {n: (dest / n).read_bytes() for n in files_under(dest)} == dict(PACK), archive.name


HOSTILE = {
    "parent": ([("../evil.pmx", b"x")], "'..' in path refused", "../evil.pmx"),
    "deep parent": ([("a/../../evil.pmx", b"x")], "'..' in path refused", "a/../../evil.pmx"),
    "absolute": ([("/etc/evil.pmx", b"x")], "absolute path refused", "/etc/evil.pmx"),
    "drive": ([("C:/evil.pmx", b"x")], "drive letter refused", "C:/evil.pmx"),
    "symlink": (
        [("Pack/tex/body.png", {"filetype": FileType.SYMBOLINK_LINK, "linkpath": "/etc/passwd"})],
        "symbolic link refused",
        "Pack/tex/body.png",
    ),
    "duplicate": ([("Pack/Tiny.pmx", b"again")], "duplicate member name", "Pack/Tiny.pmx"),
}


# libarchive 3.6.2's 7z writer crashes writing a symbolic link: that one case is not made
HOSTILE_CASES = [
    (case, *written)
    for written in WRITABLE
    for case in sorted(HOSTILE)
    if not (case == "symlink" and written[0] == "7zip")
]


@pytest.mark.parametrize(("case", "fmt", "filt", "suffix"), HOSTILE_CASES)
def test_hostile_members_are_refused_before_anything_is_written(
    case: str, fmt: str, filt: str | None, suffix: str, tmp_path: Path
) -> None:
    extra, match, member = HOSTILE[case]
    archive = pack(tmp_path / f"evil{suffix}", [*PACK[:2], *extra], fmt, filt)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(ArchiveError, match=match) as caught:
        extract_all(archive, dest)
    assert caught.value.member == member and caught.value.path == str(archive)
    assert "\n" not in str(caught.value) and list(dest.iterdir()) == []
    with pytest.raises(ArchiveError, match=match):
        load(archive)


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        (tarfile.LNKTYPE, "hard link refused"),
        (tarfile.CHRTYPE, "device, FIFO or socket refused"),
        (tarfile.BLKTYPE, "device, FIFO or socket refused"),
        (tarfile.FIFOTYPE, "device, FIFO or socket refused"),
    ],
)
def test_tar_links_devices_and_fifos_are_refused(kind: bytes, match: str, tmp_path: Path) -> None:
    for mode, suffix in [("w", ".tar"), ("w:gz", ".tar.gz")]:
        archive = tmp_path / f"odd{suffix}"
        with tarfile.open(archive, mode) as tar:
            for name, data in PACK[:2]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            odd = tarfile.TarInfo("Pack/odd.png")
            odd.type, odd.linkname, odd.devmajor, odd.devminor = kind, "Pack/Tiny.pmx", 1, 3
            tar.addfile(odd)
        with pytest.raises(ArchiveError, match=match) as caught:
            check_archive(archive)
        assert caught.value.member == "Pack/odd.png"


def test_lzh_names_escaping_are_refused(tmp_path: Path) -> None:
    archive = lzh(tmp_path / "evil.lzh", [("ミク/ミク.pmx", TINY), ("..\\..\\evil.pmx", b"x")])
    with pytest.raises(ArchiveError, match=r"'\.\.' in path refused") as caught:
        check_archive(archive)
    assert caught.value.member == "../../evil.pmx"


def test_encrypted_members_are_refused(tmp_path: Path) -> None:
    for scheme in ("zipcrypt", "aes256"):
        archive = pack(
            tmp_path / f"{scheme}.zip", PACK[:2], "zip", options=f"encryption={scheme}",
            passphrase="secret",
        )  # fmt: skip
        with pytest.raises(ArchiveError, match="encrypted: refused") as caught:
            check_archive(archive)
        assert caught.value.member == "Pack/Tiny.pmx" and "\n" not in str(caught.value)


def test_a_bomb_is_refused_from_its_headers(tmp_path: Path) -> None:
    """8 MiB of zeros pack to a few kB in 7z and tar.xz: refused before anything is written."""
    zeros = bytes(8 << 20)
    for fmt, filt, suffix in [("7zip", None, ".7z"), ("ustar", "xz", ".tar.xz")]:
        archive = pack(
            tmp_path / f"bomb{suffix}", [*PACK[:2], ("Pack/zeros.bin", zeros)], fmt, filt
        )
        assert archive.stat().st_size < 40_000
        dest = tmp_path / f"dest{suffix}"
        dest.mkdir()
        with pytest.raises(ArchiveError, match=r"compression ratio \d+:1 over the archive"):
            extract_all(archive, dest)
        assert list(dest.iterdir()) == []


def test_a_bomb_member_is_stopped_while_streaming(tmp_path: Path) -> None:
    """A tar.gz whose zeros hide behind incompressible noise: the ratio over the archive passes
    (about 110:1), but the member writes more than 200 times the file bytes read for it (plus
    one read block), so it is stopped part way, naming the member."""
    zeros, noise = bytes(24 << 20), os.urandom(200 << 10)
    archive = pack(
        tmp_path / "hidden.tar.gz", [("noise.bin", noise), ("zeros.bin", zeros)], "pax", "gzip"
    )
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(ArchiveError, match="while streaming") as caught:
        extract_all(archive, dest)
    assert caught.value.member == "zeros.bin"
    assert (dest / "noise.bin").read_bytes() == noise
    assert (dest / "zeros.bin").stat().st_size < len(zeros)


def test_limits_apply_to_every_format(tmp_path: Path) -> None:
    entries = [(f"f{i}.txt", bytes(600)) for i in range(5)]
    for archive in all_formats(tmp_path, entries):
        check_archive(archive)
        with pytest.raises(ArchiveError, match="more than the limit 2000"):
            check_archive(archive, ArchiveLimits(max_total_size=2000))
        with pytest.raises(ArchiveError, match="more than 3 members, the limit"):
            check_archive(archive, ArchiveLimits(max_members=3))


def tar_with_names(path: Path, names: list[str], encoding: str) -> Path:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT, encoding=encoding) as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"ok"))
    return path


class LegacyZipInfo(zipfile.ZipInfo):
    """Stores its name as the bytes `filename` holds (cp437 round trip) with no UTF-8 flag."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:
        return self.filename.encode("cp437"), self.flag_bits & ~0x800


@pytest.mark.parametrize(
    ("names", "encoding"),
    [
        (["初音ミク/初音ミク.pmx", "初音ミク/表情ソ.bmp", "初音ミク/利用規約.txt"], "cp932"),
        (["洛天依/洛天依.pmx", "洛天依/模型说明.txt", "洛天依/贴图/脸.png"], "gbk"),
        (["樂正綾/樂正綾.pmx", "樂正綾/使用說明.txt", "樂正綾/貼圖/臉.png"], "big5"),
    ],
)
def test_legacy_names_decode_in_every_format_that_stores_them(
    names: list[str], encoding: str, tmp_path: Path
) -> None:
    archives = [tar_with_names(tmp_path / "names.tar", names, encoding)]
    with zipfile.ZipFile(tmp_path / "names.zip", "w") as zf:
        for name in names:
            zf.writestr(LegacyZipInfo(name.encode(encoding).decode("cp437")), b"ok")
    archives.append(tmp_path / "names.zip")
    if encoding == "cp932":
        archives.append(lzh(tmp_path / "names.lzh", [(n, b"ok") for n in names]))
    for archive in archives:
        assert sorted(m.name for m in check_archive(archive)) == sorted(names), archive.name


def test_names_decode_in_a_c_locale(tmp_path: Path) -> None:
    """libarchive converts names through the locale: under LC_ALL=C (no UTF-8 coercion) the
    UTF-8 and cp932 names still come out right."""
    with zipfile.ZipFile(tmp_path / "utf8.zip", "w") as zf:
        zf.writestr("ミク/ミク.pmx", b"ok")  # UTF-8 flag set
    lzh(tmp_path / "jp.lzh", [("ミク/表情ソ.bmp", b"ok")])
    code = (
        "from mmd_loader.archive import check_archive;"
        f"print([m.name for m in check_archive({str(tmp_path / 'utf8.zip')!r})]"
        f" + [m.name for m in check_archive({str(tmp_path / 'jp.lzh')!r})])"
    )
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0"}
    env["PYTHONIOENCODING"] = "utf-8"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['ミク/ミク.pmx', 'ミク/表情ソ.bmp']"


# --- RAR, from ../shared/archives --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "members"),
    [
        ("seektest.rar", {"stest1.txt": 2048, "stest2.txt": 2048}),
        ("rar5-solid.rar", {"stest1.txt": 2048, "stest2.txt": 2048}),
        ("lib_rar5_stored.rar", {"helloworld.txt": 29}),
        (
            "rar3-subdirs.rar",
            {
                "sub/dir1/file1.txt": 6,
                "sub/dir2/file2.txt": 6,
                "sub/with space/long fn.txt": 8,
                "sub/üȵĩöḋè/file.txt": 5,
            },
        ),
        (
            "rar5-subdirs.rar",
            {
                "sub/dir1/file1.txt": 6,
                "sub/dir2/file2.txt": 6,
                "sub/with space/long fn.txt": 8,
                "sub/üȵĩöḋè/file.txt": 5,
            },
        ),
    ],
)
def test_rar4_and_rar5_read(name: str, members: dict, archives_dir: Path, tmp_path: Path) -> None:
    archive = archives_dir / name
    assert is_archive(archive) and list_models(archive) == []
    files = {m.name: m.size for m in check_archive(archive) if not m.is_dir}
    assert files == members
    extract_all(archive, tmp_path)
    assert {n: (tmp_path / n).stat().st_size for n in files_under(tmp_path)} == members
    if name == "lib_rar5_stored.rar":
        assert (tmp_path / "helloworld.txt").read_bytes().startswith(b"hello")


def test_rar_with_a_symlink_is_refused(archives_dir: Path) -> None:
    with pytest.raises(ArchiveError, match="symbolic link refused") as caught:
        check_archive(archives_dir / "lib_rar.rar")
    assert caught.value.member == "testlink" and "\n" not in str(caught.value)


def test_solid_rar4_is_one_line_naming_the_library(archives_dir: Path, tmp_path: Path) -> None:
    archive = archives_dir / "rar3-comment-plain.rar"
    with pytest.raises(ArchiveError) as caught:
        extract_all(archive, tmp_path)
    message = str(caught.value)
    assert message.startswith(str(archive)) and "\n" not in message
    assert "solid RAR 4" in message and library_version() in message


# --- an archive inside an archive ----------------------------------------------------------------


def nested(tmp_path: Path, inner: list, inner_name: str = "Pack/inner.7z") -> Path:
    """A zip holding a readme and the 7z `inner` (as `inner_name`), plus a plain model."""
    blob = pack(tmp_path / "inner.7z", inner).read_bytes()
    outer = [
        ("readme.txt", b"terms of the pack"),
        ("Pack/license.txt", b"pack licence"),
        (inner_name, blob),
        ("Other/Tiny.pmx", TINY),
    ]
    return pack(tmp_path / "outer.zip", outer, "zip")


INNER = [
    ("Model/Tiny.pmx", TINY),
    ("Model/tex/body.png", b"inner texture"),
    ("Model/readme.txt", b"inner readme"),
]


def test_an_archive_inside_an_archive_is_followed(tmp_path: Path) -> None:
    archive = nested(tmp_path, INNER)
    assert list_models(archive) == ["Other/Tiny.pmx", "Pack/inner.7z/Model/Tiny.pmx"]
    model = load(archive, "pack\\INNER.7z\\model\\tiny.pmx")
    assert model.path == archive / "Pack" / "inner.7z" / "Model" / "Tiny.pmx"
    assert model.materials[0].texture.read_bytes() == b"inner texture"
    seen = {}
    for name, path in iter_models(archive, companions=True):
        root = path.parents[len(Path(name).parts) - 1]
        seen[name] = files_under(root)
    assert seen["Pack/inner.7z/Model/Tiny.pmx"] == [
        "Other/Tiny.pmx",  # the tree is shared by all models of the archive
        "Pack/inner.7z/Model/Tiny.pmx",
        "Pack/inner.7z/Model/readme.txt",
        "Pack/inner.7z/Model/tex/body.png",
        "Pack/license.txt",
        "readme.txt",
    ]


def test_nesting_is_followed_one_level_only(tmp_path: Path) -> None:
    deepest = pack(tmp_path / "deep.7z", [("Deep/Tiny.pmx", TINY)]).read_bytes()
    archive = nested(tmp_path, [*INNER, ("Model/deeper.7z", deepest)])
    assert list_models(archive) == ["Other/Tiny.pmx", "Pack/inner.7z/Model/Tiny.pmx"]
    with pytest.raises(ArchiveError, match="nested two deep are not followed"):
        load(archive, "Pack/inner.7z/Model/deeper.7z/Deep/Tiny.pmx")


def test_a_hostile_inner_archive_costs_only_itself(tmp_path: Path) -> None:
    archive = nested(tmp_path, [*INNER, ("../escape.pmx", b"x")])
    found = {}
    for name, item in iter_archive_models(archive):  # the files exist while iterating
        found[name] = item.read_bytes() if isinstance(item, Path) else item
    assert found["Other/Tiny.pmx"] == TINY
    error = found["Pack/inner.7z"]
    assert isinstance(error, ArchiveError) and error.member == "Pack/inner.7z"
    assert str(error).startswith(str(archive)) and "'../escape.pmx'" in str(error)
    assert "'..' in path refused" in str(error) and "\n" not in str(error)
    with pytest.raises(ArchiveError, match="inner archive"):
        list_models(archive)


def test_an_inner_bomb_is_refused(tmp_path: Path) -> None:
    archive = nested(tmp_path, [*INNER, ("Model/zeros.bin", bytes(8 << 20))])
    found = dict(iter_archive_models(archive))
    assert "zip bomb" in str(found["Pack/inner.7z"])


# --- fuzz: mutated 7z, tar.gz and LZH archives give a model or a ModelLoadError ---------------


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("seeds")
    return {
        ".7z": pack(folder / "s.7z", PACK).read_bytes(),
        ".tar.gz": pack(folder / "s.tar.gz", PACK, "pax", "gzip").read_bytes(),
        ".lzh": lzh(folder / "s.lzh", PACK).read_bytes(),
    }


@settings(max_examples=90, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_mutated_archives(seeds: dict[str, bytes], data: st.DataObject) -> None:
    suffix = data.draw(st.sampled_from(sorted(seeds)))
    raw = bytearray(seeds[suffix])
    if data.draw(st.booleans()):
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    else:
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    load_outcome(bytes(raw), suffix)


def test_streams_are_decompressed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tar.gz or 7z cannot skip a member without decompressing it: the listing pass reads the
    models, textures and texts ahead, and extracting them takes no second pass. A zip skips by
    seeking: listing, models, then textures are three cheap passes."""
    import mmd_loader.archive as archive_module

    passes = []
    real = archive_module.archive_pass

    def counting(fd):
        passes.append(fd)
        return real(fd)

    monkeypatch.setattr(archive_module, "archive_pass", counting)
    for fmt, filt, suffix, expected in [
        ("pax", "gzip", ".tar.gz", 1),
        ("7zip", None, ".7z", 1),
        ("zip", None, ".zip", 3),
    ]:
        archive = pack(tmp_path / f"once{suffix}", PACK, fmt, filt)
        passes.clear()
        found = []
        for item in archive_module.extract_archive_models(archive, companions=True):
            found.append((item.model.name, files_under(item.root)))  # while the files exist
        assert found == [("tiny", ["Pack/Tiny.pmx", "Pack/readme.txt", "Pack/tex/body.png"])]
        assert len(passes) == expected, suffix
