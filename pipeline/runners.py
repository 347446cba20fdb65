"""Running shard tasks: local worker processes (joblib's loky) or a Dask cluster, with resume,
a progress bar, and recovery from workers that die.

`generate()` plans the shards, skips the complete ones, runs the rest, and writes the index
(manifest last). When a worker process dies (a segfault in a driver, an out-of-memory kill), every
shard that was running is retried alone in a fresh process; a shard that kills its process again
names the culprit in its progress sidecar, which is recorded as a failure and left out of the
retried shard. Every other shard completes.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.catalog import write_catalog
from pipeline.manifest import collect_done, write_index
from pipeline.tasks import (
    GenerateConfig,
    ShardSpec,
    failure_row,
    plan_shards,
    progress_path,
    read_done,
    run_shard,
    shard_rows,
    spec_hash,
    state_dir,
    write_json_atomic,
)

POLL_SECONDS = 0.5


class LocalRunner:
    """Shard tasks in `workers` local processes (loky), each with its own GL context."""

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers if workers > 0 else (os.cpu_count() or 1)
        self._executor: Any = None

    @property
    def threads(self) -> int:
        """llvmpipe raster threads per worker: none (0), each worker rasterises in its own
        thread on one core. That is the cheapest per image (bench model, CPU per image: 12.3 ms
        with 0 threads, 13.6 ms with 1, 15.1 ms with 2), so one worker per core (the default)
        uses a machine best and adding workers scales nearly linearly."""
        return 0

    def submit(self, fn: Any, *args: Any) -> cf.Future:
        """Submit to this runner's own pool (not loky's process-wide reusable one, which joblib's
        `Parallel` also takes over); a pool broken by a dying worker is replaced."""
        from joblib.externals.loky import ProcessPoolExecutor

        if self._executor is None or self._executor._flags.broken:
            self._executor = ProcessPoolExecutor(max_workers=self.workers)
        return self._executor.submit(fn, *args)

    def wait_any(self, futures: Iterable[Any], timeout: float) -> set[Any]:
        done, _ = cf.wait(list(futures), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return done

    def run_alone(self, fn: Any, *args: Any) -> Any:
        """Run one task in a fresh single process; returns its result or the exception."""
        from joblib.externals.loky import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=1) as executor:
            future = executor.submit(fn, *args)
            try:
                return future.result()
            except Exception as error:
                return error

    def abort(self) -> None:
        """Stop now (Ctrl-C): kill the workers without waiting for queued tasks."""
        if self._executor is not None:
            _silence_loky_manager_thread()
            self._executor.shutdown(wait=False, kill_workers=True)
            self._executor = None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def _silence_loky_manager_thread() -> None:
    """After workers are killed mid-run, loky's manager thread can trip over work items that
    were dropped with them (a KeyError) and print a traceback; the run is over, so drop it."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.thread is None or args.thread.name != "ExecutorManagerThread":
            previous(args)

    threading.excepthook = hook


class DaskRunner:
    """Shard tasks on a Dask distributed cluster (`tcp://HOST:PORT`); workers must see `out`."""

    def __init__(self, scheduler: str | Any) -> None:
        from distributed import Client

        self.client = scheduler if not isinstance(scheduler, str) else Client(scheduler)
        self._owns = isinstance(scheduler, str)
        info = self.client.scheduler_info()["workers"].values()
        self.workers = max(1, len(info))
        self.threads = max(1, min(w.get("nthreads", 1) for w in info) if info else 1)

    def submit(self, fn: Any, *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False)

    def wait_any(self, futures: Iterable[Any], timeout: float) -> set[Any]:
        from distributed import wait

        try:
            return set(wait(list(futures), timeout=timeout, return_when="FIRST_COMPLETED").done)
        except TimeoutError:
            return set()

    def run_alone(self, fn: Any, *args: Any) -> Any:
        future = self.client.submit(fn, *args, pure=False)
        try:
            return future.result()
        except Exception as error:
            return error

    def abort(self) -> None:
        self.client.cancel(list(self.client.futures.values()), force=True)

    def close(self) -> None:
        if self._owns:
            self.client.close()


def is_worker_death(error: BaseException) -> bool:
    """Whether a task failed because its process died (not because the task raised)."""
    if isinstance(error, cf.process.BrokenProcessPool):
        return True
    return type(error).__name__ in ("KilledWorker", "CommClosedError")


def outcome(future: Any) -> Any:
    """A finished future's result, or its exception."""
    try:
        return future.result()
    except Exception as error:
        return error


@dataclass(frozen=True)
class Slice:
    """`--shard-index I --num-shards N`: this job renders shards I, I+N, I+2N, …"""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard index {self.index} is not in 0..{self.count - 1}")


