"""Shard streaming: exactly-once epochs across workers and ranks, decoding, exact resumption."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader  # noqa: E402

from tests.shardgen import write_dataset  # noqa: E402
from training.data import DatasetError, ShardStream, read_shard  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    # 3 train characters × 8 examples in shards of 4 → 6 train shards; 1 val character.
    root = tmp_path_factory.mktemp("shards")
    return write_dataset(root, 3, 1, examples_per_character=8, examples_per_shard=4, size=32)


def all_keys(root, split="train"):
    return sorted(r["__key__"] for p in sorted(root.glob(f"{split}-*.tar")) for r in read_shard(p))


def test_two_workers_yield_each_example_exactly_once_per_epoch(dataset):
    stream = ShardStream(dataset, "train", "morpher", seed=3)
    orders = []
    for epoch in (0, 1):
        stream.set_epoch(epoch)
        keys = [s["key"] for s in DataLoader(stream, batch_size=None, num_workers=2)]
        assert sorted(keys) == all_keys(dataset)
        orders.append(keys)
    assert orders[0] != orders[1]  # reshuffled per epoch


def test_fewer_shards_than_consumers_split_by_example(dataset):
    # 2 val shards, 2 ranks × 2 workers = 4 consumers: examples are dealt by index instead.
    seen = []
    for rank in (0, 1):
        stream = ShardStream(dataset, "val", "rotator", rank=rank, world_size=2, seed=1)
        seen += [s["key"] for s in DataLoader(stream, batch_size=None, num_workers=2)]
    assert sorted(seen) == all_keys(dataset, "val")


@pytest.mark.numeric
def test_views_decode_images_and_schema_poses(dataset):
    sample = next(iter(ShardStream(dataset, "train", "morpher", shuffle=False)))
    with tarfile.open(dataset / "train-000000.tar") as tar:
        meta = json.loads(tar.extractfile(f"{sample['key']}.json").read())
    assert sample["input"].shape == (4, 32, 32) and sample["input"].dtype == torch.float32
    assert float(sample["input"].min()) >= -1.0 and float(sample["input"].max()) <= 1.0
    assert float(sample["input"][3].min()) == -1.0  # transparent background
    expected = [meta["pose"][n] for n in ("left_eye", "right_eye", "mouth")]
    assert sample["pose"].tolist() == pytest.approx(expected)
    rotator = next(iter(ShardStream(dataset, "train", "rotator", shuffle=False)))
    assert rotator["pose"].tolist() == pytest.approx(
        [meta["pose"][n] for n in ("head_x", "head_y", "neck_z")]
    )
    assert torch.equal(rotator["input"], sample["target"])  # expression is both


def test_null_parameters_become_zero(tmp_path):
    # Character 4 of shardgen has no mouth: its `mouth` is null in every example.
    root = write_dataset(tmp_path, 5, 0, examples_per_character=1, examples_per_shard=8, size=16)
    poses = {s["key"]: s["pose"] for s in ShardStream(root, "train", "morpher", shuffle=False)}
    assert poses["synth004_000000"][2] == 0.0
    assert poses["synth003_000000"][2] != 0.0


def test_resume_start_continues_the_batch_stream(dataset):
    def stream(start, workers):
        ds = ShardStream(dataset, "train", "morpher", batch_size=3, epochs=None, start=start)
        it = iter(DataLoader(ds, batch_size=None, num_workers=workers))
        return [next(it)["key"] for _ in range(12 - start)]

    for workers in (0, 2):
        straight = stream(0, workers)
        assert stream(5, workers) == straight[5:]
        assert len({k for batch in straight[:8] for k in batch}) == 24  # 8 batches = one epoch


def test_incomplete_example_names_shard_and_key(tmp_path):
    root = write_dataset(tmp_path, 1, 0, examples_per_character=1, size=16)
    broken = tmp_path / "train-000000.tar"
    with tarfile.open(broken) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar if not m.name.endswith("posed.png")]
    with tarfile.open(broken, "w") as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data))
    with pytest.raises(
        DatasetError, match=r"train-000000.tar: example 'synth000_000000' lacks posed"
    ):
        list(ShardStream(root, "train", "morpher"))


def test_missing_dataset_json_is_named(tmp_path):
    with pytest.raises(DatasetError, match=r"dataset\.json: not found"):
        ShardStream(tmp_path, "train", "morpher")
