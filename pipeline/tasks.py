"""Shard tasks: the dataset config, the shard plan, and rendering one shard in a worker.

A shard's bytes are a pure function of (config, its catalog rows, its spec): examples of a split
are ordered by (character id, example index) and cut into shards of a fixed count, so the worker
count, the scheduler and the order of completion never change the output. Workers keep one
renderer (one EGL context) and the current model across tasks.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import struct
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.sampling import sample_lighting, sample_pose
from pipeline.schema import Binding, Schema, load_schema, resolve, to_pose
from pipeline.seeds import example_rng, example_seed
from pipeline.shards import ShardWriter, example_bound, read_keys
from pipeline.splits import SPLITS, SplitConfig, assign_splits

STATE_DIR = ".state"  # sidecars: NAME.done.json (complete shards), NAME.progress.json (running)
LIGHTING_INDEX = 1 << 40  # the example index whose generator draws a character's lighting
FAULT_ENV = "THAGEN_FAULT_CHARACTER"  # tests only: a worker reaching this character crashes
LIGHTING_MODES = ("character", "example")


@dataclass(frozen=True)
class GenerateConfig:
    """Everything that decides a dataset's bytes (runtime choices like worker count are not here).

    `lighting="character"` draws the lighting once per character, so the rest image (rendered
    once, identical in all of a character's examples) is lit like its expression and posed
    images; `"example"` draws it per example and renders the rest image per example too.
    """

    schema: str = "tha1"
    seed: int = 0
    examples_per_character: int = 100
    image_size: int = 256
    head_fraction: float = 0.5
    shading: str = "phong"
    supersample: int = 2
    lighting: str = "character"
    png_compress_level: int = 1
    shard_max_examples: int = 1000
    shard_max_bytes: int = 1 << 30
    splits: SplitConfig = field(default_factory=SplitConfig)
    # Face overrides (mmd_loader.overrides): model pattern -> fields; they decide roles and framing.
    overrides: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.lighting not in LIGHTING_MODES:
            raise ValueError(f"lighting must be one of {LIGHTING_MODES}, got {self.lighting!r}")
        if self.examples_per_character < 1 or self.shard_max_examples < 1:
            raise ValueError("examples per character and per shard must be >= 1")
        if not 0 <= self.png_compress_level <= 9:
            raise ValueError(f"png_compress_level must be in 0..9, got {self.png_compress_level}")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["splits"] = self.splits.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GenerateConfig:
        data = dict(data)
        splits = dict(data.pop("splits", {}))
        explicit = {k: tuple(v) for k, v in splits.pop("explicit", {}).items()}
        return cls(**data, splits=SplitConfig(**splits, explicit=explicit))

    def load_schema(self) -> Schema:
        """The pose schema (parsed once per process while its file is unchanged)."""
        return _cached_schema(self.schema)

    @property
    def examples_per_shard(self) -> int:
        """Examples per shard: the count limit, lowered so the byte limit holds for any image."""
        bound = example_bound(self.image_size, images=3)
        return max(1, min(self.shard_max_examples, self.shard_max_bytes // bound))


_SCHEMAS: dict[tuple[str, int | None], Schema] = {}


def _cached_schema(name: str) -> Schema:
    """`load_schema(name)`, cached by name and, for a file, its modification time: parsing the
    YAML costs ~35 ms, which per shard task was a few ms per example."""
    path = Path(name)
    stamp = path.stat().st_mtime_ns if path.suffix and path.is_file() else None
    key = (name, stamp)
    if key not in _SCHEMAS:
        _SCHEMAS[key] = load_schema(name)
    return _SCHEMAS[key]


@dataclass(frozen=True)
class ShardSpec:
    """One shard: its name, split and example ranges as (character, start, stop)."""

    name: str
    split: str
    ranges: tuple[tuple[str, int, int], ...]

    @property
    def count(self) -> int:
        return sum(stop - start for _, start, stop in self.ranges)

    @property
    def characters(self) -> list[str]:
        return [c for c, _, _ in self.ranges]


def example_key(character: str, index: int) -> str:
    return f"{character[:32]}_{index:06d}"


def usable_rows(catalog: pd.DataFrame) -> pd.DataFrame:
    return catalog[catalog["usable"].astype(bool)].sort_values("character")


def plan_shards(config: GenerateConfig, catalog: pd.DataFrame) -> list[ShardSpec]:
    """Every shard of the dataset: per split, the usable characters' examples ordered by
    (character id, example index), cut every `examples_per_shard` examples."""
    rows = usable_rows(catalog)
    split = assign_splits(rows["character"], config.splits)
    per_shard, n = config.examples_per_shard, config.examples_per_character
    specs = []
    for name in SPLITS:
        characters = [c for c in rows["character"] if split[c] == name]
        total = len(characters) * n
        for number, first in enumerate(range(0, total, per_shard)):
            last = min(total, first + per_shard)  # examples [first, last) of the split
            ranges = []
            for k in range(first // n, (last - 1) // n + 1):
                start, stop = max(first - k * n, 0), min(last - k * n, n)
                ranges.append((characters[k], start, stop))
            specs.append(ShardSpec(f"{name}-{number:06d}", name, tuple(ranges)))
    return specs


def spec_hash(config: GenerateConfig, rows: list[dict], spec: ShardSpec) -> str:
    """What a complete shard's sidecar must match to be reused on resume."""
    from pipeline.fingerprint import code_fingerprint

    payload = {
        "code": code_fingerprint(),
        "config": config.to_json(),
        "schema": config.load_schema().to_json(),
        "rows": [[r["character"], r["path"], r["member"]] for r in rows],
        "ranges": [list(r) for r in spec.ranges],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def shard_rows(catalog: pd.DataFrame, spec: ShardSpec) -> list[dict]:
    """The catalog rows a shard task needs (path, member, name per character), in spec order."""
    table = catalog.set_index("character")
    rows = []
    for character in dict.fromkeys(spec.characters):
        row = table.loc[character]
        member = row["member"] if isinstance(row["member"], str) else None
        rows.append(
            {"character": character, "path": row["path"], "member": member, "name": row["name"]}
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Sidecars


def state_dir(out: str | Path) -> Path:
    return Path(out) / STATE_DIR


def done_path(out: str | Path, name: str) -> Path:
    return state_dir(out) / f"{name}.done.json"


def progress_path(out: str | Path, name: str) -> Path:
    return state_dir(out) / f"{name}.progress.json"


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, sort_keys=True, indent=1), "utf-8")
    os.replace(tmp, path)


def read_done(out: str | Path, name: str, expected_hash: str | None = None) -> dict | None:
    """A complete shard's sidecar, or None when the shard must be (re)done.

    Complete means: the sidecar parses, matches `expected_hash`, and the tar exists with the
    recorded size and the recorded example keys in order.
    """
    try:
        done = json.loads(done_path(out, name).read_text("utf-8"))
        tar = Path(out) / f"{name}.tar"
        if expected_hash is not None and done["spec_hash"] != expected_hash:
            return None
        if tar.stat().st_size != done["digest"]["bytes"]:
            return None
        if read_keys(tar) != [r["key"] for r in done["records"]]:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    except Exception:  # tarfile.TarError and anything else a damaged file raises
        return None
    return done


# ---------------------------------------------------------------------------------------------
# Worker side


@dataclass
class _Character:
    """The model currently bound in this worker's renderer, and what a config derived from it."""

    character: str
    model: Any
    roles: Any
    config: GenerateConfig | None = None
    bindings: dict[str, Binding | None] = field(default_factory=dict)
    rest_png: bytes | None = None

    def use(self, config: GenerateConfig, schema: Schema) -> None:
        """Re-derive bindings and forget the rest image when the config changes."""
        if self.config != config:
            self.config, self.bindings, self.rest_png = (
                config,
                resolve(schema, self.model, self.roles),
                None,
            )


@dataclass
class _WorkerState:
    renderer: Any = None
    settings: Any = None
    current: _Character | None = None
    gl_renderer: str = ""


_STATE = _WorkerState()


def _renderer(config: GenerateConfig, threads: int | None) -> Any:
    """This process's renderer, created on first use (after fork/spawn) and kept. `threads`:
    llvmpipe raster threads (0: none, rasterise in this thread; None: Mesa's default)."""
    from render import Renderer, RenderSettings

    settings = RenderSettings(
        size=config.image_size,
        head_fraction=config.head_fraction,
        shading=config.shading,
        supersample=config.supersample,
        threads=threads,
    )
    if _STATE.renderer is not None and _STATE.settings == settings:
        return _STATE.renderer
    if _STATE.renderer is not None:
        _STATE.renderer.close()
    _STATE.renderer, _STATE.settings, _STATE.current = Renderer(settings), settings, None
    _STATE.gl_renderer = _gl_renderer_string(_STATE.renderer)
    return _STATE.renderer


def _gl_renderer_string(renderer: Any) -> str:
    from render.context import renderer_name

    return renderer_name(renderer.ctx)


class CharacterError(Exception):
    """A character that cannot be rendered; `stage` says where it failed."""

    def __init__(self, character: str, stage: str, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.character, self.stage, self.message = character, stage, message


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_UP = 2  # the PNG row filter "Up": each byte minus the byte above it


def encode_png(rgba: np.ndarray, level: int) -> bytes:
    """An (H, W, 4) uint8 array as an 8-bit RGBA PNG: every row filtered with "Up", one zlib
    stream at `level`. Lossless and deterministic; at level 1 it takes half of Pillow's time
    (whose adaptive filter tries five filters per row) and is no larger."""
    height, width, channels = rgba.shape
    if channels != 4 or rgba.dtype != np.uint8:
        raise ValueError(f"encode_png needs (H, W, 4) uint8, not {rgba.shape} {rgba.dtype}")
    rows = rgba.reshape(height, width * 4)
    raw = np.empty((height, width * 4 + 1), np.uint8)
    raw[:, 0] = PNG_UP
    raw[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])  # uint8 arithmetic wraps mod 256
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8 bit RGBA, no interlace
    return b"".join(
        (
            PNG_SIGNATURE,
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(raw, level)),
            _png_chunk(b"IEND", b""),
        )
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


@contextmanager
def _model_file(row: dict) -> Iterator[Path]:
    """The model's file on disk (a zip member is extracted while the context lasts)."""
    if row["member"]:
        from mmd_loader.archive import extracted_model

        with extracted_model(Path(row["path"]), row["member"]) as file:
            yield file
    else:
        yield Path(row["path"])


def config_overrides(config: GenerateConfig, row: dict):
    """The face overrides that apply to a catalog row's model (sidecar file, then the table)."""
    from mmd_loader.overrides import overrides_for, table_from_json

    return overrides_for(model_label(row), table_from_json(config.overrides))


def model_label(row: dict) -> Path:
    """A catalog row's model as a path: the file, or `archive.zip/member`."""
    return Path(row["path"]) / row["member"] if row.get("member") else Path(row["path"])


def _bind(renderer: Any, row: dict, config: GenerateConfig) -> _Character:
    """Load, check and upload one character (raising CharacterError with the failing stage)."""
    from mmd_loader import ModelLoadError, detect_face, load

    character = row["character"]
    fault = os.environ.get(FAULT_ENV)
    if fault and character.startswith(fault):
        os.kill(os.getpid(), signal.SIGSEGV)
    try:
        with _model_file(row) as file:
            data = file.read_bytes()
            if hashlib.sha256(data).hexdigest() != character:
                raise CharacterError(character, "load", "file changed since the catalog was made")
            model = load(file)
            model.path = Path(row["path"]) / row["member"] if row["member"] else model.path
            roles = detect_face(model, config_overrides(config, row))
            if not roles.usable:
                raise CharacterError(character, "face", "; ".join(roles.problems))
            try:
                renderer.set_model(model, roles)
            except Exception as error:
                message = f"{type(error).__name__}: {error}"
                raise CharacterError(character, "upload", message) from error
    except ModelLoadError as error:
        raise CharacterError(character, "load", str(error)) from None
    except OSError as error:
        raise CharacterError(character, "load", f"cannot read: {error}") from None
    return _Character(character, model, roles)


class _Progress:
    """Writes NAME.progress.json: the character being worked on (the culprit if the process dies)
    and the examples written so far (for the progress bar), at most every `interval` seconds."""

    def __init__(self, out: Path, name: str, interval: float = 0.5) -> None:
        self.path, self.interval, self.last = progress_path(out, name), interval, 0.0
        self.character, self.examples = "", 0

    def start(self, character: str) -> None:
        self.character = character
        self.write()

    def example(self) -> None:
        self.examples += 1
        if time.monotonic() - self.last > self.interval:
            self.write()

    def write(self) -> None:
        write_json_atomic(self.path, {"character": self.character, "examples": self.examples})
        self.last = time.monotonic()

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def run_shard(
    config: GenerateConfig,
    rows: list[dict],
    spec: ShardSpec,
    out: str,
    threads: int | None = None,
    skip: dict[str, dict] | None = None,
) -> dict:
    """Render one shard into `out/NAME.tar` and write its sidecar; returns the sidecar.

    `skip` maps characters to failure rows recorded by the caller (a worker died on them); they
    are left out. A character that fails here is recorded and the shard is rewritten without it.
    """
    out_path, skip = Path(out), dict(skip or {})
    schema = config.load_schema()
    by_character = {r["character"]: r for r in rows}
    failures = [skip[c] for c in sorted(skip)]
    progress = _Progress(out_path, spec.name)
    try:
        while True:
            try:
                records = _write_shard(
                    config, schema, spec, out_path, by_character, skip, threads, progress
                )
                break
            except CharacterError as error:
                row = by_character[error.character]
                skip[error.character] = failure_row(row, error.stage, error.message)
                failures.append(skip[error.character])
                progress.examples = 0
        done = {
            "shard": spec.name,
            "split": spec.split,
            "spec_hash": spec_hash(config, rows, spec),
            "digest": records.pop(),
            "records": records,
            "failures": failures,
            "gl_renderer": _STATE.gl_renderer,
        }
        write_json_atomic(done_path(out_path, spec.name), done)
    finally:
        progress.clear()
    return done


def failure_row(row: dict, stage: str, error: str) -> dict:
    model = f"{row['path']}/{row['member']}" if row.get("member") else str(row["path"])
    return {"model": model, "character": row["character"], "stage": stage, "error": error}


def _write_shard(
    config: GenerateConfig,
    schema: Schema,
    spec: ShardSpec,
    out: Path,
    rows: dict[str, dict],
    skip: dict[str, dict],
    threads: int | None,
    progress: _Progress,
) -> list[dict]:
    """Write the shard's tar; returns its manifest records followed by the tar digest."""
    from render import Lighting, Pose

    renderer = _renderer(config, threads)
    records: list[dict] = []
    progress.examples = 0
    with ShardWriter(out / f"{spec.name}.tar") as writer:
        for character, start, stop in spec.ranges:
            if character in skip:
                continue
            progress.start(character)
            if _STATE.current is None or _STATE.current.character != character:
                _STATE.current = None
                _STATE.current = _bind(renderer, rows[character], config)
            bound = _STATE.current
            bound.use(config, schema)
            try:
                lighting = None
                if config.lighting == "character":
                    lighting = sample_lighting(
                        schema, example_rng(config.seed, character, LIGHTING_INDEX)
                    )
                    if bound.rest_png is None:
                        rest = renderer.render(Pose(), Lighting(**lighting))
                        bound.rest_png = encode_png(rest, config.png_compress_level)
                for index in range(start, stop):
                    record, members = _example(
                        config, schema, spec, renderer, bound, index, lighting
                    )
                    writer.add(record["key"], members)
                    records.append(_manifest_record(record, spec.name, schema))
                    progress.example()
            except CharacterError:
                raise
            except Exception as error:
                _STATE.current = None
                message = f"{type(error).__name__}: {error}"
                raise CharacterError(character, "render", message) from error
    records.append(writer.digest)
    return records


def _example(
    config: GenerateConfig,
    schema: Schema,
    spec: ShardSpec,
    renderer: Any,
    bound: _Character,
    index: int,
    lighting: dict[str, float] | None,
) -> tuple[dict, dict[str, bytes]]:
    from render import Lighting, Pose

    character = bound.character
    seed = example_seed(config.seed, character, index)
    rng = example_rng(config.seed, character, index)
    values = sample_pose(schema, rng)
    if config.lighting == "example":
        lighting = sample_lighting(schema, rng)
    assert lighting is not None
    morphs, rotations = to_pose(values, bound.bindings)
    light = Lighting(**lighting)
    level = config.png_compress_level
    expression = encode_png(renderer.render(Pose(morphs=morphs), light), level)
    posed = encode_png(renderer.render(Pose(morphs=morphs, rotations=rotations), light), level)
    if config.lighting == "example":
        rest = encode_png(renderer.render(Pose(), light), level)
    else:
        rest = bound.rest_png
    key = example_key(character, index)
    record = {
        "key": key,
        "character": character,
        "split": spec.split,
        "example": index,
        "seed": seed,
        "schema": schema.name,
        "pose": {n: (v if bound.bindings[n] is not None else None) for n, v in values.items()},
        "lighting": lighting,
    }
    text = json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8")
    images = {"rest.png": rest, "expression.png": expression, "posed.png": posed}
    return record, {"json": text, **images}


def _manifest_record(record: dict, shard: str, schema: Schema) -> dict:
    row = {k: record[k] for k in ("key", "character", "split", "example", "seed")}
    row["shard"] = shard
    for name in schema.names:
        row[name] = record["pose"][name]
    row["ambient"] = record["lighting"]["ambient"]
    row["directional"] = record["lighting"]["directional"]
    return row


def with_overrides(config: GenerateConfig, **changes: Any) -> GenerateConfig:
    """A copy of `config` with some fields changed (None values are ignored)."""
    return replace(config, **{k: v for k, v in changes.items() if v is not None})
