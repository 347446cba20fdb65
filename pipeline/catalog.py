"""`thagen scan`: every model under a folder (zips included) inspected once, as `catalog.parquet`.

A character is identified by the sha256 of its model file's bytes (for a zip, of the member's
bytes): identical files are one character, kept at the first path in sorted order with the other
paths listed in `duplicates`. Models that fail to load or lack the THA1 face are kept, unusable,
with their reasons.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipeline.splits import SplitConfig, assign_splits

if TYPE_CHECKING:
    from pipeline.runners import Runner

COLUMNS = [
    "character",
    "path",
    "member",
    "name",
    "format",
    "usable",
    "stage",
    "reasons",
    "roles",
    "head_top",
    "head_chin",
    "head_center_x",
    "head_half_width",
    "vertices",
    "faces",
    "morphs",
    "split",
    "duplicates",
    "flags",
]


def find_files(root: str | Path) -> tuple[list[Path], list]:
    """(model files and zips, skipped entries) under `root` (a folder or a single file), sorted.

    The walk and its symlink rule are `mmd_loader.walk.walk_models`'s; skipped entries
    (`Skipped`: path and reason) are what it did not follow, for the caller to report.
    """
    from mmd_loader.walk import walk_models

    return walk_models(root)


def scan_file(path: str | Path, overrides: dict[str, dict] | None = None) -> list[dict]:
    """Catalog rows for one file: one row for a model, one per model inside a zip.

    `overrides` is the face-overrides table as plain dicts (`GenerateConfig.overrides`)."""
    from mmd_loader import ModelLoadError
    from mmd_loader.archive import is_archive, iter_models

    path = Path(path)
    if not is_archive(path):
        return [_inspect(path, None, path, overrides)]
    try:
        return [
            _inspect(path, member, extracted, overrides) for member, extracted in iter_models(path)
        ]
    except ModelLoadError as error:
        row = _row(path, None, _sha256(path))
        return [{**row, "stage": "load", "reasons": [str(error)]}]


def _inspect(path: Path, member: str | None, file: Path, overrides: dict[str, dict] | None) -> dict:
    """Hash, load and inspect one model file (`file` is the extracted copy for zip members)."""
    from mmd_loader.inspection import inspect_model
    from mmd_loader.overrides import OverridesError, overrides_for, table_from_json

    row = _row(path, member, _sha256(file))
    table = table_from_json(overrides or {})
    label = Path(path) / member if member else Path(path)
    try:
        forced = overrides_for(label, table)
    except OverridesError as error:  # a bad sidecar costs its model, not the scan
        return {**row, "stage": "overrides", "reasons": [str(error)]}
    report, model, roles = inspect_model(file, overrides=forced)
    if model is None:
        return {
            **row,
            "stage": "load",
            "reasons": [r.replace(str(file), _label(path, member)) for r in report.reasons],
        }
    box = report.head_box or {}
    return {
        **row,
        "name": report.name,
        "format": report.format,
        "usable": report.usable,
        "reasons": list(report.reasons),
        "roles": json.dumps(report.roles, ensure_ascii=False, sort_keys=True),
        "flags": json.dumps(model_flags(model, roles), ensure_ascii=False, sort_keys=True),
        "head_top": box.get("top"),
        "head_chin": box.get("chin"),
        "head_center_x": box.get("center_x"),
        "head_half_width": box.get("half_width"),
        "vertices": report.vertices,
        "faces": report.faces,
        "morphs": report.morphs,
    }


def model_flags(model, roles) -> list[dict]:
    """Face detection's flags and, for a usable model, the flags of its own renders."""
    flags = [dict(f) if isinstance(f, dict) else _as_dict(f) for f in getattr(roles, "flags", [])]
    return flags + render_flags_of(model, roles)


def render_flags_of(model, roles) -> list[dict]:
    """The flags of a usable model's own renders (`pipeline.quality`), rendered in this
    process's renderer (none for an unusable model)."""
    from pipeline.quality import flag, quality_settings, render_flags
    from pipeline.worker import STATE

    flags: list[dict] = []
    if roles is None or not roles.usable:
        return flags
    try:
        renderer = STATE.renderer_with(quality_settings())
        STATE.current = None  # the renderer's model is no longer a shard's character
        renderer.set_model(model, roles)
        flags += render_flags(renderer, model, roles)
    except Exception as error:  # the model will fail at generate too; say so here
        flags.append(flag("render_failed", f"{type(error).__name__}: {error}"[:300]))
    return flags


