"""Zip archives as MMD authors distribute them, opened safely.

Japanese Windows zips store cp932 file names without the UTF-8 flag; Python decodes those as cp437,
so names are re-decoded here. Every member is checked from the central directory before anything is
written (paths that escape, links, encryption, member count, total size, compression ratio,
overlapping entries), and sizes are enforced again while streaming, so a header that lies cannot
write more than it declared.
"""

from __future__ import annotations

import shutil
import stat
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mmd_loader.errors import ModelLoadError

MODEL_SUFFIXES = (".pmd", ".pmx")
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_UNICODE_PATH_EXTRA = 0x7075  # Info-ZIP Unicode Path extra field
_CHUNK = 1 << 20


class ArchiveError(ModelLoadError):
    """An archive that is refused or cannot be read. Names the archive and the member."""

    def __init__(self, archive: str | Path, message: str, member: str | None = None) -> None:
        self.member = member
        super().__init__(archive, f"member {member!r}: {message}" if member else message)


@dataclass(frozen=True)
class ArchiveLimits:
    """What an archive may hold before it is refused as a zip bomb."""

    max_total_size: int = 2 * 1024**3  # bytes, all members uncompressed
    max_members: int = 10_000
    max_ratio: float = 200.0  # uncompressed / compressed, per member ...
    ratio_min_size: int = 1024**2  # ... for members larger than this


DEFAULT_LIMITS = ArchiveLimits()


@dataclass(frozen=True)
class Member:
    """A checked archive entry: `name` is its decoded, '/'-separated path inside the archive."""

    name: str
    info: zipfile.ZipInfo

    @property
    def parts(self) -> tuple[str, ...]:
        return PurePosixPath(self.name).parts

    @property
    def is_dir(self) -> bool:
        return self.info.is_dir()

    @property
    def is_model(self) -> bool:
        return not self.is_dir and self.name.lower().endswith(MODEL_SUFFIXES) and not _is_junk(self)


def _is_junk(member: Member) -> bool:
    """macOS resource forks (`__MACOSX/`, `._name`): never models, never extracted."""
    return member.parts[0] == "__MACOSX" or member.parts[-1].startswith("._")


def is_archive(path: Path) -> bool:
    """Whether `path` is a zip file (by its content, not its name)."""
    return Path(path).is_file() and zipfile.is_zipfile(path)


def split_archive_path(path: str | Path) -> tuple[Path, str | None]:
    """Split `models.zip/inner/model.pmx` into (`models.zip`, `inner/model.pmx`).

    A path without an existing zip file among its parents comes back as (path, None).
    """
    path = Path(path)
    if path.exists():
        return path, None
    for parent in path.parents:
        if parent.is_file() and parent.suffix.lower() == ".zip":
            return parent, path.relative_to(parent).as_posix()
    return path, None


def decode_name(info: zipfile.ZipInfo, encoding: str = "cp932") -> str:
    """The real name of a member, undoing Python's cp437 decoding of names without the flag.

    Order: the UTF-8 flag, an Info-ZIP Unicode Path field, `encoding`, then cp437 as a last resort.
    """
    name = info.orig_filename
    if info.flag_bits & _UTF8_FLAG:
        return name
    raw = _raw_name(info)
    unicode_path = _unicode_path_field(info, raw)
    if unicode_path is not None:
        return unicode_path
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        return name


def _unicode_path_field(info: zipfile.ZipInfo, raw_name: bytes) -> str | None:
    extra, pos = info.extra, 0
    while pos + 4 <= len(extra):
        kind, size = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + size]
        pos += 4 + size
        if kind == _UNICODE_PATH_EXTRA and len(body) >= 5 and body[0] == 1:
            if struct.unpack_from("<I", body, 1)[0] != zlib.crc32(raw_name):
                return None  # stale: the name was changed after the field was written
            try:
                return body[5:].decode("utf-8")
            except UnicodeDecodeError:
                return None
    return None


def _raw_name(info: zipfile.ZipInfo) -> bytes:
    """The name's bytes as stored in the archive."""
    codec = "utf-8" if info.flag_bits & _UTF8_FLAG else "cp437"
    return info.orig_filename.encode(codec)


