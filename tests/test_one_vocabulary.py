"""One pose vocabulary: a schema's `degrees` reach the pixels by one road, whichever command
draws them — `render --pose`, `render --sequence`, `generate` — and the tracker scales by it."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from poses.schema import load_schema
from thagen.cli import main

DEGREES = 30.0  # instead of THA1's 15
SIZE = 64


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    from characters import write_character

    root = tmp_path_factory.mktemp("vocabulary")
    model = write_character(4, root / "models" / "c" / "character.pmx")
    data = load_schema("tha1").to_data()
    data["name"] = "tha1_wide"
    for p in data["parameters"]:
        if p["kind"] == "rotation":
            p["degrees"] = DEGREES
    schema = root / "tha1_wide.yaml"
    schema.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return {"root": root, "model": model, "schema": schema}


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _render(setup: dict, out: Path, pose: str, schema: str = "tha1") -> np.ndarray:
    args = ["render", str(setup["model"]), "--pose", pose, "--size", str(SIZE)]
    assert main([*args, "--schema", schema, "-o", str(out)]) == 0
    return _png(out)


@pytest.mark.numeric
def test_render_pose_and_sequence_follow_the_schema_degrees(setup, tmp_path):
    wide = str(setup["schema"])
    half = _render(setup, tmp_path / "half.png", "head_y=0.5,neck_z=-0.5", wide)
    full = _render(setup, tmp_path / "full.png", "head_y=1,neck_z=-1")
    assert np.array_equal(half, full)  # 0.5 × 30° is 1 × 15°
    narrow = _render(setup, tmp_path / "tha1.png", "head_y=0.5,neck_z=-0.5")
    assert not np.array_equal(half, narrow)
    csv = tmp_path / "poses.csv"
    csv.write_text(
        "frame,time,tracked,left_eye,right_eye,mouth,head_x,head_y,neck_z\n"
        "0,0.0,1,0,0,0,0,0.5,-0.5\n1,0.1,1,0,0,0,0,0.5,-0.5\n"
    )
    out = tmp_path / "anim.mp4"
    args = ["render", str(setup["model"]), "--sequence", str(csv), "--size", str(SIZE)]
    assert main([*args, "--schema", wide, "-o", str(out), "--no-progress"]) == 0
    from media.video import read_frames

    frames, _ = read_frames(out)

    def distance(rgba: np.ndarray) -> float:
        alpha = rgba[..., 3:4] / 255.0
        over_white = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)  # as the mp4 frames are
        return float(np.abs(frames[0].astype(float) - over_white).mean())

    assert distance(full) < 0.5 * distance(narrow)  # h264 is lossy: the nearer render


def test_generate_follows_the_schema_degrees(setup, tmp_path):
    from mmd_loader import detect_face, load
    from render import Lighting, Pose, Renderer, RenderSettings

    out = tmp_path / "dataset"
    args = ["generate", "--models", str(setup["root"] / "models"), "-o", str(out)]
    args += ["--schema", str(setup["schema"]), "--examples", "2", "--size", str(SIZE)]
    assert main([*args, "--no-progress", "--workers", "1"]) == 0
    info = json.loads((out / "dataset.json").read_text())
    assert info["schema"]["name"] == "tha1_wide"
    shard = next(out.glob("*.tar"))
    with tarfile.open(shard) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar}
    key = sorted(k for k in members if k.endswith(".json"))[0].removesuffix(".json")
    record = json.loads(members[f"{key}.json"])
    pose, light = record["pose"], Lighting(**record["lighting"])
    model = load(setup["model"])
    with Renderer(RenderSettings(size=SIZE)) as renderer:
        renderer.set_model(model, detect_face(model))
        morphs = {n: pose[n] for n in ("left_eye", "right_eye", "mouth")}
        rotations = {
            "head": (pose["head_x"] * DEGREES, pose["head_y"] * DEGREES, 0.0),
            "neck": (0.0, 0.0, pose["neck_z"] * DEGREES),
        }
        expected = renderer.render(Pose(morphs, rotations), light)
    posed = np.asarray(Image.open(io.BytesIO(members[f"{key}.posed.png"])))
    assert np.array_equal(posed, expected)


@pytest.mark.numeric
def test_the_trackers_scaling_follows_the_schema_degrees(setup):
    from tracking.geometry import FaceFeatures, rotation_from_euler
    from tracking.track import poses_from_features

    still = FaceFeatures(0.3, 0.3, 0.1, np.eye(3))
    turned = FaceFeatures(0.3, 0.3, 0.1, rotation_from_euler(6.0, -3.0, 9.0))
    features = [still] * 10 + [turned]
    wide = load_schema(setup["schema"])
    for schema, degrees in ((load_schema("tha1"), 15.0), (wide, DEGREES)):
        result = poses_from_features(features, 10.0, smoothing=None, schema=schema)
        last = result.sequence.pose(len(features) - 1)
        assert result.sequence.names == tuple(schema.names)
        assert last["head_x"] == pytest.approx(6.0 / degrees)
        assert last["head_y"] == pytest.approx(-3.0 / degrees)
        assert last["neck_z"] == pytest.approx(9.0 / degrees)
