"""A pose schema bound to one model: the one road from a parameter's value to the pixels.

Each parameter becomes a `Binding` or `None` when the model lacks what it names:
- a morph: a face role found by `mmd_loader.detect_face`, or the first of the schema's morph
  names the model has (compared after `mmd_loader.morph_names.fold`; a name also matches the
  model's side-named variants of it, 困る左 for 困る). With a `side`, the morph must serve that
  side of the face, decided by its vertices (`mmd_loader.sides`): a one-sided morph serves the
  side it moves, a both-sided one is split at the centre line (its key is then `NAME@left` or
  `NAME@right`, which `render.rig` resolves the same way);
- a rotation: bone targets (a bone role — `head`/`neck` from detect_face, the body and eye roles
  from `mmd_loader.body` — or a bone name), each about an axis by the schema's degrees at value
  1; null when a required target's bone is missing, optional ones are left out.

`SchemaBinding.pose(values)` is the renderer's `Pose`; `expression(values)` the pose of the
expression image (the schema's `expression` parameters only).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mmd_loader.body import find_body_bones
from mmd_loader.model import Model
from mmd_loader.morph_names import fold, morph_table
from mmd_loader.roles import FaceRoles
from mmd_loader.sides import face_centre_x, sides_of
from poses.roles import HEAD_ROLES
from poses.schema import AXES, Parameter, Schema
from render.pose import Pose


@dataclass(frozen=True)
class Binding:
    """How one parameter drives one model: a morph key, or rotations of bone keys."""

    kind: str
    key: str  # morph: role, morph name or NAME@side; rotation: the first target's bone key
    axis: int = 0
    degrees: float = 0.0
    targets: tuple[tuple[str, int, float], ...] = ()  # rotation: (bone key, axis, degrees)
    how: str = ""  # morph: "role", "name", "one-sided" or "split"


class SchemaBinding:
    """`schema` bound to `model` and its face `roles`."""

    def __init__(self, schema: Schema, model: Model, roles: FaceRoles) -> None:
        self.schema = schema
        self.model = model
        self.cx = face_centre_x(model, roles.head)
        self.morph_names = morph_table(model)
        body = find_body_bones(model, roles)
        self.bone_roles: dict[str, int] = {"head": roles.head, "neck": roles.neck, **body}
        self._sides: dict[str, str | None] = {}
        self.bindings: dict[str, Binding | None] = {
            p.name: self._bind(p, roles) for p in schema.parameters
        }
        self._expression = {p.name for p in schema.parameters if p.image == "expression"}

    def bound(self, name: str) -> bool:
        return self.bindings[name] is not None

    def bones(self) -> list[int]:
        """Indices of the bones the bound rotation parameters turn (the renderer keeps the
        vertices they move in its moving slice)."""
        out = set()
        for b in self.bindings.values():
            if b is not None and b.kind == "rotation":
                out.update(self._bone_index(key) for key, _, _ in b.targets)
        return sorted(i for i in out if i >= 0)

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
                continue
            for key, axis, degrees in b.targets:
                rotations.setdefault(key, [0.0, 0.0, 0.0])[axis] += value * degrees
        return Pose(morphs, {k: (v[0], v[1], v[2]) for k, v in rotations.items()})

    def expression(self, values: Mapping[str, float]) -> Pose:
        """The expression image's pose: only the schema's `expression` parameters (every morph
        and, in tha3, the iris rotation); the others at their neutral value."""
        neutral = self.schema.neutral()
        return self.pose(
            {n: (v if n in self._expression else neutral[n]) for n, v in values.items()}
        )

    def record(self, values: Mapping[str, float]) -> dict[str, float | None]:
        """Values as an example records them: None for parameters the model lacks."""
        return {n: (v if self.bindings[n] is not None else None) for n, v in values.items()}

    def describe(self) -> dict[str, str | None]:
        """Parameter → what drives it in this model (for reports and `inspect`), None if nothing."""
        out: dict[str, str | None] = {}
        for name, b in self.bindings.items():
            if b is None:
                out[name] = None
            elif b.kind == "morph":
                out[name] = f"{b.key} ({b.how})"
            else:
                out[name] = ", ".join(f"{k} {'xyz'[a]} {d:g}°" for k, a, d in b.targets)
        return out

    # --- binding ------------------------------------------------------------------------------

    def _bind(self, p: Parameter, roles: FaceRoles) -> Binding | None:
        if p.kind == "morph":
            role = next((r for r in p.roles if r in roles.morphs), None)
            if role is not None:
                return Binding("morph", role, how="role")
            return self._bind_morph(p)
        targets = []
        for t in p.targets:
            index = self._bone_index(t.bone)
            if index < 0:
                if t.optional:
                    continue
                return None
            targets.append((self._bone_key(t.bone), AXES[t.axis], t.degrees))
        first = targets[0]
        return Binding("rotation", first[0], first[1], first[2], tuple(targets))

    def _bind_morph(self, p: Parameter) -> Binding | None:
        for wanted in p.morphs:
            for name in self.morph_names.get(fold(wanted), []):
                if p.side is None:
                    return Binding("morph", name, how="name")
                sides = self._sides_of(name)
                if sides == p.side:
                    return Binding("morph", name, how="one-sided")
                if sides == "both":
                    return Binding("morph", f"{name}@{p.side}", how="split")
        return None

    def _sides_of(self, name: str) -> str | None:
        if name not in self._sides:
            indices, offsets = self.model.vertex_offsets(self.model.morph_index(name))
            self._sides[name] = sides_of(self.model, indices, offsets, self.cx)
        return self._sides[name]

    def _bone_index(self, key: str) -> int:
        if key in self.bone_roles:
            return self.bone_roles[key]
        return self.model.bone_index(key)

    def _bone_key(self, bone: str) -> str:
        """The rotation key the rig resolves: head/neck stay roles, other roles become the
        bone's name (so that two parameters turning one bone add up in one entry)."""
        if bone in HEAD_ROLES:
            return bone
        if bone in self.bone_roles:
            return self.model.bones[self.bone_roles[bone]].name
        return bone
