"""Nothing followed, nothing trusted in a dataset folder: links planted where thagen writes (lock
files, `.state/`, the report) are refused in one line and their targets left alone; the report
and training read only the shards the folder's index lists, by names of the folder's own
pattern that stay inside it, with the bytes their sidecars record.

Every hostile condition is built here in code, on the tiny procedural dataset of
`test_pipeline_integrity` (3 characters, 9 one-example shards at 32 px).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import one_error_line
from tests.test_pipeline_integrity import (
    cli_args,
    flip_png_bytes,
)
from thagen.cli import main

VICTIM = "precious: not thagen's to write"


def copy_of(reference: Path, tmp_path: Path, name: str = "out") -> Path:
    out = tmp_path / name
    shutil.copytree(reference, out)
    return out


# ------------------------------------------------------------------------- links where we write


SLICE = ["--shard-index", "0", "--num-shards", "2"]


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("lock", []),  # the run's own lock record would be written into the link's target
        ("writers.lock", []),
        ("slice-0-of-2.lock", SLICE),
        ("writers-0-of-2.lock", SLICE),
        ("slice-1-of-3.lock", []),  # a stale slice lock, which a whole run empties
        ("lock", SLICE),  # a slice run empties the whole run's lock
    ],
)
def test_lock_files_that_are_links_are_refused_and_left_alone(tiny, tmp_path, capsys, name, extra):
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM)
    out = tmp_path / "out"
    (out / ".state").mkdir(parents=True)
    (out / ".state" / name).symlink_to(victim)
    assert main(cli_args(tiny, out) + extra) == 2
    line = one_error_line(capsys)
    assert f"{out / '.state' / name}: is a symbolic link" in line, line
    assert victim.read_text() == VICTIM
    assert not list(out.glob("*.tar"))


def test_a_state_folder_that_is_a_link_is_refused(tiny, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / ".state").symlink_to(elsewhere)
    assert main(cli_args(tiny, out)) == 2
    assert f"{out / '.state'}: is a symbolic link" in one_error_line(capsys)
    assert list(elsewhere.iterdir()) == [] and not list(out.glob("*.tar"))


@pytest.mark.parametrize("name", ["catalog.parquet", "dataset.json", ".state/config.json"])
def test_files_written_by_rename_refuse_a_link_there_too(tiny, tmp_path, capsys, name):
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM)
    out = tmp_path / "out"
    (out / ".state").mkdir(parents=True)
    (out / name).symlink_to(victim)
    assert main(cli_args(tiny, out)) == 2
    assert f"{out / name}: is a symbolic link" in one_error_line(capsys)
    assert victim.read_text() == VICTIM and (out / name).is_symlink()


def test_the_report_never_writes_through_a_link(reference, tmp_path, capsys):
    out = copy_of(reference, tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM)
    (out / "report.html").symlink_to(victim)
    assert main(["report", str(out)]) == 2
    assert f"{out / 'report.html'}: is a symbolic link" in one_error_line(capsys)
    assert victim.read_text() == VICTIM


# ------------------------------------------------------- shard names from the manifest, untrusted


def rewrite_manifest(root: Path, shard: str) -> None:
    """Every manifest row pointing at `shard` (kept valid parquet otherwise)."""
    table = pq.read_table(root / "manifest.parquet")
    column = table.schema.get_field_index("shard")
    names = pa.array([shard] * table.num_rows, pa.string())
    pq.write_table(table.set_column(column, "shard", names), root / "manifest.parquet")


@pytest.mark.parametrize(
    "shard",
    [
        "../elsewhere/train-000000",  # relative, leaving the folder
        "{elsewhere}/train-000000",  # absolute
        "train-000000/../../elsewhere/train-000000",
        "train-0",  # not the folder's own pattern
        "train-000000.tar",
    ],
)
def test_the_report_embeds_no_tar_from_outside(reference, tmp_path, capsys, shard):
    out = copy_of(reference, tmp_path)
    elsewhere = copy_of(reference, tmp_path, "elsewhere")  # a tar the report must never embed
    rewrite_manifest(out, shard.format(elsewhere=elsewhere))
    assert main(["report", str(out)]) == 2
    line = one_error_line(capsys)
    assert "manifest.parquet" in line and "not a shard of this folder" in line, line
    assert not (out / "report.html").exists()


def test_the_report_refuses_a_shard_linked_outside(reference, tmp_path, capsys):
    out = copy_of(reference, tmp_path)
    elsewhere = copy_of(reference, tmp_path, "elsewhere")
    for tar in out.glob("*.tar"):
        tar.unlink()
        tar.symlink_to(elsewhere / tar.name)
    assert main(["report", str(out)]) == 2
    assert "outside" in one_error_line(capsys) and not (out / "report.html").exists()


# --------------------------------------------------- training reads what the index lists, no glob


torch = pytest.importorskip("torch")


def stream_of(root: Path):
    from training.data import ShardStream

    return ShardStream(root, "train", "morpher", shuffle=False)


def test_training_reads_only_the_shards_the_index_lists(reference, tmp_path, capsys):
    from training.data import DatasetError

    out = copy_of(reference, tmp_path)
    assert len(list(stream_of(out))) == 9
    extra = out / "train-000099.tar"  # a leftover of another run: never silently used
    shutil.copy(out / "train-000000.tar", extra)
    with pytest.raises(DatasetError, match=r"train-000099.tar: a shard that manifest.parquet"):
        stream_of(out)
    run = ["train", "morpher", "--data", str(out), "--out", str(tmp_path / "run")]
    assert main([*run, "--config", "cpu-small", "--steps", "1"]) == 2
    assert "train-000099.tar" in one_error_line(capsys) and not (tmp_path / "run").exists()
    extra.unlink()
    (out / "train-000003.tar").rename(tmp_path / "moved.tar")  # missing: never silently skipped
    with pytest.raises(DatasetError, match=r"train-000003.tar: listed in .* but missing"):
        stream_of(out)
    (out / "train-000003.tar").symlink_to(tmp_path / "moved.tar")  # linked outside
    with pytest.raises(DatasetError, match=r"train-000003.tar: a link to .*, outside"):
        stream_of(out)
    (out / "train-000003.tar").unlink()
    (tmp_path / "moved.tar").rename(out / "train-000003.tar")
    flip_png_bytes(out / "train-000005.tar")  # same size, other bytes: its sha256 tells
    with pytest.raises(DatasetError, match=r"train-000005.tar: its bytes are not the ones"):
        list(stream_of(out))
