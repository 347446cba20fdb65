"""The pipeline's pure parts: seeds, sampling laws, schemas, splits, shard writing and planning."""

from __future__ import annotations

import hashlib
import tarfile

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline.catalog import COLUMNS, build_catalog
from pipeline.config import GenerateConfig
from pipeline.plan import plan_shards
from pipeline.png import encode_png
from pipeline.seeds import example_rng, example_seed
from pipeline.shards import ShardWriter, example_bound, read_keys
from pipeline.splits import SplitConfig, assign_splits, split_of
from poses.sampling import sample_lighting, sample_pose
from poses.schema import SchemaError, load_schema, parse_schema

IDS = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(2000)]


def fake_catalog(ids: list[str], usable: bool = True) -> pd.DataFrame:
    rows = [
        {c: None for c in COLUMNS}
        | {"character": i, "path": f"/m/{i}.pmx", "usable": usable, "reasons": [], "duplicates": []}
        for i in ids
    ]
    return build_catalog(rows)


def draws(schema_name: str, n: int, seed: int = 7) -> pd.DataFrame:
    schema = load_schema(schema_name)
    rows = []
    for i in range(n):
        rng = example_rng(seed, IDS[i % 50], i)
        rows.append(sample_pose(schema, rng) | sample_lighting(schema, rng))
    return pd.DataFrame(rows)


def test_seeds_depend_only_on_dataset_seed_character_and_index():
    a = [example_seed(3, c, i) for c in IDS[:5] for i in range(5)]
    b = [example_seed(3, c, i) for c in reversed(IDS[:5]) for i in reversed(range(5))]
    assert sorted(a) == sorted(b) and len(set(a)) == 25
    assert example_seed(3, IDS[0], 1) != example_seed(4, IDS[0], 1)
    assert example_rng(3, IDS[0], 1).random() == example_rng(3, IDS[0], 1).random()


@pytest.mark.numeric
def test_tha1_sampler_follows_its_laws():
    """20k draws with a fixed seed: morphs ~ U[0,1], rotations have density |x| on [-1,1]
    (CDF (1 + sign(x) x²) / 2), ambient ~ U[0.5,1.2], directional fixed at 0.5."""
    d = draws("tha1", 20000)
    for name in ("left_eye", "right_eye", "mouth"):
        assert stats.kstest(d[name], "uniform").pvalue > 0.001, name
    abs_cdf = lambda x: (1 + np.sign(x) * x**2) / 2  # noqa: E731
    for name in ("head_x", "head_y", "neck_z"):
        assert stats.kstest(d[name], abs_cdf).pvalue > 0.001, name
        assert stats.kstest(d[name], stats.uniform(-1, 2).cdf).pvalue < 1e-6  # the test can fail
        counts, _ = np.histogram(np.abs(d[name]), bins=10, range=(0, 1))
        expected = len(d) * np.diff(np.linspace(0, 1, 11) ** 2)
        assert stats.chisquare(counts, expected).pvalue > 0.001, name
    assert stats.kstest(d["ambient"], stats.uniform(0.5, 0.7).cdf).pvalue > 0.001
    assert (d["directional"] == 0.5).all()
    assert d[["left_eye", "mouth"]].min().min() >= 0 and d["head_x"].abs().max() <= 1


def test_tha2_groups_are_exclusive():
    d = draws("tha2", 2000)
    schema = load_schema("tha2")
    for members in schema.groups.values():
        names = [schema.parameters[i].name for i in members]
        assert ((d[names] > 0).sum(axis=1) <= 1).all()
        assert ((d[names] > 0).sum(axis=0) > 0).all()  # every member gets chosen
    assert d["ambient"].between(0.5, 0.75).all() and d["directional"].between(0.5, 1.25).all()


def test_schema_errors_name_the_file_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters:\n  - {name: x, kind: morph, range: [0, 1]}\n")
    with pytest.raises(SchemaError, match=r"bad.yaml.*\(x\).*roles"):
        load_schema(bad)
    with pytest.raises(SchemaError, match="unknown schema 'nope'"):
        load_schema("nope")
    with pytest.raises(SchemaError, match="symmetric"):
        parse_schema(
            {
                "parameters": [
                    {
                        "name": "r",
                        "kind": "rotation",
                        "bone": "head",
                        "axis": "y",
                        "degrees": 15,
                        "range": [0, 1],
                        "law": "abs",
                    }
                ]
            }
        )


