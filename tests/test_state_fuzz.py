"""Fuzzed run state and checkpoints, as the model loader's and the shards' fuzz tests do: mutated
`dataset.json`, `.done.json` sidecars, `manifest.parquet` and checkpoints (state.json, model
and optimizer tensors) give a clean read or the reader's one error, each case fast and in
bounded memory (Python heap by tracemalloc; torch's allocations by the process's peak RSS).

Cases: a JSON value anywhere in a valid file replaced by any JSON value (huge and non-finite
numbers, deep and wide nesting, text), byte flips and truncations, and manifests with columns of
other names, types and values (shard names that leave the folder among them).
"""

from __future__ import annotations

import io
import json
import resource
import shutil
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media.files import FileRefusedError
from media.shardindex import ShardIndexError, manifest_shards, read_digest
from pipeline.report import write_report
from pipeline.state import read_done

SECONDS_PER_CASE = 5.0  # a clean read takes milliseconds (a report with one sample ~0.1 s)
PEAK_HEAP = 64 << 20  # bytes of Python heap per case
PEAK_RSS_GROWTH = 512 << 20  # bytes the process's peak RSS may grow by in one case
FUZZ = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

numbers = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 2**63, 10**12, 1e308]),
)
leaves = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=40))
json_values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)


def paths(value, prefix: tuple = ()) -> list[tuple]:
    """Every node of a JSON value, as the keys and indices leading to it."""
    out = [prefix]
    if isinstance(value, dict):
        for key in sorted(value):
            out += paths(value[key], (*prefix, key))
    elif isinstance(value, list):
        for at, item in enumerate(value[:8]):
            out += paths(item, (*prefix, at))
    return out


def replace_somewhere(value, data) -> object:
    """`value` with one of its nodes, drawn uniformly by `data`, replaced by any JSON value."""
    path = data.draw(st.sampled_from(paths(value)[1:] or [()]))

    def put(node, rest):
        if not rest:
            return data.draw(json_values)
        key, *tail = rest
        if isinstance(node, dict):
            return {**node, key: put(node[key], tail)}
        return [*node[:key], put(node[key], tail), *node[key + 1 :]]

    return put(value, list(path))


