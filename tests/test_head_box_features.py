"""The head box on procedural characters with known truth for what issue 19 found wrong on real
models: ornaments clustered above a bun, buns of several sizes and places (apart from the hair
or welded to it), hats, caps, berets and hoods named or not, a face material named after its
ears, and a box that must not depend on which eye closure was chosen (also on every face model
in ../shared/mmd)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from characters import build_character, spec_for_seed, write_spec
from characters.outfit_styles import OutfitStyle
from characters.spec import CLUSTER_NAMES, HEADWEAR_NAMES
from mmd_loader import detect_face, load
from mmd_loader.face import UNCERTAIN_TOP
from mmd_loader.overrides import FaceOverrides
from mmd_loader.pmx_writer import PmxData, write_pmx
from poses.roles import EYE_ROLES
from tests.conftest import all_model_files, require_mmd_dir

SEEDS = (0, 3, 8)
TIGHT = 0.025  # of the true head height: ornaments and buns apart from the hair, named headwear
# The chin, which none of these features touches: the general accuracy (test_face_procedural).
# The skin's midline profile falls back where a rounded chin curves under, 0.5-3.9 % of the head
# above the truth on seeds 0-29 (measured; the top's errors there: -1.7 to -0.7 %).
CHIN = 0.05
WELDED = 0.06  # a bun welded to the hair cap can raise the top (measured worst: 5.3 %)
SAME_BOX = 0.01  # every closure choice: the same box within 1 % of its height


def detect(tmp_path: Path, name: str, **changes):
    """(spec, model, roles) of seed `changes["seed"]`'s character with `changes` applied."""
    seed = changes.pop("seed")
    # Without a collar (a choker or scarf up to the chin is not what these tests are about).
    changes.setdefault("outfit", OutfitStyle())
    spec = dataclasses.replace(spec_for_seed(seed), **changes)
    model = load(write_spec(spec, tmp_path / name / "c.pmx"))
    return spec, model, detect_face(model)


def errors(spec, roles) -> tuple[float, float]:
    """The box's top and chin errors as shares of the true head height."""
    height = spec.head_top_y - spec.chin_y
    box = roles.head_box
    return (box.top - spec.head_top_y) / height, (box.chin - spec.chin_y) / height


def highest(model, name_part: str | None = None) -> float:
    """The highest point of the model, or of its materials whose name contains `name_part`."""
    if name_part is None:
        return float(model.positions[:, 1].max())
    tops = []
    for material in model.materials:
        if name_part in material.name:
            lo = material.face_start
            tris = model.triangles[lo : lo + material.face_count]
            tops.append(model.positions[tris.ravel(), 1].max())
    return float(max(tops))


# ------------------------------------------------------------------ ornaments clustered on a bun


CLUSTERS = [(4, ""), (7, ""), (10, ""), *[(7, n) for n in CLUSTER_NAMES]]


@pytest.mark.numeric
@pytest.mark.parametrize(
    ("seed", "count", "name"), [(SEEDS[k % 3], *c) for k, c in enumerate(CLUSTERS)]
)
def test_ornaments_clustered_above_a_bun_are_not_the_crown(tmp_path, seed, count, name):
    """Hair sticks and flowers piled on a bun at the back of the crown, named 簪/かんざし/花/髪飾り
    or not: they rise well above the hair, and the top stays the hair's."""
    spec, model, roles = detect(
        tmp_path, "c", seed=seed, ornament="none", bun="back", bun_size=0.35,
        bun_ornaments=count, bun_ornament_name=name,
    )  # fmt: skip
    height = spec.head_top_y - spec.chin_y
    cluster = highest(model, name or "材質")
    assert cluster > spec.head_top_y + 0.15 * height  # the pile stands far above the hair
    top, chin = errors(spec, roles)
    assert abs(top) < TIGHT and abs(chin) < CHIN, roles.head_box.notes
    assert roles.head_box.uncertain_top is None and not roles.flags


# ------------------------------------------------------------------------------------------ buns


BUNS = [
    (place, size, joined)
    for joined in (False, True)
    for place in ("top", "back", "low", "side", "double")
    for size in (0.25, 0.35, 0.45)
]