def _as_dict(item) -> dict:
    return {k: getattr(item, k, None) for k in ("code", "role", "value", "message")}


def read_flags(row) -> list[dict]:
    """A catalog row's flags as a list of dicts."""
    text = row.get("flags")
    return json.loads(text) if isinstance(text, str) and text else []


def _row(path: Path, member: str | None, character: str) -> dict:
    return {
        "character": character,
        "path": str(path),
        "member": member,
        "name": None,
        "format": None,
        "usable": False,
        "stage": None,
        "reasons": [],
        "roles": "{}",
        "head_top": None,
        "head_chin": None,
        "head_center_x": None,
        "head_half_width": None,
        "vertices": 0,
        "faces": 0,
        "morphs": 0,
        "split": None,
        "duplicates": [],
        "flags": "[]",
    }


def _label(path: Path, member: str | None) -> str:
    return f"{path}/{member}" if member else str(path)


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                sha.update(chunk)
    except OSError as error:
        sha.update(f"unreadable:{path}:{error}".encode())
    return sha.hexdigest()


def scan(
    roots: Sequence[str | Path],
    splits: SplitConfig | None = None,
    jobs: int = -1,
    progress: bool = True,
    overrides: dict[str, dict] | None = None,
    runner: Runner | None = None,
) -> pd.DataFrame:
    """Inspect every model under `roots` on `runner` (default: `jobs` local processes, all
    cores for -1); one row per character. A file whose task fails (even a worker that dies on
    it) becomes an unusable row naming the failure."""
    from tqdm import tqdm

    from pipeline.runners import LocalRunner

    found = [find_files(root) for root in roots]
    files = sorted({f.resolve() for part, _ in found for f in part})
    skipped = [str(s) for _, part in found for s in part]
    for line in skipped:  # every entry the walk did not follow is reported
        print(f"skipped {line}", file=sys.stderr)
    own = runner is None
    runner = runner or LocalRunner(max(jobs, 0))
    parts: list[list[dict]] = [[] for _ in files]
    try:
        bar = tqdm(total=len(files), desc="scan", unit="file", disable=not progress)
        for index, outcome in runner.map(scan_task, [(f, overrides) for f in files]):
            if isinstance(outcome, BaseException):
                row = _row(files[index], None, _sha256(files[index]))
                reason = f"{files[index]}: scan failed: {outcome}"
                outcome = [{**row, "stage": "load", "reasons": [reason]}]
            parts[index] = outcome
            bar.update(1)
        bar.close()
    finally:
        if own:
            runner.close()
    table = build_catalog([row for part in parts for row in part], splits)
    table.attrs["skipped"] = skipped
    return table


def scan_task(item: tuple[Path, dict[str, dict] | None]) -> list[dict]:
    """`scan_file` on one (path, overrides) pair, as the runner submits it."""
    return scan_file(*item)


def build_catalog(rows: list[dict], splits: SplitConfig | None = None) -> pd.DataFrame:
    """Deduplicate rows by character (first path in sorted order wins) and assign splits."""
    rows = sorted(rows, key=lambda r: (r["path"], r["member"] or ""))
    kept: dict[str, dict] = {}
    for row in rows:
        first = kept.get(row["character"])
        if first is None:
            kept[row["character"]] = {**row, "duplicates": list(row["duplicates"])}
        else:
            first["duplicates"].append(_label(Path(row["path"]), row["member"]))
    table = pd.DataFrame(list(kept.values()), columns=COLUMNS)
    split = assign_splits(table["character"], splits or SplitConfig())
    table["split"] = [split[c] for c in table["character"]]
    return table.reset_index(drop=True)


def write_catalog(table: pd.DataFrame, path: str | Path) -> Path:
    """Write the catalog as parquet (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    table.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def read_catalog(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no catalog (make one with `thagen scan`)")
    table = pd.read_parquet(path)
    missing = set(COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"{path}: not a thagen catalog (missing columns {sorted(missing)})")
    return table
