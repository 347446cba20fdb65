"""Zip archives as MMD authors distribute them, opened safely.

Japanese Windows zips store cp932 file names without the UTF-8 flag; Python decodes those as cp437,
so names are re-decoded here. Every member is checked from the central directory before anything is
written (paths that escape, links, encryption and other zip features Python cannot read,
member count, total size, compression ratio per member and over the whole archive, overlapping
entries), and sizes are enforced again while streaming, so a header that lies cannot write more
than it declared. Every failure, whatever the standard library raises, is an `ArchiveError`
(a `ModelLoadError`) naming the archive and, where there is one, the member.

A model is extracted with only the files it uses: the model file, then the members its
materials' texture, sphere and toon references can resolve to (matched like
`mmd_loader.textures` matches names on disk: any letter case and Unicode form, inside the
model's folder) and their same-stem siblings (`X.png` beside a missing `X.tga`, `X.alpha.png`),
never every member of the archive.
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

from media.files import open_regular, read_regular
from mmd_loader.errors import ModelLoadError, quote
from mmd_loader.model import Model

MODEL_SUFFIXES = (".pmd", ".pmx")
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_UNICODE_PATH_EXTRA = 0x7075  # Info-ZIP Unicode Path extra field
_CHUNK = 1 << 20
_UNREADABLE_FLAGS = {0x20: "compressed patched data", 0x40: "strong encryption"}
_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_MAX_SIBLINGS = 16  # same-stem members extracted per texture reference


class ArchiveError(ModelLoadError):
    """An archive that is refused or cannot be read. Names the archive and the member."""

    def __init__(self, archive: str | Path, message: str, member: str | None = None) -> None:
        self.member = member
        super().__init__(archive, f"member {quote(member)}: {message}" if member else message)


@dataclass(frozen=True)
class ArchiveLimits:
    """What an archive may hold before it is refused as a zip bomb."""

    max_total_size: int = 2 * 1024**3  # bytes, all members uncompressed
    max_members: int = 10_000
    max_ratio: float = 200.0  # uncompressed / compressed, per member and over the archive ...
    ratio_min_size: int = 1024**2  # ... for members (and archives) larger than this


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
    """Whether `path` is a regular file holding a zip (by its content, not its name)."""
    try:
        with open_regular(path, "zip archive") as f:
            return zipfile.is_zipfile(f)
    except (ValueError, OSError):
        return False


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
    for bit, feature in _UNREADABLE_FLAGS.items():
        if info.flag_bits & bit:
            raise ArchiveError(archive, f"uses {feature}, which is not supported", member.name)
    if info.compress_type not in _METHODS:
        message = f"compression method {info.compress_type} is not supported"
        raise ArchiveError(archive, message, member.name)
    if info.volume:
        message = f"starts on disk {info.volume}: multi-disk archives are not supported"
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
    if not ordered:
        return
    ends = [m.info.header_offset for m in ordered[1:]] + [zf.start_dir]
    for member, end in zip(ordered, ends, strict=True):
        info = member.info
        start = info.header_offset + 30 + len(_raw_name(info))
        if start + info.compress_size > end:
            raise ArchiveError(archive, "member data overlaps another entry", member.name)


@contextmanager
def _open(archive: Path) -> Iterator[zipfile.ZipFile]:
    """The archive opened for reading; whatever the standard library raises is an ArchiveError.

    Only a regular file is opened (never a FIFO or device), without blocking.
    """
    archive = Path(archive)
    with open_regular(archive, "zip archive", error=ArchiveError) as raw:
        try:
            _check_single_disk(archive, raw)
            zf = zipfile.ZipFile(raw)
        except ArchiveError:
            raise
        except NotImplementedError as error:  # e.g. a "version needed to extract" above 6.3
            message = f"uses a zip feature that is not supported ({error})"
            raise ArchiveError(archive, message) from error
        except Exception as error:  # BadZipFile, struct.error, ValueError, OSError, ...
            raise ArchiveError(archive, f"not a readable zip archive: {error}") from error
        with zf:
            yield zf


def _check_single_disk(archive: Path, raw) -> None:
    """Refuse a split archive, whose end record names another disk (Python reads it as if it
    were whole, from offsets that belong to other files)."""
    end = zipfile._EndRecData(raw)  # the standard library's own end-record reader
    if end is not None and (end[zipfile._ECD_DISK_NUMBER] or end[zipfile._ECD_DISK_START]):
        disk = end[zipfile._ECD_DISK_NUMBER] or end[zipfile._ECD_DISK_START]
        raise ArchiveError(
            archive, f"multi-disk archives are not supported (the end record names disk {disk})"
        )
    raw.seek(0)


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
    packed = sum(m.info.compress_size for m in members)
    if total > limits.ratio_min_size and total / max(packed, 1) > limits.max_ratio:
        raise ArchiveError(
            archive,
            f"compression ratio {total / max(packed, 1):.0f}:1 over the archive ({total} bytes "
            f"from {packed}) exceeds {limits.max_ratio:.0f}:1: refused as a zip bomb",
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
    """Check the archive, then extract every member into the empty folder `dest`.

    macOS resource forks are skipped. On error, files already written stay in `dest`. Loading a
    model does not use this: it extracts only the model's files (`extract_model_to`).
    """
    zip_path, dest = Path(zip_path), Path(dest)
    if any(dest.iterdir()):
        raise ValueError(f"{dest}: extraction folder is not empty")
    with _open(zip_path) as zf:
        members = _members(zip_path, zf, limits)
        writer = _Writer(zip_path, zf, dest, limits)
        for member in members:
            if not _is_junk(member):
                writer.write(member)
    return members


class _Writer:
    """Extracts members of one open archive into `dest`, each at most once, within one budget."""

    def __init__(self, archive: Path, zf: zipfile.ZipFile, dest: Path, limits: ArchiveLimits):
        self.archive, self.zf, self.dest = archive, zf, Path(dest)
        self.budget = limits.max_total_size
        self.done: set[str] = set()

    def write(self, member: Member) -> Path:
        target = self.dest.joinpath(*member.parts)
        if member.name in self.done:
            return target
        self.done.add(member.name)
        try:
            if member.is_dir:
                target.mkdir(parents=True, exist_ok=True)
                return target
            target.parent.mkdir(parents=True, exist_ok=True)
            self.budget -= _stream(self.archive, self.zf, member, target, self.budget)
        except ArchiveError:
            raise
        except Exception as error:  # zipfile and its decompressors raise many kinds
            message = f"cannot extract: {type(error).__name__}: {error}"
            raise ArchiveError(self.archive, message, member.name) from error
        return target


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


# --- one model and the files it references --------------------------------------------------------


def texture_references(model: Model) -> list[str]:
    """Every file name the model's materials refer to (texture, sphere, toon), as written."""
    from mmd_loader.textures import split_pmd_texture

    refs: set[str] = set()
    for material in model.materials:
        for ref in (material.texture_ref, material.sphere_ref, material.toon_ref):
            if ref and ref.strip():
                refs.add(ref.strip())
                if "*" in ref:
                    refs.update(part for part in split_pmd_texture(ref) if part)
        if material.toon_shared is not None:
            refs.add(f"toon{material.toon_shared + 1:02d}.bmp")
    return sorted(refs)


