"""`generate()`: plan the shards, skip the complete ones, run the rest on a `Runner`, and write
the index (manifest last), with resume and recovery from workers that die.

When a worker process dies (a segfault in a driver, an out-of-memory kill), every shard that was
running is retried alone in a fresh process; a shard that kills its process again names the
culprit in its progress sidecar, which is recorded as a failure and left out of the retried
shard. Every other shard completes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.catalog import write_catalog
from pipeline.config import GenerateConfig
from pipeline.manifest import collect_done, write_index
from pipeline.plan import ShardSpec, plan_shards, shard_rows, spec_hash
from pipeline.runners import LocalRunner, Runner, WorkerDied
from pipeline.state import (
    progress_path,
    read_done,
    read_progress,
    state_dir,
    write_json_atomic,
)
from pipeline.worker import failure_row, run_shard

POLL_SECONDS = 0.5
MAX_RESUBMITS = 3  # a shard that never started is resubmitted this often after pool breaks


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
    runner: Runner | None = None,
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
    runner: Runner,
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
        tasks = {
            runner.submit(run_shard, config, rows[s.name], s, str(out), runner.threads): s
            for s in queue
        }
        queue = []
        while tasks:
            for task in runner.wait_any(tasks, POLL_SECONDS):
                spec = tasks.pop(task)
                result = runner.outcome(task)
                if not isinstance(result, BaseException):
                    finished += spec.count
                    continue
                if not isinstance(result, WorkerDied):
                    raise RuntimeError(f"shard {spec.name} failed: {result}") from result
                attempts[spec.name] = attempts.get(spec.name, 0) + 1
                started = progress_path(out, spec.name).exists()
                retry_alone = started or attempts[spec.name] >= MAX_RESUBMITS
                (suspects if retry_alone else queue).append(spec)
            running = sum(read_progress(out, s.name)[1] for s in tasks.values())
            bar.n = initial + finished + running
            bar.refresh()
    return sorted(suspects, key=lambda s: s.name)


def _run_isolated(
    runner: Runner, config: GenerateConfig, rows: list[dict], spec: ShardSpec, out: Path
) -> dict:
    """Retry a shard alone; each time its process dies, the character it was on is skipped."""
    skip: dict[str, dict] = {}
    by_character = {r["character"]: r for r in rows}
    progress_path(out, spec.name).unlink(missing_ok=True)
    for _ in range(len(rows) + 1):
        result = runner.run_alone(run_shard, config, rows, spec, str(out), runner.threads, skip)
        if not isinstance(result, BaseException):
            return result
        if not isinstance(result, WorkerDied):
            raise RuntimeError(f"shard {spec.name} failed: {result}") from result
        culprit = read_progress(out, spec.name)[0]
        if culprit not in by_character or culprit in skip:
            raise RuntimeError(f"shard {spec.name}: worker died outside any character: {result}")
        reason = f"worker process died while rendering ({result.cause})"
        skip[culprit] = failure_row(by_character[culprit], "worker", reason)
        progress_path(out, spec.name).unlink(missing_ok=True)
    raise RuntimeError(f"shard {spec.name}: workers kept dying")
