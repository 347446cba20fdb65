"""Archives as MMD authors share them (zip, RAR 4 and 5, 7z, LZH/LHA, tar.*), read through
libarchive (`mmd_loader.archive_io`) and opened safely, by one code path for every format.

Every member is checked from the headers before anything is written: names that escape
(`..`, absolute, drive letters), links (symbolic and hard), devices, FIFOs and sockets,
encrypted members, duplicate names, the member count, the total declared size, and the
compression ratio per member (where members' data lie one after another, so the gap between
them bounds each one's packed size: zip, RAR 4, LZH, plain tar) and over the whole archive.
Sizes and ratios are enforced again while streaming, for every format: no member writes past its
declared size, past `max_ratio` times the file bytes read for it (plus one read block), or past
the budget, and the whole output never passes `max_ratio` times the archive's size, so a header
that lies cannot write more than it declared. Names without a declared encoding (zips from
Japanese or Chinese Windows, tars, LZH) are decoded as UTF-8 where valid, else in the legacy
code page that reads best over all of the archive's names (`mmd_loader.textcodec`: cp932, GBK
or Big5). Every failure is an
`ArchiveError` (a `ModelLoadError`): one line naming the archive and, where there is one, the
member.

A model is extracted with only the files it uses: the model file, then the members its
materials' texture, sphere and toon references can resolve to (matched like
`mmd_loader.textures` matches names on disk: any letter case and Unicode form, inside the
model's folder) and their same-stem siblings (`X.png` beside a missing `X.tga`, `X.alpha.png`),
and, when asked, its terms files (`mmd_loader.terms.files`). An archive inside an archive (a zip
holding the model's .rar) is followed one level: its models are named
`inner.rar/Model/model.pmx` after the inner archive's member name, and extracted under a folder
of that name.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from media.files import open_regular, read_regular
from mmd_loader.archive_io import (
    BLOCK,
    S_IFDIR,
    S_IFLNK,
    S_IFREG,
    RawEntry,
    ReadFailure,
    archive_pass,
    library_version,
)
from mmd_loader.errors import ModelLoadError, quote
from mmd_loader.model import Model
from mmd_loader.textcodec import decode_names

MODEL_SUFFIXES = (".pmd", ".pmx")
ARCHIVE_SUFFIXES = (
    ".zip",
    ".rar",
    ".7z",
    ".lzh",
    ".lha",
    ".tar",
    ".tgz",
    ".tbz",
    ".tbz2",
    ".txz",
    ".tzst",
    ".tar.gz",
    ".tar.bz2",
    ".tar.xz",
    ".tar.zst",
    ".tar.lzma",
    ".tar.lz",
)
_MAX_SIBLINGS = 16  # same-stem members extracted per texture reference
KEEP_MODEL_BYTES = 256 * 1024**2  # parsed models of one archive handed over, at most
_ALL = 1 << 62  # keep every parsed model
_SNIFF = 512
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"(\xb5/\xfd", b"LZIP", b"\x5d\x00\x00")


class ArchiveError(ModelLoadError):
    """An archive that is refused or cannot be read. Names the archive and the member."""

    def __init__(self, archive: str | Path, message: str, member: str | None = None) -> None:
        self.member = member
        super().__init__(archive, f"member {quote(member)}: {message}" if member else message)


@dataclass(frozen=True)
class ArchiveLimits:
    """What an archive may hold before it is refused as a zip bomb."""

    max_total_size: int = 2 * 1024**3  # bytes, all members uncompressed (nested ones included)
    max_members: int = 10_000
    max_ratio: float = 200.0  # uncompressed / compressed, per member and over the archive ...
    ratio_min_size: int = 1024**2  # ... for members (and archives) larger than this


DEFAULT_LIMITS = ArchiveLimits()


@dataclass(frozen=True)
class Member:
    """A checked archive entry: `name` is its decoded, '/'-separated path inside the archive."""

    name: str
    index: int = 0  # its place in the archive
    size: int | None = None  # declared uncompressed size
    is_dir: bool = False
    packed: int | None = None  # at most this many compressed bytes (zip, RAR 4, LZH)
    raw: bytes = field(default=b"", repr=False, compare=False)

    @functools.cached_property
    def parts(self) -> tuple[str, ...]:
        return PurePosixPath(self.name).parts

    @property
    def is_junk(self) -> bool:
        """macOS resource forks (`__MACOSX/`, `._name`): never models, never extracted."""
        return self.parts[0] == "__MACOSX" or self.parts[-1].startswith("._")

    @property
    def is_model(self) -> bool:
        return not self.is_dir and self.name.lower().endswith(MODEL_SUFFIXES) and not self.is_junk

    @property
    def is_nested(self) -> bool:
        """An archive inside this one (followed one level)."""
        return not self.is_dir and is_archive_name(self.name) and not self.is_junk


@dataclass
class _Listing:
    """An archive's checked members."""

    archive: Path
    members: list[Member]
    format: str
    file_size: int
    positional: bool = False  # members' data one after another (a second pass skips cheaply)
    prefetched: dict[int, Path] = field(default_factory=dict)  # read during the listing pass
    meter: _Meter | None = None  # what the listing pass wrote, when it read ahead

    def __post_init__(self) -> None:
        self.by_index = {m.index: m for m in self.members}


