"""The pure posing (`render.rig.Rig`) and the schema binding, without any GL context."""

from __future__ import annotations

import numpy as np
import pytest

from characters import write_character
from mmd_loader import detect_face, load
from poses import load_schema
from render.binding import SchemaBinding
from render.errors import RenderError
from render.framing import Framing
from render.pose import Pose
from render.rig import Rig
from tests.numerics import U32


@pytest.fixture(scope="module")
def character(tmp_path_factory):
    model = load(write_character(5, tmp_path_factory.mktemp("rig") / "c.pmx"))
    return model, detect_face(model)


@pytest.mark.numeric
def test_rest_pose_is_the_rest_geometry_of_the_moving_slice(character):
    model, roles = character
    rig = Rig(model, roles)
    posed = rig.deform(Pose())
    assert not posed.full and 0 < rig.start < len(model.positions)
    # Identity bone matrices multiply exactly; Σ w_i·v over 4 weights rounds 4 products and 3
    # sums (<= 7u·|v|) and the file's float32 weights sum to 1 within u: 8u of the largest |v|.
    bound = 8 * U32 * float(np.abs(rig.rest).max())
    np.testing.assert_allclose(posed.data, rig.rest[rig.start :], rtol=0, atol=bound)
    np.testing.assert_array_equal(np.sort(rig.order), np.arange(len(model.positions)))


@pytest.mark.numeric
def test_a_face_pose_moves_only_the_slice_and_another_bone_needs_every_vertex(character):
    model, roles = character
    rig = Rig(model, roles)
    turned = rig.deform(Pose(rotations={"head": (0.0, 15.0, 0.0)}))
    assert not turned.full and turned.start == rig.start
    assert np.abs(turned.data[:, :3] - rig.rest[rig.start :, :3]).max() > 1e-3
    closed = rig.deform(Pose(morphs={"left_eye": 1.0}))
    moved = np.abs(closed.data[:, :3] - rig.rest[rig.start :, :3]).max(axis=1) > 1e-6
    slots = rig.new_index[roles.morphs["left_eye"].indices] - rig.start
    assert set(np.flatnonzero(moved)) <= set(slots.tolist())
    other = next(b.name for b in model.bones if model.bone_index(b.name) not in rig.posable)
    full = rig.deform(Pose(rotations={other: (0.0, 0.0, 10.0)}))
    assert full.full and full.start == 0 and len(full.data) == len(model.positions)


def test_bad_keys_are_clear(character):
    model, roles = character
    rig = Rig(model, roles)
    with pytest.raises(RenderError, match="no bone named"):
        rig.deform(Pose(rotations={"no such bone": (0.0, 0.0, 1.0)}))
    with pytest.raises(RenderError, match="no morph named"):
        rig.deform(Pose(morphs={"no such morph": 1.0}))


def test_culling_keeps_what_the_camera_sees_and_every_moving_triangle(character):
    model, roles = character
    rig = Rig(model, roles)
    everything = sum(len(t) for _, t in rig.triangles(None, 256, 0.0))
    framing = Framing.from_head_box(
        roles.head_box, 0.5, (model.positions.min(0), model.positions.max(0))
    )
    culled = rig.triangles(framing, 256, 2.0)
    kept = sum(len(t) for _, t in culled)
    assert 0 < kept < everything  # shoulders below the image are left out
    for _, tris in culled:
        pixels = framing.project(model.positions[rig.order][tris.reshape(-1)], 256)
        pixels = pixels.reshape(-1, 3, 2)
        overlaps = (pixels.max(axis=1) >= -2.0).all(axis=1) & (pixels.min(axis=1) <= 258.0).all(
            axis=1
        )
        assert (overlaps | (tris >= rig.start).any(axis=1)).all()


def test_binding_maps_schema_values_to_role_morphs_and_degrees(character):
    model, roles = character
    binding = SchemaBinding(load_schema("tha1"), model, roles)
    pose = binding.pose({"left_eye": 0.25, "head_x": -1.0, "neck_z": 0.5})
    assert pose.morphs == {"left_eye": 0.25, "right_eye": 0.0, "mouth": 0.0}
    assert pose.rotations == {"head": (-15.0, 0.0, 0.0), "neck": (0.0, 0.0, 7.5)}
    expression = binding.expression({"head_x": 1.0, "mouth": 1.0})
    assert expression.morphs["mouth"] == 1.0
    assert all(not any(angles) for angles in expression.rotations.values())  # head at rest
    with pytest.raises(KeyError, match="not parameters"):
        binding.pose({"eyebrow": 1.0})
