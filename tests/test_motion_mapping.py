"""Motions onto schemas: a VMD written in code for procedural characters whose truth is known
(which eye each wink closes, which side each shape moves, whatever the names say) becomes the
expected pose values; the one real VMD with its model; ARKit names; VPD poses; `thagen motion`,
`render --sequence X.vmd` and `pose --sequence X.vmd --model` all take the same road."""

from __future__ import annotations

import dataclasses
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from characters import build_character, spec_for_seed, tha3_spec, write_character
from mmd_loader import detect_face, load
from mmd_loader.motion import load_motion, parse_motion
from mmd_loader.motion_schema import MotionMapping, MotionSequence
from mmd_loader.pmx_writer import write_pmx
from mmd_loader.vmd import VmdBoneFrame, VmdMorphFrame, encode_vmd
from poses.schema import load_schema
from poses.sequence import read_sequence
from thagen.cli import main

SEED = 1  # its left eye's neutral wink is named ウィンク右; 笑い and 困る pairs are misnamed
SPEC, THA3 = spec_for_seed(SEED), tha3_spec(SEED)
LEFT_NEUTRAL, LEFT_SMILE = SPEC.wink_names("left")
RIGHT_NEUTRAL, RIGHT_SMILE = SPEC.wink_names("right")
SMILE_LEFT_MOVER = THA3.pairs["smile_eyes"][0]  # named like the right side
TROUBLED_LEFT_MOVER = THA3.pairs["troubled"][0]
UUU, SMIRK = THA3.names["uuu"], THA3.names["smirk"]
TOL = 2e-6  # 6 decimals in the CSV (5e-7) plus float32 keys (under 1e-6 of 15°)


def _q(axis: int, degrees: float) -> tuple[float, ...]:
    """MMD's quaternion (its own left-handed frame) for a turn about one axis."""
    h = math.radians(degrees) / 2
    q = [0.0, 0.0, 0.0, math.cos(h)]
    q[axis] = math.sin(h)
    return tuple(q)


def _mmd(x: float, y: float) -> tuple[float, ...]:
    """MMD's quaternion of Ry(y) · Rx(x) in thagen's right-handed frame (degrees): the product
    of the two turns, mirrored back ((x, y, z, w) → (-x, -y, z, w))."""
    hy, hx = math.radians(y) / 2, math.radians(x) / 2
    cy, sy, cx, sx = math.cos(hy), math.sin(hy), math.cos(hx), math.sin(hx)
    qx, qy, qz, qw = cy * sx, sy * cx, -sy * sx, cy * cx  # (0, sy, 0, cy) ⊗ (sx, 0, 0, cx)
    return (-qx, -qy, qz, qw)


def _pulse(name: str, frame: int, weight: float = 1.0) -> list[VmdMorphFrame]:
    """0 a frame before and after, `weight` at `frame`."""
    return [
        VmdMorphFrame(name, frame - 1, 0.0),
        VmdMorphFrame(name, frame, weight),
        VmdMorphFrame(name, frame + 1, 0.0),
    ]


def _turn(name: str, frame: int, rotation: tuple[float, ...]) -> list[VmdBoneFrame]:
    return [
        VmdBoneFrame(name, frame - 1),
        VmdBoneFrame(name, frame, rotation=rotation),
        VmdBoneFrame(name, frame + 1),
    ]


# frame: (morph pulses, bone turns, expected tha1, expected tha3); unnamed parameters are 0
SCRIPT = {
    10: ([("まばたき", 0.5)], [], {"left_eye": 0.5, "right_eye": 0.5},
         {"eye_wink_left": 0.5, "eye_wink_right": 0.5}),
    20: ([(LEFT_NEUTRAL, 1.0)], [], {"left_eye": 1.0}, {"eye_wink_left": 1.0}),
    30: ([(RIGHT_SMILE, 1.0)], [], {"right_eye": 1.0}, {"eye_happy_wink_right": 1.0}),
    40: ([(SMILE_LEFT_MOVER, 1.0)], [], {"left_eye": 1.0}, {"eye_happy_wink_left": 1.0}),
    50: ([(TROUBLED_LEFT_MOVER, 0.75)], [], {}, {"eyebrow_troubled_left": 0.75}),
    60: ([(UUU, 1.0), ("あ", 0.25)], [], {"mouth": 0.25}, {"mouth_uuu": 1.0, "mouth_aaa": 0.25}),
    70: ([("まばたき", 1.0), (LEFT_NEUTRAL, 0.5)], [], {"left_eye": 1.0, "right_eye": 1.0},
         {"eye_wink_left": 1.0, "eye_wink_right": 1.0}),  # 1.5 clipped to 1
    80: ([], [("頭", _mmd(3.75, -7.5))], {"head_x": 0.25, "head_y": -0.5},
         {"head_x": 0.25, "head_y": -0.5}),
    # MMD's +7.5° about its y and x are -7.5° in thagen's frame; about z, +7.5°
    90: ([], [("首", _q(2, 7.5))], {"neck_z": 0.5}, {"neck_z": 0.5}),
    100: ([], [("首", _q(0, 7.5))], {"head_x": -0.5}, {"head_x": -0.5}),  # the neck's nod
    110: ([], [("上半身", _q(1, 7.5))], {}, {"body_y": -0.5}),
    120: ([], [("両目", _q(0, 6.0))], {}, {"iris_rotation_x": -0.5}),  # 両目 turns both eyes
    130: ([(SMIRK, 1.0), ("存在しない", 1.0)], [], {}, {"mouth_smirk": 1.0}),
    # the model has 笑いR and 笑いL (misnamed): a motion's 笑い reaches both
    140: ([("笑い", 1.0)], [], {"left_eye": 1.0, "right_eye": 1.0},
          {"eye_happy_wink_left": 1.0, "eye_happy_wink_right": 1.0}),
}  # fmt: skip
ROWS = max(SCRIPT) + 2  # frames 0..last key