def _guess_encoding(infos: list[zipfile.ZipInfo]) -> str:
    """UTF-8 when every non-ASCII flagless name is valid UTF-8 (Linux/macOS zips), else cp932."""
    raws = [
        _raw_name(info)
        for info in infos
        if not info.flag_bits & _UTF8_FLAG and not info.orig_filename.isascii()
    ]
    if not raws:
        return "cp932"
    try:
        for raw in raws:
            raw.decode("utf-8")
    except UnicodeDecodeError:
        return "cp932"
    return "utf-8"


def _safe_name(archive: Path, name: str) -> str:
    """The member's path as clean '/'-separated components, or ArchiveError if it escapes."""
    text = name.replace("\\", "/")
    if "\x00" in text:
        raise ArchiveError(archive, "name contains a NUL character", name)
    if text.startswith("/"):
        raise ArchiveError(archive, "absolute path refused", name)
    if len(text) >= 2 and text[1] == ":" and text[0].isascii() and text[0].isalpha():
        raise ArchiveError(archive, "drive letter refused", name)
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(archive, "'..' in path refused", name)
    return "/".join(parts)


def _check_member(archive: Path, member: Member, limits: ArchiveLimits) -> None:
    info = member.info
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise ArchiveError(archive, "symbolic link refused", member.name)
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise ArchiveError(archive, f"special file (mode {kind:o}) refused", member.name)
    if info.flag_bits & _ENCRYPTED_FLAG:
        message = "member is encrypted (password-protected zips are not supported)"
        raise ArchiveError(archive, message, member.name)
    if info.file_size > limits.ratio_min_size:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio:
            raise ArchiveError(
                archive,
                f"compression ratio {ratio:.0f}:1 ({info.file_size} bytes from "
                f"{info.compress_size}) exceeds {limits.max_ratio:.0f}:1: refused as a zip bomb",
                member.name,
            )


def _check_overlap(archive: Path, zf: zipfile.ZipFile, members: list[Member]) -> None:
    """Refuse entries whose data overlap (the trick of non-recursive zip bombs)."""
    ordered = sorted(members, key=lambda m: m.info.header_offset)
    ends = [m.info.header_offset for m in ordered[1:]] + [zf.start_dir]
    for member, end in zip(ordered, ends, strict=True):
        info = member.info
        start = info.header_offset + 30 + len(_raw_name(info))
        if start + info.compress_size > end:
            raise ArchiveError(archive, "member data overlaps another entry", member.name)


