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

from poses.roles import BONE_ROLES, FACE_ROLES, IMAGES, SIDES, TRACKED

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
DEFAULT_SCHEMA = "tha1"
KINDS = ("morph", "rotation")
LAWS = ("uniform", "abs")
AXES = {"x": 0, "y": 1, "z": 2}
MAX_SCHEMA_BYTES = 1 << 20
MAX_TARGETS = 16  # bones one rotation parameter may turn


class SchemaError(ValueError):
    """A schema file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Target:
    """One bone a rotation parameter turns: about the model frame's `axis`, `degrees` at value 1.
    An `optional` target the model lacks is left out; a required one leaves the parameter null."""

    bone: str  # a bone role (poses.roles.BONE_ROLES) or a bone name
    axis: str  # "x" | "y" | "z"
    degrees: float
    optional: bool = False


@dataclass(frozen=True)
class Framing:
    """Where the head lands in a schema's images by default: `size`² pixels, the head box
    (top to chin) `head_fraction` of the height, its centre at `head_center` (x, y) as fractions
    of the width and height from the top left. THA1: 256², 0.5, (0.5, 0.5); THA3: 512², 0.25,
    (0.5, 0.25), the middle 128² box of the top half.

    `morpher_crop`: the side, in head heights, of the square around the head box's centre that
    the face morpher sees (THA3: 1.5, its face morpher's 192² crop of the 512² image); None:
    the whole image (THA1)."""

    size: int = 256
    head_fraction: float = 0.5
    head_center: tuple[float, float] = (0.5, 0.5)
    morpher_crop: float | None = None


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: str  # "morph" | "rotation"
    range: tuple[float, float]
    law: str = "uniform"  # "uniform" | "abs" (density ∝ |x|, symmetric range)
    roles: tuple[str, ...] = ()  # morph: face roles (poses.roles.FACE_ROLES)
    morphs: tuple[str, ...] = ()  # morph: model morph names, first present wins
    bone: str = ""  # rotation: the first target's bone role or bone name
    axis: str = ""  # rotation: the first target's axis, "x" | "y" | "z"
    degrees: float = 0.0  # rotation: the first target's degrees at value 1
    group: str | None = None  # exclusive group: one member per example is non-zero
    side: str | None = None  # morph: the side of the face it moves ("left" | "right")
    targets: tuple[Target, ...] = ()  # rotation: every bone it turns (the first is bone/axis)
    image: str = ""  # "expression" | "posed" (default: morphs expression, rotations posed)
    member: str = ""  # members of a group sharing this are chosen together (default: name)
    track: str | None = None  # the tracker measurement that drives it (poses.roles.TRACKED)

    def __post_init__(self) -> None:
        if self.kind == "rotation" and not self.targets and self.bone:
            target = Target(self.bone, self.axis, self.degrees)
            object.__setattr__(self, "targets", (target,))
        if not self.image:
            object.__setattr__(self, "image", "expression" if self.kind == "morph" else "posed")
        if not self.member:
            object.__setattr__(self, "member", self.name)

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
    framing: Framing = field(default_factory=Framing)

    def members(self, group: str) -> list[tuple[int, ...]]:
        """The members of an exclusive group, in schema order: the indices of the parameters
        chosen together (one parameter, or a two-sided shape's _left and _right)."""
        out: dict[str, list[int]] = {}
        for i in self.groups[group]:
            out.setdefault(self.parameters[i].member, []).append(i)
        return [tuple(v) for v in out.values()]

    def in_image(self, image: str) -> list[Parameter]:
        """The parameters shown by an image ("expression" or "posed"), in schema order."""
        return [p for p in self.parameters if p.image == image]

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
        """The schema as `dataset.json` records it (docs/contracts.md): per parameter its name,
        kind, range and the image it belongs to (`image`: the morpher takes the expression
        parameters, the rotator the posed ones), plus `group`/`side` where set; the framing."""
        params = []
        for p in self.parameters:
            item: dict[str, Any] = {"name": p.name, "kind": p.kind, "range": list(p.range)}
            item["image"] = p.image
            if p.group is not None:
                item["group"] = p.group
            if p.side is not None:
                item["side"] = p.side
            params.append(item)
        return self._with_header(params)

    def _with_header(self, params: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "name": self.name,
            "parameters": params,
            "lighting": {"ambient": list(self.ambient), "directional": list(self.directional)},
            "framing": _framing_json(self.framing),
        }

    def to_data(self) -> dict[str, Any]:
        """Everything `parse_schema` reads, so a schema can travel with a dataset or checkpoint."""
        params = []
        for p in self.parameters:
            item: dict[str, Any] = {"name": p.name, "kind": p.kind, "range": list(p.range)}
            item["law"] = p.law
            if p.kind == "morph":
                item.update(roles=list(p.roles), morphs=list(p.morphs))
                if p.side is not None:
                    item["side"] = p.side
            elif len(p.targets) == 1 and not p.targets[0].optional:
                item.update(bone=p.bone, axis=p.axis, degrees=p.degrees)
            else:
                item["bones"] = [
                    {"bone": t.bone, "axis": t.axis, "degrees": t.degrees, "optional": t.optional}
                    for t in p.targets
                ]
            item["image"] = p.image
            if p.group is not None:
                item.update(group=p.group, member=p.member)
            if p.track is not None:
                item["track"] = p.track
            params.append(item)
        return self._with_header(params)


def _framing_json(framing: Framing) -> dict[str, Any]:
    out: dict[str, Any] = {
        "size": framing.size,
        "head_fraction": framing.head_fraction,
        "head_center": list(framing.head_center),
    }
    if framing.morpher_crop is not None:
        out["morpher_crop"] = framing.morpher_crop
    return out


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
    members: dict[str, str] = {}
    for p in params:
        if p.member != p.name and members.setdefault(p.member, p.group or "") != (p.group or ""):
            raise SchemaError(f"{source}: member {p.member!r} spans more than one group")
    return Schema(
        name=str(data.get("name") or Path(source).stem),
        parameters=tuple(params),
        ambient=_range(lighting.get("ambient", [0.5, 0.5]), f"{source}: lighting.ambient"),
        directional=_range(
            lighting.get("directional", [0.5, 0.5]), f"{source}: lighting.directional"
        ),
        groups={g: tuple(v) for g, v in sorted(groups.items())},
        framing=parse_framing(data.get("framing"), f"{source}: framing"),
    )


def parse_framing(raw: Any, where: str) -> Framing:
    """A schema's `framing:` mapping (absent: THA1's 256², 0.5, centred)."""
    if raw is None:
        return Framing()
    if not isinstance(raw, dict):
        raise SchemaError(f"{where}: expected a mapping with size, head_fraction, head_center")
    unknown = sorted(set(raw) - {"size", "head_fraction", "head_center", "morpher_crop"})
    if unknown:
        raise SchemaError(f"{where}: unknown field(s) {unknown}")
    size = raw.get("size", 256)
    if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 4096:
        raise SchemaError(f"{where}: size must be an integer in 8..4096, got {size!r}")
    fraction = raw.get("head_fraction", 0.5)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise SchemaError(f"{where}: head_fraction must be a number, got {fraction!r}")
    if not 0.0 < float(fraction) <= 1.0:
        raise SchemaError(f"{where}: head_fraction must be in (0, 1], got {fraction}")
    cx, cy = _range(raw.get("head_center", [0.5, 0.5]), f"{where}.head_center", ordered=False)
    if not (0.0 <= cx <= 1.0 and 0.0 <= cy <= 1.0):
        raise SchemaError(f"{where}: head_center must lie in the image ([0, 1]²), got {[cx, cy]}")
    crop = raw.get("morpher_crop")
    if crop is not None:
        if isinstance(crop, bool) or not isinstance(crop, (int, float)):
            raise SchemaError(f"{where}: morpher_crop must be a number, got {crop!r}")
        if not 1.0 <= float(crop) <= 1.0 / float(fraction):
            raise SchemaError(
                f"{where}: morpher_crop must be in [1, 1 / head_fraction] head heights, got {crop}"
            )
        crop = float(crop)
    return Framing(size, float(fraction), (cx, cy), crop)


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
        image = raw.get("image", "")
        if image and image not in IMAGES:
            raise SchemaError(f"{where}: image must be one of {IMAGES}, got {image!r}")
        side = raw.get("side")
        if side is not None and side not in SIDES:
            raise SchemaError(f"{where}: side must be one of {SIDES}, got {side!r}")
        group = raw.get("group")
        params.append(
            Parameter(
                raw["name"],
                raw["kind"],
                _range(raw.get("range"), where),
                image=image,
                side=side,
                group=None if group is None else str(group),
            )
        )
    lighting = data.get("lighting") or {}
    if not isinstance(lighting, dict):
        raise SchemaError(f"{source}: schema.lighting must be a mapping")
    return Schema(
        name=str(data.get("name") or "schema"),
        parameters=tuple(params),
        ambient=_range(lighting.get("ambient", [0.5, 0.5]), f"{source}: lighting.ambient"),
        directional=_range(lighting.get("directional", [0.5, 0.5]), f"{source}: directional"),
        framing=parse_framing(data.get("framing"), f"{source}: schema.framing"),
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
    default = [0.0, 1.0] if kind == "morph" else None  # a morph weight, unless said otherwise
    lo, hi = _range(raw.get("range", default), f"{where}: range")
    if law == "abs" and lo != -hi:
        raise SchemaError(f"{where}: law 'abs' needs a symmetric range, got [{lo}, {hi}]")
    common: dict[str, Any] = {"name": raw["name"], "kind": kind, "range": (lo, hi), "law": law}
    if raw.get("group") is not None:
        common["group"] = str(raw["group"])
    if raw.get("member") is not None:
        if raw.get("group") is None:
            raise SchemaError(f"{where}: 'member' only means something inside a 'group'")
        common["member"] = str(raw["member"])
    image = raw.get("image")
    if image is not None:
        if image not in IMAGES:
            raise SchemaError(f"{where}: image must be one of {IMAGES}, got {image!r}")
        common["image"] = image
    track = raw.get("track")
    if track is not None:
        if track not in TRACKED:
            raise SchemaError(f"{where}: track must be one of {TRACKED}, got {track!r}")
        common["track"] = track
    if kind == "morph":
        roles, morphs = tuple(raw.get("roles") or ()), tuple(raw.get("morphs") or ())
        if not roles and not morphs:
            raise SchemaError(f"{where}: a morph parameter needs 'roles' or 'morphs'")
        unknown = [r for r in roles if r not in FACE_ROLES]
        if unknown:
            raise SchemaError(f"{where}: unknown role(s) {unknown}; roles are {FACE_ROLES}")
        if any(not isinstance(m, (str, int, float)) or isinstance(m, bool) for m in morphs):
            raise SchemaError(f"{where}: 'morphs' must be a list of morph names")
        side = raw.get("side")
        if side is not None and side not in SIDES:
            raise SchemaError(f"{where}: side must be one of {SIDES}, got {side!r}")
        for key in ("bone", "bones", "axis", "degrees"):
            if key in raw:
                raise SchemaError(f"{where}: a morph parameter has no {key!r}")
        return Parameter(**common, roles=roles, morphs=tuple(str(m) for m in morphs), side=side)
    if "side" in raw or "roles" in raw or "morphs" in raw:
        raise SchemaError(f"{where}: 'side', 'roles' and 'morphs' belong to morph parameters")
    if "bones" in raw:
        if any(k in raw for k in ("bone", "axis", "degrees")):
            raise SchemaError(f"{where}: give either 'bone'/'axis'/'degrees' or 'bones', not both")
        items = raw["bones"]
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_TARGETS:
            raise SchemaError(f"{where}: 'bones' must be a list of 1..{MAX_TARGETS} targets")
        targets = tuple(_target(t, f"{where}: bones[{i}]") for i, t in enumerate(items))
        if all(t.optional for t in targets):
            raise SchemaError(f"{where}: at least one of 'bones' must be required")
    else:
        targets = (_target(raw, where),)
    first = targets[0]
    return Parameter(
        **common, bone=first.bone, axis=first.axis, degrees=first.degrees, targets=targets
    )


def _target(raw: Any, where: str) -> Target:
    if not isinstance(raw, dict):
        raise SchemaError(f"{where}: expected a mapping with 'bone', 'axis' and 'degrees'")
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
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        raise SchemaError(f"{where}: optional must be true or false, got {optional!r}")
    return Target(bone, axis, float(degrees), optional)


def _range(value: Any, where: str, ordered: bool = True) -> tuple[float, float]:
    ok = isinstance(value, (list, tuple)) and len(value) == 2
    numbers = ok and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e6 for v in value
    )
    if not numbers or (ordered and value[0] > value[1]):
        raise SchemaError(
            f"{where}: expected [lo, hi] of finite numbers with lo <= hi, got {value!r}"
        )
    return float(value[0]), float(value[1])
