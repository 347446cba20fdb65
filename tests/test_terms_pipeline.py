"""Terms of use through the pipeline, on real renders of procedural characters: one whose readme
forbids AI training, one packed in a 7z with its licence, one with no terms at all. `generate`
leaves out the first by default (failures.parquet and the report say why), every dataset gets
attributions.csv and a dataset card that Hugging Face's libraries read, merged slices get the same
files, and scan, inspect and the review page show each model's terms."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import struct
from pathlib import Path

import libarchive
import pandas as pd
import pytest

from pipeline.catalog import read_catalog, row_terms, scan, write_catalog
from pipeline.config import GenerateConfig
from pipeline.generate import Slice, generate
from pipeline.merge import merge
from pipeline.runners import LocalRunner

AI_NO = "ＡＩ学習への利用は禁止します。\n改造は自由です。\n"


def without_comment(path: Path) -> None:
    """Rewrite a PMX file's comment and English comment as empty texts."""
    data = path.read_bytes()
    at, texts = 17, []  # after "PMX ", the version, the globals count and 8 globals
    for _ in range(4):
        (size,) = struct.unpack_from("<i", data, at)
        texts.append((at, 4 + size))
        at += 4 + size
    start = texts[2][0]
    path.write_bytes(data[:start] + struct.pack("<ii", 0, 0) + data[at:])


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    from characters import write_character

    root = tmp_path_factory.mktemp("terms_models")
    write_character(0, root / "ai_no" / "character.pmx")
    (root / "ai_no" / "readme.txt").write_bytes(AI_NO.encode("cp932"))
    bare = write_character(1, root / "bare" / "character.pmx")
    without_comment(bare)
    staging = tmp_path_factory.mktemp("staging")
    write_character(2, staging / "Free" / "character.pmx")
    (staging / "Free" / "LICENSE.txt").write_text("CC BY 4.0\n", encoding="utf-8")
    with libarchive.file_writer(str(root / "free.7z"), "7zip") as archive:
        for file in sorted(p for p in (staging / "Free").rglob("*") if p.is_file()):
            data = file.read_bytes()
            name = file.relative_to(staging).as_posix()
            archive.add_file_from_memory(name, len(data), data)
    return root


@pytest.fixture(scope="module")
def catalog(models) -> pd.DataFrame:
    return scan([models], jobs=2, progress=False)


def row_of(catalog: pd.DataFrame, needle: str) -> dict:
    (row,) = [r for r in catalog.to_dict("records") if needle in f"{r['path']}/{r['member']}"]
    return row


def config(**changes) -> GenerateConfig:
    return GenerateConfig(examples_per_character=2, image_size=64, **changes)


