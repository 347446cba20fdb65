"""Expression overlays: a pale gradient over the forehead, an anger mark, a blush, tears, sweat.

A PMX hides them at rest (alpha 0) and shows them with a material morph; a PMD has no material
morphs, so the PMD variant of such a model draws them in every pose (PMD's own way, geometry
tucked behind the face that a vertex morph pulls out, hides them at rest and is left alone).
`expression_overlays` finds them by three kinds of evidence:

- a sibling: a PMX in the same folder whose material morphs raise a material from alpha 0,
  matched to this model's material by name, else by texture and triangle count, else by index
  and triangle count (`SIBLING_FILES` files at most, each loaded once per process);
- a name: the material's name, English name or texture names an expression overlay (青ざめ,
  怒りマーク, 照れ, 赤面, 涙, 汗, pale, anger, blush, tear, sweat, ...);
- geometry: a thin layer on the face's skin (`mmd_loader.face_parts`).

A material with a sibling's evidence, or named as an overlay and lying on the face, is
`hidden` (the renderer draws it at alpha 0, as the PMX does at rest). One named as an overlay
elsewhere (a sweat drop beside the head) is a `suspect`: shown, and flagged
`overlay_visible` when it changes pixels (`pipeline.quality`). An unnamed layer on the face with
no sibling to say otherwise is part of the design (Lat式ミク's shade under its bangs).
Materials the face roles' morphs move, and materials a vertex morph moves (PMD's way), are
never hidden.
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmd_loader.face_parts import FaceParts, face_parts
from mmd_loader.model import Model, MorphKind
from mmd_loader.roles import FaceRoles
from mmd_loader.textures import material_words, reference_stem

SIBLING_FILES = 8  # PMX files of a folder read as siblings, at most
HIDDEN_ALPHA = 0.01  # a material at or below this alpha is hidden at rest
# Words naming an expression overlay: Japanese anywhere in a name, Latin as whole words.
OVERLAY_WORDS_JA = (
    "青ざめ",
    "蒼ざめ",
    "青ザメ",
    "怒りマーク",
    "怒マーク",
    "怒筋",
    "青筋",
    "照れ",
    "赤面",
    "頬染め",
    "涙",
    "汗",
    "縦線",
)
OVERLAY_WORDS_LATIN = frozenset(
    (
        "pale",
        "aozame",
        "anger",
        "angry",
        "ikari",
        "blush",
        "tere",
        "sekimen",
        "tear",
        "tears",
        "namida",
        "sweat",
        "ase",
        "gloom",
    )
)
_GENERIC = re.compile(r"^(material|材質|mat)[\s_]*\d+$", re.IGNORECASE)


@dataclass(frozen=True)
class Overlays:
    """Material indices: `hidden` at rest, `suspects` shown but named like an overlay; `why`
    says, per material, what the evidence was."""

    hidden: frozenset[int] = frozenset()
    suspects: frozenset[int] = frozenset()
    why: tuple[tuple[int, str], ...] = ()


def is_overlay_name(text: str) -> bool:
    """Whether a material or texture name names an expression overlay."""
    key = unicodedata.normalize("NFKC", text).lower()
    if any(word in key for word in OVERLAY_WORDS_JA):
        return True
    return any(word in OVERLAY_WORDS_LATIN for word in re.findall(r"[a-z]+", key))


def expression_overlays(model: Model, roles: FaceRoles, face: FaceParts | None = None) -> Overlays:
    """The expression overlays of `model` drawn at rest (see the module docstring)."""
    if not model.materials:
        return Overlays()
    face = face if face is not None else face_parts(model, roles)
    moved = _moved_by_vertex_morphs(model)
    raised_here = _raised_by_material_morphs(model)
    hidden: dict[int, str] = {}
    suspects: dict[int, str] = {}
    for i, reason in _sibling_evidence(model).items():
        if i not in face.skin and i not in raised_here:
            hidden[i] = reason
    for i, m in enumerate(model.materials):
        if i in hidden or i in face.skin or i in moved or i in raised_here:
            continue
        if float(m.diffuse[3]) <= HIDDEN_ALPHA or m.face_count == 0:
            continue
        if not is_overlay_name(material_words(m)):
            continue
        label = m.name or m.english_name or reference_stem(m.texture_ref)
        if i in face.layers:
            hidden[i] = f"named {label!r}, a layer on the face"
        else:
            suspects[i] = f"named {label!r}, not on the face"
    why = tuple(sorted({**hidden, **suspects}.items()))
    return Overlays(frozenset(hidden), frozenset(suspects), why)


def _moved_by_vertex_morphs(model: Model) -> set[int]:
    """Materials with a vertex a vertex morph moves (expressions shown by moving geometry)."""
    moved = np.zeros(len(model.positions), bool)
    for m in model.morphs:
        if m.kind == MorphKind.VERTEX and len(m.indices):
            indices = m.indices[np.linalg.norm(m.offsets, axis=1) > 0]
            moved[indices[(indices >= 0) & (indices < len(moved))]] = True
    out = set()
    for i, material in enumerate(model.materials):
        tris = model.triangles[material.face_start : material.face_start + material.face_count]
        if len(tris) and moved[tris].any():
            out.add(i)
    return out


def _raised_by_material_morphs(model: Model) -> set[int]:
    """Materials whose alpha one of the model's own material morphs raises from hidden."""
    out = set()
    for morph in model.morphs:
        if morph.kind != MorphKind.MATERIAL:
            continue
        for entry in morph.material_offsets:
            targets = range(len(model.materials)) if entry.material < 0 else [entry.material]
            for i in targets:
                if 0 <= i < len(model.materials) and _raises(model.materials[i], entry):
                    out.add(i)
    return out


