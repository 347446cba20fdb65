"""Running `generate` again into a folder that holds finished work: resume, never a silent redo.

A dataset folder remembers the options that made it (`.state/config.json`, the run's
`GenerateConfig`). Run again with the same options, `generate` resumes: complete shards are kept.
Run with any option changed, every shard would be another shard, so the finished ones would be
deleted and rendered again; that is refused in one line naming the options that differ, unless
the user asks for it (`--overwrite`). The comparison is over the whole config (nested values
included), so an option added to `GenerateConfig` later is covered without a change here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from media.files import brief
from media.owned import read_owned
from pipeline.config import GenerateConfig
from pipeline.state import state_dir

MAX_CONFIG_BYTES = 1 << 24
MAX_SHOWN = 6  # options named in the refusal; the rest are counted
SPLITS = ("train", "val", "test")


class OptionsChanged(ValueError):
    """A re-run with other options into a folder holding finished work (exit 2)."""


def changed_options(before: Any, after: Any, prefix: str = "") -> list[str]:
    """The dotted names of the values that differ between two JSON-like configs, with both
    values: ["examples_per_character: 100 → 50", "splits.train: 0.9 → 0.8", …]."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after), key=str):
            name = f"{prefix}{key}"
            if key not in before or key not in after:
                out.append(f"{name}: {_show(before.get(key))} → {_show(after.get(key))}")
            else:
                out += changed_options(before[key], after[key], f"{name}.")
        return out
    if _canonical(before) == _canonical(after):
        return []
    return [f"{prefix.rstrip('.')}: {_show(before)} → {_show(after)}"]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _show(value: Any) -> str:
    text = _canonical(value)
    return text if len(text) <= 60 else text[:59] + "…"


def finished_work(out: Path) -> list[str]:
    """What of a dataset folder a changed run would delete: its shards and index."""
    found = [p.name for p in sorted(out.glob("*-*.tar")) if p.name.split("-")[0] in SPLITS]
    found += [p.name for p in sorted(state_dir(out).glob("*.done.json"))]
    found += [n for n in ("manifest.parquet",) if (out / n).exists()]
    return found


def check_rerun(
    out: str | Path, config: GenerateConfig, overwrite: bool = False, how: str = ""
) -> None:
    """Refuse (`OptionsChanged`) to run `config` into `out` when `out` holds finished work made
    with other options, or with options it has no record of; nothing to lose, or `overwrite`,
    and the run goes ahead. `how` says how to proceed (default: `generate`'s ways)."""
    out = Path(out)
    work = finished_work(out) if out.is_dir() else []
    if overwrite or not work:
        return
    path = state_dir(out) / "config.json"
    how = (how or "write to another folder, or pass --overwrite to replace its shards") + (
        f" ({len(work)} files of finished work)"
    )
    try:
        before = GenerateConfig.from_json(json.loads(read_owned(path, MAX_CONFIG_BYTES)))
    except FileNotFoundError:
        raise OptionsChanged(
            f"{out}: holds a dataset ({work[0]}, …) but no record of the options that made it "
            f"({path} is missing); {how}"
        ) from None
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
        raise OptionsChanged(
            f"{out}: the options that made this dataset cannot be read ({path}: "
            f"{brief(error, 120)}); {how}"
        ) from None
    changes = changed_options(before.to_json(), config.to_json())
    if changes:
        shown = "; ".join(changes[:MAX_SHOWN])
        more = f"; and {len(changes) - MAX_SHOWN} more" if len(changes) > MAX_SHOWN else ""
        raise OptionsChanged(
            f"{out}: was generated with other options ({shown}{more}); a re-run with the same "
            f"options resumes it. To change them, {how}"
        )
