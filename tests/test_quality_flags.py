"""Quality flags from a model's own renders, on procedural characters broken in known ways and
on every face model in ../shared/mmd."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from characters import build_character, save_png, spec_for_seed
from mmd_loader import detect_face, load
from mmd_loader.pmx_writer import PmxMaterial, write_pmx
from pipeline.catalog import model_flags
from tests.conftest import all_model_files, require_mmd_dir

SEED = 7
HEAD_BONE = 3  # 頭 in procedural characters


def write_variant(folder: Path, change) -> Path:
    """Procedural character SEED with `change(data, images)` applied, written to `folder`."""
    spec = spec_for_seed(SEED)
    data, images = build_character(spec, "tex")
    change(data, images)
    (folder / "tex").mkdir(parents=True, exist_ok=True)
    for name, pixels in images.items():
        save_png(folder / "tex" / name, pixels)
    return write_pmx(folder / "character.pmx", data)


def codes(path: Path) -> dict[str, list]:
    model = load(path)
    flags = model_flags(model, detect_face(model))
    out: dict[str, list] = {}
    for f in flags:
        out.setdefault(f["code"], []).append(f["role"])
    return out


def _eyepatch(data, images) -> None:
    """An opaque quad over the character's left eye (+x), drawn last, weighted to the head."""
    spec = spec_for_seed(SEED)
    x, y = spec.eye_x, spec.eye_y
    z = float(data.positions[:, 2].min()) - 0.05  # the file is MMD's frame: the face looks to -z
    w, h = 0.55 * spec.eye_x, 0.5 * spec.eye_x
    quad = np.array([[x - w, y - h, z], [x + w, y - h, z], [x + w, y + h, z], [x - w, y + h, z]])
    first = len(data.positions)
    data.positions = np.concatenate([data.positions, quad.astype(np.float32)])
    data.normals = np.concatenate([data.normals, np.tile([[0, 0, 1]], (4, 1)).astype(np.float32)])
    data.uvs = np.concatenate([data.uvs, np.zeros((4, 2), np.float32)])
    bones = np.zeros((4, 4), np.int32)
    bones[:, 0] = HEAD_BONE
    weights = np.zeros((4, 4), np.float32)
    weights[:, 0] = 1.0
    data.bone_indices = np.concatenate([data.bone_indices, bones])
    data.bone_weights = np.concatenate([data.bone_weights, weights])
    data.deform = np.concatenate([data.deform, np.zeros(4, np.uint8)])
    # Both windings, so the patch shows whichever way the renderer culls.
    tris = np.array([[0, 1, 2], [0, 2, 3], [0, 2, 1], [0, 3, 2]]) + first
    data.triangles = np.concatenate([data.triangles, tris.astype(np.int32)])
    data.materials.append(PmxMaterial("眼帯", 4, diffuse=(0.1, 0.1, 0.1, 1.0)))


def _tiny_mouth(data, images) -> None:
    for morph in data.morphs:
        if morph.name == "あ":
            morph.offsets = morph.offsets * 0.01


def _missing_face_texture(data, images) -> None:
    data.textures[0] = "tex\\gone.png"


def _black_face(data, images) -> None:
    images["face.png"][..., :3] = 0


def _see_through_skin(data, images) -> None:
    skin = data.materials[0]
    data.materials[0] = dataclasses.replace(skin, diffuse=(*skin.diffuse[:3], 0.5))


@pytest.mark.parametrize(
    ("change", "code", "role"),
    [
        (_eyepatch, "eye_closure_invisible", "left_eye"),
        (_tiny_mouth, "mouth_barely_opens", "mouth"),
        (_missing_face_texture, "missing_texture_in_head", None),
        (_black_face, "dark_face", None),
        (_see_through_skin, "semi_transparent_head", None),
    ],
)
def test_each_defect_raises_its_flag_and_no_other(tmp_path, change, code, role):
    found = codes(write_variant(tmp_path, change))
    assert found.get(code) == [role], found
    assert set(found) == {code}, found


def test_an_intact_character_has_no_flag(tmp_path):
    assert codes(write_variant(tmp_path, lambda data, images: None)) == {}


