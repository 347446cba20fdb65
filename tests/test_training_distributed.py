"""Data-parallel training (torchrun, gloo on the CPU), mixed precision, channels-last, and the
stop on a non-finite loss."""

from __future__ import annotations

from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file  # noqa: E402

from tests.shardgen import write_dataset  # noqa: E402
from thagen.cli import build_parser, main  # noqa: E402
from training import checkpoint as ckpt  # noqa: E402
from training.cli import rank_argv  # noqa: E402
from training.configs import CONFIGS  # noqa: E402
from training.distributed import Distributed  # noqa: E402
from training.trainer import NonFiniteLoss, Trainer, train  # noqa: E402

torch.set_num_threads(2)
SMALL = CONFIGS["cpu-small"]
# In-order streams (a shuffle buffer of one), plain L1 (its batch mean splits evenly over ranks).
TINY = replace(
    SMALL,
    network=replace(SMALL.network, image_size=32, base_channels=8, max_channels=16, res_blocks=1),
    batch_size=2,
    shuffle_buffer=1,
    change_weight=0.0,
    log_every=1,
    sample_every=1000,
    checkpoint_every=1000,
    num_workers=0,
)
QUIET = {"log": lambda _: None}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """One shard of one character: every rank reads it and keeps every other example, so two
    ranks' batches of 2 are, together, the batch of 4 one process reads."""
    root = tmp_path_factory.mktemp("shards")
    return write_dataset(root, 1, 0, examples_per_character=16, examples_per_shard=16, size=32)


def weights(run) -> dict[str, torch.Tensor]:
    return load_file(str(ckpt.find_checkpoint(run) / "model.safetensors"))


def close(a: dict, b: dict, atol: float = 2e-5) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=atol) for k in a)


def distance(a: dict, b: dict) -> float:
    return float(torch.sqrt(sum(((a[k] - b[k]) ** 2).sum() for k in a)))


def last_loss(run) -> float:
    return float((run / "log.csv").read_text().splitlines()[-1].split(",")[2])


def torchrun_args(data, out, steps: int) -> list[str]:
    """`thagen train` for TINY's settings, on the CLI (cpu-small with TINY's overrides)."""
    return [
        "train", "morpher", "--data", str(data), "--out", str(out), "--config", "cpu-small",
        "--steps", str(steps), "--batch-size", "2", "--shuffle-buffer", "1",
        "--change-weight", "0", "--workers", "0", "--sample-every", "1000", "--device", "cpu",
    ]  # fmt: skip


def test_two_gloo_processes_equal_one_process_at_twice_the_batch(tmp_path, dataset):
    config = replace(SMALL, batch_size=4, shuffle_buffer=1, change_weight=0.0, num_workers=0)
    config = replace(config, sample_every=1000, checkpoint_every=1000)
    one = train("morpher", dataset, tmp_path / "one", config, steps=3, device="cpu", **QUIET)
    half = replace(config, batch_size=2)
    train("morpher", dataset, tmp_path / "half", half, steps=3, device="cpu", **QUIET)
    # Two ranks, and a resume in the middle: 2 steps, then on to 3.
    assert main([*torchrun_args(dataset, tmp_path / "two", 2), "--nproc", "2"]) == 0
    resumed = [*torchrun_args(dataset, tmp_path / "two", 3), "--nproc", "2", "--resume"]
    assert main(resumed) == 0
    two = weights(tmp_path / "two")
    state = ckpt.read_state(ckpt.find_checkpoint(tmp_path / "two"))
    assert state["step"] == 3 and state["world_size"] == 2
    # The same step 3: the loss (averaged over the ranks) and the weights. Adam turns the
    # rounding noise of gradients that are zero in exact arithmetic (biases before instance
    # norm) into steps of up to lr, so the weights agree to lr, and far closer than any run on
    # other data: half the batch (examples 0–5, not 0–11) lands over 50× as far.
    assert last_loss(tmp_path / "two") == pytest.approx(last_loss(one.run_dir), rel=1e-6)
    reference, other = weights(one.run_dir), weights(tmp_path / "half")
    assert close(two, reference, atol=config.lr)
    assert distance(two, reference) < 0.02 * distance(other, reference)
    assert distance(two, weights(tmp_path / "two" / "checkpoints" / "step_000002")) > 0
    # Rank 0 alone wrote the run folder (ranks 1's writes would collide in the same names).
    saved = sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir())
    assert saved == ["step_000002", "step_000003"]