def _open(archive: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(archive)
    except FileNotFoundError as error:
        raise ArchiveError(archive, "no such file") from error
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise ArchiveError(archive, f"not a readable zip archive: {error}") from error


def _members(archive: Path, zf: zipfile.ZipFile, limits: ArchiveLimits) -> list[Member]:
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise ArchiveError(
            archive, f"{len(infos)} members, more than the limit {limits.max_members}"
        )
    encoding = _guess_encoding(infos)
    members, seen = [], set()
    for info in infos:
        member = Member(_safe_name(archive, decode_name(info, encoding)), info)
        if not member.name:
            continue
        _check_member(archive, member, limits)
        if member.name in seen and not member.is_dir:
            raise ArchiveError(archive, "duplicate member name", member.name)
        seen.add(member.name)
        members.append(member)
    total = sum(m.info.file_size for m in members)
    if total > limits.max_total_size:
        raise ArchiveError(
            archive, f"{total} bytes uncompressed, more than the limit {limits.max_total_size}"
        )
    _check_overlap(archive, zf, members)
    return members


def check_archive(zip_path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> list[Member]:
    """Every entry of the archive, checked from its central directory; nothing is extracted."""
    zip_path = Path(zip_path)
    with _open(zip_path) as zf:
        return _members(zip_path, zf, limits)


def list_models(zip_path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> list[str]:
    """Decoded member names of the .pmd/.pmx files in the archive, sorted."""
    return sorted(m.name for m in check_archive(zip_path, limits) if m.is_model)


def extract_all(zip_path: Path, dest: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> list[Member]:
    """Check the archive, then extract it into the empty folder `dest`; returns the members.

    macOS resource forks are skipped. On error, files already written stay in `dest`.
    """
    zip_path, dest = Path(zip_path), Path(dest)
    if any(dest.iterdir()):
        raise ValueError(f"{dest}: extraction folder is not empty")
    with _open(zip_path) as zf:
        members = _members(zip_path, zf, limits)
        total = 0
        for member in members:
            if _is_junk(member):
                continue
            target = dest.joinpath(*member.parts)
            try:
                if member.is_dir:
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                total += _stream(zip_path, zf, member, target, limits.max_total_size - total)
            except ArchiveError:
                raise
            except _READ_ERRORS as error:
                raise ArchiveError(zip_path, f"cannot extract: {error}", member.name) from error
    return members


_READ_ERRORS = (
    OSError,
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
)


def _stream(archive: Path, zf: zipfile.ZipFile, member: Member, target: Path, budget: int) -> int:
    """Copy one member to `target`, never past its declared size or the remaining budget."""
    declared, written = member.info.file_size, 0
    with zf.open(member.info) as source, open(target, "xb") as sink:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > declared:
                message = f"inflates past its declared {declared} bytes"
                raise ArchiveError(archive, message, member.name)
            if written > budget:
                raise ArchiveError(archive, "total uncompressed size limit reached", member.name)
            sink.write(chunk)
    if written != declared:
        raise ArchiveError(archive, f"{written} bytes, header declared {declared}", member.name)
    return written


@contextmanager
def _extraction(
    zip_path: Path, limits: ArchiveLimits, parent: Path | None
) -> Iterator[tuple[Path, list[Member]]]:
    folder = Path(tempfile.mkdtemp(prefix="thagen-zip-", dir=parent))
    try:
        yield folder, extract_all(zip_path, folder, limits)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def extracted(
    zip_path: Path, limits: ArchiveLimits = DEFAULT_LIMITS, parent: Path | None = None
) -> Iterator[Path]:
    """Extract the archive into a temporary folder (made under `parent`), removed on exit."""
    with _extraction(zip_path, limits, parent) as (folder, _):
        yield folder


def iter_models(
    zip_path: Path, limits: ArchiveLimits = DEFAULT_LIMITS, parent: Path | None = None
) -> Iterator[tuple[str, Path]]:
    """(member name, extracted path) for each model in the archive, sorted, in one extraction.

    The files exist until the iteration ends (or the iterator is closed).
    """
    with _extraction(zip_path, limits, parent) as (folder, members):
        for member in sorted((m for m in members if m.is_model), key=lambda m: m.name):
            yield member.name, folder.joinpath(*member.parts)


@contextmanager
def extracted_model(
    zip_path: Path,
    member: str | None = None,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    parent: Path | None = None,
) -> Iterator[Path]:
    """The extracted file of one model in the archive, removed on exit.

    `member` may use backslashes and differ in case; without it the archive must hold exactly
    one model. Raises ArchiveError naming the models there when it is absent or ambiguous.
    """
    zip_path = Path(zip_path)
    with _extraction(zip_path, limits, parent) as (folder, members):
        yield folder.joinpath(*_pick_model(zip_path, members, member).parts)


def extract_model_to(
    zip_path: Path, member: str | None, dest: Path, limits: ArchiveLimits = DEFAULT_LIMITS
) -> Path:
    """Extract the archive into the empty folder `dest`; the path of the model `member` names.

    `member` is matched as by `extracted_model`, and checked before anything is written.
    The caller owns `dest` and removes it.
    """
    zip_path = Path(zip_path)
    chosen = _pick_model(zip_path, check_archive(zip_path, limits), member)
    extract_all(zip_path, dest, limits)
    return Path(dest).joinpath(*chosen.parts)


def _pick_model(zip_path: Path, members: list[Member], member: str | None) -> Member:
    """The model `member` names (backslashes, any case; exact case wins), or the only one."""
    models = sorted((m for m in members if m.is_model), key=lambda m: m.name)
    names = [m.name for m in models]
    if member is None:
        if len(models) != 1:
            raise ArchiveError(zip_path, f"holds {len(models)} models, name one of {names}")
        return models[0]
    wanted = _safe_name(zip_path, member)
    exact = [m for m in models if m.name == wanted]
    loose = [m for m in models if m.name.casefold() == wanted.casefold()]
    if not (exact or loose):
        raise ArchiveError(zip_path, f"no such model; models are {names}", member)
    return (exact or loose)[0]
