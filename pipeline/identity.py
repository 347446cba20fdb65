"""A character's identity: the model file's bytes and the bytes of every texture it uses.

Seven folders holding one `.pmx` with different textures are seven characters (one family,
`pipeline.families`): a texture variant renders differently, so it is kept, and a changed
texture is noticed on resume like a changed model. The id is the sha256 over the model file's
sha256 and, in sorted order, each referenced texture, sphere map and toon as (its path
relative to the model's folder, the sha256 of its bytes), or (kind, the reference as written,
"missing") for one that is absent or refused. Paths are relative, so a model in a folder and
the same files in a zip are one character; byte-identical copies stay one character (listed as
duplicates in the catalog).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from media.files import FileRefusedError, open_regular

VERSION = "thagen-character-2"
KINDS = ("texture", "sphere", "toon")


def file_digest(path: str | Path, what: str = "file") -> str:
    """sha256 of a regular file's bytes (read in chunks)."""
    sha = hashlib.sha256()
    with open_regular(path, what) as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def texture_entries(model: Any) -> list[tuple[str, Path | None]]:
    """(name, resolved file or None) for every texture the model's materials use, sorted and
    unique: name is the path relative to the model's folder, or `kind:reference` when absent."""
    root = Path(model.root) if model.root is not None else Path(model.path).parent
    entries: dict[str, Path | None] = {}
    for material in model.materials:
        for kind in KINDS:
            path = getattr(material, kind)
            ref = getattr(material, f"{kind}_ref")
            if path is not None:
                try:
                    name = Path(path).relative_to(root).as_posix()
                except ValueError:
                    name = Path(path).name
                entries[name] = Path(path)
            elif ref:
                entries[f"{kind}:{ref}"] = None
    return sorted(entries.items())


def character_id(model_digest: str, model: Any) -> str:
    """The id of a loaded model whose file has sha256 `model_digest`. A texture that cannot
    be read counts as "unreadable" (rendering reports it), never as some other bytes."""
    sha = hashlib.sha256(f"{VERSION}\0{model_digest}\0".encode())
    for name, path in texture_entries(model):
        digest = "missing"
        if path is not None:
            try:
                digest = file_digest(path, "texture")
            except (OSError, FileRefusedError):
                digest = "unreadable"
        sha.update(f"{name}\0{digest}\0".encode("utf-8", "surrogatepass"))
    return sha.hexdigest()


def model_identity(path: str | Path) -> str:
    """The character id of the model file at `path` (loaded to find its textures)."""
    from mmd_loader import load

    return character_id(file_digest(path, "model"), load(path))
