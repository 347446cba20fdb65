"""Hand-written corrections that win over face detection.

An overrides file is YAML or CSV. YAML maps a model (file name, path relative to the file, or a
glob) to its fields; CSV has a `model` column and one column per field. Fields: `left_eye`,
`right_eye`, `mouth` (morph names; `NAME@left` / `NAME@right` takes one side of a both-eyes
morph), `neck`, `head` (bone names), `head_top`, `chin` (y in model units). A sidecar file
`MODEL.thagen.yaml` beside a model holds the fields for that model alone.

Both are read as untrusted input: only regular files within a size limit
(`MAX_OVERRIDES_BYTES`, `MAX_SIDECAR_BYTES`), YAML through the safe loader with aliases refused
(no "billion laughs"), nesting and duplicate keys refused, then validated against the schema
above: known keys, names as text (at most `MAX_NAME` characters), `head_top`/`chin` finite
numbers within `MAX_COORDINATE` and `head_top` above `chin` when both are given. Every
refusal is an `OverridesError` naming the file, the model entry and the key. Against a model,
`FaceOverrides.apply_to_box` also refuses a box that the detected head makes upside down or
absurd (a problem of the model, naming the override).
"""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import io
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import yaml

from media.files import read_regular
from mmd_loader.errors import quote
from mmd_loader.roles import HeadBox
from poses.roles import MORPH_ROLES

MORPH_FIELDS = MORPH_ROLES
NAME_FIELDS = (*MORPH_FIELDS, "neck", "head")
NUMBER_FIELDS = ("head_top", "chin")
MAX_OVERRIDES_BYTES = 4 * 1024 * 1024  # an overrides table (about 100,000 models)
MAX_SIDECAR_BYTES = 64 * 1024  # one model's sidecar
MAX_ENTRIES = 100_000  # models in one table
MAX_NAME = 256  # characters of a morph or bone name
MAX_COORDINATE = 1e6  # |head_top|, |chin| in model units (models are ~20 units tall)
MAX_BOX_SCALE = 10.0  # an overridden box is within 1/10..10 times the detected head's height
_MAX_YAML_DEPTH = 4  # table -> model entry -> value (-> a wrong list, for a clear message)
_SIDES = ("left", "right")


class OverridesError(ValueError):
    """An overrides file or value that cannot be used; names the file, entry and key."""


@dataclass
class FaceOverrides:
    left_eye: str | None = None
    right_eye: str | None = None
    mouth: str | None = None
    neck: str | None = None
    head: str | None = None
    head_top: float | None = None
    chin: float | None = None

    def __post_init__(self) -> None:
        for name in NAME_FIELDS:
            _check_name(name, getattr(self, name), "face overrides")
        for name in NUMBER_FIELDS:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, _number(name, value, "face overrides"))
        if self.head_top is not None and self.chin is not None and self.head_top <= self.chin:
            raise OverridesError(
                f"face overrides: head_top {self.head_top:g} must be above chin {self.chin:g}"
            )

    def morph_for(self, role: str) -> str | None:
        return getattr(self, role) if role in MORPH_FIELDS else None

    def apply_to_box(
        self, box: HeadBox | None, cx: float, problems: list[str] | None = None
    ) -> HeadBox | None:
        """The detected box with the given top/chin; a new box when both are given.

        A box the override makes upside down or absurd against the detected head (outside
        `MAX_BOX_SCALE` times its height) is refused: the reason, naming the override, goes to
        `problems` (a problem of the model) and None comes back; without `problems` it raises
        OverridesError.
        """
        if box is None:
            if self.head_top is None or self.chin is None:
                return None
            height = self.head_top - self.chin
            centre = np.array([cx, (self.head_top + self.chin) / 2, 0.0])
            return HeadBox(self.head_top, self.chin, centre, height / 2)
        top = box.top if self.head_top is None else self.head_top
        chin = box.chin if self.chin is None else self.chin
        problem = self._box_problem(box, top, chin)
        if problem is not None:
            if problems is None:
                raise OverridesError(problem)
            problems.append(problem)
            return None
        centre = np.array([box.center[0], (top + chin) / 2, box.center[2]])
        uncertain = box.uncertain_top if self.head_top is None else None  # the user decided
        return HeadBox(top, chin, centre, box.half_width, uncertain_top=uncertain)

    def _box_problem(self, box: HeadBox, top: float, chin: float) -> str | None:
        given = " and ".join(
            f"{name} {getattr(self, name):g}"
            for name in NUMBER_FIELDS
            if getattr(self, name) is not None
        )
        detected = f"the detected head runs from chin {box.chin:.4g} to top {box.top:.4g}"
        if top <= chin:
            return f"override {given} makes the head box upside down ({detected})"
        height = box.height
        if height > 0 and not height / MAX_BOX_SCALE <= top - chin <= height * MAX_BOX_SCALE:
            return (
                f"override {given} makes the head box {(top - chin) / height:.3g} times the "
                f"detected head's height, outside 1/{MAX_BOX_SCALE:g}..{MAX_BOX_SCALE:g} "
                f"({detected})"
            )
        return None

    @classmethod
    def from_mapping(cls, data: object, source: str) -> FaceOverrides:
        """Validated overrides from a mapping (a YAML entry, a CSV row, JSON); `source` names
        where it came from in errors."""
        if not isinstance(data, dict):
            raise OverridesError(f"{source}: expected a mapping of fields, got {_kind(data)}")
        known = {f.name for f in fields(cls)}
        unknown = [k for k in data if k not in known and k != "model"]
        if unknown:
            shown = ", ".join(quote(k) if isinstance(k, str) else _kind(k) for k in unknown[:10])
            raise OverridesError(f"{source}: unknown override field(s) {shown}")
        values: dict[str, object] = {}
        for name in known:
            value = data.get(name)
            if value is None or value == "":
                continue
            if name in NUMBER_FIELDS:
                values[name] = _number(name, value, source)
            else:
                _check_name(name, value, source)
                values[name] = value
        try:
            return cls(**values)
        except OverridesError as error:
            raise OverridesError(str(error).replace("face overrides", source, 1)) from None