class _Budget:
    """Bytes all extractions of one call may still write (nested archives share it)."""

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.left = limits.max_total_size


def is_archive_name(name: str) -> bool:
    """Whether a file name ends like an archive thagen reads."""
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _sniff(head: bytes, name: str) -> bool:
    """Whether the first bytes of a file named `name` are an archive's."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"Rar!\x1a\x07", b"7z\xbc\xaf\x27\x1c")):
        return True
    if len(head) >= 7 and head[2:4] == b"-l" and head[6:7] == b"-" and head[4:5] in b"hz":
        return True  # LZH/LHA: "-lh5-" at byte 2
    if head[257:262] == b"ustar":
        return True
    lower = name.lower()
    tarred = lower.endswith((".tar", ".tgz", ".tbz", ".tbz2", ".txz", ".tzst")) or ".tar." in lower
    return tarred and (head.startswith(_COMPRESSED_MAGIC) or lower.endswith(".tar"))


def is_archive(path: Path) -> bool:
    """Whether `path` is a regular file holding an archive (by its content; a compressed stream
    counts when its name says it is a tar)."""
    try:
        with open_regular(path, "archive") as f:
            return _sniff(f.read(_SNIFF), Path(path).name)
    except (ValueError, OSError):
        return False


def split_archive_path(path: str | Path) -> tuple[Path, str | None]:
    """Split `models.zip/inner/model.pmx` into (`models.zip`, `inner/model.pmx`).

    A path without an existing archive file among its parents comes back as (path, None).
    """
    path = Path(path)
    if path.exists():
        return path, None
    for parent in path.parents:
        if parent.is_file() and is_archive_name(parent.name):
            return parent, path.relative_to(parent).as_posix()
    return path, None


# --- reading: the listing pass and the extraction pass --------------------------------------------


@contextmanager
def _opened(archive: Path) -> Iterator[int]:
    """The archive's file descriptor; only a regular file is opened (never a FIFO or device)."""
    with open_regular(archive, "archive", error=ArchiveError) as f:
        yield f.fileno()


def _failure(archive: Path, error: ReadFailure, member: str | None = None) -> ArchiveError:
    """A libarchive failure as one line naming the archive (and member)."""
    message = str(error)
    lower = message.lower()
    if "solid" in lower and "rar" in lower:
        message = (
            f"solid RAR 4 archives cannot be read by {library_version()} ({message}); unpack it "
            "with unrar and scan the folder"
        )
    elif "passphrase" in lower or "encrypt" in lower or "password" in lower:
        message = f"encrypted: refused, thagen reads no passwords ({message})"
    elif member is None:
        message = f"not a readable archive: {message}"
    else:
        message = f"cannot extract: {message}"
    return ArchiveError(archive, message, member)


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


def _check_kind(archive: Path, raw: RawEntry, name: str) -> None:
    if raw.kind == S_IFLNK:
        raise ArchiveError(archive, "symbolic link refused", name)
    if raw.hardlink:
        raise ArchiveError(archive, "hard link refused", name)
    if raw.kind not in (S_IFREG, S_IFDIR):
        raise ArchiveError(archive, "device, FIFO or socket refused", name)
    if raw.encrypted:
        raise ArchiveError(archive, "encrypted: refused, thagen reads no passwords", name)


