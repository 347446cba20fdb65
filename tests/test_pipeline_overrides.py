"""Face overrides reach the catalog and the rendered framing."""

from __future__ import annotations

import io
import tarfile

import numpy as np
from PIL import Image

from characters import write_character
from thagen.cli import main


def _rest_alpha(dataset) -> np.ndarray:
    with tarfile.open(next(dataset.glob("*.tar"))) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".rest.png"))
        return np.asarray(Image.open(io.BytesIO(tar.extractfile(member).read())))[..., 3]


def test_overrides_decide_usability_and_framing(tmp_path, capsys):
    models = tmp_path / "models"
    write_character(1, models / "a.pmx")
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text("a.pmx:\n  mouth: 存在しない\n", encoding="utf-8")
    assert (
        main(
            [
                "scan",
                str(models),
                "-o",
                str(tmp_path / "c.parquet"),
                "--overrides",
                str(overrides),
                "--jobs",
                "1",
            ]
        )
        == 0
    )
    import pandas as pd

    row = pd.read_parquet(tmp_path / "c.parquet").iloc[0]
    assert not row["usable"]
    assert any("存在しない" in reason for reason in row["reasons"])

    # A head box twice as tall (chin moved down) halves the character's size in the image: its
    # opaque area shrinks (about 4x for the head, less overall: the procedural upper body, arms
    # and torso reaching below the frame, fills more of the smaller frame).
    common = ["--examples", "1", "--size", "64", "--workers", "1", "--no-progress"]
    common += ["--train", "1", "--val", "0", "--test", "0"]
    assert main(["generate", "--models", str(models), "-o", str(tmp_path / "plain"), *common]) == 0
    from mmd_loader import detect_face, load

    box = detect_face(load(models / "a.pmx")).head_box
    overrides.write_text(f"a.pmx:\n  chin: {box.chin - box.height}\n", encoding="utf-8")
    args = ["generate", "--models", str(models), "-o", str(tmp_path / "tall"), *common]
    assert main([*args, "--overrides", str(overrides)]) == 0
    plain, tall = _rest_alpha(tmp_path / "plain"), _rest_alpha(tmp_path / "tall")
    assert 0.2 < (tall > 0).sum() / (plain > 0).sum() < 0.7


def test_absurd_overrides_are_refused_in_one_line(tmp_path, capsys):
    """An overrides head box of ±1e300, NaN, zero height or upside down is refused naming the
    field (exit 2), instead of a "usable" model rendered transparent."""
    models = tmp_path / "models"
    write_character(1, models / "a.pmx")
    overrides = tmp_path / "overrides.yaml"
    catalog = tmp_path / "c.parquet"
    scan = ["scan", str(models), "-o", str(catalog), "--jobs", "1", "--overrides", str(overrides)]
    for fields, field in [
        ("head_top: 1e300", "head_top"),
        ("chin: -1e300", "chin"),
        ("chin: .nan", "chin"),
        ("head_top: 10\n  chin: 10", "head_top 10 must be above chin 10"),
        ("head_top: 5\n  chin: 10", "head_top 5 must be above chin 10"),
    ]:
        overrides.write_text(f"a.pmx:\n  {fields}\n", encoding="utf-8")
        assert main(scan) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(overrides) in err[0] and field in err[0], err
        assert "['a.pmx']" in err[0]
    assert not catalog.exists()


def test_a_one_sided_override_that_inverts_the_box_is_a_problem_of_the_model(tmp_path, capsys):
    import pandas as pd

    from mmd_loader import detect_face, load

    models = tmp_path / "models"
    write_character(1, models / "a.pmx")
    box = detect_face(load(models / "a.pmx")).head_box
    (models / "a.pmx.thagen.yaml").write_text(f"chin: {box.top + 1}\n", encoding="utf-8")
    catalog = tmp_path / "c.parquet"
    assert main(["scan", str(models), "-o", str(catalog), "--jobs", "1"]) == 0
    row = pd.read_parquet(catalog).iloc[0]
    assert not row["usable"]
    assert any(r.startswith(f"override chin {box.top + 1:g} makes the head box upside down")
               for r in row["reasons"])  # fmt: skip


def test_a_bad_sidecar_costs_its_model_not_the_scan(tmp_path):
    from characters import write_character
    from pipeline.catalog import scan

    good = write_character(0, tmp_path / "good" / "character.pmx")
    bad = write_character(1, tmp_path / "bad" / "character.pmx")
    bad.with_name(bad.name + ".thagen.yaml").write_text("head_top: [1, 2]\n", encoding="utf-8")
    table = scan([tmp_path], jobs=1, progress=False).set_index("path")
    assert table.loc[str(good), "usable"]
    assert not table.loc[str(bad), "usable"] and table.loc[str(bad), "stage"] == "overrides"
    assert "head_top" in table.loc[str(bad), "reasons"][0]
