"""Pose schemas: which parameters a dataset varies, their ranges and laws, and what each drives.

A schema is YAML data (see `pipeline/schemas/*.yaml`). `resolve()` binds it to one model: each
parameter becomes a `Binding` (a morph key or a bone rotation) or `None` when the model lacks it,
and `to_pose()` turns sampled values into the renderer's morph weights and rotations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
KINDS = ("morph", "rotation")
LAWS = ("uniform", "abs")
AXES = {"x": 0, "y": 1, "z": 2}


class SchemaError(ValueError):
    """A schema file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: str  # "morph" | "rotation"
    range: tuple[float, float]
    law: str = "uniform"  # "uniform" | "abs" (density ∝ |x|, symmetric range)
    roles: tuple[str, ...] = ()  # morph: face roles (left_eye, right_eye, mouth)
    morphs: tuple[str, ...] = ()  # morph: model morph names, first present wins
    bone: str = ""  # rotation: "head", "neck" or a bone name
    axis: str = ""  # rotation: "x" | "y" | "z"
    degrees: float = 0.0  # rotation: degrees at value 1
    group: str | None = None  # exclusive group: one member per example is non-zero


@dataclass(frozen=True)
class Schema:
    name: str
    parameters: tuple[Parameter, ...]
    ambient: tuple[float, float] = (0.5, 0.5)
    directional: tuple[float, float] = (0.5, 0.5)
    groups: dict[str, tuple[int, ...]] = field(default_factory=dict, compare=False)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def to_json(self) -> dict[str, Any]:
        """The schema as `dataset.json` records it (docs/contracts.md)."""
        return {
            "name": self.name,
            "parameters": [
                {"name": p.name, "kind": p.kind, "range": list(p.range)} for p in self.parameters
            ],
            "lighting": {"ambient": list(self.ambient), "directional": list(self.directional)},
        }


@dataclass(frozen=True)
class Binding:
    """How one parameter drives one model: a morph key, or a rotation of a bone key."""

    kind: str
    key: str  # morph: role or morph name; rotation: "head", "neck" or bone name
    axis: int = 0
    degrees: float = 0.0


