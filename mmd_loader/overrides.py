"""Hand-written corrections that win over face detection.

An overrides file is YAML or CSV. YAML maps a model (file name, path relative to the file, or a
glob) to its fields; CSV has a `model` column and one column per field. Fields: `left_eye`,
`right_eye`, `mouth` (morph names; `NAME@left` / `NAME@right` takes one side of a both-eyes
morph), `neck`, `head` (bone names), `head_top`, `chin` (y in model units). A sidecar file
`MODEL.thagen.yaml` beside a model holds the fields for that model alone.
"""

from __future__ import annotations

import contextlib
import csv
import fnmatch
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import yaml

from mmd_loader.roles import HeadBox

MORPH_FIELDS = ("left_eye", "right_eye", "mouth")


class OverridesError(ValueError):
    """An overrides file that cannot be used; names the file and the problem."""


@dataclass
class FaceOverrides:
    left_eye: str | None = None
    right_eye: str | None = None
    mouth: str | None = None
    neck: str | None = None
    head: str | None = None
    head_top: float | None = None
    chin: float | None = None

    def morph_for(self, role: str) -> str | None:
        return getattr(self, role) if role in MORPH_FIELDS else None

    def apply_to_box(self, box: HeadBox | None, cx: float) -> HeadBox | None:
        """The detected box with the given top/chin; a new box when both are given."""
        if box is None:
            if self.head_top is None or self.chin is None:
                return None
            height = self.head_top - self.chin
            centre = np.array([cx, (self.head_top + self.chin) / 2, 0.0])
            return HeadBox(self.head_top, self.chin, centre, height / 2)
        top = box.top if self.head_top is None else self.head_top
        chin = box.chin if self.chin is None else self.chin
        centre = np.array([box.center[0], (top + chin) / 2, box.center[2]])
        return HeadBox(top, chin, centre, box.half_width)

    @classmethod
    def from_mapping(cls, data: dict, source: str) -> FaceOverrides:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known - {"model"}
        if unknown:
            raise OverridesError(f"{source}: unknown override field(s) {sorted(unknown)}")
        values = {}
        for name in known:
            value = data.get(name)
            if value is None or value == "":
                continue
            if name in ("head_top", "chin"):
                try:
                    values[name] = float(value)
                except (TypeError, ValueError):
                    message = f"{source}: {name} must be a number, got {value!r}"
                    raise OverridesError(message) from None
            else:
                values[name] = str(value)
        return cls(**values)


def table_to_json(table: dict[str, FaceOverrides]) -> dict[str, dict]:
    """An overrides table as plain data (for configs and dataset.json); unset fields dropped."""
    return {k: {f: v for f, v in asdict(o).items() if v is not None} for k, o in table.items()}


def table_from_json(data: dict[str, dict], source: str = "overrides") -> dict[str, FaceOverrides]:
    return {str(k): FaceOverrides.from_mapping(v, f"{source} [{k}]") for k, v in data.items()}


def load_overrides(path: Path) -> dict[str, FaceOverrides]:
    """Read an overrides file into {model pattern: overrides}."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise OverridesError(f"{path}: cannot read overrides ({error.strerror})") from None
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if rows and "model" not in rows[0]:
            raise OverridesError(f"{path}: CSV overrides need a 'model' column")
        return {
            row["model"]: FaceOverrides.from_mapping(row, f"{path} line {n + 2}")
            for n, row in enumerate(rows)
        }
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise OverridesError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise OverridesError(f"{path}: expected a mapping of model -> fields")
    return {str(k): FaceOverrides.from_mapping(v, f"{path} [{k}]") for k, v in data.items()}


def overrides_for(
    model_path: Path, table: dict[str, FaceOverrides] | None = None, base: Path | None = None
) -> FaceOverrides | None:
    """The overrides that apply to a model: its sidecar file first, then the table."""
    model_path = Path(model_path)
    sidecar = model_path.with_name(model_path.name + ".thagen.yaml")
    if sidecar.is_file():
        data = yaml.safe_load(sidecar.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise OverridesError(f"{sidecar}: expected a mapping of fields")
        return FaceOverrides.from_mapping(data, str(sidecar))
    if not table:
        return None
    candidates = [model_path.name, model_path.as_posix()]
    if base is not None:
        with contextlib.suppress(ValueError):
            candidates.append(model_path.relative_to(base).as_posix())
    for pattern, value in table.items():
        if any(c == pattern or fnmatch.fnmatch(c, pattern) for c in candidates):
            return value
    return None