def test_bf16_trains_in_fp32_weights_close_to_fp32(tmp_path, dataset):
    fp32 = train("morpher", dataset, tmp_path / "a", TINY, steps=3, **QUIET)
    bf16 = train("morpher", dataset, tmp_path / "b", TINY, steps=3, precision="bf16", **QUIET)
    a, b = weights(fp32.run_dir), weights(bf16.run_dir)
    assert all(v.dtype == torch.float32 for v in b.values())
    assert close(a, b, atol=5e-3) and not close(a, b, atol=1e-7)
    assert ckpt.read_state(bf16.checkpoint)["precision"] == "bf16"


def test_fp16_keeps_its_loss_scale_and_resumes_exactly(tmp_path, dataset):
    options = {"precision": "fp16", **QUIET}
    straight = train("morpher", dataset, tmp_path / "a", TINY, steps=4, **options)
    train("morpher", dataset, tmp_path / "b", TINY, steps=2, **options)
    resumed = train("morpher", dataset, tmp_path / "b", TINY, steps=4, resume=True, **options)
    scale = ckpt.read_state(resumed.checkpoint)["grad_scaler"]
    assert scale["scale"] > 0 and scale == ckpt.read_state(straight.checkpoint)["grad_scaler"]
    a, b = weights(straight.run_dir), weights(resumed.run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_channels_last_gives_the_same_training(tmp_path, dataset):
    plain = Trainer("rotator", dataset, tmp_path / "a", TINY, **QUIET)
    nhwc = Trainer("rotator", dataset, tmp_path / "b", TINY, channels_last=True, **QUIET)
    conv = next(p for p in nhwc.model.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    a, b = plain.run(2), nhwc.run(2)
    assert b.loss == pytest.approx(a.loss, rel=1e-5)
    assert close(weights(a.run_dir), weights(b.run_dir), atol=TINY.lr)  # Adam's noise: see above


def test_a_loss_that_goes_non_finite_stops_without_saving(tmp_path, dataset, capsys):
    wild = replace(TINY, lr=1e30)  # step 1 throws the weights far; step 2's loss overflows
    with pytest.raises(NonFiniteLoss, match=r"step 2: the loss is (nan|inf)"):
        train("morpher", dataset, tmp_path / "r", wild, steps=5, **QUIET)
    assert not list((tmp_path / "r" / "checkpoints").glob("step_*"))
    args = [*torchrun_args(dataset, tmp_path / "cli", 5), "--lr", "1e30"]
    assert main(args) == 2
    assert "error: step 2: the loss is" in capsys.readouterr().err
    assert not list((tmp_path / "cli" / "checkpoints").glob("step_*"))


def test_train_options_are_checked(tmp_path, dataset, capsys):
    assert main([*torchrun_args(dataset, tmp_path / "r", 1), "--nproc", "0"]) == 2
    assert "--nproc must be >= 1" in capsys.readouterr().err
    with pytest.raises(ValueError, match="precision"):
        train("morpher", dataset, tmp_path / "p", TINY, steps=1, precision="fp8", **QUIET)
    rank = Distributed(rank=1, world_size=2, local_rank=1, backend="nccl")
    assert str(rank.device("cuda")) == "cuda:1" and str(rank.device("cpu")) == "cpu"
    with pytest.raises(ValueError, match="each takes the GPU of its local rank"):
        rank.device("cuda:0")
    args = rank_argv(build_parser().parse_args(torchrun_args(dataset, tmp_path / "x", 7)))
    assert args[:5] == ["morpher", "--data", str(dataset), "--out", str(tmp_path / "x")]
    assert "--nproc" not in args and args[args.index("--steps") + 1] == "7"