def _spans(raws: list[RawEntry], file_size: int) -> dict[int, int]:
    """Entry index → bytes from its data to the next entry's (the file's end for the last): an
    upper bound on its packed size where entries' data lie one after another."""
    if not raws:
        return {}
    ordered = sorted(raws, key=lambda r: r.offset)
    ends = [r.offset for r in ordered[1:]] + [file_size]
    return {r.index: max(end - r.offset, 0) for r, end in zip(ordered, ends, strict=True)}


_PREFETCHED = tuple(
    s.encode()
    for s in (*MODEL_SUFFIXES, *ARCHIVE_SUFFIXES, ".bmp", ".png", ".jpg", ".jpeg", ".tga", ".dds",
              ".spa", ".sph", ".gif", ".tif", ".tiff", ".txt", ".md", ".html", ".htm", ".url")
)  # fmt: skip


def _read_listing(
    archive: Path, fd: int, limits: ArchiveLimits, prefetch: tuple[Path, _Budget] | None = None
) -> _Listing:
    """Every entry, checked from its header.

    Nothing is extracted, except with `prefetch` (a private folder and the call's budget) for an
    archive whose members cannot be skipped without decompressing them (tar.gz, RAR 5, 7z):
    there the data of models, images, texts and inner archives is read into the folder during
    this pass (by index, under the streaming limits), so extracting them later costs no second
    decompression. Nothing reaches a destination before the listing is checked."""
    raws: list[RawEntry] = []
    meter, prefetched = None, {}
    try:
        with archive_pass(fd) as reader:
            if prefetch is not None:
                meter = _Meter(archive, reader.file_size, prefetch[1])
            for raw in reader.entries():
                if raw.index >= limits.max_members:
                    raise ArchiveError(
                        archive, f"more than {limits.max_members} members, the limit: refused"
                    )
                raws.append(raw)
                if meter is not None and not reader.positional and _worth_reading(raw):
                    target = prefetch[0] / str(raw.index)
                    name = raw.name.decode("utf-8", "replace")
                    _copy(reader, target, name, raw.size, meter)
                    prefetched[raw.index] = target
            kind, positional, file_size = reader.format, reader.positional, reader.file_size
    except ReadFailure as error:
        raise _failure(archive, error) from None
    names = decode_names([raw.name or b"" for raw in raws])
    spans = _spans(raws, file_size) if positional else {}
    members, seen = [], set()
    for raw, text in zip(raws, names, strict=True):
        if raw.name is None:
            raise ArchiveError(archive, f"the name of member #{raw.index} cannot be read")
        _check_kind(archive, raw, text)
        name = _safe_name(archive, text)
        if not name:
            continue
        is_dir = raw.kind == S_IFDIR
        size = None if is_dir else raw.size
        member = Member(name, raw.index, size, is_dir, spans.get(raw.index), raw.name)
        if member.name in seen and not is_dir:
            raise ArchiveError(archive, "duplicate member name", member.name)
        seen.add(member.name)
        _check_ratio(archive, member, limits)
        members.append(member)
    _check_totals(archive, members, file_size, limits)
    listing = _Listing(archive, members, kind, file_size, positional, prefetched)
    listing.meter = meter
    return listing


def _worth_reading(raw: RawEntry) -> bool:
    """A regular, unencrypted member named like a model, texture, text or archive."""
    name = (raw.name or b"").lower()
    return (
        raw.kind == S_IFREG and not raw.encrypted and not raw.hardlink
        and name.endswith(_PREFETCHED) and raw.size is not None
    )  # fmt: skip


def _check_ratio(archive: Path, member: Member, limits: ArchiveLimits) -> None:
    size, packed = member.size, member.packed
    if size is None or packed is None or size <= limits.ratio_min_size:
        return
    ratio = size / max(packed, 1)
    if ratio > limits.max_ratio:
        raise ArchiveError(
            archive,
            f"compression ratio {ratio:.0f}:1 ({size} bytes from at most {packed}) exceeds "
            f"{limits.max_ratio:.0f}:1: refused as a zip bomb",
            member.name,
        )


