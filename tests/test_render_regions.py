"""Drawing a pose over the rest image (`Renderer.render(..., rest=...)`, `render.regions`): the
same bytes as a full render, on every usable real model and on procedural characters, in every
render setting the region path touches; and the region itself on known geometry."""

from __future__ import annotations

import numpy as np
import pytest

from bench.bench_render import random_poses
from poses import load_schema
from render import Lighting, Pose, Renderer, RenderSettings
from render.framing import Framing
from render.regions import ChangeMap, Region
from tests.test_render import loaded, usable_models

SIZE = 64
LIGHT = Lighting(ambient=0.35, directional=0.75)


def _check(renderer: Renderer, poses: list[Pose]) -> list[float]:
    """Assert both roads give identical images; the changed regions' shares of the image."""
    rest = renderer.render(Pose(), LIGHT)
    shares = []
    for pose in poses:
        for q in (Pose(morphs=pose.morphs), pose):
            full = renderer.render(q, LIGHT)
            over = renderer.render(q, LIGHT, rest=rest)
            assert np.array_equal(full, over), f"{renderer.scene.model.path}: {q}"
            posed = renderer.scene.apply(q)
            shares.append(renderer.scene.changes.find(posed.data, posed.start).region.area)
    return [s / SIZE**2 for s in shares]


@pytest.fixture(scope="module")
def small_renderer():
    with Renderer(RenderSettings(size=SIZE, threads=0)) as renderer:
        yield renderer


@pytest.mark.parametrize("path", usable_models(), ids=lambda p: p.name)
def test_over_the_rest_image_equals_a_full_render(small_renderer, path):
    small_renderer.set_model(*loaded(path))
    poses = random_poses(small_renderer.bind(load_schema("tha1")), 3, seed=7)
    shares = _check(small_renderer, poses)
    expression, posed = shares[0::2], shares[1::2]
    assert max(expression) < 0.4  # eyes and mouth: a part of the frame is drawn
    assert min(posed) > max(expression)  # a head turn moves more than the face


def test_every_setting_and_a_full_model_pose_in_between(tmp_path):
    from characters import write_character
    from mmd_loader import detect_face, load

    model = load(write_character(3, tmp_path / "c3.pmx"))
    roles = detect_face(model)
    settings = [
        RenderSettings(size=48, msaa=4),
        RenderSettings(size=48, shading="toon", outline=True, outline_width=2.0),
        RenderSettings(size=48, supersample=3),
        RenderSettings(size=48, supersample=1),
    ]
    arm = next(b.name for b in model.bones if b.name not in ("head", "neck"))
    for setting in settings:
        with Renderer(setting) as renderer:
            renderer.set_model(model, roles)
            poses = random_poses(renderer.bind(load_schema("tha1")), 2, seed=1)
            _check(renderer, poses)
            renderer.render(Pose(rotations={arm: (0.0, 0.0, 20.0)}), LIGHT)  # full-model pose
            _check(renderer, poses)


def _square_map(moving_from: int = 4) -> ChangeMap:
    """Two unit squares (two triangles each) side by side, seen 8 units wide at 80 px."""
    xy = [(0, 0), (1, 0), (1, 1), (0, 1), (2, 0), (3, 0), (3, 1), (2, 1)]
    rest = np.array([[x, y, 0, 0, 0, 1] for x, y in xy], np.float32)
    drawn = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    framing = Framing(center_x=0.0, center_y=0.0, half_extent=4.0, z_near=-1.0, z_far=1.0)
    return ChangeMap(rest, drawn, framing, 80, moving_from=moving_from)


def test_the_region_covers_old_and_new_places_of_what_moved():
    changes = _square_map()
    data = changes.rest[4:].copy()
    assert changes.find(data, 4).region.empty  # nothing moved: the rest image
    data[1, 0] += 0.5  # vertex 5 moves right by half a unit (5 px)
    change = changes.find(data, 4)
    # At rest the right square spans x 2..3 (px 60..70), y 0..1 (px 30..40); posed to 3.5
    # (75 px); one pixel of margin for float32.
    assert change.region == Region(59, 29, 76, 41)
    assert change.triangles.tolist() == [2, 3]  # the left square is far from it
    data[1, 2] += 1.0  # a normal changes too (the position as well): still those triangles
    assert changes.find(data, 4).triangles.tolist() == [2, 3]
    assert changes.find(data, 4, max_area=10).triangles is None  # too big: draw everything
    with pytest.raises(ValueError, match="before"):
        changes.find(changes.rest.copy(), 0)


def test_a_static_triangle_reaching_the_region_is_drawn_too():
    changes = _square_map(moving_from=1)
    data = changes.rest[1:].copy()
    data[0, 0] += 1.2  # vertex 1 of the left square moves into the right one's pixels
    change = changes.find(data, 1)
    assert change.triangles.tolist() == [0, 1, 2, 3]
    assert change.region.x1 >= 60  # reaches the right square
