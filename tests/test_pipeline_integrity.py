"""One writer per dataset folder and work that survives failures: the folder lock, workers that
die with their parent, SIGKILL then an immediate resume (20 times), unique temporaries, a full
disk, tampered run state, resume that re-checks shard bytes, and the per-model time limit.

Every hostile condition is built here in code: procedural characters at 32 px, a process
holding the lock, a "leftover" writer, flipped bytes inside a finished shard, a writer that
hits ENOSPC, a slow face detection.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import pytest

from pipeline.catalog import build_catalog, find_files, scan_file, write_catalog
from pipeline.config import GenerateConfig
from pipeline.generate import generate
from pipeline.lock import DatasetLock, DatasetLocked, RunContext, StaleRun, lock_path, writing
from pipeline.runners import LocalRunner, Runner
from pipeline.shards import ShardWriter
from pipeline.splits import SplitConfig
from pipeline.state import done_path, read_done
from thagen.cli import main

ROOT = Path(__file__).resolve().parent.parent
SIZE, EXAMPLES, PER_SHARD = 32, 3, 1  # 3 characters × 3 examples: 9 one-example shards
ROUNDS = 20  # SIGKILL + immediate resume, in a row


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """Three procedural characters, their catalog (all train) and the config."""
    from characters import write_character

    root = tmp_path_factory.mktemp("tiny")
    for seed in range(3):
        write_character(seed, root / "models" / f"c{seed}" / "character.pmx")
    splits = SplitConfig(train=1.0, val=0.0, test=0.0)
    rows = [row for f in find_files(root / "models")[0] for row in scan_file(f)]
    catalog = build_catalog(rows, splits)
    assert catalog["usable"].all() and len(catalog) == 3
    write_catalog(catalog, root / "catalog.parquet")
    config = GenerateConfig(
        examples_per_character=EXAMPLES,
        image_size=SIZE,
        shard_max_examples=PER_SHARD,
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
    with LocalRunner(2) as local:
        yield local


@pytest.fixture(scope="module")
def reference(tiny, runner, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    generate(tiny["config"], tiny["catalog"], out, runner, progress=False)
    return out


def dataset_files(folder: Path) -> dict[str, bytes]:
    files = [p for p in folder.rglob("*") if p.is_file() and "progress" not in p.name]
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(files)}


def assert_same_dataset(a: Path, b: Path) -> None:
    fa, fb = dataset_files(a), dataset_files(b)
    assert sorted(fa) == sorted(fb)
    assert [n for n in fa if fa[n] != fb[n]] == []


def cli_args(tiny: dict, out: Path, workers: int = 2) -> list[str]:
    return [
        "generate",
        "--catalog",
        str(tiny["catalog_file"]),
        "--out",
        str(out),
        "--examples",
        str(EXAMPLES),
        "--size",
        str(SIZE),
        "--shard-size",
        str(PER_SHARD),
        "--workers",
        str(workers),
        "--train",
        "1",
        "--val",
        "0",
        "--test",
        "0",
        "--no-progress",
    ]


def start_cli(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "thagen", *args],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_for(condition: Callable[[], bool], seconds: float = 120.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def workers_of(process: subprocess.Popen) -> list[psutil.Process]:
    """The main process's child processes (its workers and loky's resource tracker)."""
    wait_for(lambda: len(psutil.Process(process.pid).children()) >= 2, 60)
    return psutil.Process(process.pid).children(recursive=True)


def all_gone(processes: Iterable[psutil.Process], seconds: float = 10.0) -> list[int]:
    """Pids of `processes` still running after `seconds`."""
    _, alive = psutil.wait_procs(list(processes), timeout=seconds)
    return [p.pid for p in alive]


# ----------------------------------------------------------------------------- SIGKILL + resume


@pytest.mark.slow  # about 7 s a round here: most of it is starting `thagen` and its workers
def test_sigkill_then_immediate_resume_twenty_times(tiny, runner, reference, tmp_path):
    """kill -9 of the main `thagen generate` process only (not its group), at three kinds of
    moments; the resume starts at once in this process. Its workers die with it, the resume
    waits for any that are still writing, never crashes, and the dataset equals an
    uninterrupted run's, byte for byte."""
    interrupted = 0
    for round_ in range(ROUNDS):
        out = tmp_path / f"run{round_:02d}"
        process = start_cli(cli_args(tiny, out, workers=1 + round_ % 2))
        moment = round_ % 3
        try:
            if moment == 0:  # a worker is writing its first shard
                assert wait_for(lambda: any(out.glob("train-*.tar.*.tmp")))  # noqa: B023
            else:  # one or three shards are complete
                assert wait_for(lambda: len(list(out.glob(".state/*.done.json"))) >= 2 * moment - 1)  # noqa: B023
            workers = workers_of(process)
        finally:
            process.kill()  # SIGKILL to the main process alone
        process.wait()
        interrupted += not (out / "manifest.parquet").exists()
        result = generate(tiny["config"], tiny["catalog"], out, runner, progress=False)
        assert result["dataset"] is not None
        assert_same_dataset(reference, out)
        assert all_gone(workers) == [], f"round {round_}: workers outlived their main process"
        process.stdout.close()
    assert interrupted >= ROUNDS // 2, f"only {interrupted} of {ROUNDS} kills landed mid-run"