def flipped(data_bytes: bytes, data) -> bytes:
    """`data_bytes` with a few bytes changed, or cut short, as `data` draws."""
    out = bytearray(data_bytes)
    for _ in range(data.draw(st.integers(1, 6))):
        out[data.draw(st.integers(0, len(out) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        out = out[: data.draw(st.integers(0, len(out)))]
    return bytes(out)


@contextmanager
def mutated_json(path: Path, data, json_share: int = 1) -> Iterator[None]:
    """`path` (a JSON file) mutated for the block, restored after: one node replaced (`json_share`
    chances in `json_share + 1`), else bytes flipped or cut."""
    original = path.read_bytes()
    if data.draw(st.integers(0, json_share)):
        changed = json.dumps(replace_somewhere(json.loads(original), data)).encode()
    else:
        changed = flipped(original, data)
    path.write_bytes(changed)
    try:
        yield
    finally:
        path.write_bytes(original)


class Bounded:
    """Time, Python heap and peak RSS of one case."""

    def __enter__(self) -> Bounded:
        self.rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        tracemalloc.start()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self.start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self.rss
        assert elapsed < SECONDS_PER_CASE, f"{elapsed:.2f} s"
        assert peak < PEAK_HEAP, f"peak heap {peak} bytes"
        assert grown < PEAK_RSS_GROWTH, f"peak RSS grew by {grown} bytes"


def one_line(error: BaseException) -> None:
    assert "\n" not in str(error) and len(str(error)) < 2000, error


# ------------------------------------------------------------- dataset.json, sidecars, manifests


@pytest.fixture(scope="module")
def folder(reference, tmp_path_factory) -> Path:
    """A copy of the tiny procedural dataset, restored by each case it changes."""
    out = tmp_path_factory.mktemp("fuzz") / "data"
    shutil.copytree(reference, out)
    return out


def report(folder: Path) -> None:
    try:
        with Bounded():
            write_report(folder, folder.parent / "report.html", samples=1)
    except ValueError as error:  # DatasetError, ShardIndexError, FileRefusedError: one line
        one_line(error)


def training_info(folder: Path) -> None:
    pytest.importorskip("torch")
    from training.data import DatasetError, DatasetInfo, list_shards

    try:
        with Bounded():
            info = DatasetInfo.load(folder)
            list_shards(folder, "train")
            info.pose_names("morpher"), info.pose_names("rotator"), info.ranges()
    except DatasetError as error:
        one_line(error)


@FUZZ
@given(st.data())
def test_dataset_json(folder, data):
    with mutated_json(folder / "dataset.json", data):
        report(folder)
        training_info(folder)


@FUZZ
@given(st.data())
def test_done_sidecars(folder, data):
    with mutated_json(folder / ".state" / "train-000000.done.json", data):
        with Bounded():
            done = read_done(folder, "train-000000", None, "full")  # resume: redo, never raise
            assert done is None or isinstance(done, dict)
        try:
            with Bounded():
                read_digest(folder, "train-000000")
        except (ShardIndexError, FileRefusedError) as error:
            one_line(error)
        training_info(folder)


column_values = {
    "text": st.one_of(
        st.sampled_from(["train-000000", "../x/train-000000", "/etc/train-000000", "", "val"]),
        st.text(max_size=30),
        st.none(),
    ),
    "number": st.one_of(numbers, st.none()),
}


@FUZZ
@given(st.data())
def test_manifests(folder, data):
    path = folder / "manifest.parquet"
    original = path.read_bytes()
    table = pq.read_table(path)
    how = data.draw(st.sampled_from(["bytes", "column", "values"]))
    if how == "bytes":
        path.write_bytes(flipped(original, data))
    else:
        name = data.draw(st.sampled_from(table.column_names))
        kind = data.draw(st.sampled_from(sorted(column_values)))
        values = [data.draw(column_values[kind]) for _ in range(table.num_rows)]
        if how == "column":  # a column of another type (or a name dropped)
            array = (
                pa.array([str(v) for v in values])
                if kind == "text"
                else pa.array(
                    [float(v) if isinstance(v, int | float) else None for v in values], pa.float64()
                )
            )
            table = table.set_column(table.column_names.index(name), name, array)
        else:  # the same type, other values
            field = table.schema.field(name)
            cast = [_as(field.type, v) for v in values]
            table = table.set_column(
                table.column_names.index(name), name, pa.array(cast, field.type)
            )
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        path.write_bytes(buffer.getvalue())
    try:
        try:
            with Bounded():
                listed = manifest_shards(folder)
            assert all(
                n.startswith(f"{s}-") and "/" not in n for s, ns in listed.items() for n in ns
            )
        except ShardIndexError as error:
            one_line(error)
        report(folder)
        training_info(folder)
    finally:
        path.write_bytes(original)


def _as(kind: pa.DataType, value: object) -> object:
    """`value` as a value of the arrow type `kind` (None when it cannot be)."""
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return None if value is None else str(value)
    if pa.types.is_integer(kind):
        return value if type(value) is int and -(2**63) <= value < 2**63 else None
    if pa.types.is_floating(kind):
        return float(value) if isinstance(value, int | float) and abs(value) < 1e308 else None
    return None


# ------------------------------------------------------------------------------------ checkpoints


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A run folder with one checkpoint of a tiny morpher, and its dataset."""
    pytest.importorskip("torch")
    from dataclasses import replace

    from tests.shardgen import write_dataset
    from training.configs import CONFIGS
    from training.trainer import train

    small = CONFIGS["cpu-small"]
    config = replace(
        small,
        network=replace(small.network, image_size=16, base_channels=4, max_channels=8,
                        res_blocks=1),
        batch_size=2, sample_every=1000, checkpoint_every=1000, num_workers=0,
    )  # fmt: skip
    root = tmp_path_factory.mktemp("ckpt")
    data = write_dataset(root / "data", 1, 0, examples_per_character=2, size=16)
    run = root / "run"
    train("morpher", data, run, config, steps=1, device="cpu", log=lambda _: None)
    return run, data, config


def load_all(run: Path, data: Path, config) -> None:
    """Everything that reads a checkpoint: loading the network (evaluate, pose) and resuming
    (weights, optimizer, RNG); a CheckpointError (or a clean load) only."""
    import torch

    from training import checkpoint as ckpt
    from training.trainer import Trainer

    where = ckpt.find_checkpoint(run)
    try:
        with Bounded():
            ckpt.load_network(run)
            state = ckpt.read_state(where)
            trainer = Trainer("morpher", data, run, config, device="cpu", log=lambda _: None)
            ckpt.load_weights(trainer.model, where)
            ckpt.load_optimizer(trainer.optimizer, where, state)
            rng = torch.get_rng_state()
            ckpt.restore_rng(state)
            torch.set_rng_state(rng)
    except ckpt.CheckpointError as error:
        one_line(error)


@FUZZ
@given(st.data())
def test_checkpoint_state(checkpoint, data):
    from training import checkpoint as ckpt

    run, dataset, config = checkpoint
    with mutated_json(ckpt.find_checkpoint(run) / "state.json", data, json_share=3):
        load_all(run, dataset, config)


@FUZZ
@given(st.data(), st.sampled_from(["model.safetensors", "optimizer.safetensors"]))
def test_checkpoint_tensors(checkpoint, data, name):
    from training import checkpoint as ckpt

    run, dataset, config = checkpoint
    path = ckpt.find_checkpoint(run) / name
    original = path.read_bytes()
    header = 8 + int.from_bytes(original[:8], "little")  # the JSON header of safetensors
    if data.draw(st.booleans()):  # within the header (shapes, offsets, dtypes, names)
        cut = flipped(original[:header], data)
        mutated = cut + original[header:] if len(cut) == header else cut
    else:
        mutated = flipped(original, data)
    path.write_bytes(mutated)
    try:
        load_all(run, dataset, config)
    finally:
        path.write_bytes(original)
