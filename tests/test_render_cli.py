"""`thagen render` and `thagen preview` at the boundary: values checked before anything is drawn,
and the same face overrides as `inspect` and `generate` (sidecar and --overrides)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from characters import write_character
from mmd_loader import detect_face, load
from thagen.cli import main


@pytest.fixture()
def character(tmp_path) -> Path:
    return write_character(6, tmp_path / "c" / "character.pmx")


def _render(model: Path, out: Path, *extra: str) -> np.ndarray:
    assert main(["render", str(model), "--size", "64", "-o", str(out), *extra]) == 0
    return np.asarray(Image.open(out))


@pytest.mark.parametrize(
    "args",
    [
        ["--ambient", "nan"],
        ["--ambient", "-1"],
        ["--directional", "inf"],
        ["--pose", "head_y=nan"],
        ["--pose", "mouth=1e308"],
        ["--size", "0"],
    ],
)
def test_bad_values_are_one_line_and_draw_nothing(character, tmp_path, capsys, args):
    out = tmp_path / "out.png"
    assert main(["render", str(character), "-o", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert not out.exists()


def test_render_and_preview_honour_the_sidecar_as_generate_does(character, tmp_path):
    box = detect_face(load(character)).head_box
    plain = _render(character, tmp_path / "plain.png")
    taller = f"head_top: {box.top + 0.5 * (box.top - box.chin):.4f}\n"
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text(f"character.pmx:\n  {taller}", encoding="utf-8")
    by_table = _render(character, tmp_path / "table.png", "--overrides", str(overrides))
    character.with_name("character.pmx.thagen.yaml").write_text(taller, encoding="utf-8")
    by_sidecar = _render(character, tmp_path / "sidecar.png")
    assert not np.array_equal(plain, by_sidecar)  # the framing follows the taller box
    assert np.array_equal(by_sidecar, by_table)
    # A taller box frames the head smaller: fewer covered pixels.
    assert (by_sidecar[..., 3] > 0).sum() < (plain[..., 3] > 0).sum()
    sheets = []
    for name in ("with.png", "without.png"):
        assert main(["preview", str(character), "--size", "64", "-o", str(tmp_path / name)]) == 0
        sheets.append(np.asarray(Image.open(tmp_path / name)))
        character.with_name("character.pmx.thagen.yaml").unlink(missing_ok=True)
    assert not np.array_equal(*sheets)