def generate(
    config: GenerateConfig,
    catalog: pd.DataFrame,
    out: str | Path,
    runner: LocalRunner | DaskRunner | None = None,
    part: Slice | None = None,
    progress: bool = True,
) -> dict:
    """Render every incomplete shard (of `part` only, if given) and, for a whole dataset, write
    its index. Returns `{"rendered", "skipped", "shards", "dataset"}` (dataset.json or None)."""
    out = Path(out)
    own_runner = runner is None
    runner = runner or LocalRunner()
    state_dir(out).mkdir(parents=True, exist_ok=True)
    write_catalog(catalog, out / "catalog.parquet")
    write_json_atomic(state_dir(out) / "config.json", config.to_json())
    specs = plan_shards(config, catalog)
    mine = specs if part is None else specs[part.index :: part.count]
    rows = {s.name: shard_rows(catalog, s) for s in mine}
    todo = [s for s in mine if read_done(out, s.name, spec_hash(config, rows[s.name], s)) is None]
    for spec in todo:
        progress_path(out, spec.name).unlink(missing_ok=True)
    initial = sum(s.count for s in mine if s not in todo)
    bar = _bar(sum(s.count for s in mine), initial, progress)
    try:
        crashed = _run_batch(runner, config, rows, todo, out, bar, initial)
        for spec in crashed:
            _run_isolated(runner, config, rows[spec.name], spec, out)
            bar.update(spec.count)
    except KeyboardInterrupt:
        runner.abort()
        bar.close()
        print(
            f"interrupted: complete shards are kept in {out}; run again to resume", file=sys.stderr
        )
        raise
    finally:
        if own_runner:
            runner.close()
    bar.close()
    info = None
    if part is None:
        dones, missing = collect_done(out, config, catalog, specs)
        if missing:
            raise RuntimeError(f"{out}: shards still incomplete: {', '.join(missing[:10])}")
        info = write_index(out, config, catalog, dones)
    return {
        "rendered": len(todo),
        "skipped": len(mine) - len(todo),
        "shards": len(mine),
        "dataset": info,
    }


def _bar(total: int, initial: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="ex",
        desc="generate",
        disable=not enabled,
        smoothing=0.1,
        dynamic_ncols=True,
    )


def _run_batch(
    runner: Any,
    config: GenerateConfig,
    rows: dict[str, list[dict]],
    todo: list[ShardSpec],
    out: Path,
    bar: Any,
    initial: int,
) -> list[ShardSpec]:
    """Run shards concurrently; returns those that were running when a worker died.

    Shards that had not started when the pool broke are simply submitted again.
    """
    queue, suspects, finished = list(todo), [], 0
    attempts: dict[str, int] = {}
    while queue:
        futures = {
            runner.submit(run_shard, config, rows[s.name], s, str(out), runner.threads): s
            for s in queue
        }
        queue = []
        while futures:
            for future in runner.wait_any(futures, POLL_SECONDS):
                spec = futures.pop(future)
                result = outcome(future)
                if not isinstance(result, BaseException):
                    finished += spec.count
                    continue
                if not is_worker_death(result):
                    raise RuntimeError(f"shard {spec.name} failed: {result}") from result
                attempts[spec.name] = attempts.get(spec.name, 0) + 1
                started = progress_path(out, spec.name).exists()
                (suspects if started or attempts[spec.name] >= 3 else queue).append(spec)
            running = sum(_progress(out, s.name)[1] for s in futures.values())
            bar.n = initial + finished + running
            bar.refresh()
    return sorted(suspects, key=lambda s: s.name)


def _run_isolated(
    runner: Any, config: GenerateConfig, rows: list[dict], spec: ShardSpec, out: Path
) -> dict:
    """Retry a shard alone; each time its process dies, the character it was on is skipped."""
    skip: dict[str, dict] = {}
    by_character = {r["character"]: r for r in rows}
    progress_path(out, spec.name).unlink(missing_ok=True)
    for _ in range(len(rows) + 1):
        result = runner.run_alone(run_shard, config, rows, spec, str(out), runner.threads, skip)
        if not isinstance(result, BaseException):
            return result
        culprit = _progress(out, spec.name)[0]
        if not is_worker_death(result):
            raise RuntimeError(f"shard {spec.name} failed: {result}") from result
        if culprit not in by_character or culprit in skip:
            raise RuntimeError(f"shard {spec.name}: worker died outside any character: {result}")
        reason = f"worker process died while rendering ({_death(result)})"
        skip[culprit] = failure_row(by_character[culprit], "worker", reason)
        progress_path(out, spec.name).unlink(missing_ok=True)
    raise RuntimeError(f"shard {spec.name}: workers kept dying")


def _progress(out: Path, name: str) -> tuple[str, int]:
    """(character, examples written) from a running shard's progress sidecar."""
    try:
        data = json.loads(progress_path(out, name).read_text("utf-8"))
        return str(data["character"]), int(data["examples"])
    except (OSError, ValueError, KeyError):
        return "", 0


def _death(error: BaseException) -> str:
    """A short cause, e.g. 'SIGSEGV(-11)' from loky's TerminatedWorkerError message."""
    text = str(error)
    if "EXIT(" in text or "SIG" in text:
        start = text.find("{")
        end = text.find("}", start)
        if start >= 0 and end > start:
            return text[start + 1 : end]
    return type(error).__name__


def wait_for(path: Path, timeout: float) -> bool:
    """Poll until `path` exists (used by tests and scripts that watch a run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.05)
    return path.exists()
