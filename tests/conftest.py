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


def require_mmd_dir() -> Path:
    """The real-model folder; a skip outside CI when it is absent, a failure under CI=true."""
    if not (MMD_DIR / "reference.jsonl").is_file():
        message = f"real MMD models not found at {MMD_DIR} (set THAGEN_MMD_DIR)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return MMD_DIR


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


def pytest_report_header(config) -> str:
    """Which kernels this run computes with: the guard run of `make test` holds them back."""
    if os.environ.get("THAGEN_REDUCED_ISA") == "1":
        return "kernels: held back by scripts/reduced_isa.py (the numeric tests' guard run)"
    return "kernels: the machine's own"
