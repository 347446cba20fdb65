"""Nothing lost: `generate` run again into a dataset folder with any option changed refuses in one
line naming the options (finished shards are deleted only with `--overwrite`), and a dataset is
never trained on while `generate` writes it (nor rewritten while training reads it)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time

import pandas as pd
import pytest

from pipeline.config import GenerateConfig
from pipeline.lock import DatasetLock
from tests.conftest import one_error_line
from tests.test_pipeline_integrity import (
    ROOT,
    cli_args,
    dataset_files,
    wait_for,
)
from thagen.cli import main


def with_option(argv: list[str], flag: str, *values: str) -> list[str]:
    """`argv` with `flag` set to `values` (replaced when present, else appended)."""
    argv = list(argv)
    if flag in argv:
        at = argv.index(flag)
        argv[at + 1 : at + 1 + len(values)] = values
        return argv
    return [*argv, flag, *values]


# Each option of `generate` that decides the bytes, a new value and the config field it sets.
CHANGES = [
    (["--examples", "2"], "examples_per_character: 3 → 2"),
    (["--size", "16"], "image_size: 32 → 16"),
    (["--seed", "7"], "seed: 0 → 7"),
    (["--shard-size", "2"], "shard_max_examples: 1 → 2"),
    (["--shard-bytes", "100000000"], "shard_max_bytes"),
    (["--png-level", "3"], "png_compress_level: 1 → 3"),
    (["--lighting", "example"], 'lighting: "character" → "example"'),
    (["--supersample", "1"], "supersample: 2 → 1"),
    (["--shading", "toon"], 'shading: "phong" → "toon"'),
    (["--head-fraction", "0.4"], "head_fraction: 0.5 → 0.4"),
    (["--schema", "tha2"], 'schema: "tha1" → "tha2"'),
    (["--train", "0.5", "--val", "0.5"], "splits.train: 1.0 → 0.5; splits.val: 0.0 → 0.5"),
]


def test_a_rerun_with_other_options_is_refused_naming_them(tiny, reference, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    before = dataset_files(out)
    for change, named in CHANGES:
        argv = cli_args(tiny, out)
        for at in range(0, len(change), 2):
            argv = with_option(argv, change[at], change[at + 1])
        started = time.monotonic()
        assert main(argv) == 2, change
        line = one_error_line(capsys)
        assert f"{out}: was generated with other options" in line, line
        assert named in line and "--overwrite" in line and "another folder" in line, line
        assert time.monotonic() - started < 30, "refused only after rendering"
        assert dataset_files(out) == before, f"{change}: finished work was touched"


def test_overwrite_replaces_the_shards_when_asked_and_the_same_options_resume(
    tiny, reference, tmp_path, capsys
):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    argv = with_option(cli_args(tiny, out), "--examples", "2")
    assert main([*argv, "--overwrite"]) == 0
    assert len(pd.read_parquet(out / "manifest.parquet")) == 3 * 2
    assert sorted(p.name for p in out.glob("*.tar")) == [f"train-{i:06d}.tar" for i in range(6)]
    capsys.readouterr()
    assert main(argv) == 0  # the same options again: a resume, nothing redone
    assert "rendered 0 shards, 6 already complete" in capsys.readouterr().out


def test_a_folder_with_shards_but_no_record_of_its_options_is_refused(
    tiny, reference, tmp_path, capsys
):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    (out / ".state" / "config.json").unlink()
    before = dataset_files(out)
    assert main(cli_args(tiny, out)) == 2
    assert "no record of the options" in one_error_line(capsys)
    assert dataset_files(out) == before


def test_merge_into_a_dataset_of_other_options_is_refused(tiny, reference, tmp_path, capsys):
    """Slices of another run merged into a folder holding a finished dataset: refused before
    its run state or its shards are touched."""
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    part = tmp_path / "part"
    (part / ".state").mkdir(parents=True)
    shutil.copy(out / "catalog.parquet", part / "catalog.parquet")
    other = dataclasses.replace(tiny["config"], seed=5)
    (part / ".state" / "config.json").write_text(json.dumps(other.to_json()))
    before = dataset_files(out)
    assert main(["merge", str(out), str(part)]) == 2
    line = one_error_line(capsys, "seed: 0 → 5", "merge into an empty folder")
    assert line.startswith(f"error: {out}: was generated with other options")
    assert dataset_files(out) == before


@dataclasses.dataclass(frozen=True)
class LaterConfig(GenerateConfig):
    """A config with an option added after the reference dataset was made (as `--brows` was)."""

    later_option: str = "off"


def test_options_added_later_are_compared_too(tiny, reference, tmp_path):
    from pipeline.generate import generate
    from pipeline.rerun import OptionsChanged

    out = tmp_path / "out"
    shutil.copytree(reference, out)
    fields = {f.name: getattr(tiny["config"], f.name) for f in dataclasses.fields(GenerateConfig)}
    later = LaterConfig(**fields, later_option="on")
    with pytest.raises(OptionsChanged, match='later_option: null → "on"'):
        generate(later, tiny["catalog"], out, progress=False)


# ----------------------------------------------------------- one writer or readers, never both


def test_train_refuses_a_dataset_that_is_being_written(reference, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    train = ["train", "morpher", "--data", str(out), "--config", "cpu-small", "--steps", "1"]
    for part in (None, (0, 2)):  # a whole run, and a slice of a sliced run
        with DatasetLock(out, "generate", part):
            assert main([*train, "--out", str(tmp_path / "run")]) == 2
            line = one_error_line(capsys)
            assert "this dataset is being written" in line, line
            assert f"pid {os.getpid()}" in line or "slices of a sliced run" in line, line
        assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow  # a training process to hold the dataset: about 10 s here
def test_while_training_reads_no_run_writes_the_dataset_or_the_run(
    tiny, reference, tmp_path, capsys
):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    run = tmp_path / "run"
    trainer = subprocess.Popen(
        [sys.executable, "-m", "thagen", "train", "morpher", "--data", str(out), "--out",
         str(run), "--config", "cpu-small", "--steps", "100000", "--batch-size", "2"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        assert wait_for(lambda: (run / "log.csv").exists() or trainer.poll() is not None, 300)
        assert trainer.poll() is None, trainer.stderr.read().decode()
        before = dataset_files(out)
        for argv in (cli_args(tiny, out), ["merge", str(out)]):
            assert main(argv) == 2
            assert "being read by `thagen train`" in one_error_line(capsys)
        # and the run folder has one writer: a --resume beside the running run is refused
        resume = ["train", "morpher", "--data", str(out), "--out", str(run), "--resume"]
        assert main(resume) == 2
        assert "another `thagen train` is writing this run folder" in one_error_line(capsys)
        assert {k: v for k, v in dataset_files(out).items() if "lock" not in k} == {
            k: v for k, v in before.items() if "lock" not in k
        }
    finally:
        trainer.kill()
        trainer.wait()
    assert main(cli_args(tiny, out)) == 0  # the reader is gone: the same options resume
