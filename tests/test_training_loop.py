"""Training, checkpoints, evaluation, losses and posing, end to end on synthetic shards."""

from __future__ import annotations

import csv
import io
import json
import math
import pickle
import tarfile
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from safetensors.torch import load_file, save_file  # noqa: E402

from tests.numerics import U32  # noqa: E402
from tests.shardgen import write_dataset  # noqa: E402
from thagen.cli import main  # noqa: E402
from training import checkpoint as ckpt  # noqa: E402
from training.configs import CONFIGS  # noqa: E402
from training.demo import run_demo  # noqa: E402
from training.evaluate import evaluate, metrics, psnr_value  # noqa: E402
from training.losses import (  # noqa: E402
    CHANGE_DILATION,
    Objective,
    VGG16Features,
    WeightsFileError,
    change_mask,
    changed_l1,
    load_vgg16,
)
from training.trainer import train  # noqa: E402

torch.set_num_threads(2)
SMALL = CONFIGS["cpu-small"]
TINY = replace(
    SMALL,
    network=replace(SMALL.network, image_size=32, base_channels=8, max_channels=16, res_blocks=1),
    batch_size=4,
    log_every=1,
    sample_every=5,
    checkpoint_every=1000,
    num_workers=0,
)
QUIET = {"log": lambda _: None}
STEPS = 150  # of the overfitting test


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    return write_dataset(root, 2, 1, examples_per_character=6, examples_per_shard=4, size=64)


def log_losses(run) -> list[float]:
    with (run / "log.csv").open() as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


# Not `numeric`: a tenfold drop of the loss is a claim about optimisation, far above rounding,
# and under the guard run's scalar kernels this test alone took 644 s (of 1,359).
def test_cpu_small_morpher_overfits_four_examples(tmp_path):
    data = write_dataset(tmp_path / "d", 1, 0, examples_per_character=4, size=64)
    config = replace(
        SMALL,
        network=replace(SMALL.network, image_size=64, alpha_bias=0.0),
        batch_size=4,
        lr=2e-3,
        change_weight=0.0,  # plain L1, so the loss is the image error itself
        log_every=1,
        sample_every=1000,
    )
    result = train("morpher", data, tmp_path / "run", config, steps=STEPS, **QUIET)
    losses = log_losses(tmp_path / "run")
    assert len(losses) == STEPS and result.step == STEPS
    assert losses[-1] <= losses[0] / 10, (losses[0], losses[-1])
    grid = Image.open(tmp_path / "run" / "samples" / f"step_{STEPS:06d}.png")
    assert grid.size == (4 * 66 + 2, 3 * 66 + 2)  # input / output / target rows


@pytest.mark.numeric
def test_changed_pixel_loss_counts_only_what_differs():
    source = torch.zeros(2, 4, 16, 16)
    target = source.clone()
    target[0, :3, 8, 8] = 1.0  # one changed pixel in the first example, none in the second
    mask = change_mask(source, target)
    assert mask.shape == (2, 1, 16, 16)
    assert mask[0].sum() == (2 * CHANGE_DILATION + 1) ** 2 and mask[1].sum() == 0
    output = source + 0.5  # wrong by 0.5 everywhere, and by 0.5 or 1.0 inside the mask
    inside = (mask * (output - target).abs()).sum() / (mask.sum() * 4)
    # Every term is 0, 0.5 or 1, so the sums are exact in any order; only the final division
    # rounds (at most u each way, 2u if taken as a reciprocal and a product).
    assert float(changed_l1(output, target, mask)) == pytest.approx(float(inside), rel=4 * U32)
    plain, parts = Objective()([output], target, source)
    weighted, parts = Objective(change_weight=2.0)([output], target, source)
    # One float32 addition of non-negative terms (u of the total; × 2 is exact), none here.
    expected = float(plain) + 2 * float(parts["changed"])
    assert float(weighted) == pytest.approx(expected, rel=2 * U32)
    assert float(changed_l1(output, source, change_mask(source, source))) == 0.0


