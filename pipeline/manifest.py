"""The dataset's index files, written once every shard is complete: `failures.parquet`,
`dataset.json`, `attributions.csv`, the dataset card `README.md` and, last, `manifest.parquet`
(its presence means the dataset is complete).

Nothing here records time or host, so two complete runs of one config give identical files.
"""

from __future__ import annotations

import json
import platform
import zlib
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from media.owned import require_no_link, write_atomic
from pipeline.atomic import target_of, write_bytes_atomic
from pipeline.config import GenerateConfig
from pipeline.fingerprint import code_fingerprint
from pipeline.plan import ShardSpec, shard_rows, spec_hash
from pipeline.png import deflate_library
from pipeline.splits import SPLITS
from pipeline.state import done_path, read_done
from poses.schema import Schema

FAILURE_COLUMNS = ("model", "character", "stage", "error")


def collect_done(
    out: Path,
    config: GenerateConfig,
    catalog: pd.DataFrame,
    specs: list[ShardSpec],
    verify: str = "quick",
) -> tuple[list[dict], list[str]]:
    """Sidecars of the complete shards, and the names of the missing ones (`verify` as in
    `pipeline.state.read_done`)."""
    dones, missing = [], []
    for spec in specs:
        expected = spec_hash(config, shard_rows(catalog, spec), spec)
        done = read_done(out, spec.name, expected, verify)
        if done is None:
            missing.append(spec.name)
        else:
            dones.append(done)
    return dones, missing


def manifest_table(dones: list[dict], schema: Schema) -> pa.Table:
    """One row per example: key, shard, character, split, example, seed, every parameter, light,
    brow mode."""
    records = [r for d in dones for r in d["records"]]
    columns: dict[str, pa.Array] = {
        "key": pa.array([r["key"] for r in records], pa.string()),
        "shard": pa.array([r["shard"] for r in records], pa.string()),
        "character": pa.array([r["character"] for r in records], pa.string()),
        "split": pa.array([r["split"] for r in records], pa.string()),
        "example": pa.array([r["example"] for r in records], pa.int64()),
        "seed": pa.array([str(r["seed"]) for r in records], pa.string()),  # 64 bits, as text
    }
    for name in [*schema.names, "ambient", "directional"]:
        columns[name] = pa.array([r[name] for r in records], pa.float64())
    if records and "motion" in records[0]:  # generate --poses: the frame each pose came from
        columns["motion"] = pa.array([r["motion"] for r in records], pa.string())
        columns["motion_frame"] = pa.array([r["motion_frame"] for r in records], pa.int64())
    # How the example's brows were drawn (render.brow_layer): "modelled" or "over".
    columns["brows"] = pa.array([r.get("brows", "modelled") for r in records], pa.string())
    return pa.table(columns)


def pose_sources(config: GenerateConfig, dones: list[dict]) -> dict | None:
    """dataset.json's `poses` (generate --poses): the motions folder, the laws' share, and per
    motion its file, sha256, frames, share of all frames and the examples drawn from it."""
    if config.poses is None:
        return None
    drawn: dict[str | None, int] = {}
    for done in dones:
        for record in done["records"]:
            drawn[record.get("motion")] = drawn.get(record.get("motion"), 0) + 1
    total = sum(frames for _, _, frames in config.motions)
    motions = [
        {
            "file": name,
            "sha256": digest,
            "frames": frames,
            "share_of_frames": round(frames / total, 6),
            "examples": drawn.get(name, 0),
        }
        for name, digest, frames in config.motions
    ]
    return {
        "folder": config.poses,
        "mix": config.poses_mix,
        "motions": motions,
        "law_examples": drawn.get(None, 0),
    }


def failures_table(
    dones: list[dict], catalog: pd.DataFrame, terms_exclude: tuple[str, ...] = ()
) -> pa.Table:
    """Models that produced no examples: load failures at scan time, usable models the terms
    policy left out (stage `terms`), then failures while rendering (deduplicated: a character
    spanning two shards fails once)."""
    from pipeline.terms_policy import excluded_by_terms

    rows = []
    for row in catalog[catalog["stage"].notna()].itertuples():  # load, overrides
        model = f"{row.path}/{row.member}" if isinstance(row.member, str) else row.path
        rows.append(
            {
                "model": model,
                "character": row.character,
                "stage": "scan",
                "error": "; ".join(row.reasons),
            }
        )
    usable = catalog[catalog["usable"].astype(bool)]
    for (_, row), why in zip(
        usable.iterrows(), excluded_by_terms(usable, terms_exclude), strict=True
    ):
        if why:
            model = f"{row.path}/{row.member}" if isinstance(row.member, str) else row.path
            rows.append(
                {
                    "model": model,
                    "character": row.character,
                    "stage": "terms",
                    "error": "; ".join(why),
                }
            )
    seen = set()
    for done in dones:
        for failure in done["failures"]:
            key = (failure["character"], failure["stage"], failure["error"])
            if key not in seen:
                seen.add(key)
                rows.append({k: failure[k] for k in FAILURE_COLUMNS})
    rows.sort(key=lambda r: (r["model"], r["stage"]))
    return pa.table({k: pa.array([r[k] for r in rows], pa.string()) for k in FAILURE_COLUMNS})