def dance() -> bytes:
    bones, morphs = [], []
    for frame, (pulses, turns, _, _) in SCRIPT.items():
        for name, weight in pulses:
            morphs += _pulse(name, frame, weight)
        for name, rotation in turns:
            bones += _turn(name, frame, rotation)
    return encode_vmd("procedural", bones, morphs)


@pytest.fixture(scope="module")
def character(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("motion")
    model_path = write_character(SEED, root / "c" / "character.pmx")
    motion_path = root / "dance.vmd"
    motion_path.write_bytes(dance())
    model = load(model_path)
    return {"root": root, "model": model_path, "motion": motion_path, "loaded": model}


def _expected(schema_name: str, frame: int) -> dict[str, float]:
    column = 2 if schema_name == "tha1" else 3
    values = load_schema(schema_name).neutral()
    values.update(SCRIPT[frame][column] if frame in SCRIPT else {})
    return values


@pytest.mark.numeric
@pytest.mark.parametrize("schema", ["tha1", "tha3"])
def test_thagen_motion_gives_the_known_values(character, tmp_path, schema, capsys):
    out = tmp_path / "poses.csv"
    args = ["motion", str(character["motion"]), "--model", str(character["model"])]
    assert main([*args, "--schema", schema, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    sequence = read_sequence(out, load_schema(schema))
    assert len(sequence) == ROWS and sequence.fps == 30.0
    for frame in [0, 5, *SCRIPT]:
        got = sequence.pose(frame)
        want = _expected(schema, frame)
        bad = {k: (got[k], v) for k, v in want.items() if abs(got[k] - v) > TOL}
        assert not bad, f"frame {frame}: {bad}"
    unused = f"{SMIRK}, 存在しない (not in the model)" if schema == "tha1" else "存在しない (not"
    assert unused in printed
    assert "clipped to the range:" in printed and "1 frames (up to +1.50)" in printed


@pytest.mark.numeric
def test_rendering_the_motion_equals_rendering_the_values(character, tmp_path, capsys):
    """Each scripted frame of the motion, as `render --sequence dance.vmd` draws it, is the
    render of the expected values; the CLI draws every frame and says what it clipped."""
    from render import Renderer, RenderSettings

    schema = load_schema("tha1")
    model = character["loaded"]
    roles = detect_face(model)
    sequence = MotionSequence(
        MotionMapping.build(schema, model, roles), load_motion(character["motion"])
    )
    rows = list(sequence)
    with Renderer(RenderSettings(size=64)) as renderer:
        renderer.set_model(model, roles, schema)
        binding = renderer.bind(schema)
        for frame in [0, *SCRIPT]:
            got = renderer.render(binding.pose(rows[frame].values))
            want = renderer.render(binding.pose(_expected("tha1", frame)))
            # float32 keys move vertices by ~1e-7 units: a rare edge pixel may flip, no more
            differ = np.any(got != want, axis=-1)
            assert differ.mean() < 1e-3, f"frame {frame}: {differ.sum()} pixels differ"
        rest = renderer.render(binding.pose(rows[0].values))
        assert np.any(renderer.render(binding.pose(rows[10].values)) != rest)  # the blink shows
    out = tmp_path / "dance.gif"
    args = ["render", str(character["model"]), "--sequence", str(character["motion"])]
    assert main([*args, "--size", "48", "-o", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"({ROWS} frames at 30 fps)" in printed and "left_eye 1 frames (up to +1.50)" in printed


def test_pose_sequence_takes_a_motion_with_its_model(character, tmp_path, monkeypatch):
    """`thagen pose --sequence dance.vmd --model M` poses the drawing frame by frame with the
    values `thagen motion` writes (the networks replaced by one that records its poses)."""
    torch = pytest.importorskip("torch")
    from training import posing

    names = load_schema("tha1").names
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, image, pose):
            seen.append(pose[0].tolist())
            return image

    class Rotator(torch.nn.Module):
        def forward(self, image, pose):
            turns.append(pose[0].tolist())
            return image, image

    turns: list = []
    schema = load_schema("tha1").to_json()
    poser = posing.Poser(Recorder(), names[:3], Rotator(), names[3:], None, 32, schema=schema)
    monkeypatch.setattr(posing.Poser, "load", classmethod(lambda cls, paths, device: poser))
    image = tmp_path / "face.png"
    Image.fromarray(np.zeros((32, 32, 4), np.uint8), "RGBA").save(image)
    base = ["pose", "--checkpoints", str(tmp_path), "--image", str(image), "-o"]
    argv = [*base, str(tmp_path / "a.gif"), "--sequence", str(character["motion"])]
    assert main(argv) == 2  # a motion needs its model
    assert main([*argv, "--model", str(character["model"])]) == 0
    morphs = np.array(seen)
    assert morphs.shape == (ROWS, 3) and len(turns) == ROWS
    np.testing.assert_allclose(morphs[70], [1.0, 1.0, 0.0], atol=TOL)
    np.testing.assert_allclose(morphs[20], [1.0, 0.0, 0.0], atol=TOL)
    np.testing.assert_allclose(turns[80], [0.25, -0.5, 0.0], atol=TOL)


@pytest.mark.numeric
def test_a_vpd_is_one_row(character, tmp_path):
    text = (
        "Vocaloid Pose Data file\n\nc.osm;\n1;\n\n"
        f"Bone0{{頭\n0,0,0;\n{','.join(f'{v:.6f}' for v in _q(1, 7.5))};\n}}\n\n"
        f"Morph0{{{LEFT_NEUTRAL}\n0.5;\n}}\n"
    )
    path = tmp_path / "pose.vpd"
    path.write_bytes(text.encode("cp932"))
    model = character["loaded"]
    mapping = MotionMapping.build(load_schema("tha1"), model, detect_face(model))
    rows = list(MotionSequence(mapping, load_motion(path)))
    assert len(rows) == 1 and rows[0].time == 0.0
    got = rows[0].values
    assert got["left_eye"] == pytest.approx(0.5) and got["right_eye"] == 0.0
    assert got["head_y"] == pytest.approx(-0.5, abs=TOL)


def _arkit_character(folder: Path) -> tuple[Path, dict[str, str]]:
    """Procedural character 5 with its morphs renamed to ARKit's ("perfect sync") names, the
    sides swapped where it matters: geometry must decide. Returns (model, truth)."""
    seed = 5
    spec, tha3 = spec_for_seed(seed), tha3_spec(seed)
    smile_left, smile_right = tha3.pairs["raised_corner"]  # moves the left, the right corner
    rename = {
        spec.wink_names("left")[0]: "eyeBlinkRight",  # closes the LEFT eye
        spec.wink_names("right")[0]: "eyeBlinkLeft",
        "あ": "jawOpen",
        tha3.names["troubled"]: "browInnerUp",
        smile_left: "mouthSmileRight",  # raises the LEFT corner
        smile_right: "mouthSmileLeft",
        tha3.names["uuu"]: "mouthPucker",
    }
    data, _ = build_character(spec, "tex")
    morphs = [dataclasses.replace(m, name=rename.get(m.name, m.name)) for m in data.morphs]
    path = write_pmx(folder / "arkit.pmx", dataclasses.replace(data, morphs=morphs))
    truth = {
        "eyeBlinkRight": "eye_wink_left",
        "eyeBlinkLeft": "eye_wink_right",
        "jawOpen": "mouth_aaa",
        "mouthSmileRight": "mouth_raised_corner_left",
        "mouthSmileLeft": "mouth_raised_corner_right",
        "mouthPucker": "mouth_uuu",
    }
    return path, truth


def test_arkit_names_are_understood_and_geometry_decides_sides(tmp_path):
    path, truth = _arkit_character(tmp_path)
    model = load(path)
    roles = detect_face(model)
    assert roles.usable, roles.problems
    mapping = MotionMapping.build(load_schema("tha3"), model, roles)
    for morph, parameter in truth.items():
        assert mapping.morphs[morph] == [parameter], morph
    assert mapping.morphs["browInnerUp"] == ["eyebrow_troubled_left", "eyebrow_troubled_right"]
    tha1 = MotionMapping.build(load_schema("tha1"), model, roles)
    assert tha1.morphs["eyeBlinkRight"] == ["left_eye"] and tha1.morphs["jawOpen"] == ["mouth"]


# --- the real VMD -----------------------------------------------------------------------------


def _raw_rotations(path: Path) -> dict[str, tuple[float, float, float, float]]:
    """Each bone's frame-0 quaternion as the file stores it (read here without the reader)."""
    data = path.read_bytes()
    count, at, out = struct.unpack_from("<I", data, 50)[0], 54, {}
    for _ in range(count):
        name = data[at : at + 15].split(b"\0")[0].decode("cp932")
        frame = struct.unpack_from("<I", data, at + 15)[0]
        if frame == 0:
            out[name] = struct.unpack_from("<4f", data, at + 31)
        at += 111
    return out


def _angles(q) -> np.ndarray:
    """Ry·Rx·Rz Euler angles (degrees) of an MMD quaternion, mirrored to the right-handed frame."""
    x, y, z, w = -q[0], -q[1], q[2], q[3]
    m12 = 2 * (y * z - x * w)
    m02, m22 = 2 * (x * z + y * w), 1 - 2 * (x * x + y * y)
    m10, m11 = 2 * (x * y + z * w), 1 - 2 * (x * x + z * z)
    return np.degrees([math.asin(-m12), math.atan2(m02, m22), math.atan2(m10, m11)])


@pytest.mark.numeric
def test_the_real_vmd_on_its_model(mmd_dir):
    folder = mmd_dir / "j3_animasa_miku_pmx"
    motion = load_motion(folder / "im5066365.vmd")
    assert motion.model_name == "初音ミク" and motion.last_frame == 1
    assert len(motion.bone_names) == 82 and len(motion.morph_names) == 15
    assert motion.ik_keys == 1 and not motion.warnings
    raw = _raw_rotations(folder / "im5066365.vmd")
    model = load(folder / "index.pmx")
    roles = detect_face(model)
    head = _angles(raw["頭"])
    assert abs(head[0]) > 1.0  # the pose tilts the head back (chin up) and turns nothing else
    for name in ("首", "上半身", "両目", "左目", "右目"):
        assert raw[name] == (0.0, 0.0, 0.0, 1.0)  # (センター and 下半身 are not the face's)
    for name in ("tha1", "tha3"):
        schema = load_schema(name)
        sequence = MotionSequence(MotionMapping.build(schema, model, roles), motion)
        rows = [f.values for f in sequence]
        assert len(rows) == 2 and rows[0] == pytest.approx(rows[1])
        got = rows[0]
        assert got["head_x"] == pytest.approx(head[0] / 15, abs=TOL) and head[0] < 0
        others = {k: v for k, v in got.items() if k != "head_x"}
        assert set(others.values()) == {0.0}  # every morph key of this pose is 0
        if name == "tha3":
            assert "困る" not in sequence.report.unused  # tha3 has troubled brows
        else:
            unused = ["真面目", "困る", "にこり", "怒り", "い", "う", "お", "にやり", "上", "下"]
            assert sequence.report.unused == unused and not sequence.report.missing


@pytest.mark.numeric
def test_a_head_named_otherwise_takes_the_standard_track(tmp_path):
    """A model whose head and neck bones are `head` and `neck` (found by detection) is turned by
    a motion's 頭 and 首 tracks, MMD's standard names; its own names win when the motion has
    them."""
    data, _ = build_character(spec_for_seed(2), "tex")
    rename = {"頭": "head", "首": "neck"}
    bones = [dataclasses.replace(b, name=rename.get(b.name, b.name)) for b in data.bones]
    model = load(write_pmx(tmp_path / "named.pmx", dataclasses.replace(data, bones=bones)))
    roles = detect_face(model)
    assert model.bones[roles.head].name == "head" and model.bones[roles.neck].name == "neck"
    mapping = MotionMapping.build(load_schema("tha1"), model, roles)
    standard = [
        VmdBoneFrame("頭", 0, rotation=_q(1, 7.5)),
        VmdBoneFrame("首", 0, rotation=_q(2, 3)),
    ]
    own = [*standard, VmdBoneFrame("head", 0, rotation=_q(1, -3.75))]
    for keys, head_y, neck_z in ((standard, -0.5, 0.2), (own, 0.25, 0.2)):
        motion = parse_motion(encode_vmd("m", keys), Path("m.vmd"))
        row = next(iter(MotionSequence(mapping, motion))).values
        assert row["head_y"] == pytest.approx(head_y, abs=TOL)
        assert row["neck_z"] == pytest.approx(neck_z, abs=TOL)
