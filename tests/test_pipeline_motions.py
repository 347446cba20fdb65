"""`generate --poses MOTIONS`: poses drawn from the frames of a folder of motions, mapped through
each character's own morphs and bones, independent of the worker count; the motions and their
shares in dataset.json and the report; bad files one line each; a motion changed mid-run stops
the run."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.dance import dance
from characters import write_character
from mmd_loader import detect_face, load
from mmd_loader.motion import load_motion
from mmd_loader.motion_schema import MotionConverter, MotionMapping
from pipeline.config import GenerateConfig
from pipeline.generate import generate
from poses.schema import load_schema
from thagen.cli import main

EXAMPLES, SIZE = 12, 32


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("posed")
    for seed in (1, 3):
        write_character(seed, root / "models" / f"c{seed}" / "character.pmx")
    motions = root / "motions"
    (motions / "set").mkdir(parents=True)
    (motions / "a.vmd").write_bytes(dance(8, seed=1))
    (motions / "set" / "b.vmd").write_bytes(dance(3, seed=2))
    (motions / "pose.vpd").write_bytes(
        "Vocaloid Pose Data file\n\nm.osm;\n0;\n\nMorph0{まばたき\n1;\n}\n".encode("cp932")
    )
    (motions / "broken.vmd").write_bytes(b"Vocaloid Motion Data 0002" + bytes(10))
    (motions / "camera.vmd").write_bytes(dance(1)[:50] + bytes(8))  # no bone or morph keys
    outside = root / "elsewhere.vmd"
    outside.write_bytes(dance(1))
    os.symlink(outside, motions / "outside.vmd")
    return {"root": root, "models": root / "models", "motions": motions}


def _generate(folders, out: Path, *extra: str) -> int:
    args = ["generate", "--models", str(folders["models"]), "-o", str(out), "--schema", "tha3"]
    args += ["--examples", str(EXAMPLES), "--size", str(SIZE), "--no-progress"]
    return main([*args, "--poses", str(folders["motions"]), *extra])


@pytest.fixture(scope="module")
def dataset(folders) -> Path:
    out = folders["root"] / "one"
    assert _generate(folders, out, "--workers", "1", "--poses-mix", "0.25") == 0
    return out


def _members(folder: Path) -> dict[str, bytes]:
    out = {}
    for shard in sorted(folder.glob("*.tar")):
        with tarfile.open(shard) as tar:
            out.update({m.name: tar.extractfile(m).read() for m in tar})
    return out


def test_motions_and_their_shares_are_recorded(dataset, folders, capsys):
    info = json.loads((dataset / "dataset.json").read_text())
    poses = info["poses"]
    assert poses["folder"] == str(folders["motions"]) and poses["mix"] == 0.25
    files = {m["file"]: m for m in poses["motions"]}
    assert sorted(files) == ["a.vmd", "pose.vpd", "set/b.vmd"]
    assert files["a.vmd"]["frames"] == 241 and files["pose.vpd"]["frames"] == 1
    examples = sum(m["examples"] for m in files.values()) + poses["law_examples"]
    assert examples == 2 * EXAMPLES and 0 < poses["law_examples"] < examples
    assert info["config"]["motions"][0][:1] == ["a.vmd"]  # what the shard hash sees
    manifest = pd.read_parquet(dataset / "manifest.parquet")
    assert set(manifest["motion"].dropna()) <= set(files) and manifest["motion"].isna().any()


def test_bad_motion_files_are_one_line_each(folders, tmp_path, capsys):
    out = tmp_path / "d"
    args = ["--workers", "1", "--examples", "1"]
    assert _generate(folders, out, *args) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("skipped motion")]
    assert len(lines) == 3, err
    assert any("broken.vmd at byte" in line for line in lines)
    assert any("camera.vmd" in line and "no bone or morph keyframes" in line for line in lines)
    assert any("outside.vmd" in line and "outside" in line for line in lines)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.vmd").write_bytes(b"nothing")
    args = ["generate", "--models", str(folders["models"]), "-o", str(tmp_path / "e")]
    assert main([*args, "--poses", str(empty), "--no-progress"]) == 2
    assert "no usable motion" in capsys.readouterr().err
    assert main([*args, "--poses-mix", "0.5", "--no-progress"]) == 2


@pytest.mark.numeric
def test_each_pose_is_its_motion_frame_on_that_character(dataset, folders):
    """A record's pose is its motion's frame mapped through its character's model (clipped,
    6 decimals); the others come from the laws and say so by having no motion."""
    schema = load_schema("tha3")
    records = [json.loads(v) for k, v in _members(dataset).items() if k.endswith(".json")]
    catalog = pd.read_parquet(dataset / "catalog.parquet").set_index("character")
    mappings, seen = {}, 0
    for record in records:
        if "motion" not in record:
            continue
        character = record["character"]
        if character not in mappings:
            model = load(catalog.loc[character, "path"])
            mappings[character] = MotionMapping.build(schema, model, detect_face(model))
        motion = load_motion(folders["motions"] / record["motion"]["file"])
        values = MotionConverter(mappings[character], motion).values(
            np.array([float(record["motion"]["frame"])])
        )[0]
        lo, hi = (np.array([p.range[i] for p in schema.parameters]) for i in (0, 1))
        want = np.round(np.clip(values, lo, hi), 6)
        for name, expected in zip(schema.names, want, strict=True):
            got = record["pose"][name]
            assert got is None or got == pytest.approx(expected, abs=1e-6), name
        seen += 1
    assert seen >= EXAMPLES


def test_independent_of_the_worker_count_and_resumable(dataset, folders, capsys):
    out = folders["root"] / "two"
    assert _generate(folders, out, "--workers", "2", "--poses-mix", "0.25") == 0
    assert _members(out) == _members(dataset)
    capsys.readouterr()
    assert _generate(folders, out, "--workers", "2", "--poses-mix", "0.25") == 0
    assert "rendered 0 shards" in capsys.readouterr().out


def test_report_compares_the_motions_with_the_laws(dataset):
    out = dataset / "report.html"
    assert main(["report", str(dataset), "-o", str(out)]) == 0
    page = out.read_text()
    section = page[page.index("<h2>Pose source") : page.index("<h2>Samples")]
    assert "a.vmd" in section and "set/b.vmd" in section and "the schema's laws" in section
    assert section.count("data:image/png;base64") == 2  # distributions and correlations
    assert "r, motions" in section


def test_a_motion_changed_mid_run_stops_the_run(folders, tmp_path):
    from pipeline.catalog import scan
    from pipeline.motions import scan_motions

    motions, _ = scan_motions(folders["motions"])
    catalog = scan([folders["models"]], progress=False)
    entries = tuple((m.name, "0" * 64, m.frames) for m in motions)  # digests the files lack
    config = GenerateConfig(
        schema="tha1",
        examples_per_character=2,
        image_size=SIZE,
        poses=str(folders["motions"]),
        motions=entries,
    )
    with pytest.raises(RuntimeError, match="changed since the run started"):
        generate(config, catalog, tmp_path / "d", progress=False)
