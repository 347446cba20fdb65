"""Training input: decoded examples/s per DataLoader worker at 256², and the PNG decoders.

    .venv/bin/python bench/bench_decode.py [MODEL] [--examples 96]

Makes a small dataset of MODEL with the pipeline (256², thagen's PNGs), then times, in this one
process (a DataLoader worker does exactly this work, single-threaded):

- the decoders on the dataset's images: Pillow, pyspng (when installed) and thagen's reader
  (`training.fastpng`: ISA-L inflate, vectorised "Up" un-filtering), each to a uint8 array;
- the whole worker loop of `training.data.ShardStream`: tar read, JSON, two PNGs → uint8,
  batches of 25 converted to float at once — the examples/s one DataLoader worker feeds a GPU;
- the same through a real `DataLoader` with one worker process (wall clock only).

CPU time is reported beside wall time: other work on the machine changes it much less.
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT.parent / "shared" / "mmd" / "animasa_miku_v2_3" / "miku_v2.pmd"
GOAL = 500.0  # decoded examples/s per worker
BATCH = 25


def make_dataset(model_path: Path, out: Path, examples: int, size: int) -> Path:
    from pipeline.catalog import scan
    from pipeline.config import GenerateConfig
    from pipeline.generate import generate
    from pipeline.runners import LocalRunner
    from pipeline.splits import SplitConfig

    splits = SplitConfig(train=1.0, val=0.0, test=0.0)
    catalog = scan([model_path], splits, jobs=1, progress=False)
    config = GenerateConfig(
        examples_per_character=examples,
        image_size=size,
        shard_max_examples=max(1, examples // 4),
        splits=splits,
    )
    with LocalRunner(2) as runner:
        generate(config, catalog, out, runner, progress=False)
    return out


def _timed(function, items: list, rounds: int = 5) -> tuple[float, float]:
    """Median (wall, CPU) seconds per item of `function` over `items`."""
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        for item in items:
            function(item)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls) / len(items), statistics.median(cpus) / len(items)


def _single_thread(_: int) -> None:
    import torch

    torch.set_num_threads(1)


def _dataloader_rate(data: Path, batches: int = 24) -> float:
    """Examples/s out of a real DataLoader with one worker process (batches cross to this
    process through shared memory), after its first batch."""
    from torch.utils.data import DataLoader

    from training.data import ShardStream

    stream = ShardStream(data, "train", "morpher", size=256, batch_size=BATCH, epochs=None)
    loader = DataLoader(stream, batch_size=None, num_workers=1, worker_init_fn=_single_thread)
    batches_iter = iter(loader)
    next(batches_iter)
    count, start = 0, time.perf_counter()
    for _ in range(batches):
        count += len(next(batches_iter)["key"])
    return count / (time.perf_counter() - start)


def bench_decode(model_path: str | Path = DEFAULT_MODEL, examples: int = 96) -> dict:
    import numpy as np
    import torch
    from PIL import Image

    from training.data import ShardStream, read_shard
    from training.fastpng import read_rgba

    torch.set_num_threads(1)  # as in a DataLoader worker (training.trainer._worker_init)
    load = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="thagen-bench-decode-"))
    try:
        data = make_dataset(Path(model_path), tmp / "data", examples, 256)
        shard = sorted(data.glob("train-*.tar"))[0]
        pngs = [r[k] for r in read_shard(shard) for k in ("expression.png", "posed.png")]
        decoders = {"Pillow": lambda d: np.asarray(Image.open(io.BytesIO(d)))}
        try:
            import pyspng

            decoders["pyspng"] = pyspng.load
        except ImportError:
            pass
        decoders["thagen (fastpng)"] = read_rgba
        images = {name: _timed(f, pngs) for name, f in decoders.items()}

        def stream(_: object) -> int:
            loader = ShardStream(data, "train", "morpher", size=256, batch_size=BATCH, seed=0)
            return sum(len(batch["key"]) for batch in loader)

        count = stream(None)
        wall, cpu = _timed(stream, [None], rounds=3)
        loader_rate = _dataloader_rate(data)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "load": load,
        "examples": count,
        "decoders_ms": {k: (1e3 * w, 1e3 * c) for k, (w, c) in images.items()},
        "worker_examples_per_s": count / wall,
        "worker_examples_per_cpu_s": count / cpu,
        "dataloader_examples_per_s": loader_rate,
    }
    _print(result)
    return result


def _print(r: dict) -> None:
    print(
        f"decode: thagen shards at 256², one DataLoader worker (1 thread)\n"
        f"  load average {r['load']:.1f} on {os.cpu_count()} cores before this run"
    )
    for name, (wall, cpu) in r["decoders_ms"].items():
        print(f"  {name:<17} {wall:5.2f} ms per 256² RGBA PNG ({cpu:.2f} CPU ms)")
    rate, cpu_rate = r["worker_examples_per_s"], r["worker_examples_per_cpu_s"]
    met = "met" if cpu_rate >= GOAL else "NOT met"
    print(
        f"  ShardStream worker loop (tar, JSON, 2 PNGs, batches of {BATCH} in float): "
        f"{rate:.0f} examples/s wall, {cpu_rate:.0f} per CPU second; goal ≥ {GOAL:.0f} per "
        f"worker: {met} (per CPU second)\n"
        f"  a real DataLoader, 1 worker process: {r['dataloader_examples_per_s']:.0f} examples/s "
        "wall (batches reach the training process through shared memory)",
        flush=True,
    )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    bench_decode(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_MODEL)
