"""Texture references as MMD models write them, resolved to files inside the model's folder.

Authors write paths on Windows: backslashes, any letter case, Shift-JIS names that may reach us in
another Unicode normal form (NFD from macOS zips, half-width katakana, cp932 vs Shift-JIS code
points). A reference must stay inside the model's folder: `..` that leaves it, absolute paths,
drive letters, UNC paths and symlinks that point outside are refused with `TexturePathError`.

Redistributions change textures as they were meant, and two changes are undone here:
- **Converted files.** A reference whose file is missing is looked up by its stem with the other
  image extensions in the same folder (`X.tga` missing, `X.png` beside it): the first of
  `SUBSTITUTE_SUFFIXES` in that order is used, with a note in the model's warnings. Sphere
  extensions (.sph/.spa) are never substituted: they decide how the sphere is applied.
- **Split alpha.** `alpha_sibling` finds `NAME.alpha.png` beside `NAME.ext` or `NAME.jpga.ext`
  (a repack convention: the colour as JPEG, the alpha as a separate PNG); the renderer takes the
  alpha of a colour-only texture from it.

`describe_textures` lists what every material references, which file is used and its status, for
`thagen inspect --json`.
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mmd_loader.model import Material, Model, SphereMode

SPHERE_SUFFIXES = (".sph", ".spa")
# Extensions a missing texture may have been converted to, in order of preference.
SUBSTITUTE_SUFFIXES = (".png", ".tga", ".bmp", ".jpg", ".jpeg", ".dds")
ALPHA_SUFFIX = ".alpha.png"
SLOTS = ("texture", "sphere", "toon")
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
    return _inside(root, ref, path)


def _inside(root: Path, ref: str, path: Path) -> Path | None:
    """`path` if it is a file inside `root` (after symlinks), None if it is not a file."""
    if not path.resolve().is_relative_to(Path(root).resolve()):
        raise TexturePathError(ref, "a symlink leads outside the model's folder")
    return path if path.is_file() else None


def find_substitute(root: Path, ref: str) -> Path | None:
    """A file beside the missing `ref` with the same stem and another image extension.

    The folder part of `ref` must exist; the stem is compared as file names are (case and
    Unicode form folded). Among several, the first of `SUBSTITUTE_SUFFIXES` wins (then the
    sorted name). Raises `TexturePathError` like `resolve_reference`.
    """
    ref = ref.strip()
    parts = _components(ref)
    if not parts:
        return None
    folder = Path(root)
    for part in parts[:-1]:
        found = _match(folder, part)
        if found is None:
            return None
        folder = folder / found
    stem, suffix = os.path.splitext(parts[-1])
    if suffix.lower() in SPHERE_SUFFIXES:
        return None
    try:
        entries = sorted(os.listdir(folder))
    except OSError:
        return None
    key, ranked = _fold(stem), []
    for entry in entries:
        entry_stem, entry_suffix = os.path.splitext(entry)
        rank = _suffix_rank(entry_suffix)
        if rank is not None and entry_suffix.lower() != suffix.lower() and _fold(entry_stem) == key:
            ranked.append((rank, entry))
    for _, entry in sorted(ranked):
        path = _inside(root, ref, folder / entry)
        if path is not None:
            return path
    return None


def _suffix_rank(suffix: str) -> int | None:
    suffix = suffix.lower()
    return SUBSTITUTE_SUFFIXES.index(suffix) if suffix in SUBSTITUTE_SUFFIXES else None


def alpha_sibling(texture: Path) -> Path | None:
    """`NAME.alpha.png` beside `texture` = `NAME.ext` or `NAME.jpga.ext`, or None.

    Names are matched as file names are (case and Unicode form folded). The sibling must be a
    file in the same folder, also after following symlinks.
    """
    texture = Path(texture)
    base = os.path.splitext(texture.name)[0]
    names = [base + ALPHA_SUFFIX]
    inner, marker = os.path.splitext(base)
    marked = len(marker) > 2 and marker.lower().endswith("a")  # NAME.jpga.jpg, NAME.pnga.png
    if inner and marked and _suffix_rank(marker[:-1]) is not None:
        names.append(inner + ALPHA_SUFFIX)
    folder = texture.parent
    for name in names:
        found = _match(folder, name)
        if found is None or _fold(found) == _fold(texture.name):
            continue
        path = folder / found
        if path.resolve().parent == folder.resolve() and path.is_file():
            return path
    return None


@dataclass(frozen=True)
class TextureLookup:
    """What one reference resolves to.

    `status`: "ok" (the file named), "substituted" (`path` is a file beside the missing one with
    another extension), "missing", "refused" (escapes the folder; `detail` says how), or
    "builtin" (one of MMD's shared toons, absent: the renderer draws its own ramp).
    """

    reference: str
    path: Path | None
    status: str
    detail: str = ""


def lookup(root: Path, ref: str, *, shared_toon: bool = False) -> TextureLookup:
    """Resolve `ref` inside `root`, falling back to a converted file beside it."""
    ref = ref.strip()
    try:
        path = resolve_reference(root, ref)
        if path is not None:
            return TextureLookup(ref, path, "ok")
        path = find_substitute(root, ref)
    except TexturePathError as error:
        return TextureLookup(ref, None, "refused", error.reason)
    if path is not None:
        name = path.relative_to(root).as_posix()
        return TextureLookup(ref, path, "substituted", f"not found; using {name!r} beside it")
    if shared_toon:
        return TextureLookup(ref, None, "builtin", "MMD's shared toon, drawn as the built-in ramp")
    return TextureLookup(ref, None, "missing", "not found")


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
    root = texture_root(model)
    for index, material in enumerate(model.materials):
        found = material_lookups(model, material, root)
        for slot in SLOTS:
            result = found.get(slot)
            setattr(material, slot, result.path if result else None)
            if result is None or result.status in ("ok", "builtin"):
                continue
            where = f"material {index} {material.name!r}: {slot} {result.reference!r}"
            if result.status == "refused":
                model.warnings.append(f"{where} refused: {result.detail}")
            else:
                model.warnings.append(f"{where} {result.detail}")


def texture_root(model: Model) -> Path:
    """The folder the model's textures resolve inside."""
    return model.root if model.root is not None else Path(model.path).parent


def material_references(model: Model, material: Material) -> dict[str, str]:
    """The texture, sphere and toon references of `material` as MMD reads them (PMD's
    `tex*sphere` split, a shared toon index named `toonNN.bmp`); absent slots are left out."""
    texture_ref, sphere_ref = material.texture_ref, material.sphere_ref
    if texture_ref and (model.format == "pmd" or "*" in texture_ref):
        texture_ref, split_sphere = split_pmd_texture(texture_ref)
        sphere_ref = sphere_ref or split_sphere
    toon_ref = material.toon_ref
    if not toon_ref and material.toon_shared is not None:
        toon_ref = f"toon{material.toon_shared + 1:02d}.bmp"
    refs = {"texture": texture_ref, "sphere": sphere_ref, "toon": toon_ref}
    return {slot: ref.strip() for slot, ref in refs.items() if ref and ref.strip()}


def material_lookups(
    model: Model, material: Material, root: Path | None = None
) -> dict[str, TextureLookup]:
    """`lookup` of each reference of `material` (see `material_references`)."""
    root = texture_root(model) if root is None else root
    return {
        slot: lookup(root, ref, shared_toon=slot == "toon" and bool(_DEFAULT_TOON.match(ref)))
        for slot, ref in material_references(model, material).items()
    }


def describe_textures(model: Model) -> list[dict]:
    """Per material: index, name, and for each of texture/sphere/toon the reference, the file
    used (relative to the model's folder), its status and declared size.

    Status as in `TextureLookup`, plus "unreadable": the file is there but its header cannot be
    read (not an image, corrupt, over the size limits). Only headers are read: a body that fails
    to decode shows when the renderer loads it (`Renderer.texture_problems`). The texture slot
    also names its `alpha` sibling (see `alpha_sibling`), which the renderer uses when the
    texture itself has no alpha. A slot the material does not use is None.
    """
    from mmd_loader.images import ImageReadError, image_info

    root = texture_root(model)
    rows = []
    for index, material in enumerate(model.materials):
        row: dict = {"material": index, "name": material.name}
        found = material_lookups(model, material, root)
        for slot in SLOTS:
            result = found.get(slot)
            if result is None:
                row[slot] = None
                continue
            entry = {
                "reference": result.reference,
                "file": _relative(result.path, root),
                "status": result.status,
                "detail": result.detail,
                "size": None,
            }
            if result.path is not None:
                try:
                    info = image_info(result.path)
                    entry["size"] = [info.width, info.height]
                except ImageReadError as error:
                    entry["status"], entry["detail"] = "unreadable", error.reason
            if slot == "texture":
                sibling = alpha_sibling(result.path) if result.path is not None else None
                entry["alpha"] = _relative(sibling, root)
            row[slot] = entry
        rows.append(row)
    return rows


def _relative(path: Path | None, root: Path) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


def reference_stem(ref: str | None) -> str:
    """A texture reference's file name without folders or extension (`tex\\face2.bmp` → `face2`);
    "" for none."""
    if not ref:
        return ""
    return re.split(r"[\\/]", ref.strip())[-1].rsplit(".", 1)[0]


def material_words(material: Material) -> str:
    """What names a material: its name, English name and texture's file name, one string."""
    return f"{material.name} {material.english_name} {reference_stem(material.texture_ref)}"