def test_train_demo_writes_a_report(tmp_path, dataset, capsys):
    summary = run_demo(dataset, tmp_path / "demo", 1.0, steps=2, **QUIET)
    rows = [set(r["results"]) for r in summary["results"]]
    assert rows == [{"identity", "morpher"}, {"identity", "rotator/change", "rotator/flow"}]
    page = (tmp_path / "demo" / "report.html").read_text(encoding="utf-8")
    assert "below identity" in page and "morpher_val.png" in page and "rotator_val.png" in page
    assert json.loads((tmp_path / "demo" / "demo.json").read_text())["report"] == summary["report"]
    assert main(["train-demo", "--data", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert "dataset.json: not found" in capsys.readouterr().err


@pytest.mark.numeric
@pytest.mark.parametrize("network", ["rotator"])
def test_resume_equals_straight_training(tmp_path, dataset, network):
    straight = train(network, dataset, tmp_path / "a", TINY, steps=20, num_workers=2, **QUIET)
    train(network, dataset, tmp_path / "b", TINY, steps=10, num_workers=2, **QUIET)
    resumed = train(
        network, dataset, tmp_path / "b", TINY, steps=20, resume=True, num_workers=2, **QUIET
    )
    assert resumed.step == 20
    a = load_file(str(straight.checkpoint / "model.safetensors"))
    b = load_file(str(resumed.checkpoint / "model.safetensors"))
    # Exact, with no tolerance: the resumed run does the straight run's operations on the same
    # values in the same order (weights, Adam's moments, the RNG and the stream's position all
    # restored), and the same operations round the same way on any one CPU. Any tolerance here
    # would hide a state that resume fails to restore (Adam turns a tiny error into a step).
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert log_losses(tmp_path / "a") == log_losses(tmp_path / "b")
    oa = load_file(str(straight.checkpoint / "optimizer.safetensors"))
    ob = load_file(str(resumed.checkpoint / "optimizer.safetensors"))
    assert oa.keys() == ob.keys() and all(torch.equal(oa[k], ob[k]) for k in oa)


def test_fresh_run_refuses_existing_checkpoints(tmp_path, dataset):
    train("morpher", dataset, tmp_path / "r", TINY, steps=1, **QUIET)
    with pytest.raises(FileExistsError, match="--resume"):
        train("morpher", dataset, tmp_path / "r", TINY, steps=2, **QUIET)


class Payload:
    """Unpickling this writes a marker file: proof that a loader ran pickle."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoint_loading_never_unpickles(tmp_path, dataset):
    result = train("morpher", dataset, tmp_path / "r", TINY, steps=1, **QUIET)
    marker = tmp_path / "pwned"
    evil = pickle.dumps({"weight": Payload(marker)})
    for name in ("model.safetensors", "optimizer.safetensors"):
        (result.checkpoint / name).write_bytes(evil)
    (result.checkpoint / "model.pt").write_bytes(evil)  # a stray pickle is simply ignored
    with pytest.raises(ckpt.CheckpointError, match="not a safetensors file"):
        ckpt.load_network(tmp_path / "r")
    with pytest.raises(ckpt.CheckpointError, match="not a safetensors file"):
        train("morpher", dataset, tmp_path / "r", TINY, steps=2, resume=True, **QUIET)
    assert not marker.exists()
    (result.checkpoint / "state.json").write_bytes(evil)
    with pytest.raises(ckpt.CheckpointError, match="not JSON"):
        ckpt.load_network(result.checkpoint)
    assert not marker.exists()


@pytest.mark.numeric
def test_metrics_sanity():
    torch.manual_seed(0)
    target = torch.rand(3, 4, 32, 32) * 2 - 1
    perfect = metrics(target, target)
    assert perfect["l1"].max() == 0 and perfect["rmse"].max() == 0
    # Identical images: every SSIM ratio is of two equal products, exactly 1, and so is their
    # mean; the PSNR is the floor's, exactly 100 dB.
    assert torch.equal(perfect["ssim"], torch.ones(3)) and torch.equal(
        perfect["psnr"], 100 + 0 * perfect["psnr"]
    )
    shifted = (target + 0.2).clamp(-1, 1)  # +0.1 in [0, 1] space, before clamping
    m = metrics(shifted, target)
    a, b = (shifted + 1) / 2, (target + 1) / 2
    mse = ((a - b) ** 2).flatten(1).mean(1)
    # The same mean of n = 4·32² non-negative float32 squares, summed in any order: within
    # (n - 1)·u of each other (Higham §4.2); the square root halves that, the PSNR's
    # 10·log10(1/mse) turns it into 4.3·(n - 1)·u dB on ~20 dB (within (n - 1)·u relative).
    n = 4 * 32 * 32
    assert m["rmse"].tolist() == pytest.approx(mse.sqrt().tolist(), rel=n * U32)
    assert m["psnr"][0].item() == pytest.approx(psnr_value(float(mse[0])), rel=n * U32)
    # float64 logarithms of powers of ten: a few units in the last place.
    assert psnr_value(0.01) == pytest.approx(20.0, rel=1e-14)
    assert psnr_value(1e-4) == pytest.approx(40.0, rel=1e-14)
    skimage = pytest.importorskip("skimage.metrics")
    x, y = a[0].permute(1, 2, 0).double().numpy(), b[0].permute(1, 2, 0).double().numpy()
    reference = skimage.structural_similarity(
        x,
        y,
        channel_axis=2,
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    # The same definition (11-tap Gaussian, σ = 1.5, valid region, population covariance) in
    # float64 both ways, from the same float32 pixels: they differ by float64 rounding (a few
    # hundred terms, ~1e-13) and by thagen's final rounding to float32 (u·|SSIM| <= u).
    assert m["ssim"][0].item() == pytest.approx(reference, abs=2 * U32)


@pytest.mark.numeric
def test_evaluate_reports_network_and_identity(tmp_path, dataset):
    result = train("rotator", dataset, tmp_path / "r", TINY, steps=2, **QUIET)
    report = evaluate(result.checkpoint, dataset, "val", out=tmp_path / "e.json")
    assert report["examples"] == 6
    assert set(report["results"]) == {"identity", "rotator/change", "rotator/flow"}
    ident = report["results"]["identity"]
    assert 0 < ident["l1"] < 0.2 and 0 < ident["ssim"] < 1 and math.isfinite(ident["psnr"])
    assert (tmp_path / "e.json").is_file()


@pytest.mark.numeric
def test_perceptual_loss_needs_a_local_weights_file(tmp_path, dataset):
    with pytest.raises(WeightsFileError, match="never downloads"):
        load_vgg16(tmp_path / "vgg16.safetensors")
    with pytest.raises(WeightsFileError, match="not found"):
        train(
            "morpher",
            dataset,
            tmp_path / "r",
            TINY,
            steps=1,
            vgg16_weights=tmp_path / "missing.pth",
            **QUIET,
        )
    weights = tmp_path / "vgg16.safetensors"
    save_file(
        {
            k: v.contiguous()
            for k, v in VGG16Features().state_dict().items()
            if k.startswith("features.")
        },
        str(weights),
    )
    config = replace(TINY, perceptual_weight=0.5)
    train("morpher", dataset, tmp_path / "p", config, steps=2, vgg16_weights=weights, **QUIET)
    with (tmp_path / "p" / "log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert float(rows[-1]["perceptual"]) > 0
    parts = float(rows[-1]["l1"]) + TINY.change_weight * float(rows[-1]["changed"])
    assert TINY.change_weight > 0 and float(rows[-1]["changed"]) > 0
    # The logged total is l1 + w·changed + 0.5·perceptual in float32: three roundings of
    # non-negative partial sums (3u of the total at most; the float64 sum here adds none).
    assert float(rows[-1]["loss"]) == pytest.approx(
        parts + 0.5 * float(rows[-1]["perceptual"]), rel=4 * U32
    )


def png(path, size, mode="RGBA"):
    Image.new(mode, (size, size), (255, 0, 0) if mode == "RGB" else (255, 0, 0, 255)).save(path)
    return path


def test_pose_cli_end_to_end_and_bad_images(tmp_path, dataset, capsys):
    rot = train("rotator", dataset, tmp_path / "runs" / "rotator", TINY, steps=2, **QUIET)
    train("morpher", dataset, tmp_path / "runs" / "morpher", TINY, steps=2, **QUIET)
    train(
        "combiner",
        dataset,
        tmp_path / "runs" / "combiner",
        TINY,
        steps=2,
        rotator_checkpoint=rot.run_dir,
        **QUIET,
    )
    face = tmp_path / "face.png"
    data = member_bytes(dataset / "val-000000.tar", ".rest.png")
    Image.open(io.BytesIO(data)).save(face)  # a 64×64 RGBA face; the nets are 32×32
    runs = str(tmp_path / "runs")

    def pose(image, *extra):
        return main(["pose", "--checkpoints", runs, "--image", str(image), *extra])

    out = ["-o", str(tmp_path / "o.png")]
    assert pose(face, *out, "--pose", "left_eye=1,head_y=0.5") == 2  # 64: neither 256 nor 32
    assert "face.png: image is 64×64; expected 32×32 or 256×256" in capsys.readouterr().err
    small = tmp_path / "small.png"
    Image.open(face).resize((32, 32)).save(small)
    assert pose(small, *out, "--pose", "left_eye=1,head_y=0.5") == 0
    posed = Image.open(tmp_path / "o.png")
    assert posed.mode == "RGBA" and posed.size == (32, 32)
    assert pose(small, *out, "--pose", "tail=1") == 2
    assert "tail=1" in capsys.readouterr().err
    assert pose(png(tmp_path / "rgb.png", 256, "RGB"), *out, "--pose", "mouth=1") == 2
    assert "rgb.png: image has no alpha channel" in capsys.readouterr().err
    csv_path = tmp_path / "poses.csv"
    csv_path.write_text(
        "frame,time,tracked,left_eye,right_eye,mouth,head_x,head_y,neck_z\n"
        "0,0.0,1,0,0,0,0,0,0\n1,0.1,1,1,1,1,0.5,-0.5,1\n2,0.2,1,0.5,0,0.2,0,0,0\n"
    )
    anim = tmp_path / "anim.gif"
    assert pose(small, "--sequence", str(csv_path), "-o", str(anim)) == 0
    gif = Image.open(anim)
    assert gif.n_frames == 3 and gif.size == (32, 32)


def member_bytes(path, suffix) -> bytes:
    """The bytes of the first member of a tar whose name ends with ``suffix``."""
    with tarfile.open(path) as tar:
        return tar.extractfile(next(m for m in tar if m.name.endswith(suffix))).read()


def test_images_encode_decode_round_trip():
    from training.images import array_to_tensor, tensor_to_array

    rgba = np.random.default_rng(0).integers(0, 256, (8, 8, 4), dtype=np.uint8)
    assert np.array_equal(tensor_to_array(array_to_tensor(rgba)), rgba)
