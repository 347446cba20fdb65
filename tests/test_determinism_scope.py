"""What is and is not byte-identical across instruction sets: renders with llvmpipe's vector width
held at 128 and 256 bits and at the machine's own, skinning with numpy's SIMD dispatch held back,
and the PNG bytes thagen writes from them (README: "Determinism, and its scope").

Each setting runs tests/determinism_probe.py in a fresh process (one GL context per process):
a procedural character and a real model, 8 poses each at 256², THA1's lighting.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scripts.reduced_isa import numpy_dispatched_features, reduced_isa_env
from tests.conftest import ROOT, require_mmd_dir

# The settings the guard run sets are cleared first: "native" means the machine's own.
CLEARED = set(reduced_isa_env())
SETTINGS = {
    "native": {},
    "llvmpipe 128-bit": {"LP_NATIVE_VECTOR_WIDTH": "128"},
    "llvmpipe 256-bit": {"LP_NATIVE_VECTOR_WIDTH": "256"},
    "numpy dispatch held back": {"NPY_DISABLE_CPU_FEATURES": " ".join(numpy_dispatched_features())},
}


def run_probe(out: Path, setting: dict[str, str], model: Path) -> dict[str, np.ndarray]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED} | setting
    command = [sys.executable, "-m", "tests.determinism_probe", str(out), str(model)]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def probes(tmp_path_factory) -> dict[str, dict[str, np.ndarray]]:
    model = require_mmd_dir() / "animasa_miku_v2_3" / "miku_v2.pmd"
    tmp = tmp_path_factory.mktemp("probes")
    return {
        name: run_probe(tmp / f"{i}.npz", s, model) for i, (name, s) in enumerate(SETTINGS.items())
    }


def test_each_setting_took(probes):
    renderer = str(probes["native"]["gl"])
    if "llvmpipe" not in renderer:
        pytest.skip(f"the vector width is llvmpipe's; this GL is {renderer}")
    assert "128 bits" in str(probes["llvmpipe 128-bit"]["gl"])
    assert "256 bits" in str(probes["llvmpipe 256-bit"]["gl"])


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s != "native"])
def test_renders_skinning_and_pngs_are_the_same_bytes(probes, setting):
    native, other = probes["native"], probes[setting]
    assert native["images"].shape == (16, 256, 256, 4)
    # Measured: not one byte differs. llvmpipe's shaders and rasteriser compute each pixel with
    # the same IEEE operations at any vector width (the width only decides how many pixels one
    # instruction takes), and numpy's dispatched kernels (AVX2, AVX-512) round like its baseline.
    difference = np.abs(native["images"].astype(int) - other["images"].astype(int))
    assert difference.max() == 0, f"{setting}: {int((difference > 0).sum())} values differ"
    assert np.array_equal(native["skinned"], other["skinned"])
    # The same pixels give the same PNG bytes (ISA-L on this CPU's code path).
    assert np.array_equal(native["png_sizes"], other["png_sizes"])
    assert np.array_equal(native["png"], other["png"])
