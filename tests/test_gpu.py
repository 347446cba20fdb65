"""GPU rendering readiness, tested where there is no GPU: EGL device enumeration, `--gpus`
resolution and its errors, one EGL device per local worker, and scripts/gpu_check.sh (its
failure line, and every stage on llvmpipe and the CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.runners import LocalRunner, make_runner
from pipeline.runners.local import claim_device
from render import Renderer, RenderSettings
from render.devices import (
    DEVICE_ENV,
    EglDevice,
    egl_devices,
    gpu_device_indices,
    parse_gpus,
)
from render.errors import RenderError
from tests.conftest import require_mmd_dir
from thagen.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gpu_check.sh"


@pytest.fixture
def miku() -> Path:
    return require_mmd_dir() / "animasa_miku_v2_3" / "miku_v2.pmd"


def test_egl_enumeration_finds_the_software_device_and_no_nvidia():
    devices = egl_devices()
    assert devices, "EGL device enumeration found no device (Mesa's llvmpipe is one)"
    assert [d.index for d in devices] == list(range(len(devices)))
    assert any(d.software and "Mesa" in d.vendor for d in devices)
    assert not any(d.nvidia for d in devices)  # no machine here has a GPU
    with pytest.raises(RenderError, match=r"--gpus 0: no NVIDIA GPU 0 among the EGL devices"):
        gpu_device_indices([0])


def test_gpus_map_cuda_numbers_to_egl_indices():
    devices = (
        EglDevice(0, ("EGL_MESA_device_software",), "Mesa Project"),
        EglDevice(1, ("EGL_NV_device_cuda",), "NVIDIA", "/dev/dri/card1", cuda=1),
        EglDevice(2, ("EGL_NV_device_cuda",), "NVIDIA", "/dev/dri/card0", cuda=0),
    )
    assert gpu_device_indices([0, 1], devices) == [2, 1]
    assert gpu_device_indices([1], devices) == [1]
    with pytest.raises(RenderError, match=r"no NVIDIA GPU 2 .*#2 NVIDIA /dev/dri/card0, CUDA 0"):
        gpu_device_indices([2], devices)
    assert parse_gpus("0,1, 3") == [0, 1, 3]
    for bad in ("", "a", "0,0", "-1"):
        with pytest.raises(ValueError, match="--gpus"):
            parse_gpus(bad)


def test_the_context_is_made_on_the_egl_device_asked_for(monkeypatch):
    software = next(d.index for d in egl_devices() if d.software)
    with Renderer(RenderSettings(size=32, device=software)) as renderer:
        assert "llvmpipe" in renderer.ctx.info["GL_RENDERER"]
    monkeypatch.setenv(DEVICE_ENV, str(len(egl_devices())))  # one past the last
    with pytest.raises(RenderError, match=r"on EGL device \d+ \(#0 "):
        Renderer(RenderSettings(size=32))
    monkeypatch.setenv(DEVICE_ENV, "gpu0")
    with pytest.raises(RenderError, match="not an EGL device index"):
        Renderer(RenderSettings(size=32))


def _worker_device(meeting: str, workers: int) -> tuple[int, str]:
    """This worker's pid and device, once `workers` workers have arrived (so each runs one)."""
    Path(meeting, str(os.getpid())).touch()
    deadline = time.monotonic() + 60
    while len(os.listdir(meeting)) < workers and time.monotonic() < deadline:
        time.sleep(0.02)
    return os.getpid(), os.environ.get(DEVICE_ENV, "")


def test_each_local_worker_binds_one_device_round_robin(tmp_path):
    (tmp_path / "a").mkdir()
    with LocalRunner(2, devices=[5, 7]) as runner:
        tasks = [runner.submit(_worker_device, str(tmp_path / "a"), 2) for _ in range(2)]
        seen = dict(runner.outcome(t) for t in tasks)
    assert sorted(seen.values()) == ["5", "7"]  # two processes, one on each device
    (tmp_path / "b").mkdir()
    with LocalRunner(1) as runner:  # without devices nothing is set
        assert runner.outcome(runner.submit(_worker_device, str(tmp_path / "b"), 1))[1] == ""
    with pytest.raises(ValueError, match="THAGEN_EGL_DEVICE"):
        make_runner("dask", devices=[0], scheduler="tcp://127.0.0.1:1")


def test_a_worker_replacing_a_dead_one_takes_its_device(tmp_path, monkeypatch):
    dead = 2**22 + 12345  # above any pid this machine hands out (pid_max is 2^22)
    (tmp_path / f"{os.getpid()}.0").touch()  # a live worker holds device 0
    (tmp_path / f"{dead}.1").touch()  # the worker on device 1 died
    monkeypatch.setenv(DEVICE_ENV, "")  # restored after the test: claim_device sets it
    assert claim_device((0, 1), str(tmp_path)) == 1
    assert os.environ[DEVICE_ENV] == "1"
    assert not (tmp_path / f"{dead}.1").exists()


def test_generate_on_an_egl_device_renders_the_same_bytes(tmp_path, miku):
    software = str(next(d.index for d in egl_devices() if d.software))
    args = ["generate", "--models", str(miku), "--examples", "3", "--size", "48", "--no-progress"]
    args += ["--train", "1", "--val", "0", "--test", "0", "--workers", "1"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    env = {**os.environ, DEVICE_ENV: software}
    call = f"main({args!r} + ['--out', sys.argv[1]])"
    code = f"import sys; from thagen.cli import main; sys.exit({call})"
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "b")], env=env, cwd=ROOT)
    assert done.returncode == 0
    a, b = sorted((tmp_path / "a").glob("*.tar")), sorted((tmp_path / "b").glob("*.tar"))
    assert a and [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert main([*args, "--out", str(tmp_path / "c"), "--gpus", "0"]) == 2


def test_gpu_check_fails_in_one_line_where_there_is_no_gpu():
    done = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no NVIDIA GPU among the EGL")
    assert "llvmpipe" in lines[0] and "sees no CUDA device" in lines[0]
    done = subprocess.run([str(SCRIPT), "/no/such.pmd"], capture_output=True, text=True)
    assert done.returncode == 1 and "no such model file" in done.stderr
    done = subprocess.run([str(SCRIPT), "--steps", "0"], capture_output=True, text=True)
    assert done.returncode == 2 and "--steps must be >= 1" in done.stderr


def test_gpu_check_stages_run_on_the_cpu(tmp_path, miku):
    out = tmp_path / "figures.json"
    args = ["--allow-cpu", "--images", "3", "--examples", "4", "--size", "48", "--steps", "2"]
    args += ["--warmup", "1", "--batch-size", "2", "--config", "cpu-small", "--workers", "1"]
    done = subprocess.run(
        [str(SCRIPT), str(miku), *args, "--json", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert "llvmpipe" in figures["render"]["gl_renderer"]
    assert figures["render"]["images_per_s"] > 0 and figures["generate"]["examples"] == 4
    render = figures["render"]
    assert render["over_rest_checked"] == 6 and render["over_rest_differ"] == 0
    assert figures["train"]["steps"] == 2 and np.isfinite(figures["train"]["last_loss"])
    assert "images/s end to end" in done.stdout and "steps/s" in done.stdout
