"""Shared fixtures: where the real models are, and how their absence is treated; which
procedural seeds carry which ornament."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MMD_DIR = Path(os.environ.get("THAGEN_MMD_DIR", ROOT.parent / "shared" / "mmd"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


ARCHIVES_DIR = Path(os.environ.get("THAGEN_ARCHIVES_DIR", MMD_DIR.parent / "archives"))


def _require(folder: Path, marker: str, what: str, variable: str) -> Path:
    """`folder` when it holds `marker`; else a skip outside CI, a failure under CI=true."""
    if not (folder / marker).is_file():
        message = f"{what} not found at {folder} (set {variable})"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return folder


def require_mmd_dir() -> Path:
    """The real-model folder; a skip outside CI when it is absent, a failure under CI=true."""
    return _require(MMD_DIR, "reference.jsonl", "real MMD models", "THAGEN_MMD_DIR")


@pytest.fixture(scope="session")
def archives_dir() -> Path:
    """../shared/archives (RAR test files), under the same rule as the real models."""
    return _require(ARCHIVES_DIR, "README.md", "RAR test files", "THAGEN_ARCHIVES_DIR")


@pytest.fixture(scope="session")
def mmd_dir() -> Path:
    return require_mmd_dir()


@pytest.fixture(scope="session")
def reference_rows(mmd_dir: Path) -> list[dict]:
    lines = (mmd_dir / "reference.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def all_model_files() -> list[Path]:
    """Every .pmd/.pmx under the real-model folder (empty when it is absent)."""
    if not MMD_DIR.is_dir():
        return []
    return sorted(p for p in MMD_DIR.rglob("*") if p.suffix.lower() in (".pmd", ".pmx"))


def one_error_line(capsys, *needles: str) -> str:
    """The one line a user error printed (`error: ...`, no traceback), holding each needle."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    for needle in needles:
        assert needle in err[0], err[0]
    return err[0]


def tha1(renderer, **values: float):
    """The renderer's `Pose` for THA1 schema values on its current model (the schema's road)."""
    from poses import load_schema

    return renderer.bind(load_schema("tha1")).pose(values)


@functools.cache
def ornament_seeds() -> dict[tuple[str, bool], int]:
    """The first procedural seed of each (ornament, named like one) pair, "none" included."""
    from characters import spec_for_seed

    firsts: dict[tuple[str, bool], int] = {}
    for seed in range(200):
        spec = spec_for_seed(seed)
        firsts.setdefault((spec.ornament, spec.ornament_named), seed)
    return firsts


# The tiny procedural dataset of the pipeline's integrity tests (and of the hostile-input tests
# that tamper with copies of it): 3 characters × 3 examples at 32 px, one example per shard.
TINY_SIZE, TINY_EXAMPLES, TINY_PER_SHARD = 32, 3, 1


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict:
    """Three procedural characters, their catalog (all train) and the config."""
    from characters import write_character
    from pipeline.catalog import build_catalog, find_files, scan_file, write_catalog
    from pipeline.config import GenerateConfig
    from pipeline.splits import SplitConfig

    root = tmp_path_factory.mktemp("tiny")
    for seed in range(3):
        write_character(seed, root / "models" / f"c{seed}" / "character.pmx")
    splits = SplitConfig(train=1.0, val=0.0, test=0.0)
    rows = [row for f in find_files(root / "models")[0] for row in scan_file(f)]
    catalog = build_catalog(rows, splits)
    assert catalog["usable"].all() and len(catalog) == 3
    write_catalog(catalog, root / "catalog.parquet")
    config = GenerateConfig(
        examples_per_character=TINY_EXAMPLES,
        image_size=TINY_SIZE,
        shard_max_examples=TINY_PER_SHARD,
        splits=splits,
    )
    return {
        "root": root,
        "catalog": catalog,
        "catalog_file": root / "catalog.parquet",
        "config": config,
    }


@pytest.fixture(scope="module")
def runner():
    from pipeline.runners import LocalRunner

    with LocalRunner(2) as local:
        yield local


@pytest.fixture(scope="session")
def reference(tiny, tmp_path_factory) -> Path:
    """The dataset of `tiny`, generated once; tests copy it before changing anything."""
    from pipeline.generate import generate
    from pipeline.runners import LocalRunner

    out = tmp_path_factory.mktemp("reference")
    with LocalRunner(2) as local:
        generate(tiny["config"], tiny["catalog"], out, local, progress=False)
    return out


def pytest_report_header(config) -> str:
    """Which kernels this run computes with: the guard run of `make test` holds them back."""
    if os.environ.get("THAGEN_REDUCED_ISA") == "1":
        return "kernels: held back by scripts/reduced_isa.py (the numeric tests' guard run)"
    return "kernels: the machine's own"
