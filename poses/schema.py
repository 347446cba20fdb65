"""Pose schemas: the one definition of a pose's parameters, their ranges, laws and what drives
them.

A schema is YAML data (`poses/schemas/*.yaml`, or a user's file). Every consumer takes a
parameter's name, range and degrees from here: `--pose` strings and pose CSVs (`poses.text`,
`poses.sequence`), the renderer's binding to a model (`render.binding`), dataset generation
(`pipeline`), the face tracker's scaling (`tracking`) and training (through `dataset.json`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from poses.roles import BONE_ROLES, FACE_ROLES

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
DEFAULT_SCHEMA = "tha1"
KINDS = ("morph", "rotation")
LAWS = ("uniform", "abs")
AXES = {"x": 0, "y": 1, "z": 2}
MAX_SCHEMA_BYTES = 1 << 20


class SchemaError(ValueError):
    """A schema file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: str  # "morph" | "rotation"
    range: tuple[float, float]
    law: str = "uniform"  # "uniform" | "abs" (density ∝ |x|, symmetric range)
    roles: tuple[str, ...] = ()  # morph: face roles (poses.roles.FACE_ROLES)
    morphs: tuple[str, ...] = ()  # morph: model morph names, first present wins
    bone: str = ""  # rotation: a bone role ("head", "neck") or a bone name
    axis: str = ""  # rotation: "x" | "y" | "z"
    degrees: float = 0.0  # rotation: degrees at value 1
    group: str | None = None  # exclusive group: one member per example is non-zero

    @property
    def neutral(self) -> float:
        """The value that leaves the model at rest: 0 when the range holds it, else its end."""
        lo, hi = self.range
        return min(max(0.0, lo), hi)

    def contains(self, value: float) -> bool:
        lo, hi = self.range
        return lo <= value <= hi


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

    @property
    def ranges(self) -> dict[str, tuple[float, float]]:
        return {p.name: p.range for p in self.parameters}

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(f"schema {self.name!r} has no parameter {name!r}")

    def of_kind(self, kind: str) -> list[Parameter]:
        return [p for p in self.parameters if p.kind == kind]

    def neutral(self) -> dict[str, float]:
        """Every parameter at its neutral value (the rest pose)."""
        return {p.name: p.neutral for p in self.parameters}

    def to_json(self) -> dict[str, Any]:
        """The schema as `dataset.json` records it (docs/contracts.md)."""
        return {
            "name": self.name,
            "parameters": [
                {"name": p.name, "kind": p.kind, "range": list(p.range)} for p in self.parameters
            ],
            "lighting": {"ambient": list(self.ambient), "directional": list(self.directional)},
        }

    def to_data(self) -> dict[str, Any]:
        """Everything `parse_schema` reads, so a schema can travel with a dataset or checkpoint."""
        params = []
        for p in self.parameters:
            item: dict[str, Any] = {"name": p.name, "kind": p.kind, "range": list(p.range)}
            item["law"] = p.law
            if p.kind == "morph":
                item.update(roles=list(p.roles), morphs=list(p.morphs))
            else:
                item.update(bone=p.bone, axis=p.axis, degrees=p.degrees)
            if p.group is not None:
                item["group"] = p.group
            params.append(item)
        return {
            "name": self.name,
            "parameters": params,
            "lighting": {"ambient": list(self.ambient), "directional": list(self.directional)},
        }


def shipped_schemas() -> list[str]:
    return sorted(p.stem for p in SCHEMA_DIR.glob("*.yaml"))


def load_schema(name_or_path: str | Path) -> Schema:
    """A shipped schema by name (`tha1`, `tha2`, …) or a YAML file (parsed once per process while
    the file is unchanged: parsing costs ~35 ms, which per shard task was a few ms per example)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SCHEMA_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            shipped = ", ".join(shipped_schemas())
            raise SchemaError(f"unknown schema {str(name_or_path)!r} (shipped: {shipped})")
    try:
        stat = path.stat()
    except OSError as error:
        raise SchemaError(f"{path}: cannot read schema: {error.strerror or error}") from None
    return _load_file(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _load_file(path: str, _mtime: int, size: int) -> Schema:
    if size > MAX_SCHEMA_BYTES:
        raise SchemaError(f"{path}: {size} bytes is more than a schema may have")
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise SchemaError(f"{path}: cannot read schema: {error}") from error
    return parse_schema(data, path)


def parse_schema(data: Any, source: str = "<schema>") -> Schema:
    """Validate schema data (as loaded from YAML or from `Schema.to_data`)."""
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
    if not isinstance(lighting, dict):
        raise SchemaError(f"{source}: lighting must be a mapping")
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


def schema_from_json(data: Any, source: str = "dataset.json") -> Schema:
    """A schema as `Schema.to_json` records it (names, kinds, ranges, lighting): enough to read
    and check pose values — pose strings, pose CSVs, training — not to bind a model."""
    if not isinstance(data, dict) or not isinstance(data.get("parameters"), list):
        raise SchemaError(f"{source}: schema: expected a mapping with a 'parameters' list")
    params, seen = [], set()
    for i, raw in enumerate(data["parameters"]):
        where = f"{source}: schema.parameters[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise SchemaError(f"{where}: expected a mapping with a 'name'")
        if raw.get("kind") not in KINDS:
            raise SchemaError(f"{where}: kind must be one of {KINDS}, got {raw.get('kind')!r}")
        if raw["name"] in seen:
            raise SchemaError(f"{where}: parameter {raw['name']!r} appears twice")
        seen.add(raw["name"])
        params.append(Parameter(raw["name"], raw["kind"], _range(raw.get("range"), where)))
    lighting = data.get("lighting") or {}
    if not isinstance(lighting, dict):
        raise SchemaError(f"{source}: schema.lighting must be a mapping")
    return Schema(
        name=str(data.get("name") or "schema"),
        parameters=tuple(params),
        ambient=_range(lighting.get("ambient", [0.5, 0.5]), f"{source}: lighting.ambient"),
        directional=_range(lighting.get("directional", [0.5, 0.5]), f"{source}: directional"),
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
        unknown = [r for r in roles if r not in FACE_ROLES]
        if unknown:
            raise SchemaError(f"{where}: unknown role(s) {unknown}; roles are {FACE_ROLES}")
        return Parameter(**common, roles=roles, morphs=tuple(str(m) for m in morphs))
    bone, axis = raw.get("bone"), raw.get("axis")
    if not isinstance(bone, str) or not bone or axis not in AXES:
        raise SchemaError(
            f"{where}: a rotation needs 'bone' ({', '.join(BONE_ROLES)} or a bone name) and "
            "'axis' in x, y, z"
        )
    degrees = raw.get("degrees")
    if isinstance(degrees, bool) or not isinstance(degrees, (int, float)):
        raise SchemaError(f"{where}: a rotation needs numeric 'degrees'")
    if not -180.0 <= float(degrees) <= 180.0:
        raise SchemaError(f"{where}: degrees must be in [-180, 180], got {degrees}")
    return Parameter(**common, bone=bone, axis=axis, degrees=float(degrees))


def _range(value: Any, where: str) -> tuple[float, float]:
    ok = isinstance(value, (list, tuple)) and len(value) == 2
    numbers = ok and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e6 for v in value
    )
    if not numbers or value[0] > value[1]:
        raise SchemaError(
            f"{where}: expected [lo, hi] of finite numbers with lo <= hi, got {value!r}"
        )
    return float(value[0]), float(value[1])
