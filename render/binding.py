"""A pose schema bound to one model: the one road from a parameter's value to the pixels.

Each parameter becomes a `Binding` — a morph (a face role found by `mmd_loader.detect_face`, or
the first of the schema's morph names the model has, compared after name folding) or a bone
rotation (a bone role or bone name, an axis and the schema's degrees at value 1) — or `None`
when the model lacks what it names. `SchemaBinding.pose(values)` is the renderer's `Pose`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mmd_loader.model import Model, MorphKind
from mmd_loader.morph_names import normalize
from mmd_loader.roles import FaceRoles
from poses.schema import AXES, Parameter, Schema
from render.pose import Pose


@dataclass(frozen=True)
class Binding:
    """How one parameter drives one model: a morph key, or a rotation of a bone key."""

    kind: str
    key: str  # morph: role or morph name; rotation: bone role or bone name
    axis: int = 0
    degrees: float = 0.0


class SchemaBinding:
    """`schema` bound to `model` and its face `roles`."""

    def __init__(self, schema: Schema, model: Model, roles: FaceRoles) -> None:
        self.schema = schema
        morph_names: dict[str, str] = {}
        for m in model.morphs:
            if m.kind in (MorphKind.VERTEX, MorphKind.GROUP):
                morph_names.setdefault(normalize(m.name), m.name)
        bones = {"head": roles.head, "neck": roles.neck}
        self.bindings: dict[str, Binding | None] = {
            p.name: _bind(p, model, roles, morph_names, bones) for p in schema.parameters
        }

    def bound(self, name: str) -> bool:
        return self.bindings[name] is not None

    def pose(self, values: Mapping[str, float]) -> Pose:
        """The renderer's pose for schema values (parameters not given are neutral; those the
        model lacks are dropped). Unknown names raise KeyError."""
        unknown = set(values) - set(self.bindings)
        if unknown:
            raise KeyError(f"not parameters of schema {self.schema.name!r}: {sorted(unknown)}")
        if len(values) < len(self.bindings):
            values = {**self.schema.neutral(), **values}
        morphs: dict[str, float] = {}
        rotations: dict[str, list[float]] = {}
        for name, value in values.items():
            b = self.bindings[name]
            if b is None:
                continue
            if b.kind == "morph":
                morphs[b.key] = morphs.get(b.key, 0.0) + value
            else:
                rotations.setdefault(b.key, [0.0, 0.0, 0.0])[b.axis] += value * b.degrees
        return Pose(morphs, {k: (v[0], v[1], v[2]) for k, v in rotations.items()})

    def expression(self, values: Mapping[str, float]) -> Pose:
        """`pose(values)` without its rotations: the expression-only image's pose."""
        return Pose(self.pose(values).morphs)

    def record(self, values: Mapping[str, float]) -> dict[str, float | None]:
        """Values as an example records them: None for parameters the model lacks."""
        return {n: (v if self.bindings[n] is not None else None) for n, v in values.items()}


def _bind(
    p: Parameter,
    model: Model,
    roles: FaceRoles,
    morph_names: dict[str, str],
    bones: dict[str, int],
) -> Binding | None:
    if p.kind == "morph":
        role = next((r for r in p.roles if r in roles.morphs), None)
        if role is not None:
            return Binding("morph", role)
        folded = (normalize(n) for n in p.morphs)
        name = next((morph_names[n] for n in folded if n in morph_names), None)
        return Binding("morph", name) if name is not None else None
    index = bones[p.bone] if p.bone in bones else model.bone_index(p.bone)
    return Binding("rotation", p.bone, AXES[p.axis], p.degrees) if index >= 0 else None
