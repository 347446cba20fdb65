"""Byte-identical, always: a shard's PNG bytes are a function of its pixels alone, whatever order
its examples are rendered in and whatever the process rendered or encoded before.

A probe found 2 of 28 repeated datasets with shards whose PNGs differed in their deflate bytes
but not their pixels. The encoder and the shard writer now keep no state between images or
tasks (no reused row buffer, no rest-image PNG kept from an earlier shard); these tests render
and encode the same examples in other orders and after other work, in this process and in
fresh ones, and compare every byte. (`test_shards_do_not_depend_on_the_worker_history` ran 20
times in a row beside a CPU hog: see the README's Output paragraph.)
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from pipeline.plan import plan_shards, shard_rows
from pipeline.png import PngEncoder, encode_png
from pipeline.shards import ShardWriter
from pipeline.worker import STATE, run_shard
from tests.test_pipeline_integrity import dataset_files

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """Renders of two procedural characters (rest, expressions, turned heads) at 64 px, saved
    so a fresh process can encode the same pixels."""
    from characters import write_character
    from mmd_loader import detect_face, load
    from poses import load_schema
    from poses.sampling import sample_pose
    from render import Lighting, Pose, Renderer, RenderSettings

    root = tmp_path_factory.mktemp("pngs")
    schema, arrays = load_schema("tha1"), []
    for seed in (1, 2):
        model = load(write_character(seed, root / f"c{seed}" / "c.pmx"))
        with Renderer(RenderSettings(size=64, threads=0)) as renderer:
            renderer.set_model(model, detect_face(model))
            binding = renderer.bind(schema)
            rng = np.random.default_rng(seed)
            arrays.append(renderer.render(Pose(), Lighting()))
            for _ in range(8):
                values = sample_pose(schema, rng)
                arrays.append(renderer.render(binding.expression(values), Lighting()))
                arrays.append(renderer.render(binding.pose(values), Lighting()))
    np.save(root / "images.npy", np.stack(arrays))
    return root / "images.npy"


def digests(pngs: list[bytes]) -> list[str]:
    return [hashlib.sha256(p).hexdigest() for p in pngs]


FRESH = """
import hashlib, sys
import numpy as np
from pipeline.png import encode_png
for level in (1, 2, 3, 6):
    for image in np.load(sys.argv[1]):
        print(level, hashlib.sha256(encode_png(image, level)).hexdigest())
"""


def test_png_bytes_depend_on_the_pixels_alone(images):
    """Each image encoded first thing in a fresh process, and here in a shuffled order between
    images of other sizes and levels, by reused and fresh encoders and by shard writers, while
    another thread allocates, fills and frees buffers (the deflate releases the GIL)."""
    stack = np.load(images)
    fresh = subprocess.run(
        [sys.executable, "-c", FRESH, str(images)], cwd=ROOT, capture_output=True, text=True
    )
    assert fresh.returncode == 0, fresh.stderr
    expected: dict[int, list[str]] = {}
    for line in fresh.stdout.split("\n")[:-1]:
        level, digest = line.split()
        expected.setdefault(int(level), []).append(digest)
    stop = threading.Event()

    def churn() -> None:
        rng = np.random.default_rng(7)
        while not stop.is_set():
            junk = [rng.integers(0, 256, int(rng.integers(1, 1 << 19)), np.uint8) for _ in range(4)]
            del junk

    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    try:
        rng = np.random.default_rng(3)
        for level, wanted in expected.items():
            reused = PngEncoder(level)
            for round_ in range(3):
                order = rng.permutation(len(stack))
                got: dict[int, str] = {}
                for i in order:
                    other = rng.integers(0, 256, (int(rng.choice([16, 64, 128])),) * 2 + (4,))
                    encode_png(other.astype(np.uint8), int(rng.choice([1, 2, 3, 6])))
                    if round_ == 0:
                        data = reused.encode(stack[i])
                    elif round_ == 1:
                        data = PngEncoder(level).encode(stack[i].copy())
                    else:
                        data = ShardWriter(images.parent / "unused.tar", level).encode(
                            "rest.png", np.asfortranarray(stack[i])
                        )
                    got[int(i)] = hashlib.sha256(data).hexdigest()
                assert [got[i] for i in range(len(stack))] == wanted, (level, round_)
    finally:
        stop.set()
        thread.join()


def test_shards_do_not_depend_on_the_worker_history(tiny, reference, tmp_path):
    """Every shard of the reference dataset rendered again in this process, in reverse order,
    after this process rendered other shards (another seed, lighting per example, other
    characters bound and other images encoded): the same bytes, shard for shard."""
    from dataclasses import replace

    config, catalog = tiny["config"], tiny["catalog"]
    other = replace(config, seed=11, lighting="example", image_size=24)
    warm = tmp_path / "warm"
    for spec in plan_shards(other, catalog)[::2]:
        run_shard(other, shard_rows(catalog, spec), spec, str(warm), threads=0)
    assert STATE.current is not None  # a character is bound: history to carry, if any did
    out = tmp_path / "again"
    specs = plan_shards(config, catalog)
    for spec in reversed(specs):
        run_shard(config, shard_rows(catalog, spec), spec, str(out), threads=0)
    expected = dataset_files(reference)
    for spec in specs:
        for name in (f"{spec.name}.tar", f".state/{spec.name}.done.json"):
            assert (out / name).read_bytes() == expected[name], f"{name}: other bytes"