def _check_totals(
    archive: Path, members: list[Member], file_size: int, limits: ArchiveLimits
) -> None:
    total = sum(m.size or 0 for m in members)
    if total > limits.max_total_size:
        raise ArchiveError(
            archive, f"{total} bytes uncompressed, more than the limit {limits.max_total_size}"
        )
    if total > limits.ratio_min_size and total / max(file_size, 1) > limits.max_ratio:
        raise ArchiveError(
            archive,
            f"compression ratio {total / max(file_size, 1):.0f}:1 over the archive ({total} "
            f"bytes from {file_size}) exceeds {limits.max_ratio:.0f}:1: refused as a zip bomb",
        )


def _copy(reader, target: Path, name: str, declared: int | None, meter: _Meter) -> int:
    """Copy the current entry's data to `target`, never past its declared size or the budget,
    nor past `max_ratio` times the file bytes read for it (plus one read block) or for the
    archive. Returns the bytes written."""
    archive, limits, budget = meter.archive, meter.budget.limits, meter.budget
    written, start = 0, reader.consumed
    archive_bound = max(limits.ratio_min_size, limits.max_ratio * meter.file_size)
    with open(target, "xb") as sink:
        for chunk in reader.chunks():
            written += len(chunk)
            if declared is not None and written > declared:
                raise ArchiveError(archive, f"inflates past its declared {declared} bytes", name)
            if written > budget.left:
                raise ArchiveError(archive, "total uncompressed size limit reached", name)
            packed = reader.consumed - start + BLOCK
            if written > max(limits.ratio_min_size, limits.max_ratio * packed):
                raise ArchiveError(
                    archive,
                    f"compression ratio over {limits.max_ratio:.0f}:1 while streaming "
                    f"({written} bytes from {packed}): refused as a zip bomb",
                    name,
                )
            if meter.written + written > archive_bound:
                raise ArchiveError(
                    archive,
                    f"compression ratio over {limits.max_ratio:.0f}:1 over the archive while "
                    "streaming: refused as a zip bomb",
                    name,
                )
            sink.write(chunk)
    budget.left -= written
    meter.written += written
    if declared is not None and written != declared:
        raise ArchiveError(archive, f"{written} bytes, header declared {declared}", name)
    return written


@dataclass
class _Meter:
    """What has been written from one archive, against the call's budget."""

    archive: Path
    file_size: int
    budget: _Budget
    written: int = 0


