"""Eyebrows over the hair (`render.brow_layer`, `--brows`): brows under a procedural fringe and
every tha3 eyebrow parameter of every face model in ../shared/mmd, as modelled and over the hair;
drawing over the rest image stays byte-identical to a full render; the brow mode is in the run's
config and each example's record."""

from __future__ import annotations

import functools
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from characters import cases
from mmd_loader import detect_face, load
from pipeline.visibility import MIN_VISIBLE
from poses import load_schema
from render import Pose, Renderer, RenderSettings
from tests.test_render import loaded, model_id, usable_models

SCHEMA = load_schema("tha3")
FRAMING = SCHEMA.framing
CHANGED = 8
# Every eyebrow parameter changes at least this share of the head box's pixels at value 1 with
# the brows over the hair (512², THA3's framing). Measured on ../shared/mmd: 0.25 % (miku4.3's
# thin brows) to 0.71 %; fully exposed brows drawn with no depth test at all reach 0.3-1.5 %:
# a brow morph moves a brow a few pixels, so 1 % of the box is beyond most models' geometry.
MIN_OVER = 0.002
EYEBROWS = [p.name for p in SCHEMA.parameters if p.group == "eyebrow"]


@pytest.fixture(scope="module")
def renderer():
    settings = RenderSettings(
        size=FRAMING.size,
        head_fraction=FRAMING.head_fraction,
        head_center=FRAMING.head_center,
        threads=0,
    )
    with Renderer(settings) as r:
        yield r


@functools.cache
def fringed(folder: str) -> Path:
    return cases.fringed(3, Path(folder) / "fringed" / "character.pmx")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("brows"))


def box_pixels(renderer, roles) -> float:
    from pipeline.visibility import head_box_pixels

    return head_box_pixels(renderer, roles)


def changes(renderer, binding, brows: str) -> dict[str, float]:
    """Each bound eyebrow parameter at 1: the changed pixels (drawn over the rest image, which
    must give the bytes of a full render), as a share of the head box."""
    rest = renderer.render(binding.pose({}), brows=brows)
    out = {}
    for name in EYEBROWS:
        if not binding.bound(name):
            continue
        pose = binding.pose({name: 1.0})
        image = renderer.render(pose, rest=rest, brows=brows)
        assert np.array_equal(image, renderer.render(pose, brows=brows)), name
        changed = (np.abs(image.astype(int) - rest.astype(int)).max(axis=2) > CHANGED).sum()
        out[name] = float(changed) / box_pixels(renderer, renderer.scene.roles)
    return out


def test_brows_under_a_fringe_show_only_over_the_hair(renderer, folder):
    """The procedural fringe covers the brows in every shape: as modelled, every eyebrow
    parameter is invisible by parameter_invisible's measure (a pixel at most slips between two
    strand tips); over the hair, every one changes at least MIN_OVER of the box,
    and the rest image shows the brows where the fringe is (pixels above the eyes that change
    colour: the brows' own, darker or not than the hair's)."""
    model = load(fringed(folder))
    roles = detect_face(model)
    renderer.set_model(model, roles, SCHEMA)
    binding = renderer.bind(SCHEMA)
    modelled = changes(renderer, binding, "modelled")
    over = changes(renderer, binding, "over")
    assert len(modelled) == len(EYEBROWS) == 12
    assert max(modelled.values()) < MIN_VISIBLE, modelled
    assert min(over.values()) >= MIN_OVER, over
    rest = [renderer.render(Pose(), brows=b).astype(int) for b in ("modelled", "over")]
    shown = np.abs(rest[0][..., :3] - rest[1][..., :3]).max(-1) > CHANGED
    assert shown.sum() > 100


@pytest.mark.parametrize("path", usable_models(), ids=model_id)
def test_every_eyebrow_parameter_shows_over_the_hair_on_real_models(renderer, path):
    """Every tha3 eyebrow parameter a real face model has changes at least MIN_OVER of the head
    box with the brows over the hair, and never less than as modelled."""
    model, roles = loaded(path)
    renderer.set_model(model, roles, SCHEMA)
    binding = renderer.bind(SCHEMA)
    over = changes(renderer, binding, "over")
    assert len(over) >= 8, over
    weakest = min(over, key=over.get)
    assert over[weakest] >= MIN_OVER, (weakest, over[weakest])
    if not renderer.scene.brows.found:  # brows painted on the skin (goblin): nothing to lift
        assert np.array_equal(
            renderer.render(Pose(), brows="over"), renderer.render(Pose(), brows="modelled")
        )


