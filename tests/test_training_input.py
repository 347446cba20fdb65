"""Batches from the stream: images decoded to uint8 and converted a batch at once give the very
values of per-example decoding, in this process and through DataLoader workers (whose batches
are written into shared memory)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader  # noqa: E402

from tests.shardgen import write_dataset  # noqa: E402
from training.data import ShardStream  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    return write_dataset(root, 2, 0, examples_per_character=6, examples_per_shard=3, size=32)


@pytest.mark.parametrize("size", [32, 48])  # as stored, and resized through Pillow
def test_batches_hold_the_values_of_single_examples(dataset, size):
    single = list(ShardStream(dataset, "train", "rotator", size=size, seed=3))
    batches = list(ShardStream(dataset, "train", "rotator", size=size, seed=3, batch_size=5))
    assert [len(b["key"]) for b in batches] == [5, 5, 2]
    for key in ("input", "target"):
        stacked = torch.stack([s[key] for s in single])
        together = torch.cat([b[key] for b in batches])
        assert together.dtype == torch.float32 and together.is_contiguous()
        assert torch.equal(together, stacked)
        assert together.min() >= -1 and together.max() <= 1 and together.std() > 0.1


def test_dataloader_workers_hand_over_the_same_batches_in_shared_memory(dataset):
    here = list(ShardStream(dataset, "train", "morpher", seed=1, batch_size=4))
    stream = ShardStream(dataset, "train", "morpher", seed=1, batch_size=4)
    there = list(DataLoader(stream, batch_size=None, num_workers=2))
    assert sorted(k for b in there for k in b["key"]) == sorted(k for b in here for k in b["key"])
    by_key = {k: (b["input"][i], b["target"][i]) for b in here for i, k in enumerate(b["key"])}
    for batch in there:
        assert batch["input"].is_shared()
        for i, key in enumerate(batch["key"]):
            assert torch.equal(batch["input"][i], by_key[key][0])
            assert torch.equal(batch["target"][i], by_key[key][1])


def test_repeated_pngs_decode_once_and_stay_independent():
    """The rest image repeats in every example of a character: it is decoded once, and what a
    caller does to one example's tensor never reaches the next."""
    import io

    import numpy as np
    import torch
    from PIL import Image

    from training import data as training_data

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (32, 32, 4), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, format="PNG")
    png = buffer.getvalue()
    training_data.REPEATS.items.clear()
    first = training_data.decode_image(png, 32, None, "a.png")
    second = training_data.decode_image(bytes(png), 32, None, "b.png")  # equal bytes, new object
    assert len(training_data.REPEATS.items) == 1
    assert torch.equal(first, second)
    first.zero_()
    assert torch.equal(training_data.decode_image(png, 32, None, "c.png"), second)
    other = pixels.copy()
    other[0, 0] ^= 1
    buffer = io.BytesIO()
    Image.fromarray(other, "RGBA").save(buffer, format="PNG")
    changed = training_data.decode_image(buffer.getvalue(), 32, None, "d.png")
    assert not torch.equal(changed, second) and len(training_data.REPEATS.items) == 2
