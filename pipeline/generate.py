"""`generate()`: plan the shards, skip the complete ones, run the rest on a `Runner`, and write
the index (manifest last), with resume and recovery from workers that die.

The run holds the folder's lock (`pipeline.lock`) throughout: a second writer is refused, and
an earlier run's leftover workers are waited for before anything is touched; then what killed
writers left behind (temporary files) is swept. On resume a complete shard is reused only when
its sidecar matches and (by default) its bytes still have the recorded sha256.

When a worker process dies (a segfault in a driver, an out-of-memory kill), every shard that was
running is retried alone in a fresh process; a shard that kills its process again names the
culprit in its progress sidecar, which is recorded as a failure and left out of the retried
shard. Every other shard completes. Any other error (a full disk: `OutputError`) stops the run
at once, keeping every complete shard.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from media.files import FileRefusedError
from pipeline.catalog import write_catalog
from pipeline.config import GenerateConfig
from pipeline.deadline import DEFAULT_MODEL_TIMEOUT, check_timeout
from pipeline.lock import RunContext, holding
from pipeline.manifest import check_index_targets, collect_done, write_index
from pipeline.plan import ShardSpec, plan_shards, shard_rows, spec_hash
from pipeline.rerun import check_rerun
from pipeline.runners import LocalRunner, Runner, WorkerDied
from pipeline.state import (
    VERIFY_MODES,
    progress_path,
    read_done,
    read_progress,
    state_dir,
    sweep_temporaries,
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
    *,
    verify: str = "full",
    model_timeout: float | None = DEFAULT_MODEL_TIMEOUT,
    overwrite: bool = False,
) -> dict:
    """Render every incomplete shard (of `part` only, if given) and, for a whole dataset, write
    its index. Returns `{"rendered", "skipped", "shards", "dataset"}` (dataset.json or None).

    `verify="full"` re-reads every complete shard and checks its sha256 before reusing it
    (`"quick"`: size and member index only); `model_timeout` is the per-model time limit. A
    folder holding finished work made with other options is refused (`pipeline.rerun`) unless
    `overwrite`."""
    out = Path(out)
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {', '.join(VERIFY_MODES)}, got {verify!r}")
    timeout = check_timeout(model_timeout)
    own_runner = runner is None
    runner = runner or LocalRunner()
    try:
        key = None if part is None else (part.index, part.count)
        with holding(out, "generate", key) as lock:
            run = lock.context(timeout)
            check_rerun(out, config, overwrite)
            return _generate(config, catalog, out, runner, part, progress, verify, run)
    finally:
        if own_runner:
            runner.close()


def _generate(
    config: GenerateConfig,
    catalog: pd.DataFrame,
    out: Path,
    runner: Runner,
    part: Slice | None,
    progress: bool,
    verify: str,
    run: RunContext,
) -> dict:
    specs = plan_shards(config, catalog)
    mine = specs if part is None else specs[part.index :: part.count]
    check_index_targets(out)
    sweep_temporaries(out, None if part is None else {s.name for s in mine})
    write_catalog(catalog, out / "catalog.parquet")
    write_json_atomic(state_dir(out) / "config.json", config.to_json())
    rows = {s.name: shard_rows(catalog, s) for s in mine}
    todo = [
        s
        for s in mine
        if read_done(out, s.name, spec_hash(config, rows[s.name], s), verify) is None
    ]
    for spec in todo:
        progress_path(out, spec.name).unlink(missing_ok=True)
    initial = sum(s.count for s in mine if s not in todo)
    bar = _bar(sum(s.count for s in mine), initial, progress)
    try:
        crashed = _run_batch(runner, config, rows, todo, out, bar, initial, run)
        for spec in crashed:
            _run_isolated(runner, config, rows[spec.name], spec, out, run)
            bar.update(spec.count)
    except KeyboardInterrupt:
        runner.abort()
        bar.close()
        print(
            f"interrupted: complete shards are kept in {out}; run again to resume", file=sys.stderr
        )
        raise
    except BaseException:
        runner.abort()  # stop the other shards now; complete ones are kept
        bar.close()
        raise
    bar.close()
    info = None
    if part is None:
        # Every shard was verified above or has just been written and hashed by its worker.
        dones, missing = collect_done(out, config, catalog, specs, "quick")
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
    run: RunContext,
) -> list[ShardSpec]:
    """Run shards concurrently; returns those that were running when a worker died.

    Shards that had not started when the pool broke are simply submitted again.
    """
    queue, suspects, finished = list(todo), [], 0
    attempts: dict[str, int] = {}
    while queue:
        tasks = {
            runner.submit(
                run_shard, config, rows[s.name], s, str(out), runner.threads, None, run
            ): s
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
                    raise _task_error(spec, result)
                attempts[spec.name] = attempts.get(spec.name, 0) + 1
                started = progress_path(out, spec.name).exists()
                retry_alone = started or attempts[spec.name] >= MAX_RESUBMITS
                (suspects if retry_alone else queue).append(spec)
            running = sum(read_progress(out, s.name)[1] for s in tasks.values())
            bar.n = initial + finished + running
            bar.refresh()
    return sorted(suspects, key=lambda s: s.name)


def _task_error(spec: ShardSpec, error: BaseException) -> BaseException:
    """What a failed shard task raises in the run: a write error (disk full) or a refused file
    (a link in the folder) as it is, one line naming the file; anything else as a RuntimeError
    naming the shard."""
    if isinstance(error, OSError | FileRefusedError):
        return error
    failure = RuntimeError(f"shard {spec.name} failed: {error}")
    failure.__cause__ = error
    return failure


def _run_isolated(
    runner: Runner,
    config: GenerateConfig,
    rows: list[dict],
    spec: ShardSpec,
    out: Path,
    run: RunContext,
) -> dict:
    """Retry a shard alone; each time its process dies, the character it was on is skipped."""
    skip: dict[str, dict] = {}
    by_character = {r["character"]: r for r in rows}
    progress_path(out, spec.name).unlink(missing_ok=True)
    for _ in range(len(rows) + 1):
        result = runner.run_alone(
            run_shard, config, rows, spec, str(out), runner.threads, skip, run
        )
        if not isinstance(result, BaseException):
            return result
        if not isinstance(result, WorkerDied):
            raise _task_error(spec, result)
        culprit = read_progress(out, spec.name)[0]
        if culprit not in by_character or culprit in skip:
            raise RuntimeError(f"shard {spec.name}: worker died outside any character: {result}")
        reason = f"worker process died while rendering ({result.cause})"
        skip[culprit] = failure_row(by_character[culprit], "worker", reason)
        progress_path(out, spec.name).unlink(missing_ok=True)
    raise RuntimeError(f"shard {spec.name}: workers kept dying")
