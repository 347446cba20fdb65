"""Renderer pieces on synthetic models: kinematics, framing, alpha edges, toons, pose parsing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmd_loader.model import Bone, BoneFlag, Material, MaterialFlag, Model, SphereMode
from mmd_loader.roles import FaceRoles, HeadBox
from poses.schema import load_schema, parse_schema
from poses.text import parse_pose_text
from render import Lighting, Pose, Renderer, RenderError, RenderSettings
from render.binding import SchemaBinding
from render.framing import Framing
from render.kinematics import Skeleton, rotation_power
from render.pose import euler_matrix
from render.renderer import MMD_LIGHT
from render.toon import default_toon
from tests.test_textures import png_header_only, zero_png

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


def test_tha1_rotations_scale_by_the_schema_degrees():
    model, roles = quad_model(-1, 1, -1, 1), FaceRoles(neck=0, head=0)
    tha1 = load_schema("tha1")
    pose = SchemaBinding(tha1, model, roles).pose({"head_x": 0.5, "head_y": -1.0, "neck_z": 1.0})
    assert pose.rotations == {"head": (7.5, -15.0, 0.0), "neck": (0.0, 0.0, 15.0)}
    data = tha1.to_data()
    for p in data["parameters"]:
        if p["kind"] == "rotation":
            p["degrees"] = 10.0
    ten = parse_schema(data)
    assert SchemaBinding(ten, model, roles).pose({"head_y": 1.0}).rotations["head"] == (0, 10, 0)


@pytest.mark.numeric
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


@pytest.mark.numeric
def test_rotation_power_scales_the_angle():
    np.testing.assert_allclose(
        rotation_power(euler_matrix((30, 0, 0)), -0.5), euler_matrix((-15, 0, 0)), atol=1e-9
    )
    np.testing.assert_allclose(rotation_power(np.eye(3), 0.3), np.eye(3))


@pytest.mark.numeric
def test_framing_maps_the_head_box_to_the_middle():
    framing = Framing.from_head_box(UNIT_BOX.head_box, 0.5, (np.full(3, -1.0), np.ones(3)))
    corners = framing.project(np.array([[-1, 1, 0], [1, -1, 0]]), 256)
    np.testing.assert_allclose(corners, [[64, 64], [192, 192]])


@pytest.mark.numeric
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


@pytest.mark.numeric
def test_translucent_material_keeps_straight_colour(renderer):
    renderer.set_model(quad_model(-1, 1, -1, 1, color=(1.0, 0.0, 0.0, 0.4)), UNIT_BOX)
    image = renderer.render(Pose(), Lighting(0.5, 0.5))
    centre = image[SIZE // 2, SIZE // 2].astype(int)
    assert centre[0] == 255 and centre[1] == centre[2] == 0
    assert abs(centre[3] - 102) <= 1


@pytest.mark.numeric
def test_lighting_scales_phong_colour(renderer):
    renderer.set_model(quad_model(-1, 1, -1, 1, color=(0.5, 0.5, 0.5, 1.0)), UNIT_BOX)
    dim = renderer.render(Pose(), Lighting(ambient=0.5, directional=0.5))[SIZE // 2, SIZE // 2]
    bright = renderer.render(Pose(), Lighting(ambient=1.0, directional=0.5))[SIZE // 2, SIZE // 2]
    assert abs(int(dim[0]) - 128) <= 1 and abs(int(bright[0]) - 191) <= 1


def test_pose_errors_are_clear(renderer):
    renderer.set_model(quad_model(-1, 1, -1, 1), UNIT_BOX)
    with pytest.raises(RenderError, match="no left_eye morph"):
        renderer.render(Pose(morphs={"left_eye": 1.0}))
    with pytest.raises(RenderError, match="no head bone"):
        renderer.render(Pose(rotations={"head": (0.0, 7.5, 0.0)}))
    with pytest.raises(RenderError, match="no bone named"):
        renderer.render(Pose(rotations={"腕": (0.0, 0.0, 10.0)}))
    zeros = Pose({"left_eye": 0.0, "mouth": 0.0}, {"head": (0.0, 0.0, 0.0)})
    assert renderer.render(zeros).any()  # zero weights of absent parts are fine


def test_model_without_head_box_is_refused(renderer):
    with pytest.raises(RenderError, match="no head box"):
        renderer.set_model(quad_model(-1, 1, -1, 1), FaceRoles(problems=["no eyes"]))


def test_default_toons_are_white_on_top():
    for i in range(10):
        ramp = default_toon(i)
        assert ramp.shape == (32, 32, 4) and ramp.dtype == np.uint8
        assert np.all(ramp[:, :, 3] == 255)
    assert np.all(default_toon(0)[0, :, :3] == 255) and np.all(default_toon(0)[-1, :, :3] == 205)


def parse_pose(text: str) -> dict[str, float]:
    return parse_pose_text(text, load_schema("tha1").ranges)


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


# --- the material's look in phong (issue 9) ------------------------------------------------------


def textured_quad(tmp_path: Path, rgba: np.ndarray, name: str = "tex.png", **material) -> Model:
    """A unit quad (uv 0..1 across it, v down) whose texture is `rgba`, written to `name`."""
    from PIL import Image

    model = quad_model(-1, 1, -1, 1)
    model.uvs = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32)
    path = tmp_path / name
    Image.fromarray(rgba).save(path)
    model.materials[0].texture = path
    for key, value in material.items():
        setattr(model.materials[0], key, value)
    return model


def solid(tmp_path: Path, name: str, rgb, size: int = 8) -> Path:
    from PIL import Image

    path = tmp_path / name
    Image.new("RGB", (size, size), tuple(rgb)).save(path, format="BMP")  # as .sph/.spa are
    return path


def centre(renderer: Renderer, model: Model, lighting: Lighting | None = None) -> np.ndarray:
    renderer.set_model(model, UNIT_BOX)
    image = renderer.render(Pose(), lighting or Lighting())
    assert not image[:, :4].any()  # background exactly (0, 0, 0, 0) left of the quad
    return image[SIZE // 2, SIZE // 2].astype(int)


@pytest.mark.numeric
def test_phong_shows_the_colour_mmd_composes(renderer, tmp_path):
    """Diffuse 0.8 and ambient 0.5 (the usual MMD material): MMD draws saturate(0.8 · 154/255 +
    0.5) = 0.983 × the texture; phong did 0.8 × the texture, 20 % darker."""
    texture = np.full((4, 4, 4), (200, 150, 100, 255), np.uint8)
    model = textured_quad(
        tmp_path,
        texture,
        diffuse=np.array([0.8, 0.8, 0.8, 1.0], np.float32),
        ambient=np.full(3, 0.5, np.float32),
    )
    mmd = min(0.8 * MMD_LIGHT + 0.5, 1.0)
    expected = np.round(np.array([200, 150, 100]) * mmd)
    assert np.abs(centre(renderer, model)[:3] - expected).max() <= 1
    brighter = centre(renderer, model, Lighting(ambient=1.0, directional=0.5))[:3]
    assert np.abs(brighter - np.minimum(expected * 1.5, 255)).max() <= 1  # THA1's ambient


@pytest.mark.numeric
@pytest.mark.parametrize("mode", [SphereMode.MULTIPLY, SphereMode.ADD])
def test_phong_applies_sphere_maps(renderer, tmp_path, mode):
    model = quad_model(-1, 1, -1, 1, color=(0.8, 0.6, 0.4, 1.0))
    material = model.materials[0]
    material.sphere = solid(
        tmp_path, "s.sph" if mode == SphereMode.MULTIPLY else "s.spa", (51, 102, 204)
    )
    material.sphere_mode = mode
    plain = np.array([0.8, 0.6, 0.4]) * 255
    sphere = np.array([51, 102, 204])
    got = centre(renderer, model)[:3]
    if mode == SphereMode.MULTIPLY:
        expected = plain * sphere / 255
    else:
        expected = np.minimum(plain + sphere, 255)
    assert np.abs(got - expected).max() <= 1, (got, expected)


@pytest.mark.numeric
def test_toon_is_the_same_colour_on_the_lit_side(tmp_path):
    """Toon = the same MMD colour × its ramp: white on the lit half, so a front-facing surface
    shows what phong shows under the default lighting.

    (Tests that make their own Renderer come after those that use the module's: a second
    context stays current after it is closed, and the first renderer then draws wrongly.)"""
    model = quad_model(-1, 1, -1, 1, color=(0.3, 0.7, 0.5, 1.0))
    model.materials[0].sphere = solid(tmp_path, "m.sph", (255, 128, 255))
    model.materials[0].sphere_mode = SphereMode.MULTIPLY
    model.materials[0].toon_shared = 0
    pixels = {}
    for shading in ("phong", "toon"):
        with Renderer(RenderSettings(size=SIZE, shading=shading)) as r:
            pixels[shading] = centre(r, model)
    assert np.abs(pixels["phong"] - pixels["toon"]).max() <= 1


@pytest.mark.numeric
def test_alpha_sibling_cuts_out_a_colour_only_texture(tmp_path):
    """`NAME.jpga.jpg` + `NAME.alpha.png`: the left half transparent, not a black patch."""
    from PIL import Image

    colour = np.full((16, 16, 3), (40, 200, 90), np.uint8)
    jpeg = tmp_path / "face.jpga.jpg"
    Image.fromarray(colour).save(jpeg, quality=95)
    mask = np.zeros((8, 8), np.uint8)  # a smaller grey mask: resized to the texture
    mask[:, 4:] = 255
    Image.fromarray(mask, "L").save(tmp_path / "face.alpha.png")
    model = quad_model(-1, 1, -1, 1)
    model.uvs = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32)
    model.materials[0].texture = jpeg
    with Renderer(RenderSettings(size=SIZE)) as renderer:
        renderer.set_model(model, UNIT_BOX)
        image = renderer.render(Pose(), Lighting())
        assert renderer.texture_problems == []
    row = image[SIZE // 2]
    assert not row[SIZE // 4 + 2 : SIZE // 2 - 4].any()  # cut out: exactly (0, 0, 0, 0)
    right = row[SIZE // 2 + 4 : 3 * SIZE // 4 - 2].astype(int)
    assert (right[:, 3] == 255).all()
    assert np.abs(right[:, :3] - (40, 200, 90)).max() <= 4


# --- texture budgets and problems (issue 14) -----------------------------------------------------


def four_textures(tmp_path: Path, size: int) -> Model:
    """Four quads side by side, each with its own all-zero `size`² PNG texture."""
    quads = [quad_model(-1 + k * 0.5, -0.55 + k * 0.5, -1, 1) for k in range(4)]
    model = quads[0]
    model.positions = np.concatenate([q.positions for q in quads])
    model.normals = np.concatenate([q.normals for q in quads])
    model.uvs = np.zeros((16, 2), np.float32)
    for name in ("bone_indices", "bone_weights", "deform", "sdef", "edge_scale"):
        setattr(model, name, np.concatenate([getattr(q, name) for q in quads]))
    model.extra_uvs = np.zeros((16, 0, 4), np.float32)
    model.triangles = np.concatenate([q.triangles + 4 * k for k, q in enumerate(quads)])
    first = zero_png(tmp_path / "t0.png", size, size)
    model.materials = [q.materials[0] for q in quads]
    for k, material in enumerate(model.materials):
        material.name, material.face_start = f"m{k}", 2 * k
        material.texture = tmp_path / f"t{k}.png"
        if k:
            material.texture.write_bytes(first.read_bytes())
    return model


def test_hostile_textures_are_downscaled_within_the_budgets(tmp_path):
    """Issue 14's four all-zero textures, at 1/4 scale against budgets at 1/16 (the defaults'
    arithmetic at a test's size): each is downscaled, the fourth is over the model's budget."""
    model = four_textures(tmp_path, 2048)
    settings = RenderSettings(
        size=SIZE, max_texture_pixels=1024 * 1024, max_model_texture_pixels=3 * 512 * 1024 * 2
    )
    with Renderer(settings) as r:
        r.set_model(model, UNIT_BOX)
        image = r.render(Pose(), Lighting())
        problems, warnings = r.texture_problems, r.warnings
    assert [(p.material, p.name, p.slot, Path(p.path).name) for p in problems] == [
        (3, "m3", "texture", "t3.png")
    ]
    assert "over its budget" in problems[0].reason
    assert sum("downscaled to 1024x1024" in w for w in warnings) == 3
    assert any("t3.png" in w and "budget" in w for w in warnings)
    assert image[..., 3].any()  # the model still renders (m3 in its material colour)


def test_refuse_policy_refuses_without_decoding(tmp_path):
    model = four_textures(tmp_path, 64)
    for k in range(4):  # headers that claim 8192² with no pixels: decoding would fail
        (tmp_path / f"t{k}.png").write_bytes(png_header_only(8192, 8192))
    with Renderer(RenderSettings(size=SIZE, texture_policy="refuse")) as r:
        r.set_model(model, UNIT_BOX)
        r.render(Pose(), Lighting())
        problems = r.texture_problems
    assert [p.material for p in problems] == [0, 1, 2, 3]
    assert all("refused: 8192x8192 is over the budget" in p.reason for p in problems)


def test_unreadable_textures_are_problems_not_silent(tmp_path, monkeypatch):
    from mmd_loader import images

    model = four_textures(tmp_path, 8)
    (tmp_path / "t1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)  # corrupt
    real_read = images.read_image

    def memory_capped(path, *args, **kwargs):  # what a decode under a memory cap meets
        if Path(path).name == "t2.png":
            raise MemoryError
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(images, "read_image", memory_capped)
    with Renderer(RenderSettings(size=SIZE)) as r:
        r.set_model(model, UNIT_BOX)
        r.render(Pose(), Lighting())
        r.render(Pose(rotations={"センター": (0.0, 0.0, 1.0)}), Lighting())  # the full-model path
        problems, warnings = r.texture_problems, r.warnings
    assert [(p.material, p.slot) for p in problems] == [(1, "texture"), (2, "texture")]
    assert "PNG" in problems[0].reason and problems[1].reason == "out of memory while decoding"
    assert any("t1.png" in w for w in warnings) and any("t2.png" in w for w in warnings)


def test_texture_settings_are_checked():
    for bad in (
        dict(max_texture_pixels=0),
        dict(max_model_texture_pixels=0),
        dict(texture_policy="x"),
    ):
        with pytest.raises(ValueError):
            RenderSettings(**bad)
    budget = RenderSettings(max_texture_pixels=5, texture_policy="refuse").texture_budget
    assert (budget.max_pixels, budget.policy) == (5, "refuse")
    assert RenderSettings().texture_budget.max_model_pixels == 64 * 1024 * 1024


MEMORY_CAPPED = """
import resource, sys
from pathlib import Path
from render import Renderer, RenderSettings
from tests.test_render_unit import UNIT_BOX, quad_model