@pytest.mark.numeric
@pytest.mark.parametrize(
    ("seed", "place", "size", "joined"), [(SEEDS[k % 3], *b) for k, b in enumerate(BUNS)]
)
def test_buns_of_every_size_and_place_leave_the_top_on_the_hair(
    tmp_path, seed, place, size, joined
):
    """Buns on the top, the back of the crown, the back of the head, one side, or a pair of
    odango; apart from the hair (their own mesh) or welded to its cap (the heads vary with the
    case). Before, the walk stopped on a welded bun's plateau (the hair rose 6 % above the box)
    or followed a pair of odango up (12 %)."""
    spec, _, roles = detect(
        tmp_path, "c", seed=seed, ornament="none", bun=place, bun_size=size, bun_joined=joined
    )
    top, chin = errors(spec, roles)
    assert abs(chin) < CHIN
    assert -TIGHT < top < (WELDED if joined else TIGHT), (top, roles.head_box.notes)
    assert not roles.flags, roles.flags


# --------------------------------------------------------------------------------- headwear


@pytest.mark.numeric
@pytest.mark.parametrize(
    ("kind", "name"), [(kind, name) for kind, names in HEADWEAR_NAMES.items() for name in names]
)
def test_named_headwear_is_left_out(tmp_path, kind, name):
    spec, _, roles = detect(
        tmp_path, "c", seed=5, ornament="none", headwear=kind, headwear_name=name
    )
    top, chin = errors(spec, roles)
    assert abs(top) < TIGHT and abs(chin) < CHIN, roles.head_box.notes
    assert any("excluded as ornaments" in n and name in n for n in roles.head_box.notes)
    assert not roles.flags


@pytest.mark.numeric
@pytest.mark.parametrize("seed", [0, 5, 8])
def test_a_hat_named_hat_is_left_out_beside_a_face_named_after_its_ears(tmp_path, seed):
    """Issue 19's model: a face material named for its ears (顔・耳) and a hat with a wide brim
    named as a hat. Each name is judged on its own: the face's own skin is no ornament, and the
    hat is a piece apart from the rest that does not hang down the head, however much of the
    head's footprint its brim covers. (All names at once were ignored before: seed 0's box then
    lost 13 % of the head.)"""
    spec, model, roles = detect(
        tmp_path, "c", seed=seed, ornament="none", headwear="hat", headwear_name="hat",
        skin_name="顔・耳",
    )  # fmt: skip
    assert highest(model, "hat") > spec.head_top_y + 0.1 * (spec.head_top_y - spec.chin_y)
    top, chin = errors(spec, roles)
    assert abs(top) < TIGHT and abs(chin) < CHIN, roles.head_box.notes
    notes = " ".join(roles.head_box.notes)
    assert "material hat" in notes and "顔・耳" not in notes and "ignored" not in notes


@pytest.mark.numeric
@pytest.mark.parametrize("kind", ["hat", "beret", "hood"])
@pytest.mark.parametrize("seed", [0, 5])
def test_an_unnamed_hat_is_the_known_limit_and_is_flagged(tmp_path, kind, seed):
    """Unnamed, a hat, a beret or a hood reads as hair (the known limit: geometry cannot tell it
    from a layer of hair), but the box says so: `head_top_uncertain`, whose inner dome is the
    hair's true top."""
    spec, _, roles = detect(tmp_path, "c", seed=seed, ornament="none", headwear=kind)
    height = spec.head_top_y - spec.chin_y
    top, _ = errors(spec, roles)
    assert top > UNCERTAIN_TOP  # the top is on the headwear ...
    flags = [f for f in roles.flags if f.code == "head_top_uncertain"]
    assert len(flags) == 1 and flags[0].value >= UNCERTAIN_TOP  # ... and flagged,
    inner = roles.head_box.uncertain_top
    assert abs(inner - spec.head_top_y) < TIGHT * height  # with the hair's top under it


@pytest.mark.numeric
def test_an_unnamed_cap_hugging_the_hair_stays_within_the_box_accuracy(tmp_path):
    for seed in SEEDS:
        spec, _, roles = detect(tmp_path, f"{seed}", seed=seed, ornament="none", headwear="cap")
        top, chin = errors(spec, roles)
        assert abs(top) < 0.04 and abs(chin) < CHIN


@pytest.mark.numeric
def test_an_override_of_the_top_clears_the_uncertainty(tmp_path):
    _, model, roles = detect(tmp_path, "c", seed=5, ornament="none", headwear="hat")
    assert [f.code for f in roles.flags] == ["head_top_uncertain"]
    fixed = detect_face(model, FaceOverrides(head_top=roles.head_box.uncertain_top))
    assert fixed.head_box.uncertain_top is None and not fixed.flags


