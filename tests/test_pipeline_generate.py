"""End to end on real renders of procedural characters: reproducibility across workers, Dask and
slices, resume after SIGKILL, a corrupt model, a worker that segfaults, THA2 nulls, the report."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipeline.catalog import read_catalog, scan, write_catalog
from pipeline.config import GenerateConfig
from pipeline.generate import Slice, generate
from pipeline.runners import LocalRunner
from pipeline.splits import SplitConfig
from pipeline.worker import FAULT_ENV

ROOT = Path(__file__).resolve().parent.parent
SEEDS = (0, 1, 2)  # characters c0, c1 (val) and c2 (zipped)
EXAMPLES, SIZE, PER_SHARD = 3, 64, 2


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict:
    """Three procedural characters (one inside a zip), a byte copy of one, and a corrupt file."""
    from characters import write_character

    root = tmp_path_factory.mktemp("models")
    for seed in SEEDS[:2]:
        write_character(seed, root / f"c{seed}" / "character.pmx")
    staging = tmp_path_factory.mktemp("staging")
    write_character(2, staging / "c2" / "character.pmx")
    with zipfile.ZipFile(root / "c2.zip", "w") as archive:
        for file in sorted((staging / "c2").rglob("*")):
            archive.write(file, file.relative_to(staging).as_posix())
    (root / "copy").mkdir()  # a byte copy: the model and the textures it uses
    shutil.copyfile(root / "c0" / "character.pmx", root / "copy" / "same_as_c0.pmx")
    shutil.copytree(root / "c0" / "character_tex", root / "copy" / "character_tex")
    (root / "broken.pmx").write_bytes(b"PMX " + bytes(60))
    return {"root": root}


@pytest.fixture(scope="session")
def catalog_file(models, tmp_path_factory) -> Path:
    table = scan(
        [models["root"]], SplitConfig(train=1.0, val=0.0, test=0.0), jobs=2, progress=False
    )
    c1 = table[table["path"].str.endswith("c1/character.pmx")]["character"].iloc[0]
    splits = SplitConfig(train=1.0, val=0.0, test=0.0, explicit={"val": (c1,)})
    table = scan([models["root"]], splits, jobs=2, progress=False)
    path = tmp_path_factory.mktemp("catalog") / "catalog.parquet"
    write_catalog(table, path)
    models["c1"], models["splits"] = c1, splits
    return path


@pytest.fixture(scope="session")
def config(models, catalog_file) -> GenerateConfig:
    return GenerateConfig(
        examples_per_character=EXAMPLES,
        image_size=SIZE,
        shard_max_examples=PER_SHARD,
        splits=models["splits"],
    )


@pytest.fixture(scope="session")
def reference(config, catalog_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    generate(config, read_catalog(catalog_file), out, LocalRunner(2), progress=False)
    return out


def dataset_files(folder: Path) -> dict[str, bytes]:
    files = [p for p in folder.rglob("*") if p.is_file() and "progress" not in p.name]
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(files)}


def assert_same_dataset(a: Path, b: Path) -> None:
    fa, fb = dataset_files(a), dataset_files(b)
    assert sorted(fa) == sorted(fb)
    assert [n for n in fa if fa[n] != fb[n]] == []


def test_one_and_two_workers_give_identical_bytes(reference, config, catalog_file, tmp_path):
    """A second run of the same config, with 1 worker instead of 2: every file is identical."""
    generate(config, read_catalog(catalog_file), tmp_path, LocalRunner(1), progress=False)
    assert_same_dataset(reference, tmp_path)
    assert any(n.endswith(".tar") for n in dataset_files(tmp_path))


def test_dataset_content_follows_the_contract(reference, models):
    manifest = pd.read_parquet(reference / "manifest.parquet")
    info = json.loads((reference / "dataset.json").read_text())
    assert len(manifest) == manifest["key"].nunique() == 3 * EXAMPLES
    assert manifest.groupby("character")["split"].nunique().max() == 1
    assert set(manifest[manifest["character"] == models["c1"]]["split"]) == {"val"}
    assert info["splits"]["train"]["examples"] == 2 * EXAMPLES
    assert info["splits"]["val"]["characters"] == 1
    assert info["counts"] == {
        "models": 4,
        "usable": 3,
        "duplicates": 1,
        "failures": 1,
        "examples": 9,
        "shards": 5,
    }
    assert [p["name"] for p in info["schema"]["parameters"]][:3] == [
        "left_eye",
        "right_eye",
        "mouth",
    ]
    failures = pd.read_parquet(reference / "failures.parquet")
    assert len(failures) == 1 and failures["model"].iloc[0].endswith("broken.pmx")
    rests: dict[str, set[bytes]] = {}
    for shard, rows in manifest.groupby("shard", sort=True):
        with tarfile.open(reference / f"{shard}.tar") as tar:
            names = tar.getnames()
            files = {n: tar.extractfile(n).read() for n in names}
        keys = list(dict.fromkeys(n.split(".")[0] for n in names))
        assert keys == list(rows["key"])
        for row in rows.itertuples():
            record = json.loads(files[f"{row.key}.json"])
            assert record["pose"]["head_y"] == row.head_y and record["split"] == row.split
            assert record["lighting"] == {"ambient": row.ambient, "directional": row.directional}
            images = [
                np.asarray(Image.open(io.BytesIO(files[f"{row.key}.{part}.png"])))
                for part in ("rest", "expression", "posed")
            ]
            for image in images:
                assert image.shape == (SIZE, SIZE, 4)
                assert tuple(image[0, 0]) == (0, 0, 0, 0)  # transparent background
                assert image[..., 3].max() == 255  # the character is there
            assert not np.array_equal(images[1], images[2])  # the rotation changed something
            rests.setdefault(row.character, set()).add(files[f"{row.key}.rest.png"])
    assert all(len(r) == 1 for r in rests.values())  # one rest image per character


def _group_gone(pgid: int, timeout: float) -> bool:
    """Whether every process of a process group has exited within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _cli(args: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "thagen", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _generate_args(catalog_file: Path, out: Path, models: dict, workers: int) -> list[str]:
    return [
        "generate",
        "--catalog",
        str(catalog_file),
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
        "--val-characters",
        models["c1"],
        "--no-progress",
    ]


def test_resume_after_sigkill_gives_every_example_once(
    reference, config, catalog_file, models, tmp_path
):
    process = _cli(_generate_args(catalog_file, tmp_path, models, workers=1))
    try:  # kill -9 the whole process group as soon as the first shard is complete
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".state/*.done.json")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert list(tmp_path.glob(".state/*.done.json")), process.stdout.read1().decode()
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert not (tmp_path / "manifest.parquet").exists()
    generate(config, read_catalog(catalog_file), tmp_path, LocalRunner(2), progress=False)
    assert_same_dataset(reference, tmp_path)
    manifest = pd.read_parquet(tmp_path / "manifest.parquet")
    assert manifest["key"].is_unique and len(manifest) == 3 * EXAMPLES


