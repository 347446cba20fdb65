"""`generate --schema tha3` end to end on procedural characters: THA3 framing by default, the
three images as the schema says, nulls and coverage in the report; training takes its pose
channels from dataset.json (39 for the morpher, 6 for the rotator); the tracker drives what it
can measure of tha3."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from poses.schema import load_schema
from thagen.cli import main

SCHEMA = load_schema("tha3")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("tha3") / "data"
    args = ["dataset-default", "--out", str(out), "--schema", "tha3", "--characters", "4"]
    args += ["--held-out", "1", "--examples", "3", "--workers", "1", "--no-progress"]
    assert main([*args, "--size", "128"]) == 0
    return out


def _members(dataset) -> dict[str, dict[str, bytes]]:
    out: dict[str, dict[str, bytes]] = {}
    for shard in sorted(dataset.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for m in tar.getmembers():
                key, _, part = m.name.partition(".")
                out.setdefault(key, {})[part] = tar.extractfile(m).read()
    return out


def _image(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def test_dataset_json_records_what_training_needs(dataset):
    info = json.loads((dataset / "dataset.json").read_text())
    schema = info["schema"]
    assert schema["name"] == "tha3" and len(schema["parameters"]) == 45
    assert schema["framing"]["head_center"] == [0.5, 0.25]
    assert schema["framing"]["morpher_crop"] == 1.5
    assert info["image_size"] == 128 and info["config"]["head_fraction"] == 0.25
    images = [p["image"] for p in schema["parameters"]]
    assert images.count("expression") == 39 and images[39:] == ["posed"] * 6
    assert all({"name", "kind", "range"} <= set(p) for p in schema["parameters"])


@pytest.mark.numeric
def test_images_as_the_schema_says(dataset):
    """The expression image shows morphs and the irises' turn but not the head or body; the
    posed image adds them. Values the characters have are never null."""
    examples = _members(dataset)
    assert len(examples) == 12
    for key, parts in examples.items():
        record = json.loads(parts["json"])
        assert set(record["pose"]) == set(SCHEMA.names)
        lacking = {n for n, v in record["pose"].items() if v is None}
        assert lacking <= {"eye_happy_wink_left", "eye_happy_wink_right"}  # no smile closure
        rest, expression, posed = (
            _image(parts[f"{p}.png"]) for p in ("rest", "expression", "posed")
        )
        assert rest.shape == (128, 128, 4) and (rest[rest[..., 3] == 0] == 0).all()
        face = np.s_[16:48, 48:80]  # the head box: the middle of the top half
        assert (expression[face] != rest[face]).any(), key
        below = np.s_[80:, :]
        moved = (np.abs(posed[below].astype(int) - expression[below].astype(int)) > 8).any(-1)
        still = (np.abs(expression[below].astype(int) - rest[below].astype(int)) > 8).any(-1)
        assert moved.mean() > 0.01 and still.mean() < 0.002, (key, moved.mean(), still.mean())


def test_the_default_framing_is_the_schema_s(tmp_path):
    from pipeline.config import GenerateConfig

    assert (
        GenerateConfig(schema="tha3").image_size,
        GenerateConfig(schema="tha3").head_fraction,
    ) == (
        512,
        0.25,
    )
    assert (GenerateConfig().image_size, GenerateConfig().head_fraction) == (256, 0.5)
    config = GenerateConfig(schema="tha3", image_size=256, head_fraction=0.3)
    assert (config.image_size, config.head_fraction) == (256, 0.3)
    assert GenerateConfig.from_json(config.to_json()) == config


def test_report_shows_coverage_and_samples(dataset, tmp_path):
    out = tmp_path / "report.html"
    assert main(["report", str(dataset), "-o", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "<h2>Coverage</h2>" in page and "iris_rotation_x" in page and "4/4" in page
    # procedural characters have a smile wink per eye (found by the closed lid's shape)
    assert "eye_happy_wink_left</td><td class=n>4/4" in page
    assert page.count('class="sample"') >= 4
    from pipeline.report import coverage

    manifest = pd.read_parquet(dataset / "manifest.parquet")
    manifest.loc[manifest["character"] == manifest["character"].iloc[0], "mouth_smirk"] = None
    counted = coverage(manifest, ["mouth_smirk", "breathing"])
    assert counted["mouth_smirk"] == (3, [manifest["character"].iloc[0]])
    assert counted["breathing"] == (4, [])


def test_training_takes_its_channels_from_the_schema(dataset, tmp_path):
    torch = pytest.importorskip("torch")
    from dataclasses import replace

    from training.configs import CONFIGS
    from training.data import DatasetInfo, ShardStream, view_crop
    from training.images import tensor_to_array
    from training.trainer import train

    info = DatasetInfo.load(dataset)
    assert info.pose_names("morpher") == SCHEMA.names[:39]
    assert info.pose_names("rotator") == SCHEMA.names[39:]
    # The morpher sees THA3's face crop: columns 160-352 and rows 32-224 of 512 (here of 128).
    assert view_crop(info.schema, "morpher") == (0.3125, 0.0625, 0.6875, 0.4375)
    assert view_crop(info.schema, "rotator") is None
    stream = ShardStream(dataset, "train", "morpher", size=48, batch_size=2, shuffle=False)
    batch = next(iter(stream))
    assert batch["pose"].shape == (2, 39) and batch["input"].shape == (2, 4, 48, 48)
    key = batch["key"][0]
    rest = next(p for k, p in _members(dataset).items() if k == key)["rest.png"]
    face = np.asarray(Image.open(io.BytesIO(rest)).convert("RGBA"))[8:56, 40:88]
    np.testing.assert_array_equal(tensor_to_array(batch["input"][0]), face)
    whole = next(iter(ShardStream(dataset, "train", "rotator", size=32, batch_size=2)))
    assert whole["pose"].shape == (2, 6) and whole["input"].shape == (2, 4, 32, 32)
    torch.set_num_threads(2)
    small = CONFIGS["cpu-small"]
    tiny = replace(
        small,
        network=replace(small.network, image_size=32, base_channels=8, max_channels=16),
        batch_size=2,
        log_every=1,
        sample_every=100,
        checkpoint_every=100,
    )
    runs = []
    for network, channels in (("morpher", 39), ("rotator", 6)):
        result = train(network, dataset, tmp_path / network, tiny, steps=2, log=lambda _: None)
        state = json.loads((result.checkpoint / "state.json").read_text())
        assert len(state["pose_names"]) == channels
        runs.append(str(tmp_path / network))
    # `thagen pose` takes tha3's names (from the checkpoints' schema) and checks their ranges.
    rest = Image.open(io.BytesIO(next(iter(_members(dataset).values()))["rest.png"]))
    rest.resize((512, 512)).save(tmp_path / "face.png")  # THA3's input size
    args = ["pose", "--checkpoints", *runs, "--image", str(tmp_path / "face.png")]
    out = tmp_path / "posed.png"
    assert (
        main([*args, "--pose", "iris_rotation_y=1,eye_wink_left=1,body_y=-0.5", "-o", str(out)])
        == 0
    )
    assert out.is_file()
    assert main([*args, "--pose", "breathing=2", "-o", str(out)]) == 2
    # The morpher poses the face crop only: with the morpher alone, nothing outside it changes.
    from training.posing import Poser

    poser = Poser.load([tmp_path / "morpher"])
    image = torch.rand(4, 32, 32) * 2 - 1
    posed = poser.pose(image, {"eye_wink_left": 1.0, "mouth_aaa": 1.0})
    inside = torch.zeros(32, 32, dtype=torch.bool)
    inside[2:14, 10:22] = True  # 32 × (0.0625..0.4375, 0.3125..0.6875)
    assert torch.equal(posed[:, ~inside], image[:, ~inside])
    assert not torch.equal(posed[:, inside], image[:, inside])


def test_tracker_drives_what_the_face_mesh_measures():
    from tracking.calibrate import MEASUREMENTS
    from tracking.mapping import PoseMapper

    mapper = PoseMapper(SCHEMA)
    assert mapper.driven == [
        "eyebrow_raised_left",
        "eyebrow_raised_right",
        "eye_wink_left",
        "eye_wink_right",
        "mouth_aaa",
        "iris_rotation_x",
        "iris_rotation_y",
        "head_x",
        "head_y",
        "neck_z",
    ]
    m = dict.fromkeys(MEASUREMENTS, 0.0)
    m.update(left_eye=1.0, pitch=7.5, left_brow_raise=0.5, iris_pitch=-0.4, iris_yaw=0.25)
    values = dict(zip(SCHEMA.names, mapper(np.array([m[k] for k in MEASUREMENTS])), strict=True))
    assert values["eye_wink_left"] == 1.0 and values["eye_wink_right"] == 0.0
    assert values["head_x"] == 0.5 and values["eyebrow_raised_left"] == 0.5
    assert values["iris_rotation_x"] == -0.4 and values["iris_rotation_y"] == 0.25
    assert values["body_y"] == values["breathing"] == values["mouth_iii"] == 0.0


@pytest.fixture(scope="module")
def astronaut_landmarks() -> np.ndarray:
    pytest.importorskip("mediapipe")
    from skimage import data

    from tracking.landmarks import FaceLandmarker

    with FaceLandmarker(static_image_mode=True) as landmarker:
        points = landmarker(data.astronaut())
    assert points is not None and points.shape[0] == 478
    return points


@pytest.mark.numeric
def test_brow_and_gaze_measurements_on_real_landmarks(astronaut_landmarks):
    """On the astronaut's real FaceMesh landmarks: lifting the person's left brow raises
    left_brow_raise only; moving both irises to the image's right (the person's left) or down
    gives iris_yaw > 0 or iris_pitch > 0; turning the whole head in the image plane leaves the
    gaze where it was (it is measured in the head's frame)."""
    from tracking.calibrate import MEASUREMENTS, measure, neutral_from
    from tracking.geometry import LEFT_BROW, LEFT_EYE, RIGHT_EYE, face_features

    points = astronaut_landmarks
    neutral = neutral_from([face_features(points)], [0.0])
    span = np.linalg.norm(points[LEFT_EYE["outer"]] - points[RIGHT_EYE["outer"]])

    def measured(moved: np.ndarray) -> dict[str, float]:
        return dict(zip(MEASUREMENTS, measure(face_features(moved), neutral), strict=True))

    brow = points.copy()
    brow[list(LEFT_BROW), 1] -= 0.03 * span  # pixels: y grows downwards
    m = measured(brow)
    assert 0.3 < m["left_brow_raise"] < 0.7 and m["right_brow_raise"] == 0.0
    eye_width = np.linalg.norm(points[LEFT_EYE["outer"]] - points[LEFT_EYE["inner"]])
    for axis, sign, name in ((0, 1, "iris_yaw"), (0, -1, "iris_yaw"), (1, 1, "iris_pitch")):
        gaze = points.copy()
        gaze[468:478, axis] += sign * 0.1 * eye_width
        m = measured(gaze)
        assert sign * m[name] > 0.3, (name, sign, m[name])
        other = "iris_pitch" if name == "iris_yaw" else "iris_yaw"
        assert abs(m[other]) < 0.1
    centre = points[:, :2].mean(axis=0)
    a = np.radians(8.0)
    turn = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    rolled = points.copy()
    rolled[:, :2] = (points[:, :2] - centre) @ turn.T + centre
    m = measured(rolled)
    assert abs(m["iris_yaw"]) < 0.05 and abs(m["iris_pitch"]) < 0.05 and abs(m["roll"]) > 6


def test_track_then_render_a_tha3_sequence(tmp_path, capsys):
    """`thagen track --schema tha3` writes the 45 columns (the roll of a turned head in neck_z,
    the parameters it cannot measure at neutral), and `thagen render --schema tha3 --sequence`
    animates a procedural character at THA3's 512² from it."""
    pytest.importorskip("mediapipe")
    from skimage import data, transform

    from characters import write_character
    from poses.sequence import read_sequence

    photo = data.astronaut()
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, angle in enumerate([0.0, 0.0, 8.0]):
        out = transform.rotate(photo, angle, center=(222, 125), mode="edge", preserve_range=True)
        Image.fromarray(np.rint(out).astype(np.uint8)).save(frames / f"f{i}.png")
    csv = tmp_path / "poses.csv"
    args = ["track", str(frames), "-o", str(csv), "--schema", "tha3", "--fps", "2"]
    assert main([*args, "--no-smoothing", "--no-progress"]) == 0
    sequence = read_sequence(csv, SCHEMA)
    assert sequence.values.shape == (3, 45)
    assert 0.3 < sequence.column("neck_z")[2] < 0.75  # 8° of 15°
    for name in ("body_y", "breathing", "mouth_ooo", "eyebrow_angry_left"):
        assert (sequence.column(name) == 0).all()
    model = write_character(2, tmp_path / "c" / "character.pmx")
    gif = tmp_path / "anim.gif"
    assert (
        main(["render", str(model), "--schema", "tha3", "--sequence", str(csv), "-o", str(gif)])
        == 0
    )
    png = tmp_path / "one.png"
    assert (
        main(["render", str(model), "--schema", "tha3", "--pose", "body_z=1", "-o", str(png)]) == 0
    )
    assert Image.open(png).size == (512, 512) and Image.open(gif).size == (512, 512)
