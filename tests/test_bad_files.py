"""Bad files never stop a batch, and every one-line error names its file: model names that are
not UTF-8, a failing zip beside a good model, an output name near the file system's limit, a
catalog given to `review`, textures a render goes without, special files where thagen keeps
its state."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from characters import write_character
from tests.conftest import one_error_line
from thagen.cli import main


@pytest.fixture(scope="module")
def character(tmp_path_factory) -> Path:
    """A procedural character in its own folder (model and textures)."""
    return write_character(1, tmp_path_factory.mktemp("character") / "c" / "character.pmx")


def test_model_names_that_are_not_utf8_are_reported_and_the_batch_goes_on(
    character, tmp_path, capsys
):
    root = tmp_path / "models"
    shutil.copytree(character.parent, root / "good")
    shutil.copytree(character.parent, root / "copy")
    os.rename(root / "copy" / "character.pmx", os.fsencode(root / "copy") + b"/\xff\xfe.pmx")
    shutil.copytree(character.parent, root / os.fsdecode(b"folder-\xe9"))  # Latin-1 é
    catalog = tmp_path / "catalog.parquet"
    assert main(["scan", str(root), "-o", str(catalog), "--jobs", "1"]) == 0
    err = capsys.readouterr().err
    assert f"skipped {root}/copy/\\xff\\xfe.pmx: its name is not valid UTF-8" in err, err
    assert f"skipped {root}/folder-\\xe9: its name is not valid UTF-8" in err, err
    assert list(pd.read_parquet(catalog)["path"]) == [str(root / "good" / "character.pmx")]
    out = tmp_path / "data"
    argv = ["generate", "--models", str(root), "-o", str(out), "--examples", "1", "--size", "32"]
    assert main([*argv, "--workers", "1", "--no-progress", "--train", "1", "--val", "0",
                 "--test", "0"]) == 0  # fmt: skip
    assert len(pd.read_parquet(out / "manifest.parquet")) == 1


def test_a_failing_zip_beside_a_good_model_is_one_unusable_row(character, tmp_path, capsys):
    root = tmp_path / "models"
    shutil.copytree(character.parent, root / "good")
    (root / "broken.zip").write_bytes(b"PK\x03\x04 not a zip at all")
    with zipfile.ZipFile(root / "odd.zip", "w") as zf:
        zf.writestr("m.pmx", b"not a model")
    catalog = tmp_path / "catalog.parquet"
    assert main(["scan", str(root), "-o", str(catalog), "--jobs", "1"]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "error" not in captured.err
    assert f"unusable {root / 'broken.zip'}: {root / 'broken.zip'}: " in captured.out
    assert f"unusable {root / 'odd.zip'}/m.pmx: " in captured.out
    assert "1 usable" in captured.out


def test_an_output_name_near_the_limit_gets_a_temporary_name_that_fits(character, tmp_path, capsys):
    out = tmp_path / ("c" * (255 - len(".parquet")) + ".parquet")  # the longest name allowed
    assert main(["scan", str(character.parent), "-o", str(out), "--jobs", "1"]) == 0
    assert out.is_file() and sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_review_reads_a_catalog_of_every_kind_of_row(character, tmp_path, capsys):
    root = tmp_path / "models"
    shutil.copytree(character.parent, root / "good")
    shutil.copytree(character.parent, root / "twin")  # a duplicate: a list column with a value
    (root / "broken.zip").write_bytes(b"PK\x03\x04 nope")
    catalog = tmp_path / "catalog.parquet"
    assert main(["scan", str(root), "-o", str(catalog), "--jobs", "1"]) == 0
    page = tmp_path / "review.html"
    argv = ["review", str(catalog), "-o", str(page), "--workers", "1", "--no-progress"]
    assert main(argv) == 0
    text = page.read_text()
    assert "broken.zip" in text and "not a readable archive" in text
    assert "wrote" in capsys.readouterr().out


def test_render_and_preview_name_the_textures_they_went_without(character, tmp_path, capsys):
    folder = tmp_path / "c"
    shutil.copytree(character.parent, folder)
    textures = sorted((folder / "character_tex").iterdir())
    missing, broken = textures[0], textures[1]
    missing.unlink()
    broken.write_bytes(b"garbage, not an image")
    model = folder / "character.pmx"
    for argv in (
        ["render", str(model), "-o", str(tmp_path / "r.png"), "--size", "64"],
        ["preview", str(model), "-o", str(tmp_path / "p.png"), "--size", "64"],
    ):
        assert main(argv) == 0
        err = capsys.readouterr().err
        assert f"warning: {model}: material" in err
        assert f"{missing.name}' missing" in err and f"{broken.name}' unreadable" in err, err


def test_special_files_where_state_is_kept_are_one_line_naming_them(tmp_path, capsys):
    out = tmp_path / "data"
    (out / ".state").mkdir(parents=True)
    os.mkfifo(out / ".state" / "lock")  # was: "[Errno 22] Invalid argument", no file named
    assert main(["generate", "--models", str(tmp_path), "-o", str(out), "--no-progress"]) == 2
    one_error_line(capsys, f"{out / '.state' / 'lock'}: is a FIFO (named pipe)")
    fifo = tmp_path / "overrides.yaml"
    os.mkfifo(fifo)
    argv = ["inspect", str(tmp_path), "--overrides", str(fifo), "--no-render"]
    assert main(argv) == 2
    line = one_error_line(capsys, f"{fifo}: is a FIFO (named pipe), not a regular overrides file")
    assert "file file" not in line
