"""The shard plan: which examples each shard holds, and the hash a complete shard must match.

A shard's bytes are a pure function of (config, its catalog rows, its spec): examples of a split
are ordered by (character id, example index) and cut into shards of a fixed count, so the worker
count, the scheduler and the order of completion never change the output.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass

import pandas as pd

from pipeline.config import GenerateConfig
from pipeline.splits import SPLITS, assign_splits


@dataclass(frozen=True)
class ShardSpec:
    """One shard: its name, split and example ranges as (character, start, stop)."""

    name: str
    split: str
    ranges: tuple[tuple[str, int, int], ...]

    @property
    def count(self) -> int:
        return sum(stop - start for _, start, stop in self.ranges)

    @property
    def characters(self) -> list[str]:
        return [c for c, _, _ in self.ranges]


def example_key(character: str, index: int) -> str:
    return f"{character[:32]}_{index:06d}"


def excluded_by_flags(catalog: pd.DataFrame, codes: tuple[str, ...]) -> pd.Series:
    """Per catalog row: the excluded flag codes it carries (empty when none)."""
    wanted = set(codes)

    def hits(text) -> list[str]:
        if not wanted or not isinstance(text, str) or not text:
            return []
        return sorted({f["code"] for f in json.loads(text)} & wanted)

    column = catalog["flags"] if "flags" in catalog else pd.Series([None] * len(catalog))
    return pd.Series([hits(t) for t in column], index=catalog.index)


def usable_rows(
    catalog: pd.DataFrame, exclude_flags: tuple[str, ...] = (), terms_exclude: tuple[str, ...] = ()
) -> pd.DataFrame:
    """The usable characters, minus those carrying an excluded quality flag and those whose
    terms of use the policy leaves out (`pipeline.terms_policy`)."""
    from pipeline.terms_policy import excluded_by_terms

    keep = catalog["usable"].astype(bool)
    if exclude_flags:
        keep &= excluded_by_flags(catalog, exclude_flags).map(len) == 0
    if terms_exclude:
        keep &= excluded_by_terms(catalog, terms_exclude).map(len) == 0
    return catalog[keep].sort_values("character")


def plan_shards(config: GenerateConfig, catalog: pd.DataFrame) -> list[ShardSpec]:
    """Every shard of the dataset: per split (drawn per family), the usable characters'
    examples ordered by (character id, example index), cut every `examples_per_shard` examples."""
    rows = usable_rows(catalog, config.exclude_flags, config.terms_exclude)
    families = dict(zip(rows["character"], rows["family"], strict=True))
    split = assign_splits(rows["character"], config.splits, families)
    per_shard, n = config.examples_per_shard, config.examples_per_character
    specs = []
    for name in SPLITS:
        characters = [c for c in rows["character"] if split[c] == name]
        total = len(characters) * n
        for number, first in enumerate(range(0, total, per_shard)):
            last = min(total, first + per_shard)  # examples [first, last) of the split
            ranges = []
            for k in range(first // n, (last - 1) // n + 1):
                start, stop = max(first - k * n, 0), min(last - k * n, n)
                ranges.append((characters[k], start, stop))
            specs.append(ShardSpec(f"{name}-{number:06d}", name, tuple(ranges)))
    return specs


def spec_hash(config: GenerateConfig, rows: list[dict], spec: ShardSpec) -> str:
    """What a complete shard's sidecar must match to be reused on resume."""
    from pipeline.fingerprint import code_fingerprint

    payload = {
        "code": code_fingerprint(),
        "libraries": byte_libraries(),
        "config": config.to_json(),
        "schema": config.load_schema().to_json(),
        "rows": [[r["character"], r["path"], r["member"]] for r in rows],
        "ranges": [list(r) for r in spec.ranges],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@functools.cache
def byte_libraries() -> dict[str, str | None]:
    """Versions of the libraries outside the project that decide a shard's bytes: the PNG
    deflate (ISA-L, zlib), numpy (posing and skinning) and moderngl. A resume under other
    versions redoes the shards rather than mixing two byte versions of the same pixels."""
    import zlib
    from importlib import metadata

    out: dict[str, str | None] = {"zlib": zlib.ZLIB_RUNTIME_VERSION}
    for package in ("isal", "numpy", "moderngl"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out


def shard_rows(catalog: pd.DataFrame, spec: ShardSpec) -> list[dict]:
    """The catalog rows a shard task needs (path, member, name per character), in spec order."""
    table = catalog.set_index("character")
    rows = []
    for character in dict.fromkeys(spec.characters):
        row = table.loc[character]
        member = row["member"] if isinstance(row["member"], str) else None
        rows.append(
            {"character": character, "path": row["path"], "member": member, "name": row["name"]}
        )
    return rows
