"""`thagen merge OUT PARTS...`: join slice runs (`--shard-index I --num-shards N`) into one dataset.

Each part holds some complete shards, their sidecars, the catalog and the config. Merging checks
that every part used the same config and catalog, brings their shards into OUT (hard links when
possible, else copies; tar before sidecar), checks that every planned shard is there with the
sha256 its sidecar records, and writes the index. Parts may also have written straight into OUT:
then `thagen merge OUT` just finalises. Merging holds OUT's lock (`pipeline.lock`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd

from media.owned import require_no_link
from pipeline.atomic import temporary_name
from pipeline.catalog import read_catalog, write_catalog
from pipeline.config import GenerateConfig
from pipeline.lock import holding
from pipeline.manifest import collect_done, write_index
from pipeline.plan import plan_shards
from pipeline.rerun import check_rerun
from pipeline.state import state_dir, sweep_temporaries, write_json_atomic

MAX_STATE_BYTES = 1 << 24  # a run's config.json is a few kB


class MergeError(ValueError):
    """Parts that cannot be merged; the message names the part and what is wrong."""


def read_part(part: Path) -> tuple[GenerateConfig, pd.DataFrame]:
    from media.files import read_regular

    config_file = state_dir(part) / "config.json"
    if not config_file.is_file():
        raise MergeError(f"{part}: not a thagen generate output (no {config_file.name})")
    try:
        data = json.loads(read_regular(config_file, "run state", MAX_STATE_BYTES).decode("utf-8"))
        if not isinstance(data, dict):
            raise TypeError(f"a JSON {type(data).__name__}, not an object")
        config = GenerateConfig.from_json(data)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        reason = f"{type(error).__name__}: {error}" if not isinstance(error, ValueError) else error
        raise MergeError(f"{config_file}: not a valid run state ({reason})") from None
    return config, read_catalog(part / "catalog.parquet")


def merge(out: str | Path, parts: list[str | Path]) -> dict:
    """Merge `parts` into `out`; returns the written dataset.json."""
    out = Path(out)
    with holding(out, "merge"):
        return _merge(out, [Path(p) for p in parts])


def _merge(out: Path, parts: list[Path]) -> dict:
    sweep_temporaries(out)
    sources = parts or [out]
    config, catalog = read_part(sources[0])
    for part in sources[1:]:
        other_config, other_catalog = read_part(part)
        if other_config != config:
            raise MergeError(f"{part}: generated with a different config than {sources[0]}")
        if not other_catalog.equals(catalog):
            raise MergeError(f"{part}: generated from a different catalog than {sources[0]}")
    if all(part.resolve() != out.resolve() for part in sources):  # finished work of OUT's own
        check_rerun(out, config, how="merge into an empty folder or into one of the parts")
    state_dir(out).mkdir(parents=True, exist_ok=True)
    write_catalog(catalog, out / "catalog.parquet")
    write_json_atomic(state_dir(out) / "config.json", config.to_json())
    for part in sources:
        if part.resolve() != out.resolve():
            _bring_shards(part, out)
    specs = plan_shards(config, catalog)
    dones, missing = collect_done(out, config, catalog, specs, "full")
    if missing:
        raise MergeError(
            f"{out}: {len(missing)} of {len(specs)} shards missing or incomplete "
            f"(first: {', '.join(missing[:5])}); run those slices again"
        )
    return write_index(out, config, catalog, dones)


def _bring_shards(part: Path, out: Path) -> None:
    for sidecar in sorted(state_dir(part).glob("*.done.json")):
        name = sidecar.name.removesuffix(".done.json")
        tar = part / f"{name}.tar"
        if not tar.is_file():
            continue
        _link_or_copy(tar, out / tar.name)
        _link_or_copy(sidecar, state_dir(out) / sidecar.name)


def _link_or_copy(source: Path, target: Path) -> None:
    require_no_link(target, "shard")
    tmp = temporary_name(target)
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