class _Tree:
    """The members under one folder of the archive, indexed by folded name for reference lookups."""

    def __init__(self, members: list[Member], base: tuple[str, ...]) -> None:
        from mmd_loader.textures import _fold

        self.fold, self.base = _fold, base
        self.dirs: dict[tuple[str, ...], dict[str, set[str]]] = {}
        self.names: dict[tuple[str, ...], dict[str, list[Member]]] = {}
        self.stems: dict[tuple[str, ...], dict[str, list[Member]]] = {}
        for member in members:
            parts = member.parts
            if member.is_dir or _is_junk(member) or parts[: len(base)] != base:
                continue
            for depth in range(len(base), len(parts) - 1):
                folded = _fold(parts[depth])
                self.dirs.setdefault(parts[:depth], {}).setdefault(folded, set()).add(parts[depth])
            folder, name = parts[:-1], parts[-1]
            self.names.setdefault(folder, {}).setdefault(_fold(name), []).append(member)
            self.stems.setdefault(folder, {}).setdefault(self._stem(name), []).append(member)

    def _stem(self, name: str) -> str:
        return self.fold(name.split(".", 1)[0])

    def lookup(self, ref: str) -> list[Member]:
        """Members `ref` may resolve to, with their same-stem siblings (a bounded superset)."""
        from mmd_loader.textures import TexturePathError, _components

        try:
            parts = _components(ref.strip())
        except TexturePathError:
            return []  # refused on disk too; resolve_textures reports it
        if not parts:
            return []
        folders = [self.base]
        for part in parts[:-1]:
            key = self.fold(part)
            folders = [
                (*folder, child)
                for folder in folders
                for child in sorted(self.dirs.get(folder, {}).get(key, ()))
            ][:_MAX_SIBLINGS]
        key, stem = self.fold(parts[-1]), self._stem(parts[-1])
        found: list[Member] = []
        for folder in folders:
            exact = self.names.get(folder, {}).get(key, [])
            siblings = sorted(self.stems.get(folder, {}).get(stem, []), key=lambda m: m.name)
            found += exact + [m for m in siblings if m not in exact][:_MAX_SIBLINGS]
        return found


