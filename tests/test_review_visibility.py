"""`thagen review --schema tha3`: what each parameter changes, and `parameter_invisible` for the
eyebrow, eye and mouth parameters that change almost nothing, on procedural characters whose
truth is known (brows under a fringe; an intact character)."""

from __future__ import annotations

import html
import re

import pytest

from characters import cases, write_character
from thagen.cli import main


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("review_models")
    cases.fringed(3, folder / "fringed" / "character.pmx")
    write_character(3, folder / "intact" / "character.pmx")
    return folder


def review(models, tmp_path, *extra: str) -> str:
    out = tmp_path / "review.html"
    args = ["review", str(models), "-o", str(out), "--no-progress", "--workers", "1"]
    assert main([*args, "--schema", "tha3", *extra]) == 0
    return out.read_text()


def flagged_names(page: str) -> dict[str, list[str]]:
    """Model folder → the parameters its parameter_invisible flag names."""
    out = {}
    for card in page.split("<div class=card>")[1:]:
        model = re.search(r"<h3>.*/(\w+)/character\.pmx</h3>", card).group(1)
        found = re.search(r"<b>parameter_invisible</b>: [^:]*: ([^<]*)</li>", card)
        out[model] = html.unescape(found.group(1)).split(", ") if found else []
    return out


def test_brows_under_a_fringe_are_invisible_as_modelled(models, tmp_path, capsys):
    page = review(models, tmp_path, "--brows", "modelled")
    flagged = flagged_names(page)
    shapes = ("troubled", "angry", "lowered", "raised", "happy", "serious")
    eyebrows = {f"eyebrow_{s}_{side}" for s in shapes for side in ("left", "right")}
    assert set(flagged["fringed"]) == eyebrows
    assert flagged["intact"] == []
    assert page.index("Flagged models (1)") < page.index("fringed/character.pmx")
    assert "What each parameter changes" in page and "eyebrow_raised_left" in page
    assert "parameter_invisible" in capsys.readouterr().out


def test_over_the_hair_every_parameter_shows(models, tmp_path):
    """tha3's default (mix) is reviewed as the layer draws it: brows over the fringe, nothing
    invisible on either character."""
    flagged = flagged_names(review(models, tmp_path))
    assert flagged == {"fringed": [], "intact": []}
