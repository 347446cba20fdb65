"""Texture references as MMD models write them, resolved to files inside the model's folder.

Authors write paths on Windows: backslashes, any letter case, Shift-JIS names that may reach us in
another Unicode normal form (NFD from macOS zips, half-width katakana, cp932 vs Shift-JIS code
points). A reference must stay inside the model's folder: `..` that leaves it, absolute paths,
drive letters, UNC paths and symlinks that point outside are refused with `TexturePathError`.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path, PurePosixPath

from mmd_loader.model import Material, Model, SphereMode

SPHERE_SUFFIXES = (".sph", ".spa")
_DRIVE = re.compile(r"^[A-Za-z]:")
_DEFAULT_TOON = re.compile(r"^toon(0[1-9]|10)\.bmp$", re.IGNORECASE)

# Code points that cp932 and Shift-JIS decoders disagree on: fold to the cp932 choice.
_CP932_FOLD = str.maketrans(
    {
        "\u301c": "\uff5e",  # WAVE DASH -> FULLWIDTH TILDE
        "\u2016": "\u2225",  # DOUBLE VERTICAL LINE -> PARALLEL TO
        "\u2212": "\uff0d",  # MINUS SIGN -> FULLWIDTH HYPHEN-MINUS
        "\u00a2": "\uffe0",  # CENT SIGN
        "\u00a3": "\uffe1",  # POUND SIGN
        "\u00ac": "\uffe2",  # NOT SIGN
    }
)


class TexturePathError(ValueError):
    """A texture reference that points outside the model's folder."""

    def __init__(self, ref: str, reason: str) -> None:
        self.ref = ref
        self.reason = reason
        super().__init__(f"texture reference {ref!r} refused: {reason}")


def _fold(name: str) -> str:
    """The key two file names are equal under on a Windows/Japanese file system, loosely."""
    return unicodedata.normalize("NFKC", name.translate(_CP932_FOLD)).casefold()


def _components(ref: str) -> list[str]:
    """Split a Windows-style reference into path components inside the root, or refuse it."""
    text = ref.replace("\\", "/")
    if text.startswith("/"):
        kind = "a UNC path" if text.startswith("//") else "an absolute path"
        raise TexturePathError(ref, f"{kind} is not allowed")
    if _DRIVE.match(text):
        raise TexturePathError(ref, "a drive letter is not allowed")
    if "\x00" in text:
        raise TexturePathError(ref, "contains a NUL character")
    parts: list[str] = []
    for part in PurePosixPath(text).parts:
        if part == "..":
            if not parts:
                raise TexturePathError(ref, "'..' leaves the model's folder")
            parts.pop()
        elif part not in (".", ""):
            parts.append(part)
    return parts


def _match(directory: Path, name: str) -> str | None:
    """The entry of `directory` that `name` refers to: exact, else by folded name (first sorted)."""
    if os.path.lexists(directory / name):
        return name
    try:
        entries = sorted(os.listdir(directory))
    except OSError:  # not a directory, unreadable, vanished
        return None
    nfc = unicodedata.normalize("NFC", name)
    for candidate in entries:
        if unicodedata.normalize("NFC", candidate) == nfc:
            return candidate
    key = _fold(name)
    for candidate in entries:
        if _fold(candidate) == key:
            return candidate
    return None


def resolve_reference(root: Path, ref: str) -> Path | None:
    """The file `ref` names inside `root`, or None when there is none.

    Raises `TexturePathError` for a reference that escapes `root` (also through a symlink).
    """
    ref = ref.strip()
    parts = _components(ref)
    if not parts:
        return None
    path = Path(root)
    for part in parts:
        found = _match(path, part)
        if found is None:
            return None
        path = path / found
    real_root = Path(root).resolve()
    if not path.resolve().is_relative_to(real_root):
        raise TexturePathError(ref, "a symlink leads outside the model's folder")
    return path if path.is_file() else None


def split_pmd_texture(ref: str) -> tuple[str | None, str | None]:
    """Split PMD's `tex.bmp*sph.sph` into (texture, sphere); either part may be absent.

    A lone `.sph`/`.spa` name is a sphere map, not a texture.
    """
    ref = ref.strip()
    if not ref:
        return None, None
    if "*" in ref:
        first, second = (part.strip() or None for part in ref.split("*", 1))
        if _is_sphere(first) and not _is_sphere(second):
            first, second = second, first
        return first, second
    return (None, ref) if _is_sphere(ref) else (ref, None)


def pmd_sphere_mode(sphere: str | None) -> SphereMode:
    """PMD's sphere mode from the file name: `.spa` adds, anything else (`.sph`) multiplies."""
    if not sphere:
        return SphereMode.NONE
    return SphereMode.ADD if sphere.lower().endswith(".spa") else SphereMode.MULTIPLY


def _is_sphere(name: str | None) -> bool:
    return name is not None and name.lower().endswith(SPHERE_SUFFIXES)


def resolve_textures(model: Model) -> None:
    """Set each material's `texture`, `sphere` and `toon` paths; report problems as warnings.

    Never raises for a missing or refused file: it appends one line per problem to
    `model.warnings`. A toon that is one of MMD's shared defaults (`toon01.bmp`..`toon10.bmp`)
    resolves to the model's own copy when it ships one, else to None without a warning (the
    renderer draws default ramps).
    """
    root = model.root if model.root is not None else Path(model.path).parent
    for index, material in enumerate(model.materials):
        texture_ref, sphere_ref = material.texture_ref, material.sphere_ref
        if texture_ref and (model.format == "pmd" or "*" in texture_ref):
            texture_ref, split_sphere = split_pmd_texture(texture_ref)
            sphere_ref = sphere_ref or split_sphere
        material.texture = _resolve(model, root, index, material, "texture", texture_ref)
        material.sphere = _resolve(model, root, index, material, "sphere", sphere_ref)
        toon_ref = material.toon_ref
        if not toon_ref and material.toon_shared is not None:
            toon_ref = f"toon{material.toon_shared + 1:02d}.bmp"
        shared = bool(toon_ref and _DEFAULT_TOON.match(toon_ref.strip()))
        material.toon = _resolve(model, root, index, material, "toon", toon_ref, quiet=shared)


def _resolve(
    model: Model,
    root: Path,
    index: int,
    material: Material,
    kind: str,
    ref: str | None,
    quiet: bool = False,
) -> Path | None:
    if not ref or not ref.strip():
        return None
    where = f"material {index} {material.name!r}: {kind} {ref.strip()!r}"
    try:
        path = resolve_reference(root, ref)
    except TexturePathError as error:
        model.warnings.append(f"{where} refused: {error.reason}")
        return None
    if path is None and not quiet:
        model.warnings.append(f"{where} not found")
    return path