@pytest.mark.numeric
def test_an_atlas_hair_named_after_its_ribbon_is_not_left_out(tmp_path):
    """The exception that stays: over a face that is a mask (no skull behind it, as on many real
    models), the hair material named after its ribbon would remove most of the head: the name
    is ignored and the hair kept."""
    spec = spec_for_seed(3)
    data, _ = build_character(spec, "t")
    skin = data.materials[0].face_count
    tris = data.triangles[:skin]
    centre = data.positions[tris].mean(axis=1)
    back = (centre[:, 2] > 0) & (centre[:, 1] > spec.eye_y)  # the file's +z is behind the face
    triangles = np.concatenate([tris[~back], data.triangles[skin:]])
    materials = [dataclasses.replace(data.materials[0], face_count=int((~back).sum()))]
    materials += [dataclasses.replace(m, name="髪リボン") if m.name == "髪" else m
                  for m in data.materials[1:]]  # fmt: skip
    masked = PmxData(**{**data.__dict__, "triangles": triangles, "materials": materials})
    model = load(write_pmx(tmp_path / "c.pmx", masked))
    roles = detect_face(model)
    top, _ = errors(spec, roles)
    assert abs(top) < TIGHT, roles.head_box.notes
    assert any("ignored" in n and "髪リボン" in n for n in roles.head_box.notes)


# ----------------------------------------------------------------------- the closure choice


def _choices(roles, role: str) -> list[str]:
    """Every closure of an eye, as an overrides value."""
    side = "left" if role == "left_eye" else "right"
    return [c.morph + (f"@{side}" if c.how == "split" else "") for c in roles.eyes[role].candidates]


def _same_box_for_every_choice(model) -> None:
    roles = detect_face(model)
    assert roles.usable, roles.problems
    base, height = roles.head_box, roles.head_box.height
    tried = 0
    for role in EYE_ROLES:
        for choice in _choices(roles, role):
            other = roles.morphs[EYE_ROLES[1 - EYE_ROLES.index(role)]]
            forced = FaceOverrides(
                **{role: choice, EYE_ROLES[1 - EYE_ROLES.index(role)]: _bound(other)}
            )
            box = detect_face(model, forced).head_box
            assert abs(box.top - base.top) <= SAME_BOX * height, (role, choice)
            assert abs(box.chin - base.chin) <= SAME_BOX * height, (role, choice)
            tried += 1
    assert tried >= 2


def _bound(morph) -> str:
    side = "left" if morph.role == "left_eye" else "right"
    return morph.morph + (f"@{side}" if morph.how == "split" else "")


@pytest.mark.numeric
@pytest.mark.parametrize("path", all_model_files(), ids=lambda p: p.name)
def test_every_closure_choice_gives_the_same_box_on_real_models(path):
    require_mmd_dir()
    model = load(path)
    if not detect_face(model).usable:
        pytest.skip(f"{path.name} has no face to choose closures of")
    _same_box_for_every_choice(model)


@pytest.mark.numeric
@pytest.mark.parametrize("seed", SEEDS)
def test_every_closure_choice_gives_the_same_box_when_the_smile_lifts_the_cheek(tmp_path, seed):
    """The smile winks lift the cheek (as the issue's model's did), the neutral ones only close
    the lid: choosing either, or a model left with only the smiles, gives the same box."""
    spec = dataclasses.replace(spec_for_seed(seed), smile_cheek=1.2)
    model = load(write_spec(spec, tmp_path / "c.pmx"))
    _same_box_for_every_choice(model)
    data, _ = build_character(spec, "t")
    neutral = {"まばたき"} | {spec.wink_names(eye)[0] for eye in ("left", "right")}
    smiles = PmxData(
        **{**data.__dict__, "morphs": [m for m in data.morphs if m.name not in neutral]}
    )
    only = detect_face(load(write_pmx(tmp_path / "smiles.pmx", smiles)))
    full = detect_face(model).head_box
    assert [f.code for f in only.flags].count("smile_closure") == 2
    assert abs(only.head_box.top - full.top) <= SAME_BOX * full.height
    assert abs(only.head_box.chin - full.chin) <= SAME_BOX * full.height
    # the smile does lift the cheek, well below the eye, which the neutral closure leaves
    smile = next(m for m in data.morphs if m.name == spec.wink_names("left")[1])
    below = data.positions[smile.indices, 1] < spec.eye_y - 2 * spec.eye_half_height
    assert (smile.offsets[below, 1] > 0.3 * spec.eye_half_height).any()
