"""Finding and reading a model's terms files on disk: in its folder and each folder above it up
to the scanned root; for a model extracted from an archive, up to the extraction's root (the
archive's root), then from the archive's folder up to the scanned root.

Labels name files relative to the scanned root (`lat_miku_v231/ReadMe.txt`,
`packs/pack.zip/Pack/readme.txt`), never by absolute path. Only regular files are read, at most
`MAX_TERMS_BYTES` each and `MAX_TERMS_FILES` per model, nearest folders first; a symlink is
followed only when its target stays inside the scanned root (or the extraction). What is passed
over is said in the terms' notes.
"""

from __future__ import annotations

import os
from pathlib import Path

from media.files import FileRefusedError, read_regular
from mmd_loader.terms.files import MAX_TERMS_BYTES, MAX_TERMS_FILES, is_companion
from mmd_loader.terms.reader import Source, comment_sources, read_terms, source_from_bytes

MAX_ENTRIES = 2000  # directory entries looked at per folder


def _chain(start: Path, stop: Path) -> list[Path]:
    """`start` and each folder above it up to `stop` (just `start` if `stop` is not above it)."""
    start, stop = Path(start), Path(stop)
    try:
        depth = len(start.relative_to(stop).parts)
    except ValueError:
        return [start]
    return [start, *list(start.parents)[:depth]]


def _label(prefix: str, folder: Path, top: Path, name: str) -> str:
    try:
        relative = folder.relative_to(top).as_posix()
    except ValueError:
        relative = ""
    parts = [p for p in (prefix, "" if relative == "." else relative, name) if p]
    return "/".join(parts)


def _inside(path: Path, top: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(Path(os.path.realpath(top)))


def _candidates(folder: Path, model_file: str | None, top: Path, notes: list[str]) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            names = sorted(e.name for _, e in zip(range(MAX_ENTRIES), entries, strict=False))
    except OSError as error:
        notes.append(f"{folder.name or folder}: cannot list ({error.strerror or error})")
        return []
    out = []
    for name in names:
        if not is_companion(name, model_file):
            continue
        path = folder / name
        if path.is_symlink() and not _inside(path, top):
            notes.append(f"{name}: a symlink leading outside, not read")
            continue
        out.append(path)
    return out


def find_sources(
    model_file: Path,
    root: Path | None = None,
    archive: Path | None = None,
    archive_root: Path | None = None,
) -> tuple[list[Source], list[str]]:
    """The terms files of the model at `model_file` (for an archived model: its extracted file,
    `archive_root` the extraction, `archive` the archive on disk), nearest first, and notes."""
    model_file = Path(model_file)
    on_disk = Path(archive) if archive is not None else model_file
    root = Path(root) if root is not None else on_disk.parent
    steps: list[tuple[Path, str, Path]] = []  # (folder, label prefix, the folder labels start at)
    if archive is not None and archive_root is not None:
        prefix = _label("", on_disk.parent, root, on_disk.name)
        steps += [(f, prefix, archive_root) for f in _chain(model_file.parent, archive_root)]
    steps += [(f, "", root) for f in _chain(on_disk.parent, root)]
    notes: list[str] = []
    sources: list[Source] = []
    for folder, prefix, top in steps:
        own = model_file.name if folder == model_file.parent else None
        for path in _candidates(folder, own, top, notes):
            label = _label(prefix, folder, top, path.name)
            if len(sources) >= MAX_TERMS_FILES:
                notes.append(f"{label}: more than {MAX_TERMS_FILES} terms files, not read")
                continue
            try:
                data = read_regular(path, "terms file", MAX_TERMS_BYTES)
            except (FileRefusedError, OSError) as error:
                notes.append(f"{label}: not read ({error})")
                continue
            sources.append(source_from_bytes(label, data))
    return sources, notes


def model_terms(
    model,
    model_file: Path,
    root: Path | None = None,
    archive: Path | None = None,
    archive_root: Path | None = None,
    model_sha256: str = "",
) -> dict:
    """The terms of a loaded model (`model`: its comments; None when it did not load), from its
    comments and the terms files `find_sources` finds."""
    files, notes = find_sources(model_file, root, archive, archive_root)
    comments = []
    if model is not None:
        comments = comment_sources(model.comment, model.english_comment, model_sha256)
    return read_terms(comments + files, notes)