def test_ctrl_c_stops_at_once_and_resume_completes(
    reference, config, catalog_file, models, tmp_path
):
    process = _cli(_generate_args(catalog_file, tmp_path, models, workers=2))
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".state/*.done.json")) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the whole group
    start = time.monotonic()
    output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 130, output
    assert time.monotonic() - start < 10
    assert "run again to resume" in output and "Traceback" not in output
    assert _group_gone(process.pid, timeout=10), "worker processes outlived the interrupt"
    generate(config, read_catalog(catalog_file), tmp_path, LocalRunner(2), progress=False)
    assert_same_dataset(reference, tmp_path)


def test_a_worker_that_segfaults_is_recorded_and_the_rest_completes(
    reference, catalog_file, models, tmp_path
):
    process = _cli(
        _generate_args(catalog_file, tmp_path, models, workers=2),
        env={FAULT_ENV: models["c1"][:16]},
    )
    output = process.communicate(timeout=240)[0].decode()
    assert process.returncode == 0, output
    failures = pd.read_parquet(tmp_path / "failures.parquet")
    assert sorted(failures["stage"]) == ["scan", "worker"]
    worker = failures[failures["stage"] == "worker"].iloc[0]
    assert worker["character"] == models["c1"] and "died" in worker["error"]
    manifest = pd.read_parquet(tmp_path / "manifest.parquet")
    assert models["c1"] not in set(manifest["character"]) and len(manifest) == 2 * EXAMPLES
    for tar in sorted(reference.glob("train-*.tar")):  # other shards: unchanged
        assert (tmp_path / tar.name).read_bytes() == tar.read_bytes()