def _extract_model(
    zip_path: Path, zf: zipfile.ZipFile, members: list[Member], chosen: Member, writer: _Writer
) -> tuple[Path, Model | ModelLoadError]:
    """Extract `chosen` and the members its materials reference; the path and the parsed model
    (or the error parsing it raised: then only the model file is extracted)."""
    from mmd_loader.loader import MAX_FILE_BYTES, parse

    path = writer.write(chosen)
    label = zip_path.joinpath(*chosen.parts)
    try:
        data = read_regular(
            path, "model", MAX_FILE_BYTES, lambda _, why: ModelLoadError(label, why)
        )
        model = parse(data, label)
    except ModelLoadError as error:
        return path, error
    tree = _Tree(members, chosen.parts[:-1])
    wanted = {m.name: m for ref in texture_references(model) for m in tree.lookup(ref)}
    for name in sorted(wanted):
        writer.write(wanted[name])
    return path, model


def extract_model_to(
    zip_path: Path, member: str | None, dest: Path, limits: ArchiveLimits = DEFAULT_LIMITS
) -> Path:
    """Extract one model and the files it references into `dest`; the model file's path.

    `member` is matched as by `extracted_model`, and checked before anything is written.
    The caller owns `dest` and removes it.
    """
    return extract_and_parse(zip_path, member, dest, limits, strict=False)[0]


def extract_and_parse(
    zip_path: Path,
    member: str | None,
    dest: Path,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    strict: bool = True,
) -> tuple[Path, Model | None]:
    """`extract_model_to`, also returning the parsed model (named `zip_path/member`).

    A model that does not parse raises its ModelLoadError (`strict`) or comes back as None.
    """
    zip_path = Path(zip_path)
    with _open(zip_path) as zf:
        members = _members(zip_path, zf, limits)
        chosen = _pick_model(zip_path, members, member)
        writer = _Writer(zip_path, zf, dest, limits)
        path, model = _extract_model(zip_path, zf, members, chosen, writer)
    if isinstance(model, ModelLoadError):
        if strict:
            raise model
        return path, None
    return path, model


@contextmanager
def _temporary(parent: Path | None) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="thagen-zip-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def extracted(
    zip_path: Path, limits: ArchiveLimits = DEFAULT_LIMITS, parent: Path | None = None
) -> Iterator[Path]:
    """Extract the whole archive into a temporary folder (made under `parent`), removed on exit."""
    with _temporary(parent) as folder:
        extract_all(zip_path, folder, limits)
        yield folder


def iter_models(
    zip_path: Path, limits: ArchiveLimits = DEFAULT_LIMITS, parent: Path | None = None
) -> Iterator[tuple[str, Path]]:
    """(member name, extracted path) for each model in the archive, sorted, in one folder.

    Each model is extracted with the files it references just before it is yielded. The files
    exist until the iteration ends (or the iterator is closed).
    """
    zip_path = Path(zip_path)
    with _temporary(parent) as folder, _open(zip_path) as zf:
        members = _members(zip_path, zf, limits)
        writer = _Writer(zip_path, zf, folder, limits)
        for member in sorted((m for m in members if m.is_model), key=lambda m: m.name):
            yield member.name, _extract_model(zip_path, zf, members, member, writer)[0]


@contextmanager
def extracted_model(
    zip_path: Path,
    member: str | None = None,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    parent: Path | None = None,
) -> Iterator[Path]:
    """The extracted file of one model in the archive (with the files it references), removed
    on exit.

    `member` may use backslashes and differ in case; without it the archive must hold exactly
    one model. Raises ArchiveError naming the models there when it is absent or ambiguous.
    """
    with _temporary(parent) as folder:
        yield extract_model_to(zip_path, member, folder, limits)


def _pick_model(zip_path: Path, members: list[Member], member: str | None) -> Member:
    """The model `member` names (backslashes, any case; exact case wins), or the only one."""
    models = sorted((m for m in members if m.is_model), key=lambda m: m.name)
    names = [m.name for m in models]
    if member is None:
        if len(models) != 1:
            raise ArchiveError(zip_path, f"holds {len(models)} models, name one of {_names(names)}")
        return models[0]
    wanted = _safe_name(zip_path, member)
    exact = [m for m in models if m.name == wanted]
    loose = [m for m in models if m.name.casefold() == wanted.casefold()]
    if not (exact or loose):
        raise ArchiveError(zip_path, f"no such model; models are {_names(names)}", member)
    return (exact or loose)[0]


def _names(names: list[str], limit: int = 10) -> str:
    """A list of member names for a message: each quoted short, at most `limit` of them."""
    shown = ", ".join(quote(n) for n in names[:limit])
    more = f", and {len(names) - limit} more" if len(names) > limit else ""
    return f"[{shown}{more}]"