class _Writer:
    """Streams wanted members of one archive into files, within the call's budget; members read
    ahead during the listing pass (`_Listing.prefetched`) are moved into place instead."""

    def __init__(self, listing: _Listing, fd: int, budget: _Budget) -> None:
        self.listing, self.fd = listing, fd
        self.meter = listing.meter or _Meter(listing.archive, listing.file_size, budget)
        self.done: set[int] = set()

    def write(self, targets: dict[int, Path]) -> None:
        """One pass over the archive writing member index → target file (or folder)."""
        todo = {i: t for i, t in targets.items() if i not in self.done}
        for index in [i for i in todo if i in self.listing.prefetched]:
            target = todo.pop(index)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(self.listing.prefetched.pop(index), target)
            self.done.add(index)
        if not todo:
            return
        archive, last = self.listing.archive, max(todo)
        try:
            with archive_pass(self.fd) as reader:
                for raw in reader.entries():
                    member = self.listing.by_index.get(raw.index)
                    target = todo.get(raw.index)
                    if member is not None and target is not None:
                        if raw.name != member.raw:
                            raise ArchiveError(archive, "changed while being read", member.name)
                        self._write_one(reader, member, target)
                        self.done.add(raw.index)
                    if raw.index >= last:
                        break
        except ReadFailure as error:
            raise _failure(archive, error, None) from None
        missing = sorted(set(todo) - self.done)
        if missing:
            name = self.listing.by_index[missing[0]].name
            raise ArchiveError(archive, "not found again while extracting", name)

    def _write_one(self, reader, member: Member, target: Path) -> None:
        if member.is_dir:
            target.mkdir(parents=True, exist_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            _copy(reader, target, member.name, member.size, self.meter)
        except ReadFailure as error:
            raise _failure(self.listing.archive, error, member.name) from None
        except OSError as error:
            message = f"cannot write the extracted file: {error.strerror or error}"
            raise ArchiveError(self.listing.archive, message, member.name) from None


def _target(dest: Path, member: Member) -> Path:
    return Path(dest).joinpath(*member.parts)


# --- the public checks and extractions ----------------------------------------------------------


def check_archive(path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> list[Member]:
    """Every entry of the archive, checked from its headers; nothing is extracted."""
    path = Path(path)
    with _opened(path) as fd:
        return _read_listing(path, fd, limits).members


def list_models(path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> list[str]:
    """Member names of the .pmd/.pmx files in the archive (and in archives inside it, as
    `inner.rar/Model/model.pmx`), sorted. A refused inner archive refuses the whole."""
    names, problems = list_models_and_problems(path, limits)
    if problems:
        raise problems[0]
    return names


def list_models_and_problems(
    path: Path, limits: ArchiveLimits = DEFAULT_LIMITS
) -> tuple[list[str], list[ArchiveError]]:
    """(model member names, sorted; the refusals of inner archives, each naming its member)."""
    path = Path(path)
    with _opened(path) as fd, _temporary(None) as scratch:
        listing = _read_listing(path, fd, limits)
        names = [m.name for m in listing.members if m.is_model]
        nested = [m for m in listing.members if m.is_nested]
        problems: list[ArchiveError] = []
        if nested:
            writer = _Writer(listing, fd, _Budget(limits))
            files = {m.index: scratch / f"{m.index}{_suffix(m.name)}" for m in nested}
            writer.write(files)
            for member in nested:
                try:
                    with _opened(files[member.index]) as inner_fd:
                        inner = _read_listing(_inner_label(path, member), inner_fd, limits)
                except ArchiveError as error:
                    problems.append(_inner_error(path, member, error))
                    continue
                names += [f"{member.name}/{m.name}" for m in inner.members if m.is_model]
    return sorted(names), problems


def _suffix(name: str) -> str:
    lower = name.lower()
    return next(s for s in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True) if lower.endswith(s))


def _inner_label(outer: Path, member: Member) -> Path:
    """How errors name an archive inside another: `outer.zip/inner.rar`."""
    return outer.joinpath(*member.parts)


def _inner_error(outer: Path, member: Member, error: ArchiveError) -> ArchiveError:
    """An inner archive's refusal as one of the outer archive's, naming the inner member."""
    return ArchiveError(outer, f"inner archive: {error.reason}", member.name)


def extract_all(path: Path, dest: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> list[Member]:
    """Check the archive, then extract every member into the empty folder `dest` (inner
    archives stay packed). macOS resource forks are skipped. On error, files already written
    stay in `dest`. Loading a model does not use this: it extracts only the model's files."""
    path, dest = Path(path), Path(dest)
    if any(dest.iterdir()):
        raise ValueError(f"{dest}: extraction folder is not empty")
    with _opened(path) as fd:
        listing = _read_listing(path, fd, limits)
        targets = {m.index: _target(dest, m) for m in listing.members if not m.is_junk}
        _Writer(listing, fd, _Budget(limits)).write(targets)
    return listing.members


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
            if member.is_dir or member.is_junk or parts[: len(base)] != base:
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


def _companions(members: list[Member], chosen: Member) -> list[Member]:
    """The terms files for `chosen` among `members`: in its folder and each folder above it."""
    from mmd_loader.terms.files import MAX_TERMS_BYTES, MAX_TERMS_FILES, is_companion

    folders = {chosen.parts[:k]: k == len(chosen.parts) - 1 for k in range(len(chosen.parts))}
    found = [
        m
        for m in members
        if not (m.is_dir or m.is_junk or m.is_model or m.is_nested)
        and m.parts[:-1] in folders
        and (m.size is None or m.size <= MAX_TERMS_BYTES)
        and is_companion(m.parts[-1], chosen.parts[-1] if folders[m.parts[:-1]] else None)
    ]
    found.sort(key=lambda m: (-len(m.parts), m.name))  # nearest folders first
    return found[:MAX_TERMS_FILES]


def _parse(label: Path, path: Path) -> Model | ModelLoadError:
    """The model extracted at `path` (named `label` in errors), or the error parsing it raised."""
    from mmd_loader.loader import MAX_FILE_BYTES, parse

    try:
        data = read_regular(
            path, "model", MAX_FILE_BYTES, lambda _, why: ModelLoadError(label, why)
        )
        return parse(data, label)
    except ModelLoadError as error:
        return error


def _texture_candidates(members: list[Member], chosen: list[Member]) -> list[Member]:
    """Image files under the chosen models' folders: what their materials may name."""
    from mmd_loader.textures import SPHERE_SUFFIXES, SUBSTITUTE_SUFFIXES

    suffixes = (*SUBSTITUTE_SUFFIXES, *SPHERE_SUFFIXES, ".gif", ".tif", ".tiff")
    folders = {m.parts[:-1] for m in chosen}
    return [
        m
        for m in members
        if not (m.is_dir or m.is_junk or m.is_model or m.is_nested)
        and m.name.lower().endswith(suffixes)
        and any(m.parts[: len(f)] == f for f in folders)
    ]


def _extract_models(
    listing: _Listing,
    writer: _Writer,
    chosen: list[Member],
    dest: Path,
    companions: bool,
    label: Path,
    keep: int = KEEP_MODEL_BYTES,
    first: dict[int, Path] | None = None,
) -> dict[str, tuple[Path, Model | ModelLoadError | None]]:
    """Extract the `chosen` models (and their terms files when asked), parse them, and extract
    the members their materials reference. Returns member name → (extracted path, the parsed
    model or its error; None once `keep` bytes of models are held: the caller parses it again).

    Where a second pass is cheap (members one after another: zip, RAR 4, LZH, plain tar) the
    textures are extracted in a second pass over the archive; otherwise (7z, RAR 5, tar.gz: a
    second pass decompresses again) every image under the models' folders comes out in the first
    pass, and those no material references are deleted before the models are handed over.
    `first` are other members to write in the first pass (inner archives)."""
    targets = {m.index: _target(dest, m) for m in chosen} | (first or {})
    if companions:
        for model in chosen:
            targets.update({m.index: _target(dest, m) for m in _companions(listing.members, model)})
    speculative: dict[int, Path] = {}
    if not listing.positional:
        speculative = {
            m.index: _target(dest, m)
            for m in _texture_candidates(listing.members, chosen)
            if m.index not in targets
        }
    writer.write(targets | speculative)
    out: dict[str, tuple[Path, Model | ModelLoadError | None]] = {}
    textures: dict[int, Path] = {}
    held = 0
    for member in chosen:
        path = _target(dest, member)
        model = _parse(label.joinpath(*member.parts), path)
        if isinstance(model, Model):
            tree = _Tree(listing.members, member.parts[:-1])
            for ref in texture_references(model):
                textures.update({m.index: _target(dest, m) for m in tree.lookup(ref)})
            held += path.stat().st_size
            if held > keep:
                model = None
        out[member.name] = (path, model)
    writer.write({i: p for i, p in textures.items() if i not in speculative})
    for index, extra in speculative.items():
        if index not in textures:
            _remove(extra, dest)
    return out


def _remove(path: Path, top: Path) -> None:
    """Delete a file and the folders it leaves empty, up to `top`."""
    path.unlink(missing_ok=True)
    for folder in path.parents:
        if folder == top or not folder.is_relative_to(top):
            return
        try:
            folder.rmdir()
        except OSError:  # not empty
            return


def _pick_model(listing: _Listing, member: str | None) -> tuple[Member, str | None]:
    """The model `member` names (backslashes, any case; exact case wins) or the only one, as
    (its member, None); for a model inside an inner archive, (the inner archive's member, the
    model's name inside it)."""
    path = listing.archive
    models = sorted((m for m in listing.members if m.is_model), key=lambda m: m.name)
    names = [m.name for m in models]
    if member is None:
        if len(models) != 1:
            raise ArchiveError(path, f"holds {len(models)} models, name one of {_names(names)}")
        return models[0], None
    wanted = _safe_name(path, member)
    exact = [m for m in models if m.name == wanted]
    loose = [m for m in models if m.name.casefold() == wanted.casefold()]
    if exact or loose:
        return (exact or loose)[0], None
    for inner in sorted((m for m in listing.members if m.is_nested), key=lambda m: m.name):
        for prefix in (inner.name, inner.name.casefold()):
            text = wanted if prefix == inner.name else wanted.casefold()
            if text.startswith(prefix + "/"):
                return inner, wanted[len(prefix) + 1 :]
    raise ArchiveError(path, f"no such model; models are {_names(names)}", member)


def _names(names: list[str], limit: int = 10) -> str:
    """A list of member names for a message: each quoted short, at most `limit` of them."""
    shown = ", ".join(quote(n) for n in names[:limit])
    more = f", and {len(names) - limit} more" if len(names) > limit else ""
    return f"[{shown}{more}]"


def extract_model_to(
    path: Path, member: str | None, dest: Path, limits: ArchiveLimits = DEFAULT_LIMITS
) -> Path:
    """Extract one model and the files it references into `dest`; the model file's path.

    `member` is matched as by `extracted_model`, and checked before anything is written.
    The caller owns `dest` and removes it.
    """
    return extract_and_parse(path, member, dest, limits, strict=False)[0]


def extract_and_parse(
    path: Path,
    member: str | None,
    dest: Path,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    strict: bool = True,
    companions: bool = False,
) -> tuple[Path, Model | None]:
    """`extract_model_to`, also returning the parsed model (named `path/member`); with
    `companions` the model's terms files are extracted too (inside an inner archive, those of
    both levels).

    A model that does not parse raises its ModelLoadError (`strict`) or comes back as None.
    """
    path, dest = Path(path), Path(dest)
    budget = _Budget(limits)
    with _opened(path) as fd, _temporary(None) as ahead:
        listing = _read_listing(path, fd, limits, (ahead, budget))
        chosen, inner_name = _pick_model(listing, member)
        writer = _Writer(listing, fd, budget)
        if inner_name is None:
            found = _extract_models(listing, writer, [chosen], dest, companions, path, _ALL)
            file, model = found[chosen.name]
        else:
            file, model = _extract_nested(
                listing, writer, chosen, inner_name, dest, budget, companions
            )
    if isinstance(model, ModelLoadError):
        if strict:
            raise model
        return file, None
    return file, model


def _extract_nested(
    listing: _Listing,
    writer: _Writer,
    inner: Member,
    name: str | None,
    dest: Path,
    budget: _Budget,
    companions: bool,
) -> tuple[Path, Model | ModelLoadError]:
    """Extract the model `name` (None: the only one) of the inner archive `inner` under
    `dest/INNER_NAME/`, with the outer archive's terms files for the inner archive's place."""
    scratch = Path(tempfile.mkdtemp(prefix=".thagen-nested-", dir=dest))
    try:
        packed = scratch / f"inner{_suffix(inner.name)}"
        targets = {inner.index: packed}
        if companions:
            targets.update({m.index: _target(dest, m) for m in _companions(listing.members, inner)})
        writer.write(targets)
        label = _inner_label(listing.archive, inner)
        try:
            with _opened(packed) as fd:
                ahead = scratch / "ahead"
                ahead.mkdir()
                inner_listing = _read_listing(label, fd, budget.limits, (ahead, budget))
                chosen, deeper = _pick_model(inner_listing, name)
                if deeper is not None:
                    raise ArchiveError(label, "archives nested two deep are not followed", name)
                result = _extract_models(
                    inner_listing,
                    _Writer(inner_listing, fd, budget),
                    [chosen],
                    _target(dest, inner),
                    companions,
                    label,
                    _ALL,
                )[chosen.name]
        except ArchiveError as error:
            raise _inner_error(listing.archive, inner, error) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return result


@contextmanager
def _temporary(parent: Path | None) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="thagen-archive-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def extracted(
    path: Path, limits: ArchiveLimits = DEFAULT_LIMITS, parent: Path | None = None
) -> Iterator[Path]:
    """Extract the whole archive into a temporary folder (made under `parent`), removed on exit."""
    with _temporary(parent) as folder:
        extract_all(path, folder, limits)
        yield folder


def iter_models(
    path: Path,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    parent: Path | None = None,
    companions: bool = False,
) -> Iterator[tuple[str, Path]]:
    """(member name, extracted path) for each model in the archive (inner archives' too),
    sorted, in one folder; a refused inner archive raises its ArchiveError. The extracted
    tree mirrors the archive (`path.parents[len(PurePosixPath(name).parts) - 1]` is its root)
    and exists until the iteration ends (or the iterator is closed)."""
    for name, found in iter_archive_models(path, limits, parent, companions):
        if isinstance(found, ArchiveError):
            raise found
        yield name, found


def iter_archive_models(
    path: Path,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    parent: Path | None = None,
    companions: bool = False,
) -> Iterator[tuple[str, Path | ArchiveError]]:
    """`iter_models`, yielding a refused inner archive as (its member name, its ArchiveError)
    instead of raising, so the outer archive's other models are still read."""
    for found in extract_archive_models(path, limits, parent, companions):
        yield found.name, found.error if found.error is not None else found.path


@dataclass
class ArchivedModel:
    """A model found in an archive: its member name, where it was extracted (inside the tree
    at `root`, which mirrors the archive), the parsed model when it was kept (with the member's
    name as its path; None: parse the file), or the refusal of the inner archive it is in."""

    name: str
    path: Path | None
    root: Path
    model: Model | None = None
    error: ArchiveError | None = None


def extract_archive_models(
    path: Path,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    parent: Path | None = None,
    companions: bool = False,
) -> Iterator[ArchivedModel]:
    """Every model of the archive and of the archives inside it, sorted by name, extracted
    with its textures (and terms files) into one temporary tree that exists until the
    iteration ends; the first pass over the archive also takes out the inner archives."""
    path = Path(path)
    budget = _Budget(limits)
    with _temporary(parent) as folder, _opened(path) as fd:
        tree, ahead = folder / "tree", folder / "ahead"
        tree.mkdir()
        ahead.mkdir()
        listing = _read_listing(path, fd, limits, (ahead, budget))
        writer = _Writer(listing, fd, budget)
        models = sorted((m for m in listing.members if m.is_model), key=lambda m: m.name)
        nested = sorted((m for m in listing.members if m.is_nested), key=lambda m: m.name)
        packed = {m.index: folder / f"inner-{m.index}{_suffix(m.name)}" for m in nested}
        for inner in nested if companions else []:
            packed.update({m.index: _target(tree, m) for m in _companions(listing.members, inner)})
        extracted_models = _extract_models(
            listing, writer, models, tree, companions, path, first=packed
        )
        found = [
            ArchivedModel(name, file, tree, model if isinstance(model, Model) else None)
            for name, (file, model) in extracted_models.items()
        ]
        for inner in nested:
            found += _nested_models(listing, writer, inner, folder, tree, budget, companions)
        yield from sorted(found, key=lambda item: item.name)


def _nested_models(
    listing: _Listing,
    writer: _Writer,
    inner: Member,
    scratch: Path,
    tree: Path,
    budget: _Budget,
    companions: bool,
) -> list[ArchivedModel]:
    """Every model of the inner archive `inner`, extracted under `tree/INNER_NAME/`."""
    packed = scratch / f"inner-{inner.index}{_suffix(inner.name)}"
    label = _inner_label(listing.archive, inner)
    try:
        targets = {inner.index: packed}
        if companions:
            targets.update({m.index: _target(tree, m) for m in _companions(listing.members, inner)})
        writer.write(targets)  # already done by the outer archive's first pass, as a rule
        ahead = scratch / f"ahead-{inner.index}"
        ahead.mkdir()
        with _opened(packed) as fd:
            inner_listing = _read_listing(label, fd, budget.limits, (ahead, budget))
            models = sorted((m for m in inner_listing.members if m.is_model), key=lambda m: m.name)
            extracted_models = _extract_models(
                inner_listing,
                _Writer(inner_listing, fd, budget),
                models,
                _target(tree, inner),
                companions,
                label,
            )
    except ArchiveError as error:
        return [
            ArchivedModel(inner.name, None, tree, None, _inner_error(listing.archive, inner, error))
        ]
    finally:
        packed.unlink(missing_ok=True)
    return [
        ArchivedModel(
            f"{inner.name}/{name}", file, tree, model if isinstance(model, Model) else None
        )
        for name, (file, model) in extracted_models.items()
    ]


@contextmanager
def extracted_model(
    path: Path,
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
        yield extract_model_to(path, member, folder, limits)
