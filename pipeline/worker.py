"""Rendering one shard, in a worker process: load each character, bind the schema, draw its
examples and write the tar and its sidecar.

A worker keeps one renderer (one EGL context, created on first use, after fork/spawn) and the
current character across tasks, so consecutive shards of one character load it once. Every
example's draws come from its own generator (`pipeline.seeds`), never from worker state.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import GenerateConfig
from pipeline.deadline import Deadline, ModelTimeout
from pipeline.lock import RunContext, writing
from pipeline.motions import MotionSourceError
from pipeline.plan import ShardSpec, example_key, spec_hash
from pipeline.seeds import example_rng, example_seed, rng_of
from pipeline.shards import OutputError, ShardWriter, output_error
from pipeline.state import Progress, done_path, write_json_atomic
from poses.sampling import sample_lighting, sample_pose
from poses.schema import Schema

LIGHTING_INDEX = 1 << 40  # the example index whose generator draws a character's lighting
# Fault injection for the tests of worker death: a worker reaching a character whose id starts
# with this value kills itself with SIGSEGV, as a crashing GL driver would.
FAULT_ENV = "THAGEN_FAULT_CHARACTER"


class CharacterError(Exception):
    """A character that cannot be rendered; `stage` says where it failed."""

    def __init__(self, character: str, stage: str, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.character, self.stage, self.message = character, stage, message


@dataclass
class BoundCharacter:
    """The model currently uploaded in this worker's renderer, and what a config derived from
    it (the schema binding, the rest image's pixels). No encoded bytes are kept between tasks:
    each shard encodes its own images, so a shard's bytes never depend on what this worker did
    before (tests/test_png_determinism.py)."""

    character: str
    model: Any
    roles: Any
    config: GenerateConfig | None = None
    binding: Any = None
    # The rest image per brow mode (an RGBA array, under the character's lighting): pixels only.
    rests: dict[str, Any] = field(default_factory=dict)
    mapping: Any = None  # how motions drive the schema on this model (generate --poses)

    def use(self, config: GenerateConfig, schema: Schema) -> None:
        """Re-bind the schema and forget the rest images when the config changes."""
        from render.binding import SchemaBinding

        if self.config != config:
            self.config = config
            self.binding = SchemaBinding(schema, self.model, self.roles)
            self.rests = {}
            self.mapping = None

    def converter(self, schema: Schema, library: Any, k: int) -> Any:
        """Motion `k` of the run's library on this character (the mapping is built once per
        character; a converter, cheap, per use, so the library alone decides which motions
        stay in memory)."""
        from mmd_loader.motion_schema import MotionConverter, MotionMapping

        if self.mapping is None:
            try:
                self.mapping = MotionMapping.build(schema, self.model, self.roles)
            except Exception as error:
                message = f"mapping motions onto it: {type(error).__name__}: {error}"
                raise CharacterError(self.character, "poses", message) from error
        return MotionConverter(self.mapping, library.motion(k))

    def rest(self, renderer: Any, light: Any, brows: str) -> Any:
        """The rest image in brow mode `brows` (rendered once per character and mode)."""
        if brows not in self.rests:
            from render import Pose

            self.rests[brows] = renderer.render(Pose(), light, brows=brows)
        return self.rests[brows]


@dataclass
class WorkerState:
    """What a worker process keeps between tasks."""

    renderer: Any = None
    settings: Any = None
    current: BoundCharacter | None = None
    gl_renderer: str = ""
    run: RunContext | None = None  # the run of the task at hand (its per-model time limit)

    def renderer_for(self, config: GenerateConfig, threads: int | None) -> Any:
        """This process's renderer for `config`, created on first use and kept. `threads`:
        llvmpipe raster threads (0: none, rasterise in this thread; None: Mesa's default)."""
        from render import RenderSettings

        settings = RenderSettings(
            size=config.image_size,
            head_fraction=config.head_fraction,
            head_center=config.load_schema().framing.head_center,
            shading=config.shading,
            supersample=config.supersample,
            threads=threads,
        )
        return self.renderer_with(settings)

    def renderer_with(self, settings: Any) -> Any:
        """This process's renderer with `settings`: the one context is replaced, never a second
        one made, when another task needs other settings."""
        from render import Renderer
        from render.context import renderer_name

        if self.renderer is not None and self.settings == settings:
            return self.renderer
        if self.renderer is not None:
            self.renderer.close()
        self.renderer, self.settings, self.current = Renderer(settings), settings, None
        self.gl_renderer = renderer_name(self.renderer.ctx)
        return self.renderer

    def bind(self, renderer: Any, row: dict, config: GenerateConfig) -> BoundCharacter:
        """The character of `row`, uploaded (kept when it already is)."""
        if self.current is None or self.current.character != row["character"]:
            self.current = None
            self.current = load_character(renderer, row, config)
        return self.current


STATE = WorkerState()


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


def load_character(renderer: Any, row: dict, config: GenerateConfig) -> BoundCharacter:
    """Load, check and upload one character (raising CharacterError with the failing stage),
    within the run's per-model time limit."""
    timeout = STATE.run.model_timeout if STATE.run is not None else None
    try:
        with Deadline(timeout, "load") as clock:
            return _load_character(renderer, row, config, clock)
    except ModelTimeout as error:
        raise CharacterError(row["character"], error.stage, str(error).split(": ", 1)[1]) from None


def _load_character(
    renderer: Any, row: dict, config: GenerateConfig, clock: Deadline
) -> BoundCharacter:
    from media.files import FileRefusedError
    from mmd_loader import ModelLoadError, detect_face, load
    from pipeline.identity import character_id, file_digest

    character = row["character"]
    fault = os.environ.get(FAULT_ENV)
    if fault and character.startswith(fault):
        os.kill(os.getpid(), signal.SIGSEGV)
    try:
        with _model_file(row) as file:
            digest = file_digest(file, "model")
            model = load(file)
            if character_id(digest, model) != character:
                message = "the model or its textures changed since the catalog was made"
                raise CharacterError(character, "load", message)
            model.path = Path(row["path"]) / row["member"] if row["member"] else model.path
            clock.stage = "face"
            roles = detect_face(model, config_overrides(config, row))
            if not roles.usable:
                raise CharacterError(character, "face", "; ".join(roles.problems))
            clock.stage = "upload"
            try:
                renderer.set_model(model, roles, config.load_schema())
            except Exception as error:
                message = f"{type(error).__name__}: {error}"
                raise CharacterError(character, "upload", message) from error
    except ModelLoadError as error:
        raise CharacterError(character, "load", str(error)) from None
    except (OSError, FileRefusedError) as error:
        raise CharacterError(character, "load", f"cannot read: {error}") from None
    return BoundCharacter(character, model, roles)


def failure_row(row: dict, stage: str, error: str) -> dict:
    model = f"{row['path']}/{row['member']}" if row.get("member") else str(row["path"])
    return {"model": model, "character": row["character"], "stage": stage, "error": error}


def run_shard(
    config: GenerateConfig,
    rows: list[dict],
    spec: ShardSpec,
    out: str,
    threads: int | None = None,
    skip: dict[str, dict] | None = None,
    run: RunContext | None = None,
) -> dict:
    """Render one shard into `out/NAME.tar` and write its sidecar; returns the sidecar.

    `skip` maps characters to failure rows recorded by the caller (a worker died on them); they
    are left out. A character that fails here is recorded and the shard is rewritten without it.
    `run` is the submitting run (`pipeline.lock`): the shard is written only while that run
    holds the folder, and each model is loaded within its time limit. A failing write raises
    `OutputError` (the run stops; never a character's failure).
    """
    out_path = Path(out)
    STATE.run = run
    with writing(out_path, run):
        return _run_shard(config, rows, spec, out_path, threads, dict(skip or {}))


def _run_shard(
    config: GenerateConfig,
    rows: list[dict],
    spec: ShardSpec,
    out_path: Path,
    threads: int | None,
    skip: dict[str, dict],
) -> dict:
    schema = config.load_schema()
    by_character = {r["character"]: r for r in rows}
    failures = [skip[c] for c in sorted(skip)]
    progress = Progress(out_path, spec.name)
    try:
        while True:
            try:
                records, digest = _write_shard(
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
            "digest": digest,
            "records": records,
            "failures": failures,
            "gl_renderer": STATE.gl_renderer,
        }
        try:
            write_json_atomic(done_path(out_path, spec.name), done)
        except OSError as error:
            raise output_error(error, done_path(out_path, spec.name)) from None
    finally:
        progress.clear()
    return done


def _write_shard(
    config: GenerateConfig,
    schema: Schema,
    spec: ShardSpec,
    out: Path,
    rows: dict[str, dict],
    skip: dict[str, dict],
    threads: int | None,
    progress: Progress,
) -> tuple[list[dict], dict]:
    """Write the shard's tar; returns its manifest records and the tar's digest."""

    renderer = STATE.renderer_for(config, threads)
    records: list[dict] = []
    progress.examples = 0
    with ShardWriter(out / f"{spec.name}.tar", png_level=config.png_compress_level) as writer:
        for character, start, stop in spec.ranges:
            if character in skip:
                continue
            progress.start(character)
            bound = STATE.bind(renderer, rows[character], config)
            bound.use(config, schema)
            draws = draw_examples(config, schema, bound, start, stop)
            try:
                lighting = None
                if config.lighting == "character":
                    lighting = sample_lighting(
                        schema, example_rng(config.seed, character, LIGHTING_INDEX)
                    )
                rest_pngs: dict[str, bytes] = {}  # per shard: the rest PNG of each brow mode
                for index, draw in zip(range(start, stop), draws, strict=True):
                    record, members = _example(
                        config, schema, spec, renderer, bound, index, lighting, draw
                    )
                    if config.lighting == "character":  # one rest PNG per shard and brow mode
                        brows = record["brows"]
                        if brows not in rest_pngs:
                            rest_pngs[brows] = writer.encode("rest.png", members["rest.png"])
                        members["rest.png"] = rest_pngs[brows]
                    writer.add(record["key"], members)
                    records.append(_manifest_record(record, spec.name, schema, config))
                    progress.example()
            except (CharacterError, OutputError, MotionSourceError):
                raise
            except Exception as error:
                STATE.current = None
                message = f"{type(error).__name__}: {error}"
                raise CharacterError(character, "render", message) from error
    assert writer.digest is not None
    return records, writer.digest


@dataclass
class Draw:
    """What an example's generator drew: its seed, pose values (a motion's are filled in once
    its frames are sampled together), lighting (per-example lighting only), the motion
    frame it came from, if any, and how its brows are drawn."""

    seed: int
    values: dict[str, float] | None
    lighting: dict[str, float] | None
    motion: tuple[int, int] | None = None  # (motion index, frame)
    brows: str = "modelled"  # how the brows are drawn (render.brow_layer)


def draw_examples(
    config: GenerateConfig, schema: Schema, bound: BoundCharacter, start: int, stop: int
) -> list[Draw]:
    """Every draw of examples [start, stop) of a character, in the generator order each
    example has always had (pose, then lighting); with motions, one uniform for the mix (when
    above 0) and one integer for the frame come first (`pipeline.motions`)."""
    from render.brow_layer import choose_brows

    library = motion_library(config)
    draws = []
    for index in range(start, stop):
        seed = example_seed(config.seed, bound.character, index)
        rng = rng_of(seed)
        values, source = None, None
        if library is None or (config.poses_mix > 0 and rng.random() < config.poses_mix):
            values = sample_pose(schema, rng)
        else:
            source = library.locate(int(rng.integers(library.total)))
        lighting = sample_lighting(schema, rng) if config.lighting == "example" else None
        brows = choose_brows(config.brows, rng)  # drawn last: the pose's draws stay as they were
        draws.append(Draw(seed, values, lighting, source, brows))
    if library is not None:
        _motion_values(draws, schema, bound, library)
    return draws


def motion_library(config: GenerateConfig) -> Any:
    if config.poses is None:
        return None
    from pipeline.motions import library

    return library(config.poses, config.motions)


def _motion_values(draws: list[Draw], schema: Schema, bound: BoundCharacter, library) -> None:
    """Fill in the motion draws' values, one sampling per motion: clipped to the ranges and
    rounded as drawn values are."""
    import numpy as np

    from poses.sampling import DECIMALS

    lo, hi = (np.array([p.range[i] for p in schema.parameters]) for i in (0, 1))
    wanted: dict[int, list[Draw]] = {}
    for draw in draws:
        if draw.motion is not None:
            wanted.setdefault(draw.motion[0], []).append(draw)
    for k in sorted(wanted):
        frames = np.array([d.motion[1] for d in wanted[k]], np.float64)
        values = bound.converter(schema, library, k).values(frames)
        values = np.round(np.clip(values, lo, hi), DECIMALS)
        for draw, row in zip(wanted[k], values, strict=True):
            draw.values = {n: float(v) + 0.0 for n, v in zip(schema.names, row, strict=True)}


def _example(
    config: GenerateConfig,
    schema: Schema,
    spec: ShardSpec,
    renderer: Any,
    bound: BoundCharacter,
    index: int,
    lighting: dict[str, float] | None,
    draw: Draw,
) -> tuple[dict, dict[str, Any]]:
    """One example's record and members (images as arrays, encoded by the shard writer; with
    the character's lighting, the caller encodes the rest image once per shard and brow mode)."""
    from render import Lighting, Pose

    character = bound.character
    values = draw.values
    assert values is not None
    if config.lighting == "example":
        lighting = draw.lighting
    assert lighting is not None
    brows = draw.brows
    light = Lighting(**lighting)
    # Drawn over the rest image: only what the pose changes is rendered (the same pixels).
    if config.lighting == "character":
        rest = bound.rest(renderer, light, brows)
    else:
        rest = renderer.render(Pose(), light, brows=brows)
    members: dict[str, Any] = {  # the expression image shows the schema's expression parameters
        "expression.png": renderer.render(
            bound.binding.expression(values), light, rest=rest, brows=brows
        ),
        "posed.png": renderer.render(bound.binding.pose(values), light, rest=rest, brows=brows),
        "rest.png": rest,
    }
    record = {
        "key": example_key(character, index),
        "character": character,
        "split": spec.split,
        "example": index,
        "seed": str(draw.seed),  # 64 bits: a string, since JSON readers and Arrow stop at 2^63
        "schema": schema.name,
        "pose": bound.binding.record(values),
        "lighting": lighting,
        "brows": brows,
    }
    if draw.motion is not None:  # the pose came from this frame of this motion
        name = motion_library(config).files[draw.motion[0]].name
        record["motion"] = {"file": name, "frame": draw.motion[1]}
    members["json"] = record
    return record, members


def _manifest_record(record: dict, shard: str, schema: Schema, config: GenerateConfig) -> dict:
    row = {k: record[k] for k in ("key", "character", "split", "example", "seed")}
    row["shard"] = shard
    for name in schema.names:
        row[name] = record["pose"][name]
    row["ambient"] = record["lighting"]["ambient"]
    row["directional"] = record["lighting"]["directional"]
    if config.poses is not None:  # which motion frame the pose came from (None: the laws)
        motion = record.get("motion") or {}
        row["motion"], row["motion_frame"] = motion.get("file"), motion.get("frame")
    row["brows"] = record["brows"]
    return row