def test_brows_are_found_on_every_real_model_with_brow_geometry():
    """Brow islands (moved by brow morphs, not lids, above the eyes) on every face model but
    goblin, whose brows are painted on its skin; never an eye's white (MEIKO's びっくり眉 widens
    one)."""
    from mmd_loader.brows import find_brows

    found = {}
    for path in usable_models():
        model, roles = loaded(path)
        brows = find_brows(model, roles)
        found[path.name] = brows
        if brows.found:
            eye_top = max(
                float(model.positions[role.indices, 1].max())
                for name, role in roles.morphs.items()
                if name in ("left_eye", "right_eye")
            )
            centre = model.positions[model.triangles[brows.triangles]].mean(axis=(0, 1))
            assert centre[1] < eye_top + roles.head_box.height, path.name
    missing = sorted(name for name, b in found.items() if not b.found)
    assert missing == ["goblin_v02.pmx"], missing


def test_over_the_rest_image_with_brows_over_equals_full_renders(renderer, folder):
    """The region path (render.regions) with the brow layer: random tha3 poses of the fringed
    character and a real model, expression and posed, the same bytes as full renders."""
    from poses.sampling import sample_pose

    rng = np.random.default_rng(3)
    models = [fringed(folder)]
    models += [p for p in usable_models() if p.name == "Rin_Kagamine.pmd"]
    for path in models:
        model = load(path)
        renderer.set_model(model, detect_face(model), SCHEMA)
        binding = renderer.bind(SCHEMA)
        rest = renderer.render(Pose(), brows="over")
        for _ in range(6):
            values = sample_pose(SCHEMA, rng)
            for pose in (binding.expression(values), binding.pose(values)):
                full = renderer.render(pose, brows="over")
                assert np.array_equal(renderer.render(pose, rest=rest, brows="over"), full)


def test_the_brow_choice_is_the_schema_s_by_default_and_in_the_config():
    from pipeline.config import GenerateConfig

    assert GenerateConfig(schema="tha3").brows == "mix"
    assert GenerateConfig(schema="tha2").brows == "mix"
    assert GenerateConfig().brows == "modelled"
    config = GenerateConfig(schema="tha3", brows="over")
    assert GenerateConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="brows"):
        GenerateConfig(brows="under")


def test_mix_draws_the_mode_per_example_and_records_it(tmp_path):
    """generate --schema tha3 (mix by default) on the fringed character: both modes drawn, each
    example's JSON says which, and its rest image is that mode's (brows over the fringe or not)."""
    from thagen.cli import main

    folder = tmp_path / "models"
    cases.fringed(3, folder / "fringed" / "character.pmx")
    out = tmp_path / "data"
    args = ["generate", "--models", str(folder), "-o", str(out), "--schema", "tha3"]
    args += ["--examples", "8", "--size", "128", "--workers", "1", "--no-progress"]
    args += ["--train", "1", "--val", "0", "--test", "0"]
    assert main(args) == 0
    info = json.loads((out / "dataset.json").read_text())
    assert info["config"]["brows"] == "mix"
    rests: dict[str, set[bytes]] = {"modelled": set(), "over": set()}
    for shard in sorted(out.glob("*.tar")):
        with tarfile.open(shard) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        for name, data in members.items():
            if name.endswith(".json"):
                record = json.loads(data)
                rest = members[name.replace(".json", ".rest.png")]
                rests[record["brows"]].add(rest)
    assert all(len(r) == 1 for r in rests.values()), {k: len(v) for k, v in rests.items()}
    modelled, over = (
        np.asarray(Image.open(io.BytesIO(next(iter(rests[k]))))) for k in ("modelled", "over")
    )
    assert (modelled != over).any()
    import pandas as pd

    manifest = pd.read_parquet(out / "manifest.parquet")
    assert set(manifest["brows"]) == {"modelled", "over"}


def test_render_and_preview_take_brows(tmp_path, folder):
    from thagen.cli import main

    path = fringed(folder)
    images = []
    for brows in ("modelled", "over"):
        out = tmp_path / f"{brows}.png"
        args = ["render", str(path), "--schema", "tha3", "--size", "128", "--brows", brows]
        assert main([*args, "--pose", "eyebrow_raised_left=1", "-o", str(out)]) == 0
        images.append(np.asarray(Image.open(out)))
    assert (images[0] != images[1]).any()
    sheet = tmp_path / "sheet.png"
    args = ["preview", str(path), "--schema", "tha3", "--size", "96", "--brows", "mix"]
    assert main([*args, "-o", str(sheet)]) == 0 and sheet.stat().st_size > 0
