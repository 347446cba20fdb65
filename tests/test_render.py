"""The renderer on real MMD models (../shared/mmd) and on procedural characters."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from render import Lighting, Pose, Renderer, RenderSettings
from tests.conftest import MMD_DIR, all_model_files, require_mmd_dir, tha1

SIZE = 256
CHANGED = 8  # a pixel "changed" when some channel moved by more than this (of 255)
MIKU_PMD = "animasa_miku_v2_3/miku_v2.pmd"
MIKU_PMX = "j3_animasa_miku_pmx/index.pmx"


@functools.cache
def loaded(path: Path):
    """(model, roles) of a real model, loaded once per test session."""
    from mmd_loader import detect_face, load

    model = load(path)
    return model, detect_face(model)


def usable_models() -> list[Path]:
    out = []
    for path in all_model_files():
        try:
            _, roles = loaded(path)
        except Exception:
            continue
        if roles.usable:
            out.append(path)
    return out


def model_id(path: Path) -> str:
    return str(path.relative_to(MMD_DIR))


@pytest.fixture(scope="module")
def renderer():
    with Renderer(RenderSettings(size=SIZE)) as r:
        yield r


@pytest.fixture(scope="module")
def character(tmp_path_factory) -> Path:
    from mmd_loader.procedural import write_character

    return write_character(3, tmp_path_factory.mktemp("character") / "character.pmx")


def use(renderer: Renderer, path: Path):
    model, roles = loaded(path)
    renderer.set_model(model, roles)
    return model, roles


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (np.abs(a.astype(int) - b.astype(int)) > CHANGED).any(axis=2)


def face_center_px(renderer: Renderer, roles) -> float:
    return float(renderer.framing.project(roles.head_box.center[None], SIZE)[0, 0])


def test_all_usable_models_are_tested(mmd_dir):
    assert len(usable_models()) >= 15


@pytest.mark.parametrize("path", usable_models(), ids=model_id)
def test_rest_pose_frames_the_head_in_the_middle(renderer, path):
    _model, roles = use(renderer, path)
    image = renderer.render(Pose(), Lighting())
    alpha = image[:, :, 3]
    assert not image[alpha == 0].any()  # background exactly (0, 0, 0, 0)
    assert not alpha[0].any() and (alpha == 0).sum() > SIZE * SIZE // 10
    box = roles.head_box
    cx, _cy, _ = box.center
    corners = np.array([[cx - box.half_width, box.top, 0.0], [cx + box.half_width, box.chin, 0.0]])
    (x0, y0), (x1, y1) = renderer.framing.project(corners, SIZE)
    np.testing.assert_allclose([y0, y1], [64, 192], atol=0.5)  # top→chin = the middle 128 px
    assert abs((x0 + x1) / 2 - 128) <= 0.5  # centred on the face
    if box.half_width <= box.height / 2:  # a box wider than tall cannot fit 128 px across
        assert x0 >= 64 - 0.5 and x1 <= 192 + 0.5
    face = renderer.framing.project(np.array([box.center]), SIZE)[0].astype(int)
    assert alpha[face[1], face[0]] == 255  # the face is drawn, and opaque, at its centre
    # Independent of the framing maths, in pixels: the drawn head reaches up to the box's top
    # (hair above it, like an ahoge, is allowed), and the mouth opens between eyes and chin.
    across = alpha[:, max(int(x0), 0) : int(x1) + 1] > 0
    assert across.any(axis=1).argmax() <= 64 + 3
    # ... and a little below the top it is already wide: skull or hair volume, not a strand.
    assert across[64 + 8].sum() >= 0.25 * across.shape[1]
    opened = renderer.render(tha1(renderer, mouth=1.0), Lighting())
    rows = np.nonzero((opened != image).any(axis=(1, 2)))[0]
    assert 64 + 128 * 0.3 < rows.mean() < 192


@pytest.mark.parametrize("path", usable_models(), ids=model_id)
def test_eyes_close_on_their_own_side_and_mouth_below_the_eyes(renderer, path):
    _model, roles = use(renderer, path)
    rest = renderer.render(Pose())
    middle = face_center_px(renderer, roles)
    eye_rows, eyelids = [], np.zeros((SIZE, SIZE), bool)
    for role, sign in (("left_eye", +1), ("right_eye", -1)):
        diff = changed(rest, renderer.render(tha1(renderer, **{role: 1.0})))
        ys, xs = np.nonzero(diff)
        assert len(xs) >= 10, f"{role} changes only {len(xs)} pixels"
        # the character's left eye is on the image's right
        assert np.all(sign * (xs - middle) > -1.5), f"{role} changes pixels on the wrong side"
        eye_rows.append(ys)
        eyelids |= diff
    mouth = renderer.render(tha1(renderer, mouth=1.0))
    ys, xs = np.nonzero(changed(rest, mouth))
    assert len(ys) >= 10
    above = ys <= min(rows.mean() for rows in eye_rows)
    # Above the eyes' centre row the mouth may touch only the eyes themselves (pixels that
    # closing an eye changes too): 0 others measured for every model, 2 allowed for rounding.
    off_eyes = above & ~eyelids[ys, xs]
    assert off_eyes.sum() <= 2, "mouth changes pixels above the eyes"
    # On the eyes: Haku_Yowane's あ lifts 12 vertices at eyelid height by 0.4 px, redrawing thin
    # lines across its upper eyes (29 pixels measured; every other model 0, Meiko_Sakine 1).
    # A mouth morph that visibly moved the eyes would change hundreds.
    assert above.sum() <= 32, f"mouth changes {above.sum()} pixels on the eyes"


def eye_centroid_x(renderer: Renderer, **rotation: float) -> float:
    """Mean x of the pixels that change when both eyes close, with the head posed."""
    open_ = renderer.render(tha1(renderer, **rotation))
    shut = renderer.render(tha1(renderer, left_eye=1.0, right_eye=1.0, **rotation))
    _, xs = np.nonzero(changed(open_, shut))
    return float(xs.mean())


@pytest.mark.parametrize("name", [MIKU_PMD, "miku4_3/miku4.3.pmx", "goblin/goblin_v02.pmx"])
def test_head_y_turns_the_face_to_opposite_sides(renderer, mmd_dir, name):
    use(renderer, mmd_dir / name)
    left, rest, right = (eye_centroid_x(renderer, head_y=v) for v in (-1.0, 0.0, 1.0))
    # head_y > 0 turns the face towards the character's left = the image's right
    assert left < rest - 2 and right > rest + 2, (left, rest, right)


def test_procedural_character(renderer, character):
    from mmd_loader import detect_face, load

    model = load(character)
    roles = detect_face(model)
    assert roles.usable, roles.problems
    renderer.set_model(model, roles)
    rest = renderer.render(Pose())
    middle = face_center_px(renderer, roles)
    _, xs = np.nonzero(changed(rest, renderer.render(tha1(renderer, left_eye=1.0))))
    assert len(xs) > 10 and xs.min() > middle - 1.5
    assert eye_centroid_x(renderer, head_y=1.0) > eye_centroid_x(renderer, head_y=-1.0) + 4


def test_pmd_and_pmx_miku_render_alike(renderer, mmd_dir):
    values = dict(left_eye=0.5, mouth=0.7, head_x=0.3, head_y=-0.6, neck_z=0.4)
    use(renderer, mmd_dir / MIKU_PMD)
    pmd = renderer.render(tha1(renderer, **values)).astype(float)
    use(renderer, mmd_dir / MIKU_PMX)
    pmx = renderer.render(tha1(renderer, **values)).astype(float)
    # Measured 0.0 on this machine: the files hold the same mesh, so anything above rounding
    # noise (texture decoding, float order) means the two loaders or the renderer disagree.
    assert np.abs(pmd - pmx).mean() < 0.5


def test_same_pose_gives_identical_bytes(renderer, mmd_dir):
    use(renderer, mmd_dir / MIKU_PMD)
    pose = tha1(renderer, right_eye=0.3, mouth=0.2, head_x=-0.7, head_y=0.1, neck_z=-0.9)
    first = renderer.render(pose).tobytes()
    assert renderer.render(pose).tobytes() == first
    renderer.render(tha1(renderer, left_eye=1.0, head_y=1.0))
    assert renderer.render(pose).tobytes() == first
    use(renderer, mmd_dir / MIKU_PMX)
    use(renderer, mmd_dir / MIKU_PMD)  # a fresh upload of the same model
    assert renderer.render(pose).tobytes() == first


def test_a_bone_outside_the_head_moves_and_comes_back(renderer, mmd_dir):
    use(renderer, mmd_dir / MIKU_PMD)
    rest = renderer.render(Pose()).tobytes()
    arm = renderer.render(Pose(rotations={"左腕": (0.0, 0.0, 40.0)}))
    assert arm.tobytes() != rest
    assert renderer.render(Pose()).tobytes() == rest


def test_toon_shading_with_outline(mmd_dir):
    settings = RenderSettings(size=SIZE, shading="toon", outline=True)
    with Renderer(settings) as r:
        use(r, mmd_dir / MIKU_PMD)
        toon = r.render(Pose())
    assert not toon[toon[:, :, 3] == 0].any()
    with Renderer(RenderSettings(size=SIZE, shading="toon")) as r:
        use(r, mmd_dir / MIKU_PMD)
        plain = r.render(Pose())
    outline = changed(toon, plain)
    assert outline.sum() > 200  # the outline draws dark pixels along the silhouette
    assert toon[outline][:, :3].mean() < plain[outline][:, :3].mean()


def test_switching_models_does_not_grow_memory(tmp_path):
    """200 set_model calls over a few procedural characters: RSS stays bounded."""
    from mmd_loader import detect_face, load
    from mmd_loader.procedural import write_character

    models = []
    for seed in range(4):
        model = load(write_character(seed, tmp_path / f"c{seed}" / "c.pmx"))
        models.append((model, detect_face(model)))

    def rss_mb() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        pytest.skip("no /proc/self/status")

    with Renderer(RenderSettings(size=128)) as r:
        for i in range(200):
            r.set_model(*models[i % len(models)])
            r.render(tha1(r, left_eye=(i % 5) / 4))
            if i == 40:
                start = rss_mb()
        growth = rss_mb() - start
    assert growth < 25, f"RSS grew {growth:.1f} MB over 160 model switches"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "thagen.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_render_preview_and_errors(tmp_path, mmd_dir, character):
    out = tmp_path / "pose.png"
    done = run_cli(
        "render", str(mmd_dir / MIKU_PMD), "--pose", "left_eye=1,head_y=-0.4", "-o", str(out)
    )
    assert done.returncode == 0, done.stderr
    from PIL import Image

    image = np.asarray(Image.open(out))
    assert image.shape == (256, 256, 4) and image[0, 0].tolist() == [0, 0, 0, 0]

    sheet = tmp_path / "sheet.png"
    done = run_cli("preview", str(character), "-o", str(sheet), "--size", "128")
    assert done.returncode == 0, done.stderr
    assert Image.open(sheet).size[0] == 4 * 128

    unusable = require_mmd_dir() / "yw_test_model_cc0" / "yw_test_model.pmx"
    done = run_cli("render", str(unusable), "-o", str(tmp_path / "x.png"))
    assert done.returncode == 2 and "no morph closes the left eye" in done.stderr
    done = run_cli("render", str(mmd_dir / MIKU_PMD), "--pose", "smile=1", "-o", str(out))
    assert done.returncode == 2 and "--pose" in done.stderr


def test_cli_render_sequence(tmp_path, character):
    csv = tmp_path / "poses.csv"
    rows = ["frame,time,tracked,left_eye,right_eye,mouth,head_x,head_y,neck_z"]
    for i in range(6):
        rows.append(f"{i},{i / 10:.6f},1,{i / 5:.6f},0,0,0,0,{(i - 3) / 3:.6f}")
    csv.write_text("\n".join(rows) + "\n")
    gif = tmp_path / "anim.gif"
    done = run_cli("render", str(character), "--sequence", str(csv), "-o", str(gif), "--size", "64")
    assert done.returncode == 0, done.stderr
    from PIL import Image

    with Image.open(gif) as animation:
        assert animation.n_frames == 6
