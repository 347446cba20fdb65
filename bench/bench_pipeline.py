"""End-to-end dataset throughput: examples/s (2 renders + 2 PNG encodes + tar write + record)
for one model with 1 and with 2 worker processes, and the ratio.

    .venv/bin/python bench/bench_pipeline.py [MODEL] [--examples 240] [--size 256]

Each measurement runs `generate` twice with the same workers: a short warm-up (process start,
GL context, model upload) and the timed run, whose workers already hold the context and model, so
the figure is the steady rate a long run reaches. The cold figure (warm-up included) is printed
too.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT.parent / "shared" / "mmd" / "animasa_miku_v2_3" / "miku_v2.pmd"


def _run(catalog, config, out: Path, runner) -> float:
    from pipeline.runners import generate

    start = time.perf_counter()
    generate(config, catalog, out, runner, progress=False)
    return time.perf_counter() - start


def bench_pipeline(
    model_path: str | Path, examples: int = 240, size: int = 256, png_level: int = 1
) -> dict:
    """Examples/s with 1 and 2 local workers, and their ratio."""
    from pipeline.catalog import scan
    from pipeline.runners import LocalRunner
    from pipeline.splits import SplitConfig
    from pipeline.tasks import GenerateConfig

    splits = SplitConfig(train=1.0, val=0.0, test=0.0)
    catalog = scan([model_path], splits, jobs=1, progress=False)
    if not catalog["usable"].all():
        raise ValueError(f"{model_path}: not usable: {catalog['reasons'].iloc[0]}")
    result: dict = {"model": str(model_path), "examples": examples, "size": size}
    tmp = Path(tempfile.mkdtemp(prefix="thagen-bench-"))
    try:
        for workers in (1, 2):
            runner = LocalRunner(workers)
            # Shards small enough that every worker has several; same layout for both runs.
            config = GenerateConfig(
                examples_per_character=examples,
                image_size=size,
                png_compress_level=png_level,
                shard_max_examples=max(1, examples // 12),
                splits=splits,
            )
            warm = GenerateConfig(
                **{
                    **config.__dict__,
                    "examples_per_character": 4 * workers,
                    "shard_max_examples": 2,
                }
            )
            cold = _run(catalog, warm, tmp / f"warm{workers}", runner)
            seconds = _run(catalog, config, tmp / f"run{workers}", runner)
            runner.abort()
            result[f"workers_{workers}"] = {
                "seconds": round(seconds, 3),
                "examples_per_s": round(examples / seconds, 2),
                "warmup_seconds": round(cold, 3),
                "bytes_per_example": sum(
                    p.stat().st_size for p in (tmp / f"run{workers}").glob("*.tar")
                )
                // examples,
            }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["ratio"] = round(
        result["workers_2"]["examples_per_s"] / result["workers_1"]["examples_per_s"], 3
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--examples", type=int, default=240)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--png-level", type=int, default=1)
    args = parser.parse_args(argv)
    r = bench_pipeline(args.model, args.examples, args.size, args.png_level)
    for workers in (1, 2):
        w = r[f"workers_{workers}"]
        print(
            f"pipeline {args.size}px, {workers} worker(s): {w['examples_per_s']:6.2f} examples/s "
            f"({args.examples} in {w['seconds']:.2f} s; warm-up {w['warmup_seconds']:.2f} s; "
            f"{w['bytes_per_example'] // 1024} KiB/example)"
        )
    print(f"pipeline 2 workers / 1 worker: {r['ratio']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
