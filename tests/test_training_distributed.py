"""Data-parallel training (torchrun, gloo on the CPU), mixed precision, channels-last, and the
stop on a non-finite loss."""

from __future__ import annotations

from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file  # noqa: E402

from tests.numerics import (  # noqa: E402
    U32,
    U_BF16,
    adam_reach,
    bf16_roundings,
    conv_accumulation_lengths,
    weight_rounding,
)
from tests.shardgen import write_dataset  # noqa: E402
from thagen.cli import build_parser, main  # noqa: E402
from training import checkpoint as ckpt  # noqa: E402
from training.cli import rank_argv  # noqa: E402
from training.configs import CONFIGS  # noqa: E402
from training.data import ShardStream  # noqa: E402
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


def within_adam_reach(trained: dict, start: dict, config, steps: int) -> bool:
    """Every weight of ``trained`` within Adam's reach (numerics.adam_reach) of ``start``, plus
    the float32 rounding of ``steps`` updates."""
    reach = adam_reach(config.lr, config.betas, steps)
    return trained.keys() == start.keys() and all(
        float((trained[k] - start[k]).abs().max())
        <= reach + weight_rounding(float(start[k].abs().max()) + reach, steps)
        for k in trained
    )


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


def logged_losses(run) -> dict[int, float]:
    """Step → loss, from the run's log.csv (written with every digit of the float32 value)."""
    rows = (run / "log.csv").read_text().splitlines()[1:]
    return {int(row.split(",")[0]): float(row.split(",")[2]) for row in rows}


def ranks_loss(data, config, tmp, step: int, world: int, checkpoint=None) -> float:
    """The loss ``world`` ranks log at ``step``, recomputed here: each rank's batch of the stream
    (rank r of ``world``, resumed after step - 1 batches), its L1, then the mean over the ranks as
    Distributed.mean takes it (all_reduce's sum, then / world). The weights are the seed's
    (those every run starts from) or a checkpoint's."""
    trainer = Trainer("morpher", data, tmp, config, **QUIET)
    if checkpoint is not None:
        ckpt.load_weights(trainer.model, checkpoint)
    threads = torch.get_num_threads()
    # torchrun starts each rank with OMP_NUM_THREADS=1; one process here runs with two.
    torch.set_num_threads(1 if world > 1 else threads)
    try:
        losses = []
        for rank in range(world):
            stream = ShardStream(
                data, "train", "morpher", size=config.network.image_size,
                batch_size=config.batch_size, seed=trainer.seed, buffer_size=config.shuffle_buffer,
                epochs=None, start=step - 1, rank=rank, world_size=world,
            )  # fmt: skip
            batch = next(iter(stream))
            with torch.no_grad():
                loss, _ = trainer.objective(trainer.outputs(batch), batch["target"], batch["input"])
            losses.append(loss)
        return float(sum(losses) / world)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.numeric