@pytest.mark.numeric
def test_tha1_order_and_pose_mapping():
    schema = load_schema("tha1")
    assert schema.names == ["left_eye", "right_eye", "mouth", "head_x", "head_y", "neck_z"]
    assert [p["kind"] for p in schema.to_json()["parameters"]] == ["morph"] * 3 + ["rotation"] * 3
    from mmd_loader.roles import FaceRoles, RoleMorph
    from render.binding import SchemaBinding
    from tests.test_render_unit import quad_model

    empty = RoleMorph("x", "x", np.zeros(0, np.int32), np.zeros((0, 3), np.float32))
    roles = FaceRoles(morphs={"left_eye": empty, "mouth": empty}, neck=0, head=0)
    binding = SchemaBinding(schema, quad_model(-1, 1, -1, 1), roles)  # no right_eye
    values = {
        "left_eye": 0.5,
        "right_eye": 1.0,
        "mouth": 0.2,
        "head_x": 1.0,
        "head_y": -0.5,
        "neck_z": 0.1,
    }
    pose = binding.pose(values)
    morphs, rotations = pose.morphs, pose.rotations
    assert binding.record(values)["right_eye"] is None
    assert morphs == {"left_eye": 0.5, "mouth": 0.2}
    assert rotations == {"head": (15.0, -7.5, 0.0), "neck": (0.0, 0.0, pytest.approx(1.5))}


@pytest.mark.numeric
def test_splits_are_stable_disjoint_and_near_the_fractions():
    config = SplitConfig()
    small = assign_splits(IDS[:100], config)
    large = assign_splits(IDS, config)
    assert all(large[c] == s for c, s in small.items())  # adding characters moves none
    counts = pd.Series(large).value_counts(normalize=True)
    assert abs(counts["train"] - 0.9) < 0.03 and abs(counts["val"] - 0.05) < 0.02
    explicit = SplitConfig(train=1, val=0, test=0, explicit={"val": (IDS[3][:12],)})
    assert split_of(IDS[3], explicit) == "val" and split_of(IDS[4], explicit) == "train"
    with pytest.raises(ValueError, match="sum to 1"):
        SplitConfig(train=0.5, val=0.1, test=0.1)


def test_shard_writer_is_deterministic_atomic_and_fixed_headers(tmp_path):
    members = {"json": b"{}", "rest.png": b"r" * 700, "expression.png": b"e", "posed.png": b"p"}
    for name in ("a", "b"):
        with ShardWriter(tmp_path / f"{name}.tar") as writer:
            writer.add("k_000000", members)
            writer.add("k_000001", members)
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    assert writer.digest["sha256"] == hashlib.sha256((tmp_path / "b.tar").read_bytes()).hexdigest()
    with tarfile.open(tmp_path / "a.tar") as tar:
        infos = tar.getmembers()
    assert [i.name for i in infos[:4]] == [
        "k_000000.expression.png",
        "k_000000.json",
        "k_000000.posed.png",
        "k_000000.rest.png",
    ]
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname, i.mode) for i in infos} == {
        (0, 0, 0, "", "", 0o644)
    }
    assert read_keys(tmp_path / "a.tar") == ["k_000000", "k_000001"]
    with pytest.raises(RuntimeError), ShardWriter(tmp_path / "c.tar") as writer:
        writer.add("k_000000", members)
        raise RuntimeError("interrupted")
    assert not (tmp_path / "c.tar").exists() and not (tmp_path / "c.tar.tmp").exists()
    with pytest.raises(ValueError, match="key"), ShardWriter(tmp_path / "d.tar") as writer:
        writer.add("Bad.Key", members)


def test_shard_plan_covers_every_example_once_within_bounds():
    catalog = fake_catalog(IDS[:40])
    config = GenerateConfig(examples_per_character=7, shard_max_examples=5)
    specs = plan_shards(config, catalog)
    examples = [(c, i) for s in specs for c, a, b in s.ranges for i in range(a, b)]
    assert len(examples) == len(set(examples)) == 40 * 7
    assert all(s.count <= 5 for s in specs)
    assert specs == plan_shards(config, catalog.sample(frac=1, random_state=1))  # row order
    split = assign_splits(IDS[:40])
    assert all(split[c] == s.split for s in specs for c in s.characters)
    names = [s.name for s in specs if s.split == "train"]
    assert names == [f"train-{i:06d}" for i in range(len(names))]
    by_bytes = GenerateConfig(image_size=256, shard_max_bytes=10 * example_bound(256))
    assert by_bytes.examples_per_shard == 10


def test_catalog_merges_identical_files_and_keeps_the_first_path():
    rows = [
        {c: None for c in COLUMNS}
        | {"character": cid, "path": path, "usable": True, "reasons": [], "duplicates": []}
        for cid, path in (("b" * 64, "/m/z.pmx"), ("a" * 64, "/m/y.pmx"), ("b" * 64, "/m/a.pmx"))
    ]
    table = build_catalog(rows)
    assert len(table) == 2
    row = table[table["character"] == "b" * 64].iloc[0]
    assert row["path"] == "/m/a.pmx" and list(row["duplicates"]) == ["/m/z.pmx"]


