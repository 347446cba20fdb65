"""Face detection on procedural characters, whose true head top, chin and wink sides are known."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmd_loader import detect_face, load
from mmd_loader.face import morph_centre
from mmd_loader.procedural import spec_for_seed, write_character

SEEDS = range(12)


@pytest.fixture(scope="module")
def characters(tmp_path_factory) -> dict:
    folder = Path(tmp_path_factory.mktemp("characters"))
    out = {}
    for seed in SEEDS:
        model = load(write_character(seed, folder / f"c{seed}.pmx"))
        out[seed] = (spec_for_seed(seed), model, detect_face(model))
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_roles_and_sides(characters, seed):
    spec, model, roles = characters[seed]
    assert roles.usable, roles.problems
    for role, sign in (("left_eye", 1), ("right_eye", -1)):
        bound = roles.morphs[role]
        assert sign * morph_centre(model, bound)[0] > 0  # +x is the character's own left
        if bound.how == "geometry" and bound.morph == "ウィンク":
            # The bare name closes whichever eye the seed chose: geometry, not the name, decided.
            assert spec.wink_side == ("left" if role == "left_eye" else "right")
    assert roles.morphs["mouth"].morph == "あ"


@pytest.mark.parametrize("seed", SEEDS)
def test_head_box_matches_the_true_head(characters, seed):
    spec, _, roles = characters[seed]
    height = spec.head_top_y - spec.chin_y
    box = roles.head_box
    assert abs(box.chin - spec.chin_y) < 0.06 * height
    # Ahoge and twin tails must not stretch the box; spikes across the crown may, a little.
    tolerance = 0.2 if spec.spikes else 0.05
    assert abs(box.top - spec.head_top_y) < tolerance * height