def test_two_gloo_processes_equal_one_process_at_twice_the_batch(tmp_path, dataset):
    config = replace(SMALL, batch_size=4, shuffle_buffer=1, change_weight=0.0, num_workers=0)
    config = replace(config, sample_every=1000, checkpoint_every=1000, log_every=1)
    one = train("morpher", dataset, tmp_path / "one", config, steps=3, device="cpu", **QUIET)
    # Two ranks, and a resume in the middle: 1 step, then on to 3, a checkpoint at every step.
    every_step = ["--nproc", "2", "--checkpoint-every", "1"]
    assert main([*torchrun_args(dataset, tmp_path / "two", 1), *every_step]) == 0
    assert main([*torchrun_args(dataset, tmp_path / "two", 3), *every_step, "--resume"]) == 0
    two, checkpoints = tmp_path / "two", tmp_path / "two" / "checkpoints"
    state = ckpt.read_state(ckpt.find_checkpoint(two))
    assert state["step"] == 3 and state["world_size"] == 2
    # Rank 0 alone wrote the run folder (rank 1's writes would collide in the same names).
    assert sorted(p.name for p in checkpoints.iterdir()) == [f"step_00000{i}" for i in (1, 2, 3)]

    # 1. Each step is exactly the doubled batch split over the ranks: the loss logged at step 1
    # (from the seed's weights) and at step 3 (after the resume, from the step-2 checkpoint) is
    # bit for bit the one recomputed here from the same weights, rank r taking examples r and
    # r + 2 of the one-process batch. No tolerance: the same operations on the same values in
    # the same order (one thread, as in each rank) round the same way on any CPU; another split
    # of the examples, a stream resumed at the wrong batch or a loss not averaged over the ranks
    # gives another float.
    half = replace(config, batch_size=2)
    logged = logged_losses(two)
    assert set(logged) == {1, 3}
    assert logged[1] == ranks_loss(dataset, half, tmp_path / "r1", step=1, world=2)
    step2 = checkpoints / "step_000002"
    assert logged[3] == ranks_loss(dataset, half, tmp_path / "r3", 3, 2, checkpoint=step2)
    assert logged_losses(one.run_dir)[1] == ranks_loss(dataset, config, tmp_path / "o", 1, 1)

    # 2. ... and equals one process at the doubled batch, to rounding. At step 1 both start from
    # the seed's weights and differ only in the order of their sums: each convolution's fan-in
    # (K terms, at batch 2 on one thread or at batch 4 on two), then the mean over the batch's
    # N = 4·4·128² L1 terms, taken as two means of N/2 averaged or as one. A sum of n terms in
    # any order is off by at most (n - 1)·u of the sum of its terms' magnitudes (Higham,
    # *Accuracy and Stability of Numerical Algorithms*, §4.2), and to first order the layers'
    # errors add. The L1 terms are non-negative (their magnitudes sum to N·loss), and instance
    # norm brings every layer's activations back to unit scale, so the convolutions contribute
    # u·ΣK relative to outputs of magnitude <= 1: each evaluation is within u·(N·loss + ΣK) of
    # the exact value, and the two within twice that (about 4% here: N·u alone is 1/64). The
    # tight check is part 1; this one says the two computations are the same sum.
    seed_model = Trainer("morpher", dataset, tmp_path / "m", config, **QUIET).model
    n_terms, fan_in = (
        4 * 4 * config.network.image_size**2,
        sum(conv_accumulation_lengths(seed_model)),
    )
    loss_one = logged_losses(one.run_dir)[1]
    assert abs(logged[1] - loss_one) <= 2 * U32 * (n_terms * loss_one + fan_in)

    # 3. The weights after 3 steps. Both runs start from the seed's weights and take 3 Adam
    # steps, each at most lr·(Adam's ratio bound) per weight whatever the gradients
    # (numerics.adam_reach); rounding noise in gradients that are zero in exact arithmetic
    # (biases before instance norm, the weights of the constant pose channels) is normalised
    # into steps of that size, so no tighter per-weight bound holds on every CPU.
    # Both within that of the seed's weights, so within twice that of each other.
    assert within_adam_reach(weights(one.run_dir), seed_model.state_dict(), config, steps=3)
    assert within_adam_reach(weights(two), seed_model.state_dict(), config, steps=3)
    assert distance(weights(two), weights(step2)) > 0  # the resumed run took its third step


def first_gradient(trainer: Trainer) -> torch.Tensor:
    """The gradient of the loss of the trainer's first batch at its current weights, flattened
    (fp32; the trainer's precision decides how the forward and backward passes round)."""
    batch = next(iter(trainer.stream()))
    loss, _ = trainer.objective(trainer.outputs(batch), batch["target"], batch["input"])
    trainer.model.zero_grad(set_to_none=True)
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in trainer.model.parameters()])
    trainer.model.zero_grad(set_to_none=True)
    return grads


@pytest.mark.numeric
def test_bf16_trains_in_fp32_weights_close_to_fp32(tmp_path, dataset):
    fp32 = Trainer("morpher", dataset, tmp_path / "a", TINY, **QUIET)
    bf16 = Trainer("morpher", dataset, tmp_path / "b", TINY, precision="bf16", **QUIET)
    start = {k: v.clone() for k, v in fp32.model.state_dict().items()}
    # The first step's gradient, from the same weights: bf16 autocast rounds to 8 significant
    # bits (u = 2^-8) where fp32 rounds to 24, at most bf16_roundings times along any path of
    # the step (each convolution's input, weight and result and its two gradients; each norm's
    # and activation's result and gradient). To first order those relative errors add, with
    # every layer's condition taken as 1 (instance norm rescales each activation to unit
    # variance), so the whole gradient is within that many u of fp32's in norm (68·u ≈ 27% for
    # this network). Native bf16 kernels (AVX-512 BF16, AMX) and emulated ones round at the
    # same points, accumulating in fp32 either way. Single gradients near zero can change sign
    # (the norm says nothing about them): the weights below are bounded by Adam's reach.
    g32, g16 = first_gradient(fp32), first_gradient(bf16)
    bound = bf16_roundings(fp32.model) * U_BF16
    assert float((g16 - g32).norm()) <= bound * float(g32.norm())
    assert not torch.equal(g16, g32)  # the bf16 path was taken: it rounds
    # Three steps each: the master weights stay fp32, and both runs stay within Adam's reach of
    # the weights they share (3 steps of at most lr·ratio each; numerics.adam_reach), hence
    # within twice that of each other: bf16's gradient noise, normalised by Adam, can move a
    # weight whose gradient is near zero by a whole step.
    a, b = weights(fp32.run(3).run_dir), weights(bf16.run(3).run_dir)
    assert all(v.dtype == torch.float32 for v in b.values())
    assert within_adam_reach(a, start, TINY, steps=3) and within_adam_reach(b, start, TINY, 3)
    assert distance(a, b) > 0
    assert ckpt.read_state(ckpt.find_checkpoint(tmp_path / "b"))["precision"] == "bf16"


