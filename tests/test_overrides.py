"""Overrides files and sidecars are untrusted input: bounded, alias-free YAML, a schema of known
keys and types, and head box values that are finite, ordered and sane, every refusal naming the
file, the model entry and the key. Every hostile input is built here in code."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from characters import write_character
from mmd_loader import detect_face, load
from mmd_loader.overrides import (
    MAX_NAME,
    MAX_OVERRIDES_BYTES,
    MAX_SIDECAR_BYTES,
    FaceOverrides,
    OverridesError,
    load_overrides,
    overrides_for,
    table_from_json,
)
from mmd_loader.roles import HeadBox

BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
)


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def test_billion_laughs_is_refused_at_the_first_alias(tmp_path: Path) -> None:
    path = write(tmp_path, "o.yaml", BILLION_LAUGHS)
    assert len(path.read_bytes()) < 1000  # it would expand to 9**9 strings
    with pytest.raises(
        OverridesError, match=r"o\.yaml: .*aliases \(\*name\) are not allowed.*line 2"
    ):
        load_overrides(path)
    write(tmp_path, "m.pmx.thagen.yaml", "mouth: &m あ\nleft_eye: *m\n")
    with pytest.raises(OverridesError, match=r"m\.pmx\.thagen\.yaml: .*aliases"):
        overrides_for(tmp_path / "m.pmx")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("m.pmx:\n  eyes: x\n", r"\['m.pmx'\]: unknown override field\(s\) 'eyes'"),
        ("m.pmx:\n  mouth: [a, b]\n", r"\['m.pmx'\]: mouth must be a morph name .*got list"),
        (
            "m.pmx:\n  mouth: yes\n",
            r"mouth must be a morph name \(text; quote it in YAML\), got bool",
        ),
        ("m.pmx:\n  head: 3\n", r"head must be a bone name .*got int"),
        ("m.pmx:\n  neck: {a: 1}\n", r"neck must be a bone name .*got dict"),
        ("m.pmx:\n  neck: {a: [1]}\n", r"nested deeper than an overrides file can be"),
        ("m.pmx:\n  mouth: '   '\n", r"mouth '   ' is not a usable name"),
        (f"m.pmx:\n  mouth: {'あ' * (MAX_NAME + 1)}\n", r"mouth 'あああ.*…' is not a usable name"),
        ("m.pmx:\n  left_eye: まばたき@up\n", r"left_eye 'まばたき@up': the part after '@'"),
        ("m.pmx:\n  chin: 1e300\n", r"\['m.pmx'\]: chin must be a finite number within ±1e\+06"),
        ("m.pmx:\n  chin: -1e300\n", r"chin must be a finite number"),
        ("m.pmx:\n  head_top: .nan\n", r"head_top must be a finite number .*got nan"),
        ("m.pmx:\n  head_top: .inf\n", r"head_top must be a finite number .*got inf"),
        ("m.pmx:\n  head_top: abc\n", r"head_top must be a number, got str 'abc'"),
        ("m.pmx:\n  head_top: true\n", r"head_top must be a number, got bool"),
        ("m.pmx:\n  head_top: 2001-01-01\n", r"head_top must be a number, got date"),
        ("m.pmx:\n  head_top: 10\n  chin: 12\n", r"\['m.pmx'\]: head_top 10 must be above chin 12"),
        ("m.pmx:\n  head_top: 12\n  chin: 12\n", r"head_top 12 must be above chin 12"),
        ("m.pmx: {}\nm.pmx: {}\n", r"duplicate key 'm.pmx'.*line 2"),
        ("m.pmx:\n  mouth: a\n  mouth: b\n", r"duplicate key 'mouth'"),
        ("[1, 2]\n", r"expected a mapping of model -> fields, got list"),
        ("m.pmx: 3\n", r"\['m.pmx'\]: expected a mapping of fields, got int"),
        ("12: {mouth: a}\n", r"a model pattern must be text, got int"),
        (
            "m.pmx: !!python/object:os.system {}\n",
            r"not a valid overrides file \(could not determine",
        ),
        ("m.pmx: [\n", r"not a valid overrides file"),
        ("[" * 5000 + "]" * 5000, r"nested deeper than an overrides file can be"),
    ],
)
def test_yaml_overrides_are_validated_against_the_schema(tmp_path, text, match) -> None:
    path = write(tmp_path, "o.yaml", text)
    with pytest.raises(OverridesError, match=match) as caught:
        load_overrides(path)
    assert str(caught.value).startswith(str(path))
    assert len(str(caught.value)) < 500


def test_valid_overrides_still_load(tmp_path: Path) -> None:
    text = "'*.pmd':\n  left_eye: ウィンク@left\n  chin: 16.5\n  head_top: 2.1e1\nempty.pmx:\n"
    table = load_overrides(write(tmp_path, "o.yaml", "\ufeff" + text))  # a BOM is fine
    assert table["*.pmd"] == FaceOverrides(left_eye="ウィンク@left", chin=16.5, head_top=21.0)
    assert table["empty.pmx"] == FaceOverrides()
    assert load_overrides(write(tmp_path, "blank.yaml", "")) == {}
    # merge keys without aliases are plain YAML
    merged = load_overrides(write(tmp_path, "merge.yaml", "m.pmx:\n  <<: {mouth: あ}\n"))
    assert merged["m.pmx"].mouth == "あ"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("mouth,head_top\nあ,1\n", "need a 'model' column"),
        ("model,mouth\nm.pmx,あ,extra\n", "line 2: more fields than the header names"),
        ("model,mouth\n,あ\n", "line 2: the model column is empty"),
        ("model,mouth\nm.pmx,あ\nm.pmx,い\n", "line 3: model 'm.pmx' is listed twice"),
        ("model,chin\nm.pmx,nan\n", r"line 2: chin must be a finite number"),
        ("model,mouth\nm.pmx," + "x" * 200_000 + "\n", r"not a valid CSV file \(field larger"),
        ("model,eyes\nm.pmx,x\n", r"line 2: unknown override field\(s\) 'eyes'"),
    ],
)
def test_csv_overrides_are_validated(tmp_path, text, match) -> None:
    with pytest.raises(OverridesError, match=match):
        load_overrides(write(tmp_path, "o.csv", text))


def test_sizes_and_encodings_are_bounded(tmp_path: Path) -> None:
    big = write(tmp_path, "big.yaml", b"# " + b"x" * MAX_OVERRIDES_BYTES)
    with pytest.raises(OverridesError, match=f"more than the limit {MAX_OVERRIDES_BYTES}"):
        load_overrides(big)
    model = tmp_path / "m.pmx"
    write(tmp_path, "m.pmx.thagen.yaml", b"#" * (MAX_SIDECAR_BYTES + 1))
    with pytest.raises(
        OverridesError, match=f"more than the limit {MAX_SIDECAR_BYTES} for sidecar"
    ):
        overrides_for(model)
    latin = write(tmp_path, "latin.yaml", "m.pmx:\n  mouth: ä\n".encode("latin-1"))
    with pytest.raises(OverridesError, match=r"not UTF-8 text .*offset 16"):
        load_overrides(latin)
    with pytest.raises(OverridesError, match="no such file"):
        load_overrides(tmp_path / "missing.yaml")


def test_a_sidecar_is_never_silently_ignored(tmp_path: Path) -> None:
    model = tmp_path / "m.pmx"
    (tmp_path / "m.pmx.thagen.yaml").mkdir()
    with pytest.raises(OverridesError, match="is a directory"):
        overrides_for(model)
    (tmp_path / "m.pmx.thagen.yaml").rmdir()
    outside = write(tmp_path.parent, f"{tmp_path.name}-outside.yaml", "mouth: あ\n")
    (tmp_path / "m.pmx.thagen.yaml").symlink_to(outside)
    with pytest.raises(OverridesError, match="symlink that leads outside the model's folder"):
        overrides_for(model)
    os.unlink(tmp_path / "m.pmx.thagen.yaml")
    write(tmp_path, "inside.yaml", "mouth: い\n")
    (tmp_path / "m.pmx.thagen.yaml").symlink_to(tmp_path / "inside.yaml")
    assert overrides_for(model).mouth == "い"
    write(tmp_path, "n.pmx.thagen.yaml", "chin: .nan\n")
    with pytest.raises(OverridesError, match=r"n\.pmx\.thagen\.yaml: chin must be a finite"):
        overrides_for(tmp_path / "n.pmx")


def test_tables_from_configs_are_validated_too() -> None:
    with pytest.raises(OverridesError, match=r"dataset.json: expected a mapping"):
        table_from_json(["m.pmx"], "dataset.json")
    with pytest.raises(OverridesError, match=r"dataset.json \['m.pmx'\]: chin must be a finite"):
        table_from_json({"m.pmx": {"chin": float("inf")}}, "dataset.json")
    with pytest.raises(OverridesError, match="head_top 1 must be above chin 2"):
        FaceOverrides(head_top=1.0, chin=2.0)


def test_a_one_sided_override_must_keep_the_detected_box_ordered() -> None:
    box = HeadBox(top=20.0, chin=16.0, center=np.array([0.0, 18.0, 0.0]), half_width=2.0)
    problems: list[str] = []
    assert FaceOverrides(chin=21.0).apply_to_box(box, 0.0, problems) is None
    assert problems == [
        "override chin 21 makes the head box upside down (the detected head runs from chin 16 "
        "to top 20)"
    ]
    problems.clear()
    assert FaceOverrides(head_top=15.0).apply_to_box(box, 0.0, problems) is None
    assert "override head_top 15 makes the head box upside down" in problems[0]
    problems.clear()
    assert FaceOverrides(head_top=16.1).apply_to_box(box, 0.0, problems) is None
    assert "0.025 times the detected head's height, outside 1/10..10" in problems[0]
    problems.clear()
    assert FaceOverrides(chin=-30.0).apply_to_box(box, 0.0, problems) is None  # 12.5 times
    tall = FaceOverrides(chin=12.0).apply_to_box(box, 0.0, problems)  # twice as tall: fine
    assert tall.chin == 12.0 and tall.top == 20.0 and len(problems) == 1
    with pytest.raises(OverridesError, match="upside down"):
        FaceOverrides(chin=21.0).apply_to_box(box, 0.0)


def test_an_upside_down_override_makes_the_model_unusable(tmp_path: Path) -> None:
    model = load(write_character(3, tmp_path / "c.pmx"))
    box = detect_face(model).head_box
    roles = detect_face(model, FaceOverrides(chin=box.top + 1.0))
    assert not roles.usable and roles.head_box is None
    assert any(p.startswith(f"override chin {box.top + 1.0:g} makes the head box upside down")
               for p in roles.problems)  # fmt: skip
