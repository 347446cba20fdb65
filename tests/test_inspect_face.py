"""`thagen inspect` shows how each eye's closure was chosen, the head box's notes and the flags."""

from __future__ import annotations

import json

from characters import build_character, spec_for_seed, write_character
from mmd_loader.inspection import format_reports as format_table
from mmd_loader.inspection import inspect_paths
from mmd_loader.pmx_writer import PmxData, write_pmx
from thagen.cli import main


def _smiles_only(tmp_path):
    """A procedural character whose every closure is a smile wink (まばたき and the neutral
    winks dropped)."""
    spec = spec_for_seed(3)
    data, _ = build_character(spec, "t")
    neutral = {"まばたき", *(spec.wink_names(eye)[0] for eye in ("left", "right"))}
    data = PmxData(**{**data.__dict__, "morphs": [m for m in data.morphs if m.name not in neutral]})
    return write_pmx(tmp_path / "smiles.pmx", data), spec


def test_inspect_json_has_flags_as_objects_and_the_eye_choices(tmp_path, capsys):
    path, spec = _smiles_only(tmp_path)
    assert main(["inspect", "--json", str(path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["usable"]
    flags = [f for f in report["flags"] if f["code"] == "smile_closure"]
    assert {f["role"] for f in flags} == {"left_eye", "right_eye"}
    for flag in flags:
        assert set(flag) == {"code", "role", "value", "message"}
        assert flag["value"] > 0 and "smile" in flag["message"]
    left = report["eyes"]["left_eye"]
    assert left["chosen"] == spec.wink_names("left")[1]
    assert left["candidates"][0]["smile"] and left["candidates"][0]["arch"] > 0
    assert {"morph", "how", "arch", "raised", "elsewhere", "smile", "score"} <= set(
        left["candidates"][0]
    )
    assert any(n.startswith("top:") for n in report["head_box"]["notes"])


def test_inspect_text_says_why_each_eye_was_chosen(tmp_path):
    path = write_character(1, tmp_path / "c.pmx")
    spec = spec_for_seed(1)
    text = format_table(inspect_paths([path]))
    neutral, smile = spec.wink_names("left")
    assert f"left_eye  {neutral} (geometry)" in text
    assert "neutral lid (arch -" in text and f"{smile}: smile +" in text
    assert f"left_eye_happy {smile} (geometry)" in text
    assert "head box  top" in text and "chin: end of the face skin" in text
    assert "flag" not in text  # nothing to review on this one
