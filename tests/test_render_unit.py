"""Renderer pieces on synthetic models: kinematics, framing, alpha edges, toons, pose parsing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmd_loader.model import Bone, BoneFlag, Material, MaterialFlag, Model, SphereMode
from mmd_loader.roles import FaceRoles, HeadBox
from render import Lighting, Pose, Renderer, RenderError, RenderSettings
from render.cli import parse_pose
from render.framing import Framing
from render.kinematics import Skeleton, rotation_power
from render.pose import euler_matrix
from render.renderer import MMD_LIGHT
from render.toon import default_toon

SIZE = 64


def bone(name: str, parent: int, position, **kw) -> Bone:
    return Bone(name, "", parent, np.asarray(position, np.float64), BoneFlag.ROTATABLE, **kw)


def quad_model(x0: float, x1: float, y0: float, y1: float, color=(1.0, 1.0, 1.0, 1.0)) -> Model:
    """One double-sided rectangle facing +z, one bone. Its ambient is diffuse × (1 − MMD's light
    154/255), so the colour MMD composes for it, saturate(diffuse · light + ambient), is `color`:
    a front-facing pixel under the default Lighting shows `color` in both shadings."""
    positions = np.array([[x0, y0, 0], [x1, y0, 0], [x1, y1, 0], [x0, y1, 0]], np.float32)
    n = len(positions)
    material = Material(
        name="quad",
        english_name="",
        diffuse=np.array(color, np.float32),
        specular=np.zeros(3, np.float32),
        specular_power=1.0,
        ambient=np.asarray(color[:3], np.float32) * np.float32(1.0 - MMD_LIGHT),
        flags=MaterialFlag.DOUBLE_SIDED,
        edge_color=np.array([0, 0, 0, 1], np.float32),
        edge_size=0.0,
        face_start=0,
        face_count=2,
        texture_ref=None,
        sphere_ref=None,
        sphere_mode=SphereMode.NONE,
        toon_ref=None,
        toon_shared=None,
    )
    return Model(
        path=Path("quad.pmx"),
        format="pmx",
        version=2.0,
        name="quad",
        english_name="quad",
        comment="",
        positions=positions,
        normals=np.tile(np.array([0, 0, 1], np.float32), (n, 1)),
        uvs=np.zeros((n, 2), np.float32),
        extra_uvs=np.zeros((n, 0, 4), np.float32),
        bone_indices=np.zeros((n, 4), np.int32),
        bone_weights=np.tile(np.array([1, 0, 0, 0], np.float32), (n, 1)),
        deform=np.zeros(n, np.uint8),
        sdef=np.zeros((n, 3, 3), np.float32),
        edge_scale=np.ones(n, np.float32),
        triangles=np.array([[0, 1, 2], [0, 2, 3]], np.int32),
        materials=[material],
        bones=[bone("センター", -1, [0, 0, 0])],
        morphs=[],
    )


UNIT_BOX = FaceRoles(head_box=HeadBox(top=1.0, chin=-1.0, center=np.zeros(3), half_width=1.0))


@pytest.fixture(scope="module")
def renderer():
    with Renderer(RenderSettings(size=SIZE, supersample=2)) as r:
        yield r


def test_euler_sign_turns_face_to_its_left():
    front = np.array([0.0, 0.0, 1.0])
    assert (euler_matrix((0, 15, 0)) @ front)[0] > 0.2  # head_y > 0: face to +x (its left)
    assert (euler_matrix((15, 0, 0)) @ front)[1] < -0.2  # head_x > 0: nods down
    assert (euler_matrix((0, 0, 15)) @ np.array([0.0, 1.0, 0.0]))[0] < -0.2  # neck_z > 0: CCW


def test_pose_tha1_scales_by_the_renderer_max_degrees():
    pose = Pose.tha1(head_x=0.5, head_y=-1.0, neck_z=1.0)
    assert pose.degrees(15.0) == {"head": (7.5, -15.0, 0.0), "neck": (0.0, 0.0, 15.0)}
    assert Pose.tha1(head_y=1.0, max_degrees=10.0).degrees(15.0)["head"] == (0.0, 10.0, 0.0)


def test_skeleton_orders_parents_first_and_follows_append_bones():
    model = quad_model(0, 1, 0, 1)
    # file order: child before parent; bone 2 appends bone 1's rotation at ratio 0.5
    model.bones = [
        bone("child", 1, [0, 2, 0]),
        bone("parent", -1, [0, 1, 0]),
        bone("grant", -1, [1, 1, 0], append_parent=1, append_ratio=0.5),
    ]
    model.bones[2].flags |= BoneFlag.APPEND_ROTATE
    skeleton = Skeleton(model)
    rank = {int(b): i for i, b in enumerate(skeleton.order)}
    assert rank[1] < rank[0] and rank[1] < rank[2]
    turn = euler_matrix((0, 0, 90))
    transforms = skeleton.skinning({1: turn})
    r_child, t_child = transforms[0]
    tip = r_child @ np.array([0.0, 2.0, 0.0]) + t_child  # the child rotates about the parent
    np.testing.assert_allclose(tip, [-1.0, 1.0, 0.0], atol=1e-9)
    r_grant, _ = transforms[2]
    np.testing.assert_allclose(r_grant, euler_matrix((0, 0, 45)), atol=1e-9)


def test_rotation_power_scales_the_angle():
    np.testing.assert_allclose(
        rotation_power(euler_matrix((30, 0, 0)), -0.5), euler_matrix((-15, 0, 0)), atol=1e-9
    )
    np.testing.assert_allclose(rotation_power(np.eye(3), 0.3), np.eye(3))


def test_framing_maps_the_head_box_to_the_middle():
    framing = Framing.from_head_box(UNIT_BOX.head_box, 0.5, (np.full(3, -1.0), np.ones(3)))
    corners = framing.project(np.array([[-1, 1, 0], [1, -1, 0]]), 256)
    np.testing.assert_allclose(corners, [[64, 64], [192, 192]])


@pytest.mark.parametrize("settings", [dict(supersample=2), dict(supersample=1, msaa=4)])
def test_half_covered_edges_keep_their_colour(settings):
    """A white quad whose left edge cuts pixel 20 in half: that column is white at alpha ½."""
    pixel = 4.0 / SIZE  # the image spans [-2, 2] for the unit head box at head_fraction 0.5
    x0 = -2.0 + 20.5 * pixel
    model = quad_model(x0, 1.0, -1.0, 1.0)
    with Renderer(RenderSettings(size=SIZE, **settings)) as r:
        r.set_model(model, UNIT_BOX)
        image = r.render(Pose(), Lighting(ambient=0.5, directional=0.5))
    rows = slice(20, 40)
    edge = image[rows, 20].astype(int)
    assert np.all(np.abs(edge[:, 3] - 128) <= 2), edge[:, 3]
    assert np.all(edge[:, :3] >= 253), edge[:, :3]  # straight alpha: no dark fringe
    assert np.all(image[rows, 21:40] == 255)
    outside = image[:, :20]
    assert not outside.any()  # background exactly (0, 0, 0, 0)


def test_translucent_material_keeps_straight_colour(renderer):
    renderer.set_model(quad_model(-1, 1, -1, 1, color=(1.0, 0.0, 0.0, 0.4)), UNIT_BOX)
    image = renderer.render(Pose(), Lighting(0.5, 0.5))
    centre = image[SIZE // 2, SIZE // 2].astype(int)
    assert centre[0] == 255 and centre[1] == centre[2] == 0
    assert abs(centre[3] - 102) <= 1


def test_lighting_scales_phong_colour(renderer):
    renderer.set_model(quad_model(-1, 1, -1, 1, color=(0.5, 0.5, 0.5, 1.0)), UNIT_BOX)
    dim = renderer.render(Pose(), Lighting(ambient=0.5, directional=0.5))[SIZE // 2, SIZE // 2]
    bright = renderer.render(Pose(), Lighting(ambient=1.0, directional=0.5))[SIZE // 2, SIZE // 2]
    assert abs(int(dim[0]) - 128) <= 1 and abs(int(bright[0]) - 191) <= 1


def test_pose_errors_are_clear(renderer):
    renderer.set_model(quad_model(-1, 1, -1, 1), UNIT_BOX)
    with pytest.raises(RenderError, match="no left_eye morph"):
        renderer.render(Pose.tha1(left_eye=1.0))
    with pytest.raises(RenderError, match="no head bone"):
        renderer.render(Pose.tha1(head_y=0.5))
    with pytest.raises(RenderError, match="no bone named"):
        renderer.render(Pose(rotations={"腕": (0.0, 0.0, 10.0)}))
    assert renderer.render(Pose.tha1()).any()  # zero weights of absent parts are fine


def test_model_without_head_box_is_refused(renderer):
    with pytest.raises(RenderError, match="no head box"):
        renderer.set_model(quad_model(-1, 1, -1, 1), FaceRoles(problems=["no eyes"]))


def test_default_toons_are_white_on_top():
    for i in range(10):
        ramp = default_toon(i)
        assert ramp.shape == (32, 32, 4) and ramp.dtype == np.uint8
        assert np.all(ramp[:, :, 3] == 255)
    assert np.all(default_toon(0)[0, :, :3] == 255) and np.all(default_toon(0)[-1, :, :3] == 205)


def test_parse_pose():
    assert parse_pose("left_eye=1, mouth=0.5,head_y=-0.4") == {
        "left_eye": 1.0,
        "mouth": 0.5,
        "head_y": -0.4,
    }
    assert parse_pose("") == {}
    for bad in ("eye=1", "mouth=2", "head_x=-1.5", "left_eye", "mouth=x"):
        with pytest.raises(ValueError):
            parse_pose(bad)


def test_settings_are_checked():
    for bad in (dict(size=4), dict(shading="cel"), dict(supersample=0), dict(msaa=3)):
        with pytest.raises(ValueError):
            RenderSettings(**bad)


def test_sheet_title_uses_the_file_name_and_only_drawable_characters():
    from render.preview import sheet_title

    assert sheet_title(Path("models/初音ミクV3.pmx"), "toon") == "models/????V3.pmx  (toon)"
    assert sheet_title(Path("Miku_Hatsune.pmd"), "phong") == "Miku_Hatsune.pmd  (phong)"
