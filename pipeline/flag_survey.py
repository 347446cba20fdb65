"""How often each quality flag fires where nothing is wrong, and what it measures where something
is: every flag's measured values and false-positive rate on characters whose truth is known.

- the face models of a folder of real models (../shared/mmd: looked at, none has a defect a flag
  names, and their head boxes match a hand-checked table);
- procedural characters with buns, ornament clusters, headwear and misleading names
  (`VARIANTS`, cycled over the seeds): clean, except that an unnamed hat, beret or hood must
  raise `head_top_uncertain` (an unnamed cap, which hugs the hair, may);
- procedural characters broken in known ways (`DEFECTS`: an eyepatch, a mouth that barely
  opens, a missing or black face texture, a see-through skin, and a missing texture hidden
  behind the eyes, which must raise nothing): each must raise its flag.

`scripts/flag_rates.py` prints the figures the thresholds' derivations and the README cite.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

NONE: frozenset[str] = frozenset()
UNCERTAIN = frozenset({"head_top_uncertain"})

# (name, what it changes in a seed's spec, flags it must raise, flags it may raise)
VARIANTS: tuple[tuple[str, dict, frozenset[str], frozenset[str]], ...] = (
    ("plain", {}, NONE, NONE),
    ("top bun", {"ornament": "none", "bun": "top", "bun_size": 0.4}, NONE, NONE),
    ("back bun", {"ornament": "none", "bun": "back", "bun_size": 0.45}, NONE, NONE),
    ("odango", {"ornament": "none", "bun": "double", "bun_size": 0.35}, NONE, NONE),
    ("side bun, welded", {"bun": "side", "bun_size": 0.3, "bun_joined": True}, NONE, NONE),
    ("back bun, welded", {"ornament": "none", "bun": "back", "bun_joined": True}, NONE, NONE),
    ("cluster", {"ornament": "none", "bun": "back", "bun_ornaments": 7}, NONE, NONE),
    ("cluster 簪", {"bun": "back", "bun_ornaments": 5, "bun_ornament_name": "簪"}, NONE, NONE),
    ("hat named", {"headwear": "hat", "headwear_name": "帽子"}, NONE, NONE),
    ("cap named", {"headwear": "cap", "headwear_name": "cap"}, NONE, NONE),
    ("hood named", {"headwear": "hood", "headwear_name": "フード"}, NONE, NONE),
    ("beret named", {"headwear": "beret", "headwear_name": "ベレー"}, NONE, NONE),
    ("smile lifts the cheek", {"smile_cheek": 0.8}, NONE, NONE),
    ("face named 顔・耳", {"skin_name": "顔・耳"}, NONE, NONE),
    ("cap", {"ornament": "none", "headwear": "cap"}, NONE, UNCERTAIN),
    ("hat", {"ornament": "none", "headwear": "hat"}, UNCERTAIN, NONE),
    ("beret", {"ornament": "none", "headwear": "beret"}, UNCERTAIN, NONE),
    ("hood", {"ornament": "none", "headwear": "hood"}, UNCERTAIN, NONE),
)

Change = Callable[[Any, Any, dict], None]  # (spec, PMX data, texture images) -> None


def _quad(data: Any, centre, half: tuple[float, float], material, bone: int = 3) -> None:
    """Append a quad (both windings) facing -z at `centre` (the file's frame) as `material`,
    weighted to `bone` (頭 in procedural characters)."""
    x, y, z = centre
    w, h = half
    quad = np.array([[x - w, y - h, z], [x + w, y - h, z], [x + w, y + h, z], [x - w, y + h, z]])
    first = len(data.positions)
    data.positions = np.concatenate([data.positions, quad.astype(np.float32)])
    data.normals = np.concatenate([data.normals, np.tile([[0, 0, -1]], (4, 1)).astype(np.float32)])
    data.uvs = np.concatenate([data.uvs, np.zeros((4, 2), np.float32)])
    bones = np.zeros((4, 4), np.int32)
    bones[:, 0] = bone
    weights = np.zeros((4, 4), np.float32)
    weights[:, 0] = 1.0
    data.bone_indices = np.concatenate([data.bone_indices, bones])
    data.bone_weights = np.concatenate([data.bone_weights, weights])
    data.deform = np.concatenate([data.deform, np.zeros(4, np.uint8)])
    tris = np.array([[0, 1, 2], [0, 2, 3], [0, 2, 1], [0, 3, 2]]) + first
    data.triangles = np.concatenate([data.triangles, tris.astype(np.int32)])
    data.materials.append(dataclasses.replace(material, face_count=4))


def eyepatch(spec: Any, data: Any, images: dict) -> None:
    """An opaque quad over the character's left eye (+x), drawn last."""
    from mmd_loader.pmx_writer import PmxMaterial

    front = float(data.positions[:, 2].min()) - 0.05  # the file's frame: the face looks to -z
    half = (0.55 * spec.eye_x, 0.5 * spec.eye_x)
    _quad(data, (spec.eye_x, spec.eye_y, front), half, PmxMaterial("眼帯", 4, (0.1, 0.1, 0.1, 1)))


def tiny_mouth(spec: Any, data: Any, images: dict) -> None:
    for morph in data.morphs:
        if morph.name == "あ":
            morph.offsets = morph.offsets * 0.01


def missing_face_texture(spec: Any, data: Any, images: dict) -> None:
    data.textures[0] = data.textures[0].rsplit("\\", 1)[0] + "\\gone.png"


def hidden_missing_texture(spec: Any, data: Any, images: dict) -> None:
    """A textured quad inside the head behind the eyes, whose texture file is missing: painted
    or not, it changes no pixel."""
    from mmd_loader.pmx_writer import PmxMaterial

    data.textures.append(data.textures[0].rsplit("\\", 1)[0] + "\\eye_back.png")
    behind = spec.head_depth * 0.2  # inside the skull: +z is behind the face in the file
    material = PmxMaterial("目裏", 4, (1.0, 1.0, 1.0, 1.0), texture=len(data.textures) - 1)
    _quad(data, (0.0, spec.eye_y, behind), (1.5 * spec.eye_x, 0.5 * spec.eye_x), material)


def black_face(spec: Any, data: Any, images: dict) -> None:
    images["face.png"][..., :3] = 0


def see_through_skin(spec: Any, data: Any, images: dict) -> None:
    skin = data.materials[0]
    data.materials[0] = dataclasses.replace(skin, diffuse=(*skin.diffuse[:3], 0.5))


# (name, change to the built character, flags it must raise); on seed 7
DEFECTS: tuple[tuple[str, Change, frozenset[str]], ...] = (
    ("eyepatch", eyepatch, frozenset({"eye_closure_invisible"})),
    ("mouth barely opens", tiny_mouth, frozenset({"mouth_barely_opens"})),
    ("missing face texture", missing_face_texture, frozenset({"missing_texture_in_head"})),
    ("missing texture behind the eyes", hidden_missing_texture, NONE),
    ("black face", black_face, frozenset({"dark_face"})),
    ("see-through skin", see_through_skin, frozenset({"semi_transparent_head"})),
)
DEFECT_SEED = 7


def write_variant(spec: Any, folder: Path, change: Change | None = None) -> Path:
    """The character `spec` describes, `change`d after building, written to `folder`."""
    from characters import build_character, save_png
    from mmd_loader.pmx_writer import write_pmx

    data, images = build_character(spec, "tex")
    if change is not None:
        change(spec, data, images)
    (folder / "tex").mkdir(parents=True, exist_ok=True)
    for name, pixels in images.items():
        save_png(folder / "tex" / name, pixels)
    return write_pmx(folder / "character.pmx", data)


@dataclass
class Surveyed:
    """One character: its flags, what its truth requires and allows, and the values the
    thresholds apply to."""

    label: str
    kind: str  # "real", "procedural" or "defect"
    required: frozenset[str] = NONE
    allowed: frozenset[str] = NONE
    flags: list[str] = field(default_factory=list)
    values: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # why it could not be measured

    @property
    def false(self) -> set[str]:
        """Flags raised that the character's truth neither requires nor allows."""
        return set(self.flags) - self.required - self.allowed

    @property
    def missed(self) -> set[str]:
        """Flags its truth requires that were not raised."""
        return set(self.required) - set(self.flags)

    @property
    def clean(self) -> bool:
        return not self.required and not self.allowed


def procedural_specs(count: int) -> Iterator[tuple[str, Any, frozenset[str], frozenset[str]]]:
    """(label, spec, required flags, allowed flags) of procedural characters 0..count-1, each
    with the variant its seed picks (seed mod the number of variants)."""
    from characters import spec_for_seed

    for seed in range(count):
        name, changes, required, allowed = VARIANTS[seed % len(VARIANTS)]
        spec = dataclasses.replace(spec_for_seed(seed), **changes)
        yield f"seed {seed}: {name}", spec, required, allowed


def real_models(folder: Path) -> list[Path]:
    """The .pmd/.pmx files under `folder`, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".pmd", ".pmx"))


def survey(
    renderer: Any,
    models: Iterable[Path],
    procedural: int,
    defects: bool = True,
    progress: Callable[[Surveyed], None] | None = None,
) -> list[Surveyed]:
    """Survey every face model among `models`, `procedural` procedural characters and (with
    `defects`) the broken ones, rendered in `renderer` (at the quality size)."""
    from characters import spec_for_seed
    from mmd_loader import ModelLoadError, load

    rows: list[Surveyed] = []

    def add(model: Any, row: Surveyed) -> None:
        if survey_model(renderer, model, row):
            rows.append(row)
            if progress:
                progress(row)

    for path in models:
        try:
            model = load(path)
        except ModelLoadError:
            continue
        add(model, Surveyed(str(path), "real"))
    with tempfile.TemporaryDirectory() as folder:
        for k, (label, spec, required, allowed) in enumerate(procedural_specs(procedural)):
            model = load(write_variant(spec, Path(folder) / f"p{k}"))
            add(model, Surveyed(label, "procedural", required, allowed))
        for k, (name, change, required) in enumerate(DEFECTS if defects else ()):
            spec = spec_for_seed(DEFECT_SEED)
            model = load(write_variant(spec, Path(folder) / f"d{k}", change))
            add(model, Surveyed(name, "defect", required))
    return rows


def survey_model(renderer: Any, model: Any, row: Surveyed) -> bool:
    """Fill `row` with the model's flags and values; False for a model without a face (no eye
    or mouth morph: not a character)."""
    from mmd_loader import detect_face
    from pipeline.quality import flags_of, measure

    roles = detect_face(model)
    if not roles.morphs:
        return False
    if not roles.usable:
        row.problems = list(roles.problems)
        return True
    row.values.update(geometry_values(model, roles))
    renderer.set_model(model, roles)
    measures = measure(renderer, model, roles)
    row.flags = [f.code for f in roles.flags] + [f["code"] for f in flags_of(measures, roles)]
    row.values.update({f"change {role}": value for role, value in measures.change.items()})
    eyes = [v for r, v in measures.change.items() if r != "mouth"]
    if len(eyes) == 2 and max(eyes) > 0:
        row.values["eye change ratio"] = min(eyes) / max(eyes)
        row.values["change of the less-changed eye"] = min(eyes)
    if measures.dark is not None:
        row.values["dark share"] = measures.dark
    row.values["semi-transparent share"] = measures.semi
    if measures.missing:
        row.values["missing texture seen"] = max(seen for *_, seen in measures.missing)
    return True


def geometry_values(model: Any, roles: Any) -> dict[str, float]:
    """The values face detection's flags apply to: the box's height and width per eye
    separation, the lid arch of each chosen closure and of the smile winks, how far below the
    top an uncertain top's inner dome ends (0 when the top is certain)."""
    from mmd_loader.face import eye_centre
    from poses.roles import EYE_ROLES

    box, out = roles.head_box, {}
    if all(r in roles.morphs for r in EYE_ROLES):
        left, right = (eye_centre(model, roles, r) for r in EYE_ROLES)
        separation = float(abs(left[0] - right[0]))
        out["height / eye separation"] = box.height / separation
        out["width / eye separation"] = 2 * box.half_width / separation
    neutral, smiles = [], []
    for choice in roles.eyes.values():
        for candidate in choice.candidates:
            if candidate.arch is None:
                continue
            if candidate.morph == choice.chosen:
                neutral.append(candidate.arch)
            elif candidate.smile:
                smiles.append(candidate.arch)
    if neutral:
        out["arch of the chosen closures (max)"] = max(neutral)
    if smiles:
        out["arch of the smile winks (min)"] = min(smiles)
    out["top gap"] = (
        0.0 if box.uncertain_top is None else (box.top - box.uncertain_top) / box.height
    )
    return out


def flag_rates(rows: list[Surveyed], codes: Iterable[str]) -> dict[str, dict[str, dict]]:
    """Per flag and per kind: characters, times fired, times fired falsely (neither required
    nor allowed), times missed (required, not fired), and the false-positive rate."""
    out: dict[str, dict[str, dict]] = {}
    for code in codes:
        out[code] = {}
        for kind in ("real", "procedural", "defect"):
            mine = [r for r in rows if r.kind == kind and not r.problems]
            false = sum(code in r.false for r in mine)
            out[code][kind] = {
                "characters": len(mine),
                "fired": sum(code in r.flags for r in mine),
                "false": false,
                "missed": sum(code in r.missed for r in mine),
                "rate": false / len(mine) if mine else 0.0,
            }
    return out


def value_ranges(rows: list[Surveyed]) -> dict[str, dict[str, list[float]]]:
    """Per value and kind, the values measured on the clean characters (truth: no flag) and,
    as kind "defect: NAME", on each defect."""
    out: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        if row.problems or not (row.clean or row.kind == "defect"):
            continue
        kind = f"defect: {row.label}" if row.kind == "defect" else row.kind
        for name, value in row.values.items():
            out.setdefault(name, {}).setdefault(kind, []).append(value)
    return out
