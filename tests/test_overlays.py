"""Expression overlays shown at rest (`mmd_loader.overlays`): a PMX hides them (alpha 0, raised by
a material morph), its PMD-like variant beside it draws them in every pose; thagen hides them
by the sibling's evidence, or by name when they lie on the face, and flags `overlay_visible`
for one named as an overlay elsewhere. Procedural characters (characters.cases) are the truth;
../shared/mmd must render as before (its overlays are tucked behind the face, PMD's way)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from characters import cases
from characters.overlays import OVERLAY_NAMES, SHOWN_ALPHA
from characters.spec import OVERLAY_KINDS
from mmd_loader import detect_face, load
from mmd_loader.model import MorphKind
from mmd_loader.overlays import expression_overlays, is_overlay_name
from pipeline.catalog import model_flags
from render import Pose, Renderer, RenderSettings
from tests.test_render import loaded, model_id, usable_models

SEED = 5


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    return cases.overlay_pair(SEED, tmp_path_factory.mktemp("pair"))


def rest_image(path: Path, hide: bool = True) -> np.ndarray:
    model = load(path)
    with Renderer(RenderSettings(size=128, threads=0, hide_overlays=hide)) as renderer:
        renderer.set_model(model, detect_face(model))
        return renderer.render(Pose())


def overlay_materials(model) -> dict[str, int]:
    """Overlay kind → material index, by the materials' English names (the truth's)."""
    names = {m.english_name: i for i, m in enumerate(model.materials)}
    return {kind: names[kind] for kind in OVERLAY_KINDS if kind in names}


def test_the_pmx_hides_its_overlays_and_raises_them_by_material_morphs(pair):
    """The writer's material morphs read back: one per overlay, adding alpha to its material,
    which is hidden at rest; nothing of them is drawn, hidden or not by thagen."""
    pmx, _ = pair
    model = load(pmx)
    materials = overlay_materials(model)
    assert set(materials) == set(OVERLAY_KINDS)
    morphs = {m.name: m for m in model.morphs if m.kind == MorphKind.MATERIAL}
    for kind, index in materials.items():
        assert model.materials[index].diffuse[3] == 0.0
        (entry,) = morphs[OVERLAY_NAMES[kind]].material_offsets
        assert (entry.material, entry.operation) == (index, 1)
        assert entry.diffuse[3] == pytest.approx(SHOWN_ALPHA)
    assert expression_overlays(model, detect_face(model)).hidden == frozenset()
    assert np.array_equal(rest_image(pmx), rest_image(pmx, hide=False))


def test_the_pmd_like_variant_beside_it_is_drawn_as_the_pmx_at_rest(pair):
    """The variant draws its neutrally named overlays at rest; its sibling PMX says they are
    hidden there, so thagen hides every one (matched by index and triangle count) and draws
    the variant's rest image as the PMX's, byte for byte."""
    pmx, variant = pair
    model = load(variant)
    found = expression_overlays(model, detect_face(model))
    truth = {i for i, m in enumerate(model.materials) if m.diffuse[3] == SHOWN_ALPHA}
    assert len(truth) == len(OVERLAY_KINDS) and found.hidden == truth
    assert all("hidden at rest in character.pmx" in why for _, why in found.why)
    shown = rest_image(variant, hide=False)
    assert not np.array_equal(shown, rest_image(pmx))  # the overlays show without this
    assert np.array_equal(rest_image(variant), rest_image(pmx))
    assert not {f["code"] for f in model_flags(model, detect_face(model))}


def test_named_overlays_alone_are_hidden_on_the_face_and_flagged_elsewhere(tmp_path):
    """Without a sibling: the overlays named as such and lying on the face (pale, anger,
    blush, tears) are hidden; the sweat drop beside the head is named as one but is not on the
    face: shown, and flagged overlay_visible (and nothing else)."""
    path = cases.overlays_shown(SEED, tmp_path / "alone" / "character.pmx", named=True)
    model = load(path)
    materials = overlay_materials(model)
    found = expression_overlays(model, detect_face(model))
    assert found.hidden == {materials[k] for k in ("pale", "anger", "blush", "tears")}
    assert found.suspects == {materials["sweat"]}
    flags = model_flags(model, detect_face(model))
    assert [f["code"] for f in flags] == ["overlay_visible"], flags
    assert "汗" in flags[0]["message"] and flags[0]["value"] > 0.05


def test_unnamed_overlays_without_a_sibling_read_as_part_of_the_design(tmp_path):
    """The documented limit: a layer on the face with a neutral name and no sibling to say
    otherwise is drawn (Lat式ミク's shade under its bangs is such a layer, and is meant)."""
    path = cases.overlays_shown(SEED, tmp_path / "plain" / "character.pmx", named=False)
    model = load(path)
    found = expression_overlays(model, detect_face(model))
    assert found.hidden == found.suspects == frozenset()
    assert not {f["code"] for f in model_flags(model, detect_face(model))}


@pytest.mark.parametrize(
    ("name", "overlay"),
    [
        ("青ざめ", True),
        ("怒りマーク", True),
        ("照れ", True),
        ("tear_L", True),
        ("ase", True),
        ("Sweat drop", True),
        ("base", False),
        ("phase2", False),
        ("tearoff", False),
        ("怒り", False),  # the angry brow morph's name, not a mark
        ("髪", False),
    ],
)
def test_overlay_names(name, overlay):
    assert is_overlay_name(name) is overlay


@pytest.mark.parametrize("path", usable_models(), ids=model_id)
def test_real_models_hide_nothing(path):
    """On ../shared/mmd the overlays (赤面, 涙, tear, 照れ's blush) hide behind the face at rest
    and are pulled out by vertex morphs, PMD's way, or by material morphs of their own: thagen
    hides nothing and flags nothing."""
    model, roles = loaded(path)
    found = expression_overlays(model, roles)
    assert found.hidden == found.suspects == frozenset()