def _raises(material, entry) -> bool:
    """Whether a material morph entry takes `material` from hidden to visible."""
    if float(material.diffuse[3]) > HIDDEN_ALPHA:
        return False
    return entry.operation == 1 and float(entry.diffuse[3]) > HIDDEN_ALPHA


def _sibling_evidence(model: Model) -> dict[int, str]:
    """{material index: reason} for this model's materials that a sibling PMX hides at rest and
    raises with a material morph, while this model draws them at rest."""
    if any(m.kind == MorphKind.MATERIAL for m in model.morphs):
        return {}  # a model with material morphs of its own hides what it means to
    folder = Path(model.path).parent
    out: dict[int, str] = {}
    for path in sibling_files(Path(model.path)):
        sibling = _load_sibling(str(path), *_stamp(path))
        if sibling is None:
            continue
        for j in sorted(_raised_by_material_morphs(sibling)):
            i = _match(model, sibling, j)
            if i is None or i in out or float(model.materials[i].diffuse[3]) <= HIDDEN_ALPHA:
                continue
            name = sibling.materials[j].name
            out[i] = f"hidden at rest in {path.relative_to(folder)} (material {name!r})"
    return out


def sibling_files(path: Path) -> list[Path]:
    """The PMX files beside `path` (not itself), regular files inside its folder, sorted; at
    most SIBLING_FILES of them."""
    folder = path.parent
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []
    real_folder = folder.resolve()
    out = []
    for entry in entries:
        if not entry.name.lower().endswith(".pmx") or entry.name == path.name:
            continue
        candidate = folder / entry.name
        try:
            if candidate.resolve().parent != real_folder or not entry.is_file():
                continue
        except OSError:
            continue
        out.append(candidate)
        if len(out) == SIBLING_FILES:
            break
    return out


def _stamp(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except OSError:
        return (-1, -1)
    return (info.st_size, info.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _load_sibling(path: str, size: int, mtime: int) -> Model | None:
    """A sibling model, loaded once per (path, size, mtime); None when it cannot be loaded."""
    from mmd_loader.errors import ModelLoadError
    from mmd_loader.loader import load

    if size < 0:
        return None
    try:
        return load(path)
    except (ModelLoadError, OSError, ValueError):
        return None


def _match(model: Model, sibling: Model, j: int) -> int | None:
    """This model's material standing for the sibling's material `j`."""
    theirs = sibling.materials[j]
    if not _GENERIC.match(theirs.name.strip() or "material0"):
        named = [i for i, m in enumerate(model.materials) if m.name == theirs.name]
        if len(named) == 1:
            return named[0]
    texture = reference_stem(theirs.texture_ref).lower()
    if texture:
        count = theirs.face_count
        same = [
            i
            for i, m in enumerate(model.materials)
            if m.face_count == count and reference_stem(m.texture_ref).lower() == texture
        ]
        if len(same) == 1:
            return same[0]
    if j < len(model.materials) and model.materials[j].face_count == theirs.face_count:
        return j
    return None
