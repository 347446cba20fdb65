"""Face overrides reach the catalog and the rendered framing."""

from __future__ import annotations

import io
import tarfile

import numpy as np
from PIL import Image

from mmd_loader.procedural import write_character
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