def load_schema(name_or_path: str | Path) -> Schema:
    """A shipped schema by name (`tha1`, `tha2`) or a YAML file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SCHEMA_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            shipped = sorted(p.stem for p in SCHEMA_DIR.glob("*.yaml"))
            raise SchemaError(f"unknown schema {name_or_path!r} (shipped: {', '.join(shipped)})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SchemaError(f"{path}: cannot read schema: {error}") from error
    return parse_schema(data, str(path))


def parse_schema(data: Any, source: str = "<schema>") -> Schema:
    """Validate schema data (as loaded from YAML)."""
    if not isinstance(data, dict) or not isinstance(data.get("parameters"), list):
        raise SchemaError(f"{source}: expected a mapping with a 'parameters' list")
    params, seen = [], set()
    for i, raw in enumerate(data["parameters"]):
        param = _parameter(raw, f"{source}: parameters[{i}]")
        if param.name in seen:
            raise SchemaError(f"{source}: parameter {param.name!r} appears twice")
        seen.add(param.name)
        params.append(param)
    lighting = data.get("lighting") or {}
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(params):
        if p.group:
            groups.setdefault(p.group, []).append(i)
    return Schema(
        name=str(data.get("name") or Path(source).stem),
        parameters=tuple(params),
        ambient=_range(lighting.get("ambient", [0.5, 0.5]), f"{source}: lighting.ambient"),
        directional=_range(
            lighting.get("directional", [0.5, 0.5]), f"{source}: lighting.directional"
        ),
        groups={g: tuple(v) for g, v in sorted(groups.items())},
    )


def _parameter(raw: Any, where: str) -> Parameter:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise SchemaError(f"{where}: expected a mapping with a 'name'")
    where = f"{where} ({raw['name']})"
    kind, law = raw.get("kind"), raw.get("law", "uniform")
    if kind not in KINDS:
        raise SchemaError(f"{where}: kind must be one of {KINDS}, got {kind!r}")
    if law not in LAWS:
        raise SchemaError(f"{where}: law must be one of {LAWS}, got {law!r}")
    lo, hi = _range(raw.get("range"), f"{where}: range")
    if law == "abs" and lo != -hi:
        raise SchemaError(f"{where}: law 'abs' needs a symmetric range, got [{lo}, {hi}]")
    common = {"name": raw["name"], "kind": kind, "range": (lo, hi), "law": law}
    if raw.get("group") is not None:
        common["group"] = str(raw["group"])
    if kind == "morph":
        roles, morphs = tuple(raw.get("roles") or ()), tuple(raw.get("morphs") or ())
        if not roles and not morphs:
            raise SchemaError(f"{where}: a morph parameter needs 'roles' or 'morphs'")
        return Parameter(**common, roles=roles, morphs=tuple(str(m) for m in morphs))
    bone, axis = raw.get("bone"), raw.get("axis")
    if not isinstance(bone, str) or axis not in AXES:
        raise SchemaError(f"{where}: a rotation needs 'bone' and 'axis' in x, y, z")
    degrees = raw.get("degrees")
    if not isinstance(degrees, (int, float)):
        raise SchemaError(f"{where}: a rotation needs numeric 'degrees'")
    return Parameter(**common, bone=bone, axis=axis, degrees=float(degrees))


def _range(value: Any, where: str) -> tuple[float, float]:
    ok = isinstance(value, (list, tuple)) and len(value) == 2
    if not ok or not all(isinstance(v, (int, float)) for v in value) or value[0] > value[1]:
        raise SchemaError(f"{where}: expected [lo, hi] with lo <= hi, got {value!r}")
    return float(value[0]), float(value[1])


def resolve(schema: Schema, model: Any, roles: Any) -> dict[str, Binding | None]:
    """Bind every parameter to `model` (an mmd_loader Model) and its `FaceRoles`; None = absent."""
    from mmd_loader.model import MorphKind
    from mmd_loader.morph_names import normalize

    morph_names: dict[str, str] = {}
    for m in model.morphs:
        if m.kind in (MorphKind.VERTEX, MorphKind.GROUP):
            morph_names.setdefault(normalize(m.name), m.name)
    bones = {"head": roles.head, "neck": roles.neck}
    out: dict[str, Binding | None] = {}
    for p in schema.parameters:
        binding = None
        if p.kind == "morph":
            role = next((r for r in p.roles if r in roles.morphs), None)
            if role is not None:
                binding = Binding("morph", role)
            else:
                name = next(
                    (morph_names[normalize(n)] for n in p.morphs if normalize(n) in morph_names),
                    None,
                )
                binding = Binding("morph", name) if name is not None else None
        else:
            index = bones[p.bone] if p.bone in bones else model.bone_index(p.bone)
            if index >= 0:
                binding = Binding("rotation", p.bone, AXES[p.axis], p.degrees)
        out[p.name] = binding
    return out


def to_pose(
    values: dict[str, float], bindings: dict[str, Binding | None]
) -> tuple[dict[str, float], dict[str, tuple[float, float, float]]]:
    """(morph weights, rotations in degrees) for the renderer's `Pose`; absent ones dropped."""
    morphs: dict[str, float] = {}
    rotations: dict[str, list[float]] = {}
    for name, value in values.items():
        b = bindings.get(name)
        if b is None:
            continue
        if b.kind == "morph":
            morphs[b.key] = morphs.get(b.key, 0.0) + value
        else:
            rotations.setdefault(b.key, [0.0, 0.0, 0.0])[b.axis] += value * b.degrees
    return morphs, {k: (v[0], v[1], v[2]) for k, v in rotations.items()}
