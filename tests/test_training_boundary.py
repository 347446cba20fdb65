"""Training's boundary: every option checked before anything runs (one line, exit 2); a run
folder never written through a link and by one writer only; checkpoints read as untrusted
input (size limits, a schema, nothing allocated that their files do not hold, no NaN weights
used); and `--nproc` ranks that die with their command and stop quietly on SIGTERM/SIGINT."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file, save_file  # noqa: E402

from tests.conftest import one_error_line  # noqa: E402
from tests.shardgen import write_dataset  # noqa: E402
from thagen.cli import main  # noqa: E402
from training import checkpoint as ckpt  # noqa: E402
from training.configs import CONFIGS  # noqa: E402
from training.trainer import train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SMALL = CONFIGS["cpu-small"]
TINY = replace(
    SMALL,
    network=replace(SMALL.network, image_size=32, base_channels=8, max_channels=16, res_blocks=1),
    batch_size=2,
    log_every=1,
    sample_every=1000,
    checkpoint_every=1000,
    num_workers=0,
)
QUIET = {"log": lambda _: None}
SECONDS = 20  # the most a refusal may take here (they take milliseconds; no hang, no growth)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    return write_dataset(root, 2, 1, examples_per_character=4, examples_per_shard=4, size=32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dataset) -> Path:
    """A run folder with one checkpoint (one step of a tiny morpher)."""
    run = tmp_path_factory.mktemp("trained") / "run"
    train("morpher", dataset, run, TINY, steps=1, device="cpu", **QUIET)
    return run


@pytest.fixture
def deadline():
    """A refusal that instead runs (batch size 0 grew memory without end) fails the test."""

    def expired(*_):
        raise AssertionError(f"still running after {SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------------------ every option, at the boundary


@pytest.mark.parametrize(
    ("option", "needle"),
    [
        (["--batch-size", "0"], "batch_size"),
        (["--batch-size", "-4"], "batch_size"),
        (["--checkpoint-every", "0"], "checkpoint_every"),
        (["--sample-every", "0"], "sample_every"),
        (["--device", "bogus"], "--device 'bogus'"),
        (["--device", "cuda:7"], "--device cuda:7"),
        (["--steps", "-1"], "--steps"),
        (["--steps", "0"], "--steps"),
        (["--change-weight", "nan"], "change_weight"),
        (["--perceptual-weight", "-1"], "perceptual_weight"),
        (["--lr", "nan"], "lr"),
        (["--lr", "0"], "lr"),
        (["--workers", "-1"], "--workers"),
        (["--shuffle-buffer", "0"], "shuffle_buffer"),
        (["--seed", "-1"], "--seed"),
        (["--nproc", "0"], "--nproc"),
    ],
)
def test_train_options_are_checked_before_anything_runs(
    dataset, tmp_path, capsys, deadline, option, needle
):
    run = tmp_path / "run"
    argv = ["train", "morpher", "--data", str(dataset), "--out", str(run), "--steps", "1"]
    assert main([*argv, "--config", "cpu-small", *option]) == 2
    one_error_line(capsys, needle)
    assert not (run / "checkpoints").exists()


POSE = ["pose", "--checkpoints", "{run}", "--image", "{png}", "--pose", "mouth=1", "-o", "{tmp}/o"]


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "--checkpoint", "{run}", "--data", "{data}", "--batch-size", "0"],
        ["evaluate", "--checkpoint", "{run}", "--data", "{data}", "--limit", "0"],
        ["evaluate", "--checkpoint", "{run}", "--data", "{data}", "--split", "bogus"],
        ["evaluate", "--checkpoint", "{run}", "--data", "{data}", "--device", "cuda:7"],
        [
            "pose",
            "--checkpoints",
            "{run}",
            "--image",
            "{png}",
            "--pose",
            "mouth=1",
            "-o",
            "{tmp}/o.png",
            "--device",
            "bogus",
        ],
        ["train-demo", "--data", "{data}", "--out", "{tmp}/demo", "--minutes", "nan"],
        ["train-demo", "--data", "{data}", "--out", "{tmp}/demo", "--minutes", "0"],
    ],
)
def test_evaluate_pose_and_demo_options_are_checked(
    trained, dataset, tmp_path, capsys, deadline, argv
):
    png = tmp_path / "face.png"
    values = {"run": trained, "data": dataset, "png": png, "tmp": tmp_path}
    assert main([a.format(**values) for a in argv]) == 2
    one_error_line(capsys)
    assert not list(trained.glob("eval_*.json")) and not (tmp_path / "demo").exists()


GENERATE = ["generate", "--models", "{tmp}", "-o", "{tmp}/d", "--no-progress"]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        ([*GENERATE, "--train", "nan"], "split fractions"),
        ([*GENERATE, "--supersample", "0"], "supersample"),
        ([*GENERATE, "--shard-bytes", "0"], "per shard"),
        ([*GENERATE, "--model-timeout", "1e20"], "time limit"),
        ([*GENERATE, "--workers", "-1"], "--workers"),
        ([*GENERATE, "--seed", "-3"], "seed"),
        (["scan", "{tmp}", "-o", "{tmp}/c.parquet", "--jobs", "-5"], "--jobs"),
        (
            ["dataset-default", "-o", "{tmp}/d", "--characters", "0", "--no-progress"],
            "--characters",
        ),
        (["dataset-default", "-o", "{tmp}/d", "--held-out", "-1", "--no-progress"], "--held-out"),
        (
            ["review", "{tmp}", "-o", "{tmp}/r.html", "--workers", "-2", "--no-progress"],
            "--workers",
        ),
        (["report", "{tmp}", "--samples", "-1"], "--samples"),
        (["make-character", "--seed", "-1", "-o", "{tmp}/c.pmx"], "--seed"),
    ],
)
def test_pipeline_options_are_checked_before_the_scan(tmp_path, capsys, deadline, argv, needle):
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    one_error_line(capsys, needle)
    assert not (tmp_path / "d").exists() and not (tmp_path / "c.parquet").exists()


# ------------------------------------------------------------ the run folder: no links, one writer


@pytest.mark.parametrize("name", ["log.csv", "config.json", "samples", "checkpoints"])
def test_run_files_and_folders_that_are_links_are_refused(dataset, tmp_path, capsys, name):
    """A link where a run writes (to a file, or to a folder elsewhere): refused, target intact."""
    folder = name in ("samples", "checkpoints")
    target = tmp_path / "elsewhere"
    target.mkdir() if folder else target.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    (run / name).symlink_to(target)
    argv = ["train", "morpher", "--data", str(dataset), "--out", str(run), "--config"]
    assert main([*argv, "cpu-small", "--steps", "1", "--batch-size", "2"]) == 2
    one_error_line(capsys, f"{run / name}: is a symbolic link")
    assert list(target.iterdir()) == [] if folder else target.read_text() == "precious"


# ------------------------------------------------------------------ checkpoints: untrusted input


def tamper_state(run: Path, change) -> Path:
    """A copy of `run` whose state.json is `change(state)` (a dict, or the text itself)."""
    import shutil

    copy = run.parent / f"tampered-{time.monotonic_ns()}"
    shutil.copytree(run, copy)
    path = ckpt.find_checkpoint(copy) / "state.json"
    state = json.loads(path.read_text())
    changed = change(state)
    path.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    return copy


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


STATE_CASES = {
    "only the format": lambda s: {"format": s["format"]},
    "a step that is text": lambda s: {**s, "step": "many"},
    "an unknown network": lambda s: {**s, "network": "transformer"},
    "a million pose names": lambda s: {**s, "pose_names": [f"p{i}" for i in range(1_000_000)]},
    "a network of 2.5 TB": lambda s: {
        **s,
        "config": {**s["config"], "network": {**s["config"]["network"], "base_channels": 10**6}},
    },
    "nested arrays": lambda s: deep(200_000),
    "64 MiB of spaces": lambda s: " " * (64 << 20) + json.dumps(s),
    "a config that is a list": lambda s: {**s, "config": [1, 2]},
    "param groups that are text": lambda s: {**s, "optimizer": {"param_groups": "x"}},
}


@pytest.mark.parametrize("case", sorted(STATE_CASES))
def test_a_tampered_state_json_is_one_checkpoint_error(trained, case):
    run = tamper_state(trained, STATE_CASES[case])
    started = time.perf_counter()
    with pytest.raises(ckpt.CheckpointError) as caught:
        ckpt.load_network(run)
    assert "state.json" in str(caught.value) and "\n" not in str(caught.value)
    assert time.perf_counter() - started < SECONDS


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("optimizer key", "optimizer.safetensors"),
        ("optimizer shape", "optimizer.safetensors"),
        ("rng", "rng"),
        ("lr", "state.json"),
    ],
)
def test_a_tampered_resume_state_is_one_checkpoint_error(trained, dataset, case, needle):
    run = tamper_state(trained, lambda s: s)
    checkpoint = ckpt.find_checkpoint(run)
    state = json.loads((checkpoint / "state.json").read_text())
    if case.startswith("optimizer"):
        tensors = load_file(str(checkpoint / "optimizer.safetensors"))
        if case == "optimizer key":
            tensors["bogus"] = torch.zeros(1)  # was: "not enough values to unpack"
        else:
            key = next(k for k in tensors if k.endswith("exp_avg"))
            tensors[key] = torch.zeros(3, 3)
        save_file(tensors, str(checkpoint / "optimizer.safetensors"))
    elif case == "rng":
        state["rng"]["torch"] = "AAAA"
    else:
        state["optimizer"]["param_groups"][0]["lr"] = "fast"
    (checkpoint / "state.json").write_text(json.dumps(state))
    with pytest.raises(ckpt.CheckpointError, match=needle):
        train("morpher", dataset, run, TINY, steps=2, resume=True, device="cpu", **QUIET)


def test_nan_weights_are_refused_by_evaluate_and_pose(trained, dataset, tmp_path, capsys):
    run = tamper_state(trained, lambda s: s)
    weights = ckpt.find_checkpoint(run) / "model.safetensors"
    tensors = load_file(str(weights))
    tensors = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
               for k, v in tensors.items()}  # fmt: skip
    save_file(tensors, str(weights))
    argv = ["evaluate", "--checkpoint", str(run), "--data", str(dataset), "--split", "val"]
    assert main(argv) == 2
    one_error_line(capsys, "model.safetensors", "not finite")
    assert not list(run.glob("eval_*.json"))
    from PIL import Image

    Image.new("RGBA", (256, 256), (200, 150, 120, 255)).save(tmp_path / "face.png")
    out = tmp_path / "posed.png"
    argv = ["pose", "--checkpoints", str(run), "--image", str(tmp_path / "face.png")]
    assert main([*argv, "--pose", "mouth=1", "-o", str(out)]) == 2
    one_error_line(capsys, "not finite")
    assert not out.exists()


# ----------------------------------------------- --nproc ranks die with the command, stop quietly


def start_ranks(dataset: Path, run: Path) -> tuple[subprocess.Popen, list[psutil.Process]]:
    """`thagen train --nproc 2` training for long, once both ranks are training."""
    argv = [sys.executable, "-m", "thagen", "train", "morpher", "--data", str(dataset),
            "--out", str(run), "--config", "cpu-small", "--steps", "1000000", "--batch-size",
            "2", "--nproc", "2", "--device", "cpu", "--checkpoint-every", "1000000"]  # fmt: skip
    process = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ranks = [
            p
            for p in psutil.Process(process.pid).children(recursive=True)
            if "training" in " ".join(p.cmdline())
        ]
        if len(ranks) == 2 and (run / "log.csv").exists():
            return process, ranks
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the ranks did not start: {process.communicate()[1].decode()[-2000:]}")


@pytest.mark.slow  # three two-rank runs: about 40 s here
def test_ranks_die_with_the_command_and_signals_stop_them_quietly(dataset, tmp_path):
    process, ranks = start_ranks(dataset, tmp_path / "killed")
    process.kill()  # SIGKILL to the command alone, not its group
    process.wait()
    _, alive = psutil.wait_procs(ranks, timeout=15)
    assert alive == [], "ranks outlived their command"
    for number in (signal.SIGTERM, signal.SIGINT):
        process, ranks = start_ranks(dataset, tmp_path / number.name)
        process.send_signal(number)  # to the command alone
        _, err = process.communicate(timeout=120)
        text = err.decode(errors="replace")
        assert process.returncode == 130, text[-3000:]
        assert "Traceback" not in text and "interrupted" in text, text[-3000:]
        assert psutil.wait_procs(ranks, timeout=15)[1] == []
