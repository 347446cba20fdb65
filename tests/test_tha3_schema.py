"""The tha3 schema without GL: THA3's 45 parameters, the schema language it needs, its laws, name
folding, side decisions by geometry, bone roles, and the binding on real and procedural models
(whose truth `characters.tha3_spec` knows)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from characters import tha3_spec, write_character
from mmd_loader.body import find_body_bones
from mmd_loader.morph_names import fold, side_variant
from mmd_loader.sides import face_centre_x, sides_of
from poses.sampling import sample_pose
from poses.schema import SchemaError, load_schema, parse_schema, schema_from_json
from poses.sequence import read_sequence, write_sequence
from poses.text import parse_pose_text
from render.binding import SchemaBinding
from render.rig import Rig
from tests.conftest import all_model_files

# THA3's parameters in its order (tha3/poser/modes/pose_parameters.py of its demo code): groups
# of arity 2 become NAME_left, NAME_right.
THA3_GROUPS = [
    ("eyebrow_troubled", 2, (0, 1)),
    ("eyebrow_angry", 2, (0, 1)),
    ("eyebrow_lowered", 2, (0, 1)),
    ("eyebrow_raised", 2, (0, 1)),
    ("eyebrow_happy", 2, (0, 1)),
    ("eyebrow_serious", 2, (0, 1)),
    ("eye_wink", 2, (0, 1)),
    ("eye_happy_wink", 2, (0, 1)),
    ("eye_surprised", 2, (0, 1)),
    ("eye_relaxed", 2, (0, 1)),
    ("eye_unimpressed", 2, (0, 1)),
    ("eye_raised_lower_eyelid", 2, (0, 1)),
    ("iris_small", 2, (0, 1)),
    ("mouth_aaa", 1, (0, 1)),
    ("mouth_iii", 1, (0, 1)),
    ("mouth_uuu", 1, (0, 1)),
    ("mouth_eee", 1, (0, 1)),
    ("mouth_ooo", 1, (0, 1)),
    ("mouth_delta", 1, (0, 1)),
    ("mouth_lowered_corner", 2, (0, 1)),
    ("mouth_raised_corner", 2, (0, 1)),
    ("mouth_smirk", 1, (0, 1)),
    ("iris_rotation_x", 1, (-1, 1)),
    ("iris_rotation_y", 1, (-1, 1)),
    ("head_x", 1, (-1, 1)),
    ("head_y", 1, (-1, 1)),
    ("neck_z", 1, (-1, 1)),
    ("body_y", 1, (-1, 1)),
    ("body_z", 1, (-1, 1)),
    ("breathing", 1, (0, 1)),
]
THA3_NAMES = [
    n
    for group, arity, _ in THA3_GROUPS
    for n in ([group] if arity == 1 else [f"{group}_left", f"{group}_right"])
]
SEEDS = range(8)


@pytest.fixture(scope="module")
def schema():
    return load_schema("tha3")


@functools.cache
def procedural(seed: int):
    """(model, roles) of procedural character `seed`, written once per session."""
    import tempfile

    from mmd_loader import detect_face, load

    folder = Path(tempfile.mkdtemp(prefix=f"tha3_c{seed}_"))
    model = load(write_character(seed, folder / "character.pmx"))
    return model, detect_face(model)


@functools.cache
def real(path: Path):
    from mmd_loader import detect_face, load

    model = load(path)
    return model, detect_face(model)


def usable_real() -> list[Path]:
    out = []
    for path in all_model_files():
        try:
            _, roles = real(path)
        except Exception:
            continue
        if roles.usable:
            out.append(path)
    return out


# --- the schema ---------------------------------------------------------------------------


def test_45_parameters_in_tha3_order_names_and_ranges(schema):
    assert schema.names == THA3_NAMES and len(THA3_NAMES) == 45
    ranges = {
        n: r
        for group, arity, r in THA3_GROUPS
        for n in ([group] if arity == 1 else [f"{group}_left", f"{group}_right"])
    }
    assert {p.name: p.range for p in schema.parameters} == {
        n: (float(lo), float(hi)) for n, (lo, hi) in ranges.items()
    }
    for p in schema.parameters:
        if p.name.endswith("_left") or p.name.endswith("_right"):
            assert p.side == p.name.rpartition("_")[2] or p.roles, p.name
    assert schema.framing.size == 512 and schema.framing.head_fraction == 0.25
    assert schema.framing.head_center == (0.5, 0.25)


def test_images_split_the_channels_as_tha3_does(schema):
    # THA3's face morpher takes 12 eyebrow + 27 face parameters (iris rotation included), its
    # rotator the other 6 (standard_float.py: NUM_EYEBROW_PARAMS, NUM_FACE_PARAMS).
    expression = [p.name for p in schema.in_image("expression")]
    assert expression == THA3_NAMES[:39]
    assert [p.name for p in schema.in_image("posed")] == THA3_NAMES[39:]
    data = schema.to_json()
    for item in data["parameters"]:
        assert {"name", "kind", "range", "image"} <= set(item)
    assert data["framing"] == {
        "size": 512,
        "head_fraction": 0.25,
        "head_center": [0.5, 0.25],
        "morpher_crop": 1.5,
    }
    assert "morpher_crop" not in load_schema("tha1").to_json()["framing"]
    back = schema_from_json(data)
    assert [p.image for p in back.parameters] == [p.image for p in schema.parameters]
    assert parse_schema(schema.to_data()) == schema


def test_exclusive_groups_pick_one_shape_and_both_its_sides(schema):
    rng = np.random.default_rng(5)
    chosen: dict[str, set[str]] = {g: set() for g in schema.groups}
    for _ in range(400):
        pose = sample_pose(schema, rng)
        for group, members in ((g, schema.members(g)) for g in schema.groups):
            active = [m for m in members if any(pose[schema.parameters[i].name] for i in m)]
            assert len(active) <= 1, (group, active)
            for member in active:
                assert all(pose[schema.parameters[i].name] > 0 for i in member)
                chosen[group].add(schema.parameters[member[0]].member)
        assert all(schema.parameter(n).contains(v) for n, v in pose.items())
    assert {g: len(c) for g, c in chosen.items()} == {
        "eye": 6,
        "eyebrow": 6,
        "mouth": 6,
        "mouth_corner": 3,
    }


def test_tha2_draws_are_unchanged_by_members():
    """tha2's groups have no members: its poses are drawn exactly as before (the first pose of
    seed 3, recorded before the member field existed)."""
    tha2 = load_schema("tha2")
    pose = sample_pose(tha2, np.random.default_rng(3))
    assert sum(1 for p in tha2.parameters if p.group == "eyebrow" and pose[p.name]) == 1
    assert all(len(m) == 1 for g in tha2.groups for m in tha2.members(g))


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"side": "up"}, "side must be one of"),
        ({"image": "rest"}, "image must be one of"),
        ({"member": "x"}, "only means something inside a 'group'"),
        ({"track": "nose"}, "track must be one of"),
        ({"bones": [{"bone": "head", "axis": "x", "degrees": 5}]}, "morph parameter has no"),
    ],
)
def test_bad_morph_fields_are_named(patch, message):
    data = {"parameters": [{"name": "p", "kind": "morph", "morphs": ["a"], **patch}]}
    with pytest.raises(SchemaError, match=message):
        parse_schema(data, "s.yaml")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"bones": []}, "list of 1..16 targets"),
        ({"bones": [{"bone": "chest", "axis": "w", "degrees": 2}]}, "'axis' in x, y, z"),
        ({"bones": [{"bone": "chest", "axis": "x", "degrees": 2, "optional": True}]}, "required"),
        ({"bone": "head", "axis": "x", "degrees": 2, "bones": []}, "not both"),
        ({"bones": [{"bone": "chest", "axis": "x", "degrees": 2, "optional": 1}]}, "true or"),
        ({"bones": [{"bone": "chest", "axis": "x", "degrees": 200}]}, "in \\[-180, 180\\]"),
    ],
)
def test_bad_rotation_targets_are_named(raw, message):
    data = {"parameters": [{"name": "r", "kind": "rotation", "range": [0, 1], **raw}]}
    with pytest.raises(SchemaError, match=message):
        parse_schema(data, "s.yaml")


@pytest.mark.parametrize(
    ("framing", "message"),
    [
        ({"size": 4}, "size must be an integer"),
        ({"head_fraction": 0}, "head_fraction must be in"),
        ({"head_center": [0.5, 1.5]}, "must lie in the image"),
        ({"zoom": 2}, "unknown field"),
        ({"head_fraction": 0.25, "morpher_crop": 0.5}, "morpher_crop must be in"),
        ({"head_fraction": 0.5, "morpher_crop": 3}, "morpher_crop must be in"),
        ([512], "expected a mapping"),
    ],
)
def test_bad_framing_is_named(framing, message):
    data = {"framing": framing, "parameters": [{"name": "p", "kind": "morph", "morphs": ["a"]}]}
    with pytest.raises(SchemaError, match=message):
        parse_schema(data, "s.yaml")


@pytest.mark.numeric
def test_pose_text_and_sequences_take_tha3_names(schema, tmp_path):
    values = parse_pose_text(
        "eyebrow_angry_left=1,iris_rotation_y=-0.5,breathing=0.3", schema.ranges
    )
    assert values == {"eyebrow_angry_left": 1.0, "iris_rotation_y": -0.5, "breathing": 0.3}
    with pytest.raises(ValueError, match="breathing must be in"):
        parse_pose_text("breathing=-0.5", schema.ranges)
    from poses.sequence import PoseSequence

    frames = np.array([[schema.neutral()[n] for n in schema.names]] * 3)
    frames[1, schema.names.index("body_z")] = 0.75
    sequence = PoseSequence(np.arange(3) / 30, np.ones(3, bool), frames, tuple(schema.names))
    path = write_sequence(tmp_path / "poses.csv", sequence, schema)
    back = read_sequence(path, schema)
    np.testing.assert_allclose(back.values, frames)
    header = path.read_text().splitlines()[0].split(",")
    assert header == ["frame", "time", "tracked", *THA3_NAMES]


# --- names and sides ---------------------------------------------------------------------


def test_name_folding_and_side_words():
    assert fold("ジト目") == fold("じと目") and fold("ﾋﾞｯｸﾘ") == fold("びっくり")
    assert fold("ｳｨﾝｸ") == fold("ウインク") == fold("ウィンク")
    assert side_variant("困る左") == ("困る", "left")
    assert side_variant("怒り（右）") == ("怒り", "right")
    assert side_variant("ウィンクＬ")[1] == "left"
    assert side_variant("brow_R") == ("brow", "right")
    assert side_variant("上右") == ("上", "right")
    for keep in ("anger", "smile", "上", "右", "下2", "eye"):
        assert side_variant(keep)[1] is None, keep


@pytest.mark.parametrize("seed", SEEDS)
def test_procedural_shapes_bind_to_the_side_their_vertices_are_on(schema, seed):
    """Every tha3 parameter binds on a procedural character (but the smile closures, which the
    shape test of mmd_loader.face assigns); a shape written as two one-sided morphs binds each
    side to the morph that moves that side, even when its name says the other side."""
    model, roles = procedural(seed)
    truth = tha3_spec(seed)
    binding = SchemaBinding(schema, model, roles)
    happy = {"eye_happy_wink_left", "eye_happy_wink_right"}
    assert all(binding.bound(n) for n in schema.names if n not in happy), binding.describe()
    for side in ("left", "right"):  # bound exactly when the shape test found a smile closure
        assert binding.bound(f"eye_happy_wink_{side}") == (f"{side}_eye_happy" in roles.morphs)
    cx = face_centre_x(model, roles.head)
    shape_of = {
        "eyebrow_troubled": "troubled",
        "eyebrow_angry": "angry",
        "eyebrow_lowered": "lowered",
        "eyebrow_happy": "happy",
        "eyebrow_serious": "serious",
        "eye_surprised": "surprised",
        "eye_relaxed": "relaxed",
        "eye_unimpressed": "unimpressed",
        "eye_raised_lower_eyelid": "lower_lid",
        "iris_small": "iris_small",
        "mouth_raised_corner": "raised_corner",
        "mouth_lowered_corner": "lowered_corner",
    }
    for group, shape in shape_of.items():
        for k, side in enumerate(("left", "right")):
            b = binding.bindings[f"{group}_{side}"]
            if b.how == "role":
                continue
            if shape in truth.pairs:
                assert (b.key, b.how) == (truth.pairs[shape][k], "one-sided"), (group, side)
            else:
                assert (b.key, b.how) == (f"{truth.names[shape]}@{side}", "split")
            index = model.morph_index(b.key.partition("@")[0])
            if b.how == "one-sided":
                assert sides_of(model, *model.vertex_offsets(index), cx) == side


def test_misnamed_pairs_occur_among_the_seeds():
    assert any(tha3_spec(s).misnamed for s in SEEDS)
    assert sum(len(tha3_spec(s).pairs) for s in SEEDS) >= 10


def test_real_models_bind_the_tha3_pose(schema, mmd_dir):
    """Coverage over ../shared/mmd: what every face model has, and what none has (no model here
    has 口角上げ/口角下げ or 下瞼上げ: those stay null)."""
    paths = usable_real()
    assert len(paths) >= 15
    counts = dict.fromkeys(schema.names, 0)
    for path in paths:
        binding = SchemaBinding(schema, *real(path))
        for name in schema.names:
            counts[name] += binding.bound(name)
    everywhere = [n for n, c in counts.items() if c == len(paths)]
    for name in (
        "eyebrow_troubled_left",
        "eyebrow_angry_right",
        "eyebrow_raised_left",
        "eye_wink_left",
        "eye_wink_right",
        "mouth_aaa",
        "mouth_iii",
        "iris_rotation_x",
        "iris_rotation_y",
        "body_y",
        "body_z",
        "breathing",
    ):
        assert name in everywhere, name
    assert counts["mouth_raised_corner_left"] == counts["eye_raised_lower_eyelid_left"] == 0
    assert counts["eye_surprised_left"] >= 8 and counts["iris_small_right"] >= 8
    # Smile winks by the lid's shape: 12 models have one for the left eye, 18 for the right
    # (Lat, Len, Miku_Hatsune, Neru and Rin ship only a right-eye smile wink).
    assert counts["eye_happy_wink_left"] >= 10 and counts["eye_happy_wink_right"] >= 15
    for group, arity, _ in THA3_GROUPS:
        if arity == 2 and group != "eye_happy_wink":
            assert counts[f"{group}_left"] == counts[f"{group}_right"], group


def test_eye_and_shoulder_bones_by_the_side_they_sit_on(mmd_dir):
    for path in usable_real():
        model, roles = real(path)
        bones = find_body_bones(model, roles)
        cx = face_centre_x(model, roles.head)
        for role, sign in (("left_eye_bone", 1), ("right_eye_bone", -1)):
            assert sign * (model.bones[bones[role]].position[0] - cx) > 0, (path, role)
            assert "目" in model.bones[bones[role]].name
        for role, sign in (("left_shoulder", 1), ("right_shoulder", -1), ("left_arm", 1)):
            if role in bones:
                assert sign * (model.bones[bones[role]].position[0] - cx) > 0, (path, role)
        assert model.bones[bones["upper_body"]].name == "上半身"
        chest = model.bones[bones["chest"]].name
        assert chest == ("上半身2" if model.bone_index("上半身2") >= 0 else "上半身")


def test_swapped_eye_bone_names_are_decided_by_position():
    model, roles = procedural(0)
    left, right = model.bone_index("左目"), model.bone_index("右目")
    model = _copy_bones(model)
    model.bones[left].name, model.bones[right].name = "右目", "左目"
    bones = find_body_bones(model, roles)
    assert (bones["left_eye_bone"], bones["right_eye_bone"]) == (left, right)


def _copy_bones(model):
    import copy

    clone = copy.copy(model)
    clone.bones = [copy.copy(b) for b in model.bones]
    return clone


# --- the rig ------------------------------------------------------------------------------


def test_body_and_iris_poses_stay_on_the_partial_path(schema, mmd_dir):
    """With the schema's bones, a full tha3 pose rewrites only the moving slice (the legs of a
    real model stay static and culled); a rig that only knows the head needs every vertex for
    the body, but not for the irises, which turn under the head."""
    model, roles = real(mmd_dir / "animasa_miku_v2_3" / "miku_v2.pmd")
    binding = SchemaBinding(schema, model, roles)
    rig = Rig(model, roles, binding.bones())
    pose = sample_pose(schema, np.random.default_rng(0))
    posed = rig.deform(binding.pose(pose))
    assert not posed.full and posed.start == rig.start > 0.1 * len(model.positions)
    plain = Rig(model, roles)
    assert plain.deform(binding.pose({"body_y": 1.0})).full
    assert not plain.deform(binding.expression(pose)).full
    model, roles = procedural(3)
    binding = SchemaBinding(schema, model, roles)
    assert not Rig(model, roles, binding.bones()).deform(binding.pose(pose)).full


@pytest.mark.numeric
def test_split_morph_keys_move_one_side_only(schema):
    model, roles = procedural(1)
    rig = Rig(model, roles)
    cx = face_centre_x(model, roles.head)
    rest = rig.deform(rig_pose()).data.copy()
    binding = SchemaBinding(schema, model, roles)
    key = binding.bindings["mouth_raised_corner_left"].key
    moved = rig.deform(rig_pose({key: 1.0})).data
    order = rig.order[rig.start :]
    changed = np.abs(moved[:, :3] - rest[:, :3]).max(axis=1) > 1e-6
    assert changed.any() and (model.positions[order[changed], 0] > cx).all()


def rig_pose(morphs=None):
    from render.pose import Pose

    return Pose(dict(morphs or {}))