@pytest.mark.parametrize("path", [p for p in all_model_files()], ids=lambda p: p.name)
def test_real_models_flags_are_known(path):
    """The flags on ../shared/mmd, as checked by looking at their renders: none of the face
    models has a hidden eye, a stuck mouth, a black or see-through face, grey plates on its face
    (with the face shading) or an expression overlay drawn at rest."""
    require_mmd_dir()
    model = load(path)
    roles = detect_face(model)
    render_codes = {"eye_closure_invisible", "mouth_barely_opens", "dark_face"}
    render_codes |= {"face_shading_artifacts", "overlay_visible"}
    found = {f["code"] for f in model_flags(model, roles)}
    assert not (found & (render_codes | {"semi_transparent_head", "render_failed"})), found


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Path:
    """Two characters: an intact one and one with a patch over its left eye."""
    root = tmp_path_factory.mktemp("pair")
    write_variant(root / "intact", lambda data, images: None)
    write_variant(root / "patched", _eyepatch)
    return root


def test_generate_leaves_out_excluded_flags_and_the_report_says_so(pair, tmp_path):
    import json

    import pandas as pd

    from thagen.cli import main

    out = tmp_path / "dataset"
    args = ["generate", "--models", str(pair), "-o", str(out), "--examples", "2", "--size", "48"]
    args += ["--no-progress", "--workers", "1", "--exclude-flags", "eye_closure_invisible"]
    assert main(args) == 0
    catalog = pd.read_parquet(out / "catalog.parquet").set_index("path")
    patched = catalog.loc[str(pair / "patched" / "character.pmx"), "character"]
    intact = catalog.loc[str(pair / "intact" / "character.pmx"), "character"]
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert set(manifest["character"]) == {intact} and patched not in set(manifest["character"])
    info = json.loads((out / "dataset.json").read_text())
    assert info["config"]["exclude_flags"] == ["eye_closure_invisible"]
    assert main(["report", str(out), "-o", str(tmp_path / "report.html")]) == 0
    page = (tmp_path / "report.html").read_text()
    assert "patched/character.pmx</td><td>left out" in page
    assert main([*args[:-1], "no_such_flag"]) == 2


def test_review_lists_flagged_models_first_with_sheet_and_overrides_line(pair, tmp_path, capsys):
    from thagen.cli import main

    out = tmp_path / "review.html"
    assert main(["review", str(pair), "-o", str(out), "--no-progress", "--workers", "1"]) == 0
    page = out.read_text()
    flagged = page.index("Flagged models (1)")
    assert flagged < page.index("patched/character.pmx") < page.index("Models without flags (1)")
    assert page.index("Models without flags") < page.index("intact/character.pmx")
    assert page.count('src="data:image/png;base64,') == 2
    import html

    line = f'"{pair / "patched" / "character.pmx"}": {{left_eye: "'
    assert html.escape(line) in page and "head_top: " in page
    printed = capsys.readouterr().out
    assert "eye_closure_invisible" in printed and "50%" in printed


def test_the_overrides_line_is_a_valid_overrides_entry_for_that_model_alone(pair, tmp_path):
    import pandas as pd

    from mmd_loader.overrides import load_overrides, overrides_for
    from pipeline.catalog import scan
    from pipeline.review import overrides_line

    catalog = scan([pair], jobs=1, progress=False)
    lines = [overrides_line(row) for row in catalog.to_dict("records")]
    (tmp_path / "overrides.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    table = load_overrides(tmp_path / "overrides.yaml")
    for row in catalog.itertuples():
        found = overrides_for(Path(row.path), table)
        assert found is not None and found.head_top == pytest.approx(row.head_top, abs=1e-4)
        assert found.chin == pytest.approx(row.head_chin, abs=1e-4)
        assert found.mouth == "あ" and found.head == "頭"
    assert isinstance(catalog, pd.DataFrame)


def test_inspect_json_lists_the_render_flags(pair, capsys):
    import json

    from thagen.cli import main

    assert main(["inspect", str(pair / "patched" / "character.pmx"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(f["code"], f["role"]) for f in report["flags"]] == [
        ("eye_closure_invisible", "left_eye")
    ]
    assert set(report["flags"][0]) == {"code", "role", "value", "message"}
    assert main(["inspect", str(pair / "patched" / "character.pmx"), "--json", "--no-render"]) == 0
    assert json.loads(capsys.readouterr().out)["flags"] == []
