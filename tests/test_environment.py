"""The environment the tests run in: the lock (requirements/lock.txt) is current and CPU-only, and
scripts/reduced_isa.py really holds the kernels back (the guard run of the numeric tests)."""

from __future__ import annotations

import json
import subprocess
import sys

from scripts import lock
from scripts.reduced_isa import numpy_dispatched_features, reduced_isa_env


def test_the_lock_is_stamped_with_pyproject_dependencies_and_names_no_cuda():
    text = lock.lock_path().read_text()
    stamps = [line for line in text.splitlines() if line.startswith(lock.STAMP)]
    assert stamps == [lock.STAMP + lock.inputs_digest()], "run `make lock`"
    pins = lock.pins(text)
    assert pins["torch"].endswith("+cpu")  # the CPU build from this kind of machine's disk
    gpu = [name for name in pins if name.startswith(("nvidia-", "cuda-", "triton"))]
    assert gpu == []
    body = lock.body(text)
    assert all(line.startswith("--hash=sha256:") for line in body if not lock.PIN.match(line))
    # every extra is locked, thagen's own dependencies included
    for name in ("pymeshio", "isal", "moderngl", "mediapipe", "dask", "pytest", "pip-tools"):
        assert name in pins, name


def test_the_stamp_changes_with_any_dependency(monkeypatch):
    config = lock.project()
    before = lock.inputs_digest(config)
    config["project"]["optional-dependencies"]["dev"].append("rich")
    assert lock.inputs_digest(config) != before
    config = lock.project()
    config["tool"]["pip-tools"]["generate-hashes"] = False
    assert lock.inputs_digest(config) != before


def test_reduced_isa_holds_the_kernels_back():
    env = reduced_isa_env()
    assert env["ATEN_CPU_CAPABILITY"] == "default" and env["THAGEN_REDUCED_ISA"] == "1"
    # every feature numpy dispatches, read from numpy itself (never its baseline)
    assert env.get("NPY_DISABLE_CPU_FEATURES", "").split() == numpy_dispatched_features()
    probe = (
        "import json, torch; from numpy._core import _multiarray_umath as m;"
        "print(json.dumps([torch.backends.cpu.get_cpu_capability(),"
        " [f for f in m.__cpu_dispatch__ if m.__cpu_features__.get(f)]]))"
    )
    command = [sys.executable, "scripts/reduced_isa.py", "--", sys.executable, "-c", probe]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    capability, numpy_found = json.loads(out.splitlines()[-1])
    assert capability == "DEFAULT" and numpy_found == []


def test_reduced_isa_narrows_llvmpipe():
    probe = (
        "import moderngl; print(moderngl.create_standalone_context(backend='egl')"
        ".info['GL_RENDERER'])"
    )
    command = [sys.executable, "scripts/reduced_isa.py", "--", sys.executable, "-c", probe]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    renderer = out.splitlines()[-1]
    assert "llvmpipe" not in renderer or "128 bits" in renderer