def _kind(value: object) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {quote(value, 40)}"


def _check_name(name: str, value: object, source: str) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise OverridesError(
            f"{source}: {name} must be a {'morph' if name in MORPH_FIELDS else 'bone'} name "
            f"(text; quote it in YAML), got {_kind(value)}"
        )
    if len(value) > MAX_NAME or not value.strip() or "\x00" in value:
        raise OverridesError(
            f"{source}: {name} {quote(value)} is not a usable name "
            f"(1..{MAX_NAME} characters, no NUL)"
        )
    if name in MORPH_FIELDS and "@" in value:
        side = value.rpartition("@")[2].strip().lower()
        if side not in _SIDES:
            raise OverridesError(
                f"{source}: {name} {quote(value)}: the part after '@' must be left or right"
            )


def _number(name: str, value: object, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str | np.number):
        raise OverridesError(f"{source}: {name} must be a number, got {_kind(value)}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise OverridesError(f"{source}: {name} must be a number, got {_kind(value)}") from None
    if not math.isfinite(number) or abs(number) > MAX_COORDINATE:
        raise OverridesError(
            f"{source}: {name} must be a finite number within ±{MAX_COORDINATE:g} model units, "
            f"got {number:g}"
        )
    return number


def table_to_json(table: dict[str, FaceOverrides]) -> dict[str, dict]:
    """An overrides table as plain data (for configs and dataset.json); unset fields dropped."""
    return {k: {f: v for f, v in asdict(o).items() if v is not None} for k, o in table.items()}


def table_from_json(data: object, source: str = "overrides") -> dict[str, FaceOverrides]:
    """A table from `table_to_json`'s form, validated like a file."""
    if not isinstance(data, dict):
        raise OverridesError(f"{source}: expected a mapping of model -> fields, got {_kind(data)}")
    if len(data) > MAX_ENTRIES:
        raise OverridesError(f"{source}: {len(data)} models, more than the limit {MAX_ENTRIES}")
    table = {}
    for key, value in data.items():
        if not isinstance(key, str) or not key.strip():
            raise OverridesError(f"{source}: a model pattern must be text, got {_kind(key)}")
        entry = {} if value is None else value  # `model.pmx:` with every field commented out
        table[key] = FaceOverrides.from_mapping(entry, f"{source} [{quote(key)}]")
    return table


# --- files ---------------------------------------------------------------------------------------


class _SafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases, deep nesting or duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not allowed in overrides", event.start_mark
            )
        self._depth += 1
        try:
            if self._depth > _MAX_YAML_DEPTH:
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, "nested deeper than an overrides file can be", event.start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):  # type: ignore[no-untyped-def]
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)  # merge keys (`<<`) first, as the safe loader does
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, str | int | float | bool) or key is None:
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key {quote(key)}", key_node.start_mark
                        )
                    seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_text(path: Path, limit: int, what: str) -> str:
    data = read_regular(path, what, limit, error=lambda p, reason: OverridesError(f"{p}: {reason}"))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise OverridesError(
            f"{path}: not UTF-8 text (invalid byte at offset {error.start})"
        ) from None