@pytest.mark.parametrize("shape", [(1, 1, 4), (3, 7, 4), (64, 64, 4)])
def test_png_encoding_is_lossless_and_deterministic(shape):
    import io

    from PIL import Image

    rng = np.random.default_rng(sum(shape))
    rgba = rng.integers(0, 256, shape, dtype=np.uint8)
    rgba[: shape[0] // 2] = (0, 0, 0, 0)  # runs of background, as in real renders
    for level in (0, 1, 9):
        data = encode_png(rgba, level)
        with Image.open(io.BytesIO(data)) as image:
            assert image.mode == "RGBA"
            np.testing.assert_array_equal(np.asarray(image), rgba)
        assert encode_png(rgba.copy(), level) == data
    with pytest.raises(ValueError, match="uint8"):
        encode_png(rgba[..., :3], 1)


def test_code_fingerprint_covers_what_decides_bytes_and_nothing_else(tmp_path, monkeypatch):
    """Resume must not reuse shards written by other code, and editing the report, the tracker
    or a CLI's help text must not invalidate them: the fingerprint hashes the import closure of
    the shard worker."""
    import pipeline.fingerprint as fp

    root = tmp_path / "repo"
    files = {
        "pipeline/__init__.py": "",
        "pipeline/worker.py": "import render.a\n\ndef f():\n    from poses import b\n",
        "pipeline/report.py": "import render.a\n",
        "render/__init__.py": "",
        "render/a.py": "x = 1\n",
        "render/cli.py": "HELP = 'x'\n",
        "render/shaders/model.frag": "void main() {}\n",
        "poses/__init__.py": "",
        "poses/b.py": "",
        "tracking/__init__.py": "",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    monkeypatch.setattr(fp, "ROOT", root)

    def fingerprint() -> str:
        fp.code_fingerprint.cache_clear()
        return fp.code_fingerprint()

    first = fingerprint()
    assert "poses.b" in fp.closure() and "pipeline.report" not in fp.closure()
    for unrelated in ("pipeline/report.py", "render/cli.py", "tracking/__init__.py"):
        (root / unrelated).write_text("# edited\n")
        assert fingerprint() == first, unrelated
    for decisive in ("render/a.py", "poses/b.py", "render/shaders/model.frag"):
        (root / decisive).write_text("# edited\n")
        assert fingerprint() != first, decisive
        first = fingerprint()
    fp.code_fingerprint.cache_clear()


def test_real_fingerprint_leaves_out_reports_trackers_and_clis():
    from pipeline.fingerprint import closure

    modules = set(closure())
    assert {"pipeline.worker", "render.renderer", "render.binding", "poses.schema"} <= modules
    assert {"mmd_loader.face", "render.rig", "pipeline.shards", "pipeline.png"} <= modules
    for name in modules:
        assert name.split(".")[0] not in ("tracking", "training", "thagen"), name
        assert not name.endswith((".cli", ".report", ".preview", ".procedural")), name


def test_stray_shards_of_an_earlier_run_are_removed(tmp_path):
    """A folder re-used for another dataset keeps only the shards this dataset contains."""
    from pipeline.manifest import remove_stray_shards
    from pipeline.state import done_path

    done_path(tmp_path, "x").parent.mkdir(parents=True)
    for name in ("train-000000", "train-000001", "val-000000", "test-000003"):
        (tmp_path / f"{name}.tar").write_bytes(b"")
        done_path(tmp_path, name).write_text("{}")
    (tmp_path / "train-000002.tar.tmp").write_bytes(b"")
    (tmp_path / "notes.tar").write_bytes(b"")
    removed = remove_stray_shards(tmp_path, {"train-000000", "val-000000"})
    assert removed == ["train-000001.tar", "train-000002.tar.tmp", "test-000003.tar"]
    left = sorted(p.name for p in tmp_path.glob("*.tar*"))
    assert left == ["notes.tar", "train-000000.tar", "val-000000.tar"]
    assert not done_path(tmp_path, "test-000003").exists()
    assert done_path(tmp_path, "val-000000").exists()


def test_the_shard_hash_covers_the_libraries_that_decide_bytes(monkeypatch):
    """A resume under another deflate library (or numpy, moderngl) redoes the shards."""
    import pipeline.plan as plan

    config = GenerateConfig()
    spec = plan.ShardSpec("train-000000", "train", (("a" * 64, 0, 3),))
    rows = [{"character": "a" * 64, "path": "/m/a.pmx", "member": None}]
    before = plan.spec_hash(config, rows, spec)
    assert set(plan.byte_libraries()) == {"zlib", "isal", "numpy", "moderngl"}
    other = {**plan.byte_libraries(), "isal": "0.0.0"}
    monkeypatch.setattr(plan, "byte_libraries", lambda: other)
    assert plan.spec_hash(config, rows, spec) != before