def versions(dones: list[dict]) -> dict[str, Any]:
    """Library versions that decide the bytes, and the GL renderer(s) the shards came from."""
    out: dict[str, Any] = {"python": platform.python_version(), "zlib": zlib.ZLIB_RUNTIME_VERSION}
    for package in ("thagen", "numpy", "pillow", "moderngl", "isal", "pyarrow", "pandas"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    out["gl_renderer"] = sorted({d.get("gl_renderer", "") for d in dones} - {""})
    out["code"] = code_fingerprint()
    return out


def dataset_json(
    config: GenerateConfig,
    schema: Schema,
    catalog: pd.DataFrame,
    dones: list[dict],
    failures: pa.Table,
) -> dict:
    splits = {}
    for split in SPLITS:
        mine = [d for d in dones if d["split"] == split]
        splits[split] = {
            "examples": sum(len(d["records"]) for d in mine),
            "characters": len({r["character"] for d in mine for r in d["records"]}),
            "shards": len(mine),
        }
    info = {
        "schema": schema.to_json(),
        "image_size": config.image_size,
        "splits": splits,
        "counts": {
            "models": len(catalog),
            "usable": int(catalog["usable"].sum()),
            "duplicates": int(sum(len(d) for d in catalog["duplicates"])),
            "failures": failures.num_rows,
            "examples": sum(s["examples"] for s in splits.values()),
            "shards": len(dones),
        },
        "config": config.to_json(),
        "versions": {**versions(dones), "png_deflate": deflate_library(config.png_compress_level)},
    }
    sources = pose_sources(config, dones)
    if sources is not None:
        info["poses"] = sources
    return info


INDEX_FILES = (
    "failures.parquet",
    "dataset.json",
    "attributions.csv",
    "README.md",
    "manifest.parquet",
)


def check_index_targets(out: Path) -> None:
    """Refuse, before any work, a dataset folder where an index file is a link or not a file."""
    for name in INDEX_FILES:
        require_no_link(Path(out) / name, "index")


def write_index(
    out: Path, config: GenerateConfig, catalog: pd.DataFrame, dones: list[dict]
) -> dict:
    """Write failures.parquet, dataset.json, attributions.csv and README.md, then
    manifest.parquet; returns dataset.json.

    Shards of an earlier run into the same folder that this dataset does not contain (another
    model set, shard size or split) are removed first, so the folder holds exactly one dataset.
    """
    from pipeline.attribution import attribution_rows, attributions_csv
    from pipeline.card import dataset_card

    remove_stray_shards(out, {d["shard"] for d in dones})
    schema = config.load_schema()
    failures = failures_table(dones, catalog, config.terms_exclude)
    info = dataset_json(config, schema, catalog, dones, failures)
    _write_parquet(failures, out / "failures.parquet")
    _write_text(out / "dataset.json", json.dumps(info, ensure_ascii=False, indent=2) + "\n")
    characters = {r["character"] for d in dones for r in d["records"]}
    attributions = attribution_rows(catalog, characters)
    write_bytes_atomic(out / "attributions.csv", attributions_csv(attributions))
    _write_text(out / "README.md", dataset_card(info, catalog, attributions))
    _write_parquet(manifest_table(dones, schema), out / "manifest.parquet")
    return info


def remove_stray_shards(out: Path, keep: set[str]) -> list[str]:
    """Delete `{split}-*.tar` (and their temporary files) and their sidecars whose shard is
    not in `keep`."""
    removed = []
    for split in SPLITS:
        for path in sorted(Path(out).glob(f"{split}-*.tar*")):
            name = path.name.split(".", 1)[0]
            target = path.name if path.name.endswith(".tar") else target_of(path.name)
            if name not in keep and target == f"{name}.tar":
                path.unlink()
                done_path(out, name).unlink(missing_ok=True)
                removed.append(path.name)
    return removed


def _write_parquet(table: pa.Table, path: Path) -> None:
    write_atomic(path, lambda f: pq.write_table(table, f), "index")


def _write_text(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
