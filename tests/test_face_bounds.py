"""Hostile and mistaken input to face and head-box detection: every search is bounded in steps,
and a model beyond a bound gets a problem naming the stage, never a hang (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest

import mmd_loader.closures as closures
import mmd_loader.head_box as head_box
import mmd_loader.head_top as head_top
from characters import build_character, spec_for_seed, write_character
from mmd_loader import detect_face, load
from mmd_loader.overrides import FaceOverrides
from mmd_loader.pmx_writer import PmxData, PmxVertexMorph, write_pmx

SEED = 7


@pytest.fixture
def steps(monkeypatch) -> dict[str, int]:
    """Counts of the bounded searches' inner steps: top-view rows rasterised, lid columns cut."""
    counts = {"rows": 0, "lid columns": 0}
    footprint, cuts = head_top.footprint, closures._lowest_cuts

    def counted_footprint(*args):
        counts["rows"] += 1
        return footprint(*args)

    def counted_cuts(corners, columns):
        counts["lid columns"] += len(columns)
        return cuts(corners, columns)

    monkeypatch.setattr(head_top, "footprint", counted_footprint)
    monkeypatch.setattr(closures, "_lowest_cuts", counted_cuts)
    return counts


def _with_tiny_eyes(tmp_path, half_gap: float, drop: float):
    """The procedural character with its eye morphs replaced by two that each move one new
    vertex on either side of the face centre, `half_gap` from it, down by `drop`."""
    spec = spec_for_seed(SEED)
    data, _ = build_character(spec, "t")
    # a tiny triangle on each side at eye height in front of the face, at the end of the skin's
    # triangles (the first material)
    front = float(data.positions[:, 2].min())
    corners = np.array(
        [[[s * half_gap, spec.eye_y, front], [s * 2 * half_gap, spec.eye_y, front],
          [s * half_gap, spec.eye_y + half_gap, front]] for s in (1, -1)]
    ).reshape(-1, 3)  # fmt: skip
    first = len(data.positions)
    skin = data.materials[0].face_count
    triangles = np.insert(data.triangles, skin, np.arange(first, first + 6).reshape(2, 3), axis=0)
    grow = lambda a, row: np.concatenate([a, np.repeat([row], 6, axis=0)])  # noqa: E731
    head = data.bone_indices[0]  # the first vertex is the crown's, on 頭 alone
    morphs = [m for m in data.morphs if m.name in ("あ", "い", "上")]
    for name, vertex in (("ウィンク", first), ("ウィンク右", first + 3)):
        offsets = np.array([[0.0, -drop, 0.0]])  # the file's frame
        morphs.append(PmxVertexMorph(name, 2, np.array([vertex]), offsets))
    materials = list(data.materials)
    materials[0] = type(materials[0])(**{**materials[0].__dict__, "face_count": skin + 2})
    data = PmxData(
        **{
            **data.__dict__,
            "positions": np.concatenate([data.positions, corners]).astype(np.float32),
            "normals": grow(data.normals, [0.0, 0.0, -1.0]).astype(np.float32),
            "uvs": grow(data.uvs, [0.5, 0.5]).astype(np.float32),
            "bone_indices": grow(data.bone_indices, head),
            "bone_weights": grow(data.bone_weights, [1.0, 0.0, 0.0, 0.0]),
            "deform": grow(data.deform, 0).astype(np.uint8),
            "triangles": triangles.astype(np.int32),
            "materials": materials,
            "morphs": morphs,
        }
    )
    return load(write_pmx(tmp_path / "tiny.pmx", data))


@pytest.mark.numeric
def test_eye_morphs_moving_one_vertex_by_a_tiny_amount(tmp_path, steps):
    """Both winks move a single vertex a hair's breadth each side of the centre line: the eye
    separation is ~0; the head box refuses before searching."""
    model = _with_tiny_eyes(tmp_path, half_gap=1e-6, drop=1e-3)
    roles = detect_face(model)
    assert not roles.usable
    assert any(
        p.startswith("head box: eye separation") and "degenerate" in p for p in roles.problems
    )
    assert steps["rows"] == 0
    assert steps["lid columns"] <= 2 * closures._COLUMNS * 2


def test_a_tiny_but_not_degenerate_eye_separation_is_bounded(tmp_path, steps):
    """Eyes 0.3 % of the model's height apart (above the degenerate limit): the head box
    refuses, naming the stage, after a bounded number of rows."""
    model = _with_tiny_eyes(tmp_path, half_gap=0.03, drop=0.01)
    roles = detect_face(model)
    assert not roles.usable
    assert any(
        p.startswith("head box: the head") and "too small for this head" in p
        for p in roles.problems
    )
    assert 0 < steps["rows"] <= head_box.MAX_FOOTPRINTS  # the walks, the widest's samples


def test_one_blink_named_for_both_eyes_is_a_problem_not_a_hang(tmp_path, steps):
    """The overrides mistake from issue 14: one both-eyes morph given for both eyes."""
    model = load(write_character(SEED, tmp_path / "c.pmx"))
    roles = detect_face(model, FaceOverrides(left_eye="まばたき", right_eye="まばたき"))
    assert not roles.usable
    assert any("head box: eye separation" in p and "degenerate" in p for p in roles.problems)
    assert steps["rows"] == 0
    assert roles.eyes["left_eye"].reason == "override"


def test_every_row_walk_is_bounded_on_ordinary_models(tmp_path, steps):
    model = load(write_character(SEED, tmp_path / "c.pmx"))
    roles = detect_face(model)
    assert roles.usable, roles.problems
    assert 0 < steps["rows"] <= head_box.MAX_FOOTPRINTS