model = quad_model(-1, 1, -1, 1)
model.materials[0].texture = Path(sys.argv[1])
with Renderer(RenderSettings(size=64, threads=0)) as r:
    r.set_model(quad_model(-1, 1, -1, 1), UNIT_BOX)  # the context and programs, uncapped
    r.render()
    status = Path("/proc/self/status").read_text().splitlines()
    size = int(next(line for line in status if line.startswith("VmSize")).split()[1]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + 48 * 2**20, resource.RLIM_INFINITY))
    r.set_model(model, UNIT_BOX)
    image = r.render()
    for problem in r.texture_problems:
        print("PROBLEM", problem.material, problem.slot, problem.reason)
    print("WARNINGS", len(r.warnings), "PIXEL", *image[32, 32])
"""


def test_a_decode_under_a_memory_cap_is_a_texture_problem(tmp_path):
    """A 4096² all-zero PNG (tiny on disk, 64 MB decoded) under a 48 MB address-space margin:
    the decode fails with MemoryError and the renderer says so (issue 14: it was silent)."""
    import subprocess
    import sys

    if not Path("/proc/self/status").is_file():
        pytest.skip("needs /proc/self/status")
    texture = zero_png(tmp_path / "zero.png", 4096, 4096)
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_CAPPED, str(texture)],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "PROBLEM 0 texture out of memory while decoding the PNG image", lines
    assert lines[-1].startswith("WARNINGS 1 PIXEL 255 255 255 255")  # drawn in its own colour


def test_two_renderers_in_one_process_keep_their_own_pixels(tmp_path):
    """Each render makes its renderer's context current: another renderer made, used and closed
    in between changes nothing."""
    from characters import write_character
    from mmd_loader import detect_face, load

    a = load(write_character(0, tmp_path / "a" / "a.pmx"))
    b = load(write_character(1, tmp_path / "b" / "b.pmx"))
    with Renderer(RenderSettings(size=48)) as first:
        first.set_model(a, detect_face(a))
        before = first.render(Pose())
        with Renderer(RenderSettings(size=48)) as second:
            second.set_model(b, detect_face(b))
            other = second.render(Pose())
            assert np.array_equal(first.render(Pose()), before)
        assert np.array_equal(first.render(Pose()), before)
        assert not np.array_equal(before, other)