def test_sigterm_stops_like_ctrl_c_and_workers_exit(tiny, runner, reference, tmp_path):
    process = start_cli(cli_args(tiny, tmp_path))
    assert wait_for(lambda: any(tmp_path.glob("train-*.tar*")))
    workers = workers_of(process)
    process.send_signal(signal.SIGTERM)  # to the main process alone
    output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 130, output
    assert "run again to resume" in output and "Traceback" not in output
    assert all_gone(workers) == []
    generate(tiny["config"], tiny["catalog"], tmp_path, runner, progress=False)
    assert_same_dataset(reference, tmp_path)


# ------------------------------------------------------------------------------ the folder lock


HOLDER = """
import sys, time
from pathlib import Path
from pipeline.lock import DatasetLock
with DatasetLock(Path(sys.argv[1]), "generate"):
    print("locked", flush=True)
    while not Path(sys.argv[2]).exists():
        time.sleep(0.01)
"""


def test_a_second_writer_gets_one_line_naming_the_holder(tiny, tmp_path):
    out, release = tmp_path / "out", tmp_path / "release"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out), str(release)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        for argv in (cli_args(tiny, out), ["merge", str(out)]):
            second = subprocess.run(
                [sys.executable, "-m", "thagen", *argv], cwd=ROOT, capture_output=True, text=True
            )
            assert second.returncode == 2, second.stderr
            lines = second.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), second.stderr
            assert f"pid {holder.pid} on " in lines[0] and "another thagen run" in lines[0]
        with pytest.raises(DatasetLocked, match=f"pid {holder.pid}"):
            DatasetLock(out, "generate").acquire()
    finally:
        release.touch()
        holder.wait(timeout=30)
    with DatasetLock(out, "generate"):  # the holder is gone: its lock went with it
        pass
    assert (out / ".state" / "lock").read_bytes() == b""  # released: nobody named


LEFTOVER = """
import sys, time
from pathlib import Path
from pipeline.lock import RunContext, writing
with writing(Path(sys.argv[1]), RunContext(sys.argv[2])):
    print("writing", flush=True)
    while not Path(sys.argv[3]).exists():
        time.sleep(0.01)
    Path(sys.argv[3] + ".seen").touch()  # the last thing it does while it may still write
"""


