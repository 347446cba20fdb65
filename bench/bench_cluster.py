"""The same generation through a Dask LocalCluster and through the local runner: examples/s, the
ratio, and the per-task overhead of each backend.

    .venv/bin/python bench/bench_cluster.py [MODEL] [--examples 96] [--workers 2]

The cluster is `distributed.LocalCluster` on 127.0.0.1 with one single-threaded worker process
per core (`processes=True`), as `dask-worker`s on cluster nodes are; the local runner has as many
loky processes. Both are started and warmed up (process start, GL context, model load) before
the timed run, so the rates are the steady ones a long run reaches; the two alternate for a few
rounds and the medians are reported. The per-task overhead is the
round trip of an empty task (submit → run → result), in batches as the pipeline submits shards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT.parent / "shared" / "mmd" / "animasa_miku_v2_3" / "miku_v2.pmd"
EMPTY_TASKS = 200


def empty_task(index: int) -> int:
    return index


def task_overhead(runner, tasks: int = EMPTY_TASKS) -> float:
    """Seconds per empty task, submitted all at once and waited for (median of 3 batches)."""
    batches = []
    for _ in range(3):
        start = time.perf_counter()
        for _, outcome in runner.map(empty_task, list(range(tasks))):
            if isinstance(outcome, BaseException):
                raise outcome
        batches.append((time.perf_counter() - start) / tasks)
    return statistics.median(batches)


def _worker_pids(runner) -> list[int]:
    """The worker processes' pids (a Dask worker's or a loky worker's)."""
    if hasattr(runner, "client"):
        return list(runner.client.run(os.getpid).values())
    return list(getattr(runner._executor, "_processes", {}) or {})


def _timed_generate(runner, catalog, config, out: Path) -> tuple[float, float]:
    """(wall seconds, worker CPU seconds) of one generate, after a warm-up one."""
    from bench.bench_pipeline import _process_cpu
    from pipeline.generate import generate

    warm = replace(config, examples_per_character=2 * runner.workers, shard_max_examples=2)
    generate(warm, catalog, out.with_name(out.name + "-warm"), runner, progress=False)
    pids = _worker_pids(runner)
    cpu, start = sum(map(_process_cpu, pids)), time.perf_counter()
    generate(config, catalog, out, runner, progress=False)
    return time.perf_counter() - start, sum(map(_process_cpu, pids)) - cpu


def bench_cluster(
    model_path: str | Path = DEFAULT_MODEL, examples: int = 96, workers: int = 2, rounds: int = 3
) -> dict:
    """Print and return both backends' examples/s (median of interleaved rounds), their ratio
    and their per-task overhead."""
    from distributed import Client, LocalCluster

    from pipeline.catalog import scan
    from pipeline.config import GenerateConfig
    from pipeline.runners import LocalRunner
    from pipeline.runners.dask import DaskRunner
    from pipeline.splits import SplitConfig

    splits = SplitConfig(train=1.0, val=0.0, test=0.0)
    catalog = scan([model_path], splits, jobs=1, progress=False)
    config = GenerateConfig(
        examples_per_character=examples,
        image_size=256,
        shard_max_examples=max(1, examples // (4 * workers)),  # several shards per worker
        splits=splits,
    )
    shards = -(-examples // config.shard_max_examples)
    load = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="thagen-bench-cluster-"))
    result: dict = {"examples": examples, "workers": workers, "shards": shards, "load": load}
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    times: dict[str, list[tuple[float, float]]] = {"local": [], "dask": []}
    try:
        with LocalRunner(workers) as local, cluster, Client(cluster) as client:
            dask = DaskRunner(client)
            # The same raster threads for both (DaskRunner passes each worker's thread count,
            # here 1, to llvmpipe; the local runner rasterises in the worker thread): on a
            # shared machine an extra thread per worker also buys a larger share of the cores.
            dask.threads = local.threads
            runners = {"local": local, "dask": dask}
            for r in range(rounds):  # interleaved, so a burst of other work hits both alike
                for name, runner in runners.items():
                    out = tmp / f"{name}{r}"
                    times[name].append(_timed_generate(runner, catalog, config, out))
            for name, runner in runners.items():
                result[f"{name}_task_ms"] = 1e3 * task_overhead(runner)
        result["identical"] = all(
            [p.read_bytes() for p in sorted((tmp / "local0").glob("*.tar"))]
            == [p.read_bytes() for p in sorted((tmp / f"dask{r}").glob("*.tar"))]
            for r in range(rounds)
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, measured in times.items():
        result[f"{name}_seconds"] = statistics.median(m[0] for m in measured)
        result[f"{name}_cpu_ms"] = 1e3 * statistics.median(m[1] for m in measured) / examples
    result["local_rate"] = examples / result["local_seconds"]
    result["dask_rate"] = examples / result["dask_seconds"]
    result["ratio"] = result["dask_rate"] / result["local_rate"]
    _print(result)
    return result


def _print(r: dict) -> None:
    per_shard = r["examples"] / r["shards"]
    print(
        f"cluster: {r['examples']} examples at 256² in {r['shards']} shards, {r['workers']} "
        f"worker processes each (load average {r['load']:.1f} on {os.cpu_count()} cores)\n"
        f"  local runner (loky):                {r['local_rate']:6.2f} examples/s, "
        f"{r['local_cpu_ms']:5.2f} worker CPU ms/example; empty task {r['local_task_ms']:.2f} ms\n"
        f"  Dask LocalCluster (tcp, 127.0.0.1): {r['dask_rate']:6.2f} examples/s, "
        f"{r['dask_cpu_ms']:5.2f} worker CPU ms/example; empty task {r['dask_task_ms']:.2f} ms\n"
        f"  Dask / local: {r['ratio']:.2f}; the task overhead is "
        f"{r['dask_task_ms'] / per_shard:.3f} ms per example at {per_shard:.0f} examples per "
        f"shard; shards byte-identical: {r['identical']}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--examples", type=int, default=96)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    bench_cluster(args.model, args.examples, args.workers)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