def _parse_yaml(path: Path, text: str) -> object:
    try:
        return yaml.load(text, Loader=_SafeLoader)  # a SafeLoader: plain data only
    except yaml.YAMLError as error:
        raise OverridesError(
            f"{path}: not a valid overrides file ({_yaml_reason(error)})"
        ) from None
    except RecursionError:  # defence in depth: the depth limit stops nesting first
        raise OverridesError(f"{path}: nested too deeply") from None
    except Exception as error:  # PyYAML's constructors raise plain errors on odd scalars
        message = f"{type(error).__name__}: {quote(error, 120)}"  # e.g. `!!float ` alone
        raise OverridesError(f"{path}: not a valid overrides file ({message})") from None


def _yaml_reason(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"{error.problem or error.context}{where}"
    return str(error)[:200]


def load_overrides(path: Path) -> dict[str, FaceOverrides]:
    """Read an overrides file into {model pattern: overrides}."""
    path = Path(path)
    text = _read_text(path, MAX_OVERRIDES_BYTES, "overrides file")
    if path.suffix.lower() == ".csv":
        return _load_csv(path, text)
    data = _parse_yaml(path, text)
    if data is None:
        return {}
    return table_from_json(data, str(path))


def _load_csv(path: Path, text: str) -> dict[str, FaceOverrides]:
    table: dict[str, FaceOverrides] = {}
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if reader.fieldnames is not None and "model" not in reader.fieldnames:
            raise OverridesError(f"{path}: CSV overrides need a 'model' column")
        for row in reader:
            where = f"{path} line {reader.line_num}"
            if None in row:
                raise OverridesError(f"{where}: more fields than the header names")
            model = row.get("model")
            if not model or not model.strip():
                raise OverridesError(f"{where}: the model column is empty")
            if model in table:
                raise OverridesError(f"{where}: model {quote(model)} is listed twice")
            if len(table) >= MAX_ENTRIES:
                raise OverridesError(f"{where}: more than the limit of {MAX_ENTRIES} models")
            table[model] = FaceOverrides.from_mapping(row, where)
    except csv.Error as error:
        raise OverridesError(f"{path}: not a valid CSV file ({error})") from None
    return table


def sidecar_path(model_path: Path) -> Path:
    """Where a model's sidecar lives: `MODEL.pmx.thagen.yaml` beside it."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".thagen.yaml")


def load_sidecar(sidecar: Path) -> FaceOverrides:
    """Read one model's sidecar file (a mapping of fields).

    A sidecar that is a symlink must resolve inside the model's folder (the folder rule of
    `mmd_loader.walk`); one that is not a regular file is refused.
    """
    sidecar = Path(sidecar)
    folder = sidecar.parent.resolve()
    if sidecar.is_symlink() and not sidecar.resolve().is_relative_to(folder):
        raise OverridesError(f"{sidecar}: a symlink that leads outside the model's folder")
    data = _parse_yaml(sidecar, _read_text(sidecar, MAX_SIDECAR_BYTES, "sidecar"))
    return FaceOverrides.from_mapping({} if data is None else data, str(sidecar))


def overrides_for(
    model_path: Path, table: dict[str, FaceOverrides] | None = None, base: Path | None = None
) -> FaceOverrides | None:
    """The overrides that apply to a model: its sidecar file first, then the table.

    A sidecar that exists but cannot be used raises OverridesError (never silently ignored).
    """
    model_path = Path(model_path)
    sidecar = sidecar_path(model_path)
    if os.path.lexists(sidecar):
        return load_sidecar(sidecar)
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
