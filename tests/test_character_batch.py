"""Batches of procedural characters: each written once, byte-identical whatever the number of
workers, skipped while its files are what this code writes; characters sharing a face seed are
one face under different looks, which the family signature finds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from characters import spec_for_seed
from characters.batch import MANIFEST, folder_name, shared_faces, write_characters
from mmd_loader import detect_face, load
from pipeline.cli import held_out_splits
from pipeline.families import assign_families, face_signature

SEEDS = [0, 1, 2]
FACES = shared_faces(SEEDS, 2)  # 0, 0, 1: characters 0 and 1 share a face


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("batch")
    paths, written = write_characters(root, SEEDS, FACES, workers=2)
    assert written == 3
    return root, paths


def test_a_batch_is_written_once_and_the_same_whatever_the_workers(batch, tmp_path):
    root, paths = batch
    assert FACES == [0, 0, 1]
    assert [p.parent.name for p in paths] == [
        folder_name(s, f) for s, f in zip(SEEDS, FACES, strict=True)
    ]
    again, written = write_characters(root, SEEDS, FACES, workers=2)
    assert (again, written) == (paths, 0)
    write_characters(tmp_path / "one", SEEDS, FACES, workers=1)
    assert _files(tmp_path / "one") == _files(root)
    manifest = json.loads((root / MANIFEST).read_text())
    assert sorted(manifest["characters"]) == sorted(p.parent.name for p in paths)


def test_a_damaged_or_outdated_character_is_written_again(batch, tmp_path):
    root, paths = batch
    copy = tmp_path / "copy"
    write_characters(copy, SEEDS, FACES)
    iris = copy / paths[1].parent.name / "character_tex" / "iris.png"
    iris.write_bytes(b"not a png")
    _, written = write_characters(copy, SEEDS, FACES)
    assert written == 1 and _files(copy) == _files(root)
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["version"] = "other code"
    (copy / MANIFEST).write_text(json.dumps(manifest))
    _, written = write_characters(copy, SEEDS, FACES)
    assert written == 3 and _files(copy) == _files(root)


def test_characters_sharing_a_face_seed_are_one_family(batch):
    _, paths = batch
    specs = [spec_for_seed(s, f) for s, f in zip(SEEDS, FACES, strict=True)]
    assert specs[0].eye_style.closed_low == specs[1].eye_style.closed_low
    assert specs[0].hair != specs[1].hair and specs[0].eye_x != specs[2].eye_x
    signatures = {}
    for path in paths:
        model = load(path)
        signatures[path.parent.name] = face_signature(model, detect_face(model))
    families = assign_families(signatures)
    names = [p.parent.name for p in paths]
    assert families[names[0]] == families[names[1]] != families[names[2]]


def test_held_out_faces_take_every_look_with_them():
    ids = [f"c{i}" for i in range(12)]
    faces = shared_faces(range(12), 2)  # six faces of two looks
    splits = held_out_splits(ids, faces, 1)
    assert splits == {"val": ("c10", "c11"), "test": ("c8", "c9")}
    assert held_out_splits(ids, faces, 2) == {}  # fewer than 4 × 2 faces
    assert held_out_splits(ids, list(range(12)), 2)["val"] == ("c10", "c11")