@pytest.fixture(scope="module")
def dataset(catalog, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dataset")
    generate(config(), catalog, out, LocalRunner(2), progress=False)
    return out


def test_scan_reads_each_models_terms(catalog, capsys) -> None:
    ai_no, bare, free = (row_of(catalog, n) for n in ("ai_no", "bare", "free.7z"))
    assert all(r["usable"] for r in (ai_no, bare, free))
    terms = row_terms(ai_no)
    assert terms["clauses"]["ai_training"] == "forbidden"
    assert terms["clauses"]["modification"] == "allowed"
    assert terms["evidence"]["ai_training"][0] | {"text": ""} == {
        "value": "forbidden", "file": "ai_no/readme.txt", "line": 1, "text": "",
    }  # fmt: skip
    assert [f["encoding"] for f in terms["files"] if f["file"].endswith(".txt")] == ["cp932"]
    assert row_terms(bare)["status"] == "unknown"
    assert "terms_unknown" in {f["code"] for f in json.loads(bare["flags"])}
    assert "terms_unknown" not in {f["code"] for f in json.loads(ai_no["flags"])}
    free_terms = row_terms(free)
    assert free["member"] == "Free/character.pmx"
    assert [lic["name"] for lic in free_terms["licences"]] == ["CC0", "CC BY 4.0"]
    assert "free.7z/Free/LICENSE.txt" in [f["file"] for f in free_terms["files"]]
    from pipeline.cli import _print_terms

    _print_terms(catalog)
    out = capsys.readouterr().out
    assert "ai_training forbidden" in out and "terms unknown" in out
    assert "3 models: terms unknown for 1; AI training forbidden or conditional for 1" in out


def test_generate_leaves_out_what_the_terms_forbid_and_says_why(catalog, dataset) -> None:
    manifest = pd.read_parquet(dataset / "manifest.parquet")
    ai_no, bare, free = (row_of(catalog, n) for n in ("ai_no", "bare", "free.7z"))
    assert set(manifest["character"]) == {bare["character"], free["character"]}
    failures = pd.read_parquet(dataset / "failures.parquet")
    (left,) = failures[failures["stage"] == "terms"].to_dict("records")
    assert left["character"] == ai_no["character"]
    assert left["error"].startswith("terms forbid ai_training (ai_no/readme.txt:1: ")
    info = json.loads((dataset / "dataset.json").read_text("utf-8"))
    assert info["config"]["terms_exclude"] == ["ai_training"]


def test_attributions_csv(catalog, dataset, models) -> None:
    rows = list(csv.DictReader(io.StringIO((dataset / "attributions.csv").read_text("utf-8"))))
    assert [r["model"] for r in rows] == ["bare/character.pmx", "free.7z/Free/character.pmx"]
    bare, free = rows
    assert bare["terms"] == "unknown" and bare["ai_training"] == "unstated"
    assert free["licences"] == "CC0; CC BY 4.0" and free["credit"] == "conditional"
    assert (
        free["title"] == "thagen character 2"
        and free["character"] == row_of(catalog, "free.7z")["character"]
    )
    licence = hashlib.sha256(b"CC BY 4.0\n").hexdigest()
    assert f"free.7z/Free/LICENSE.txt:{licence}" in free["evidence_files"].split("; ")


def test_the_dataset_card_is_a_hugging_face_card(dataset) -> None:
    import datasets
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(dataset / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "other" and data["license_link"] == "attributions.csv"
    assert data["task_categories"] == ["image-to-image"]
    sizes = Path(datasets.__file__).parent / "utils" / "resources" / "size_categories.json"
    assert data["size_categories"] == ["n<1K"] and "n<1K" in json.loads(sizes.read_text())
    assert "mikumikudance" in data["tags"] and data["pretty_name"].startswith("thagen tha1")
    configs = MetadataConfigs.from_dataset_card_data(card.data)
    splits = {f["split"] for f in configs["default"]["data_files"]}
    manifest = pd.read_parquet(dataset / "manifest.parquet")
    names = {"train": "train", "val": "validation", "test": "test"}
    assert splits == {names[s] for s in manifest["split"].unique()}
    loaded = datasets.load_dataset(str(dataset))  # the card's configs name the shards
    assert sum(len(loaded[s]) for s in loaded) == len(manifest)
    text = card.text
    assert "Left out for their terms: 1 model(s)." in text and "ai_no/character.pmx" in text
    assert "Kept with terms unknown" in text and "| bare/character.pmx |" in text
    assert "## Known limitations" in text and "## Attributions" in text


def test_the_policy_is_the_users_to_choose(catalog, tmp_path) -> None:
    cases = [((), {"ai_no", "bare", "free.7z"}), (("ai_training", "unknown"), {"free.7z"})]
    for policy, kept in cases:
        out = tmp_path / "-".join(policy or ("none",))
        generate(config(terms_exclude=policy), catalog, out, LocalRunner(2), progress=False)
        characters = set(pd.read_parquet(out / "manifest.parquet")["character"])
        assert characters == {row_of(catalog, n)["character"] for n in kept}
        failures = pd.read_parquet(out / "failures.parquet")
        assert len(failures[failures["stage"] == "terms"]) == 3 - len(kept)


def test_merged_slices_merge_the_card_and_attributions(catalog, dataset, tmp_path) -> None:
    parts = [tmp_path / "part0", tmp_path / "part1"]
    for index, part in enumerate(parts):
        generate(config(), catalog, part, LocalRunner(1), Slice(index, 2), progress=False)
    merged = tmp_path / "merged"
    merge(merged, parts)
    for name in ("attributions.csv", "README.md"):
        assert (merged / name).read_bytes() == (dataset / name).read_bytes(), name


def test_report_links_the_card_and_lists_what_was_left_out(dataset, tmp_path) -> None:
    from pipeline.report import write_report

    page = write_report(dataset, dataset / "report.html").read_text("utf-8")
    assert 'href="README.md"' in page and 'href="attributions.csv"' in page
    assert "terms forbid ai_training" in page and "terms_unknown" in page
    elsewhere = write_report(dataset, tmp_path / "r" / "report.html").read_text("utf-8")
    target = os.path.relpath(dataset / "README.md", tmp_path / "r")
    assert f'href="{target}"' in elsewhere and target.startswith("..")


def test_inspect_json_and_the_review_page_show_the_terms(models, catalog, tmp_path, capsys):
    from pipeline.review import write_review
    from thagen.cli import main

    assert main(["inspect", str(models / "ai_no"), "--json", "--no-render"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["terms"]["clauses"]["ai_training"] == "forbidden"
    assert report["terms"]["files"][-1]["file"] == "readme.txt"
    subset = catalog[catalog["path"].str.contains("ai_no")]
    with LocalRunner(1) as runner:
        write_review(subset, tmp_path / "review.html", runner, progress=False)
    page = (tmp_path / "review.html").read_text("utf-8")
    assert "ai_training forbidden" in page and "ai_no/readme.txt" in page


def test_terms_options_are_checked() -> None:
    from pipeline.cli import _flag_codes, _terms_policy

    assert _terms_policy("none") == ()
    assert _terms_policy("unknown, ai_training") == ("ai_training", "unknown")
    with pytest.raises(ValueError, match=r"--terms-exclude: .*unknown clause"):
        _terms_policy("ai_trainin")
    assert _flag_codes("terms_unknown") == ("terms_unknown",)
    with pytest.raises(ValueError, match="terms_exclude"):
        GenerateConfig(terms_exclude=("everything",))
    assert GenerateConfig.from_json(config().to_json()).terms_exclude == ("ai_training",)


def test_the_catalog_keeps_the_terms(catalog, tmp_path) -> None:
    write_catalog(catalog, tmp_path / "catalog.parquet")
    again = read_catalog(tmp_path / "catalog.parquet")
    assert [row_terms(r) for r in again.to_dict("records")] == [
        row_terms(r) for r in catalog.to_dict("records")
    ]