def test_dask_local_cluster_output_equals_local(reference, config, catalog_file, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        with distributed.Client(cluster) as client:
            from pipeline.runners.dask import DaskRunner

            runner = DaskRunner(client)
            generate(config, read_catalog(catalog_file), tmp_path, runner, progress=False)
    assert_same_dataset(reference, tmp_path)


def test_slices_merged_equal_one_run(reference, config, catalog_file, tmp_path):
    from pipeline.merge import merge

    catalog, runner = read_catalog(catalog_file), LocalRunner(2)
    parts = [tmp_path / "part0", tmp_path / "part1"]
    for index, part in enumerate(parts):
        result = generate(config, catalog, part, runner, Slice(index, 2), progress=False)
        assert result["dataset"] is None and not (part / "manifest.parquet").exists()
    merged = tmp_path / "merged"
    merge(merged, parts)
    assert_same_dataset(reference, merged)


def test_tha2_parameters_a_model_lacks_are_null(config, catalog_file, tmp_path):
    catalog = read_catalog(catalog_file)
    catalog = catalog[catalog["path"].str.endswith("c0/character.pmx")]
    tha2 = GenerateConfig(**{**config.__dict__, "schema": "tha2", "examples_per_character": 2})
    generate(tha2, catalog, tmp_path, LocalRunner(2), progress=False)
    manifest = pd.read_parquet(tmp_path / "manifest.parquet")
    with tarfile.open(next(tmp_path.glob("*.tar"))) as tar:
        record = json.loads(tar.extractfile(f"{manifest['key'].iloc[0]}.json").read())
    nulls = {k for k, v in record["pose"].items() if v is None}
    assert "mouth_hann" in nulls and "left_eye" not in nulls and "head_y" not in nulls
    assert set(manifest.columns[manifest.isna().all()]) == nulls


def test_report_is_self_contained_and_shows_models_failures_histograms(reference, tmp_path):
    from pipeline.report import write_report

    out = write_report(reference, tmp_path / "report.html", samples=4)
    page = out.read_text()
    assert "broken.pmx" in page and "3 usable" in page
    assert page.count("<svg") == 8  # 6 pose parameters + ambient + directional
    images = page.split('src="')[1:]
    assert len(images) == 4 and all(i.startswith("data:image/png;base64,") for i in images)
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    import base64

    strip = Image.open(io.BytesIO(base64.b64decode(images[0].split(",", 1)[1].split('"')[0])))
    assert strip.size == (3 * SIZE, SIZE)


def _int64_safe(value, where: str) -> None:
    """Every integer in a JSON-like value fits a signed 64-bit integer."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        assert -(2**63) <= value < 2**63, where
    elif isinstance(value, dict):
        for k, v in value.items():
            _int64_safe(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _int64_safe(v, f"{where}[{i}]")


def test_every_integer_fits_int64(reference):
    """Arrow and most JSON readers stop at 2^63: the 64-bit seeds are written as strings."""
    _int64_safe(json.loads((reference / "dataset.json").read_text()), "dataset.json")
    for shard in sorted(reference.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar:
                if member.name.endswith(".json"):
                    record = json.loads(tar.extractfile(member).read())
                    _int64_safe(record, f"{shard.name}:{member.name}")
                    assert int(record["seed"]) >= 0
    manifest = pd.read_parquet(reference / "manifest.parquet")
    assert manifest["seed"].map(int).ge(0).all()
    for name, dtype in manifest.dtypes.items():
        assert str(dtype) != "uint64", name


def _thagen_examples(dataset: Path) -> dict[str, dict]:
    """Every example as thagen's own reader sees it: key → members (bytes / record)."""
    from training.data import list_shards, read_shard

    out = {}
    for split in ("train", "val", "test"):
        shards = sorted(dataset.glob(f"{split}-*.tar"))
        for shard in shards if shards else []:
            for record in read_shard(shard):
                out[record["__key__"]] = record
    assert out and list_shards(dataset, "train")
    return out


@pytest.mark.numeric
def test_shards_load_in_hugging_face_datasets(reference, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets

    files = {s: sorted(map(str, reference.glob(f"{s}-*.tar"))) for s in ("train", "val")}
    loaded = datasets.load_dataset(
        "webdataset", data_files=files, cache_dir=str(tmp_path / "hf"), num_proc=None
    )
    ours = _thagen_examples(reference)
    manifest = pd.read_parquet(reference / "manifest.parquet").set_index("key")
    assert sum(len(loaded[s]) for s in loaded) == len(ours) == len(manifest)
    for split in loaded:
        for row in loaded[split]:
            key = row["__key__"]
            for image in ("rest.png", "expression.png", "posed.png"):
                assert row[image].mode == "RGBA"
                expected = Image.open(io.BytesIO(ours[key][image]))
                assert np.array_equal(np.asarray(row[image]), np.asarray(expected)), key
            record = row["json"]
            assert record["seed"] == manifest.loc[key, "seed"] and record["split"] == split
            for name, value in record["pose"].items():
                assert value == pytest.approx(manifest.loc[key, name]), (key, name)


def test_shards_load_in_webdataset_with_alpha(reference):
    import webdataset as wds

    files = sorted(map(str, reference.glob("*.tar")))
    ours = _thagen_examples(reference)
    seen = 0
    for sample in wds.WebDataset(files, shardshuffle=False).decode("pilrgba"):
        key = sample["__key__"]
        for image in ("rest.png", "expression.png", "posed.png"):
            assert sample[image].mode == "RGBA"
            expected = Image.open(io.BytesIO(ours[key][image]))
            assert np.array_equal(np.asarray(sample[image]), np.asarray(expected)), key
        assert sample["json"]["pose"] == json.loads(ours[key]["json"])["pose"]
        seen += 1
    assert seen == len(ours)
