"""Many characters at once: each written once, seeded and byte-identical, in parallel, and
skipped when its files are already there with the bytes this code writes.

A batch folder holds one sub-folder per character (`character_NNN/character.pmx` and its
`character_tex/`; `character_NNN_face_MMM` when the face comes from another seed) and a
manifest, `characters.json`: the version of the code that wrote them (a hash of this package's
sources, the PMX writer's and the versions of the libraries that decide the bytes) and, per
character, its seeds and the sha256 of each of its files. Writing a batch again skips every
character whose manifest entry matches (same code, same seeds) and whose files still hash to
what was written; the rest are (re)written. Each character depends on its seeds alone, so the
files are the same whatever the number of workers or the order.

`looks_per_face` K shares each face's construction among K characters (`spec_for_seed`'s face
seed is the character's seed // K): K characters with one face mesh under different hair,
colours and ornaments, which `pipeline.families` finds to be one family, so splits keep them
together.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MANIFEST = "characters.json"
PACKAGE = Path(__file__).resolve().parent
WRITER = PACKAGE.parent / "mmd_loader" / "pmx_writer.py"


def folder_name(seed: int, face_seed: int) -> str:
    """The sub-folder of the character with these seeds."""
    if face_seed == seed:
        return f"character_{seed:03d}"
    return f"character_{seed:03d}_face_{face_seed:03d}"


def shared_faces(seeds: Sequence[int], looks_per_face: int = 1) -> list[int]:
    """Each character's face seed when faces are shared by `looks_per_face` characters."""
    if looks_per_face < 1:
        raise ValueError(f"looks per face must be >= 1, not {looks_per_face}")
    return [seed // looks_per_face for seed in seeds]


@functools.cache
def code_version() -> str:
    """sha256 of what decides a character's bytes: this package's sources, the PMX writer, and
    the numpy, Pillow and zlib versions."""
    from PIL import __version__ as pillow

    sha = hashlib.sha256()
    for path in [*sorted(PACKAGE.glob("*.py")), WRITER]:
        sha.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    sha.update(f"numpy {np.__version__} pillow {pillow} zlib {zlib.ZLIB_RUNTIME_VERSION}".encode())
    return sha.hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files_of(folder: Path) -> dict[str, str]:
    """sha256 of every file under a character's folder, by path relative to it."""
    return {
        p.relative_to(folder).as_posix(): _sha256(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def write_one(root: str, seed: int, face_seed: int) -> dict:
    """Write one character under `root`; returns its manifest entry."""
    from characters.build import write_character

    folder = Path(root) / folder_name(seed, face_seed)
    write_character(seed, folder / "character.pmx", face_seed=face_seed)
    return {"seed": seed, "face_seed": face_seed, "files": _files_of(folder)}


def read_manifest(root: Path) -> dict[str, dict]:
    """The entries of `root`'s manifest written by this code (none when absent, unreadable or
    written by other code)."""
    try:
        data = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != code_version():
        return {}
    entries = data.get("characters")
    return entries if isinstance(entries, dict) else {}


def is_current(root: Path, entry: dict | None, seed: int, face_seed: int) -> bool:
    """Whether a character's files are there as the manifest says this code wrote them."""
    if not isinstance(entry, dict) or (entry.get("seed"), entry.get("face_seed")) != (
        seed,
        face_seed,
    ):
        return False
    files = entry.get("files")
    folder = root / folder_name(seed, face_seed)
    return isinstance(files, dict) and bool(files) and _files_of(folder) == files


def write_characters(
    root: Path,
    seeds: Sequence[int],
    faces: Sequence[int] | None = None,
    *,
    workers: int = 1,
) -> tuple[list[Path], int]:
    """Write the characters `seeds` (with their face seeds, default their own) under `root`,
    skipping those already written by this code; returns (their .pmx paths in order, how many
    were written). `workers` > 1 writes in that many processes (0: one per core)."""
    root = Path(root)
    faces = list(seeds) if faces is None else list(faces)
    if len(faces) != len(seeds):
        raise ValueError(f"{len(seeds)} seeds but {len(faces)} face seeds")
    root.mkdir(parents=True, exist_ok=True)
    entries = read_manifest(root)
    todo = [
        (seed, face)
        for seed, face in dict.fromkeys(zip(seeds, faces, strict=True))
        if not is_current(root, entries.get(folder_name(seed, face)), seed, face)
    ]
    if workers == 0:
        workers = os.cpu_count() or 1
    if todo and workers > 1 and len(todo) > 1:
        from joblib import Parallel, delayed

        made = Parallel(n_jobs=min(workers, len(todo)))(
            delayed(write_one)(str(root), seed, face) for seed, face in todo
        )
    else:
        made = [write_one(str(root), seed, face) for seed, face in todo]
    for entry in made:
        entries[folder_name(entry["seed"], entry["face_seed"])] = entry
    if made or not (root / MANIFEST).exists():
        data = {"version": code_version(), "characters": dict(sorted(entries.items()))}
        temporary = root / f"{MANIFEST}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temporary, root / MANIFEST)
    paths = [root / folder_name(s, f) / "character.pmx" for s, f in zip(seeds, faces, strict=True)]
    return paths, len(made)