def test_fp16_keeps_its_loss_scale_and_resumes_exactly(tmp_path, dataset):
    options = {"precision": "fp16", **QUIET}
    straight = train("morpher", dataset, tmp_path / "a", TINY, steps=4, **options)
    train("morpher", dataset, tmp_path / "b", TINY, steps=2, **options)
    resumed = train("morpher", dataset, tmp_path / "b", TINY, steps=4, resume=True, **options)
    scale = ckpt.read_state(resumed.checkpoint)["grad_scaler"]
    assert scale["scale"] > 0 and scale == ckpt.read_state(straight.checkpoint)["grad_scaler"]
    a, b = weights(straight.run_dir), weights(resumed.run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.numeric
def test_channels_last_gives_the_same_training(tmp_path, dataset):
    plain = Trainer("rotator", dataset, tmp_path / "a", TINY, **QUIET)
    nhwc = Trainer("rotator", dataset, tmp_path / "b", TINY, channels_last=True, **QUIET)
    conv = next(p for p in nhwc.model.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    start = {k: v.clone() for k, v in plain.model.state_dict().items()}
    a, b = plain.run(2), nhwc.run(2)
    # Step 1, from the same weights: the layout changes only the order of the sums, each
    # convolution's K = fan-in terms and each output's L1 mean over M = B·4·H·W non-negative
    # terms (the flow head starts at zero, so both warps are the identity). As in the gloo test,
    # each evaluation of the two outputs' loss is within u·(M·loss + 2·ΣK) of the exact value
    # (outputs in [-1, 1]), and the two within twice that.
    m_terms = TINY.batch_size * 4 * TINY.network.image_size**2
    fan_in = sum(conv_accumulation_lengths(plain.model))
    loss_a, loss_b = logged_losses(a.run_dir)[1], logged_losses(b.run_dir)[1]
    assert abs(loss_a - loss_b) <= 2 * U32 * (m_terms * loss_a + 2 * fan_in)
    # The weights after 2 steps: within Adam's reach of the shared start (see the gloo test).
    a_weights, b_weights = weights(a.run_dir), weights(b.run_dir)
    assert within_adam_reach(a_weights, start, TINY, 2)
    assert within_adam_reach(b_weights, start, TINY, 2)


def test_a_loss_that_goes_non_finite_stops_without_saving(tmp_path, dataset, capsys, monkeypatch):
    """Step 2's loss is made infinite (the objective's value times inf: --lr is bounded now, so
    a wild learning rate no longer gets there): training stops before updating or saving."""
    train_step = Trainer.train_step

    def overflowing(self, batch):
        if self.step == 1:
            wrapped = self.objective

            def objective(*args):
                loss, parts = wrapped(*args)
                return loss * float("inf"), parts

            monkeypatch.setattr(self, "objective", objective)
        return train_step(self, batch)

    monkeypatch.setattr(Trainer, "train_step", overflowing)
    with pytest.raises(NonFiniteLoss, match=r"step 2: the loss is (nan|inf)"):
        train("morpher", dataset, tmp_path / "r", TINY, steps=5, **QUIET)
    assert not list((tmp_path / "r" / "checkpoints").glob("step_*"))
    assert main(torchrun_args(dataset, tmp_path / "cli", 5)) == 2
    assert "error: step 2: the loss is" in capsys.readouterr().err
    assert not list((tmp_path / "cli" / "checkpoints").glob("step_*"))


def test_train_options_are_checked(tmp_path, dataset, capsys, monkeypatch):
    assert main([*torchrun_args(dataset, tmp_path / "r", 1), "--nproc", "0"]) == 2
    assert "--nproc must be in 1..1024, not 0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="precision"):
        train("morpher", dataset, tmp_path / "p", TINY, steps=1, precision="fp8", **QUIET)
    rank = Distributed(rank=1, world_size=2, local_rank=1, backend="nccl")
    # As on a machine with GPUs (this one may have none: resolve_device refuses "cuda" then).
    monkeypatch.setattr("training.distributed.resolve_device", torch.device)
    assert str(rank.device("cuda")) == "cuda:1" and str(rank.device("cpu")) == "cpu"
    with pytest.raises(ValueError, match="each takes the GPU of its local rank"):
        rank.device("cuda:0")
    args = rank_argv(build_parser().parse_args(torchrun_args(dataset, tmp_path / "x", 7)))
    assert args[:5] == ["morpher", "--data", str(dataset), "--out", str(tmp_path / "x")]
    assert "--nproc" not in args and args[args.index("--steps") + 1] == "7"