def test_a_new_run_waits_for_an_earlier_runs_writers(tmp_path):
    """A shard writer of a killed run still holds the writers' lock: the new run waits for it
    (or, past its patience, refuses in one line); a writer that joins after the takeover sees
    another run's token and writes nothing."""
    out, release = tmp_path / "out", tmp_path / "release"
    with DatasetLock(out, "generate") as old:
        token, left_behind = old.token, lock_path(out).read_bytes()
    lock_path(out).write_bytes(left_behind)  # as a kill -9 leaves it: never emptied
    leftover = subprocess.Popen(
        [sys.executable, "-c", LEFTOVER, str(out), token, str(release)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert leftover.stdout.readline().strip() == "writing"
        with pytest.raises(DatasetLocked, match="still writing"):
            DatasetLock(out, "generate", writers_wait=0.2).acquire()
        threading.Timer(0.5, release.touch).start()
        with DatasetLock(out, "generate") as new:
            assert Path(f"{release}.seen").exists()  # acquired only once the leftover was done
            with pytest.raises(StaleRun), writing(out, RunContext(token)):
                pytest.fail("a writer of the old run may not write")
            with writing(out, RunContext(new.token)):
                pass
    finally:
        release.touch()
        leftover.wait(timeout=30)


def test_slices_share_a_folder_but_no_whole_run_joins_them(tiny, runner, reference, tmp_path):
    """A SLURM array's slices write one shared folder side by side; a slice never runs twice,
    and a whole run (generate, merge) waits for none of them: it is refused, naming them."""
    from pipeline.generate import Slice
    from pipeline.merge import merge

    out = tmp_path / "out"
    with DatasetLock(out, "generate", (0, 2)), DatasetLock(out, "generate", (1, 2)):
        with pytest.raises(
            DatasetLocked, match=rf"slices of a sliced run: slice-0/2: pid {os.getpid()}"
        ):
            DatasetLock(out, "merge").acquire()
        with pytest.raises(DatasetLocked, match="another thagen run is writing"):
            DatasetLock(out, "generate", (1, 2)).acquire()
    with DatasetLock(out, "merge"), pytest.raises(DatasetLocked, match=f"pid {os.getpid()} on "):
        DatasetLock(out, "generate", (0, 2)).acquire()
    for index in (1, 0):
        generate(tiny["config"], tiny["catalog"], out, runner, Slice(index, 2), progress=False)
    merge(out, [])
    files = dataset_files(out)
    assert {n for n in files if "slice-" in n or "writers-" in n} == {
        ".state/slice-0-of-2.lock",
        ".state/slice-1-of-2.lock",
        ".state/writers-0-of-2.lock",
        ".state/writers-1-of-2.lock",
    }
    assert all(files[n] == b"" for n in files if n.endswith(".lock"))
    for name in [n for n in files if "slice-" in n or "writers-" in n]:
        (out / name).unlink()
    assert_same_dataset(reference, out)


def test_temporary_names_are_unique_per_writer(tmp_path):
    """Two writers of one shard (a leftover and its resume) never share a temporary file, so
    neither fails nor renames the other's half-written bytes into place."""
    target = tmp_path / "train-000000.tar"
    first, second = ShardWriter(target), ShardWriter(target)
    assert first.tmp != second.tmp and f".{os.getpid()}-" in first.tmp.name
    with first:
        first.add("a_000000", {"json": b"{}"})
        with second:
            second.add("b_000000", {"json": b"{}"})
        assert target.is_file()
    with tarfile.open(target) as tar:
        assert tar.getnames() == ["a_000000.json"]  # the last one to finish
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train-000000.tar"]


def test_resume_sweeps_what_killed_writers_left(tiny, runner, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    leftovers = [
        out / ".state" / "train-000000.done.json.99999-0badf00d.tmp",
        out / ".state" / "train-000005.done.json.99999.tmp",  # the flaky Ctrl-C test's leftover
        out / ".state" / "train-000001.progress.json.99999-0badf00d.tmp",
        out / "train-000002.tar.99999-0badf00d.tmp",
        out / "train-000003.tar.tmp",  # the fixed name of earlier versions
        out / "manifest.parquet.tmp",
    ]
    for path in leftovers:
        path.write_bytes(b"half")
    (out / "notes.tmp").write_text("mine")
    result = generate(tiny["config"], tiny["catalog"], out, runner, progress=False)
    assert result["rendered"] == 0
    assert not any(p.exists() for p in leftovers)
    (out / "notes.tmp").unlink()  # a user's file is not ours to sweep
    assert_same_dataset(reference, out)


# ---------------------------------------------------------------- resume re-checks shard bytes


def flip_png_bytes(tar_path: Path) -> None:
    """Corrupt the middle of the first PNG member's data, keeping every size and header."""
    with tarfile.open(tar_path) as tar:
        member = next(m for m in tar if m.name.endswith(".png"))
        start, size = member.offset_data, member.size
    data = bytearray(tar_path.read_bytes())
    for at in range(start + size // 2, start + size // 2 + 8):
        data[at] ^= 0xFF
    tar_path.write_bytes(bytes(data))


def test_resume_redoes_a_shard_whose_bytes_changed(tiny, runner, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    flip_png_bytes(out / "train-000004.tar")
    expected = json.loads(done_path(out, "train-000004").read_text())["spec_hash"]
    assert read_done(out, "train-000004", expected, "quick") is not None  # sizes all agree
    assert read_done(out, "train-000004", expected, "full") is None
    result = generate(tiny["config"], tiny["catalog"], out, runner, progress=False)
    assert result["rendered"] == 1 and result["skipped"] == 8
    assert_same_dataset(reference, out)


def test_tampered_run_state_is_one_line_or_redone(tiny, runner, reference, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    config_file = out / ".state" / "config.json"
    original = config_file.read_text()
    for tampered in ('{"seed": "x"}', "[1, 2]", '{"bogus": 1}', '{"splits": 5}', "{", "\ufeff{"):
        config_file.write_text(tampered)
        assert main(["merge", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{config_file}: not a valid run state" in err[0], err
    config_file.write_text(original)
    for name, text in (("train-000001", '{"digest": 5}'), ("train-000002", "[]")):
        done_path(out, name).write_text(text)
    result = generate(tiny["config"], tiny["catalog"], out, runner, progress=False)
    assert result["rendered"] == 2
    assert_same_dataset(reference, out)


# ------------------------------------------------------------ a full disk, an early bad config


class _Done:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome


class InlineRunner(Runner):
    """Runs every task at once in this process (so a test can patch what the worker does)."""

    name = "inline"
    workers = 1
    threads = 0

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return _Done(fn(*args))
        except Exception as error:
            return _Done(error)

    def wait_any(self, tasks: Iterable[Any], timeout: float) -> set[Any]:
        return set(tasks)

    def outcome(self, task: Any) -> Any:
        return task.outcome

    def run_alone(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.outcome(self.submit(fn, *args))

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_disk_full_is_one_line_and_keeps_complete_shards(
    tiny, runner, reference, tmp_path, monkeypatch, capsys
):
    import pipeline.cli
    import pipeline.shards

    writes = {"n": 0}
    real_write = pipeline.shards._HashingFile.write

    def write(self, data: bytes) -> int:
        writes["n"] += 1
        if writes["n"] > 40:  # a few shards fit, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(self, data)

    monkeypatch.setattr(pipeline.shards._HashingFile, "write", write)
    monkeypatch.setattr(pipeline.cli, "_runner", lambda args, workers: InlineRunner())
    out = tmp_path / "out"
    assert main(cli_args(tiny, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"error: {out}/train-") and ".tmp: cannot write: No space" in err[0]
    complete = sorted(p.name for p in out.glob(".state/*.done.json"))
    assert complete and len(complete) < 9
    assert not list(out.glob("*.tmp")) and not (out / "manifest.parquet").exists()
    monkeypatch.undo()
    result = generate(tiny["config"], tiny["catalog"], out, runner, progress=False)
    assert result["skipped"] == len(complete)  # complete work was kept
    assert_same_dataset(reference, out)


def test_a_bad_size_fails_before_the_scan(tmp_path, monkeypatch, capsys):
    import pipeline.catalog

    def scan(*args, **kwargs):
        raise AssertionError("scanned before checking the config")

    monkeypatch.setattr(pipeline.catalog, "scan", scan)
    argv = ["generate", "--models", str(tmp_path), "--out", str(tmp_path / "o"), "--size", "0"]
    assert main(argv) == 2
    assert "image size must be in 8..4096, got 0" in capsys.readouterr().err
    assert main([*argv[:-1], "64", "--model-timeout", "-1"]) == 2
    assert "time limit must be a positive number" in capsys.readouterr().err


# ------------------------------------------------------------------- the per-model time limit

# Long enough that the good models finish inside it on a loaded machine (0.3 s failed them at a
# load average of 12 on 2 cores), short enough to keep the tests quick: the slow one never ends.
TIME_LIMIT = 3.0


def slow_detection(seconds_per_call: float | None, character_dir: str):
    """A detect_face that never finishes for one model: a pure-Python loop, or (given seconds)
    a blocking sleep that only a signal interrupts."""
    import mmd_loader

    real = mmd_loader.detect_face

    def detect(model, overrides=None):
        if character_dir in str(model.path):
            if seconds_per_call is not None:
                time.sleep(seconds_per_call)
            while True:
                pass
        return real(model, overrides)

    return detect


@pytest.mark.parametrize("blocking", [False, True])
def test_scan_turns_a_slow_model_into_a_row_naming_the_stage(tiny, monkeypatch, blocking):
    import mmd_loader

    monkeypatch.setattr(mmd_loader, "detect_face", slow_detection(3600 if blocking else None, "c1"))
    rows = [
        row
        for f in find_files(tiny["root"] / "models")[0]
        for row in scan_file(f, timeout=TIME_LIMIT)
    ]
    slow = [r for r in rows if "/c1/" in r["path"]]
    assert len(slow) == 1 and not slow[0]["usable"] and slow[0]["stage"] == "face"
    assert slow[0]["reasons"] == [
        f"{slow[0]['path']}: face: took longer than {TIME_LIMIT:g} s (the per-model time limit)"
    ]
    assert all(r["usable"] for r in rows if r is not slow[0])


def test_the_time_limit_holds_in_a_worker_thread_too():
    """Dask runs tasks in threads, where no signal can be used: an asynchronous exception."""
    from pipeline.deadline import Deadline, ModelTimeout

    caught: list[BaseException] = []

    def work() -> None:
        try:
            with Deadline(0.2, "face"):
                while True:
                    pass
        except ModelTimeout as error:
            caught.append(error)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive() and len(caught) == 1 and caught[0].stage == "face"
    with Deadline(5, "load"):  # finishing in time leaves nothing behind
        pass
    time.sleep(0.05)


def test_generate_records_a_slow_model_as_a_failure(tiny, tmp_path, monkeypatch):
    import mmd_loader

    monkeypatch.setattr(mmd_loader, "detect_face", slow_detection(None, "c2"))
    out = tmp_path / "out"
    generate(
        tiny["config"],
        tiny["catalog"],
        out,
        InlineRunner(),
        progress=False,
        model_timeout=TIME_LIMIT,
    )
    failures = pd.read_parquet(out / "failures.parquet")
    assert list(failures["stage"]) == ["face"]
    assert failures["model"].iloc[0].endswith("c2/character.pmx")
    assert f"took longer than {TIME_LIMIT:g} s" in failures["error"].iloc[0]
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert len(manifest) == 2 * EXAMPLES


# ----------------------------------------------------------------- identity covers textures


def test_a_changed_texture_is_noticed_on_resume(tiny, runner, tmp_path):
    """A character is its model file and its textures: rescanning after a texture edit gives a
    new character (same family) whose examples are rendered again; a stale catalog makes the
    worker refuse the model instead of rendering other pixels under the old id."""
    from PIL import Image

    models = tmp_path / "models"
    shutil.copytree(tiny["root"] / "models", models)
    before = catalog_of(models)
    out = tmp_path / "out"
    generate(tiny["config"], before, out, runner, progress=False)
    hair = models / "c1" / "character_tex" / "hair.png"
    pixels = Image.open(hair)
    Image.fromarray(255 - np.asarray(pixels)).save(hair)  # other bytes, same size and name
    after = catalog_of(models)
    old, new = set(before["character"]), set(after["character"])
    assert len(old - new) == len(new - old) == 1
    assert sorted(before["family"]) == sorted(after["family"])  # the face did not change
    result = generate(tiny["config"], after, out, runner, progress=False)
    assert result["rendered"] >= EXAMPLES
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert set(manifest["character"]) == new
    stale = generate(tiny["config"], before, tmp_path / "stale", runner, progress=False)
    failures = pd.read_parquet(tmp_path / "stale" / "failures.parquet")
    assert stale["dataset"]["counts"]["failures"] == 1 and list(failures["stage"]) == ["load"]
    assert "changed since the catalog was made" in failures["error"].iloc[0]


def catalog_of(root: Path) -> pd.DataFrame:
    rows = [row for f in find_files(root)[0] for row in scan_file(f)]
    return build_catalog(rows, SplitConfig(train=1.0, val=0.0, test=0.0))


def test_a_tampered_dataset_json_is_one_line_in_the_report(reference, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    for text in ('{"schema": 1}', "[]", "{"):
        (out / "dataset.json").write_text(text)
        assert main(["report", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{out / 'dataset.json'}: not a valid dataset.json" in err[0], err
