"""The training loop for one network: data stream → forward → loss → Adam, with logs, sample
grids and checkpoints under ``RUN/`` (``config.json``, ``log.csv``, ``samples/``, ``checkpoints/``).

Resuming is exact: weights, Adam state and the torch RNG come from the checkpoint, and the data
stream is a pure function of (seed, batches consumed) (see ``training.data``), so N steps, a save,
a resume and M more steps equal N + M straight steps.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from training import checkpoint as ckpt
from training.configs import TrainConfig
from training.data import DatasetInfo, ShardStream
from training.images import grid, save_png
from training.losses import Objective, PerceptualLoss, load_vgg16
from training.networks import NETWORKS

LOG_FIELDS = (
    "step",
    "epoch",
    "loss",
    "l1",
    "changed",
    "perceptual",
    "lr",
    "examples_per_s",
    "seconds",
)


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    step: int
    loss: float  # the last step's loss
    seconds: float  # wall time of this call's loop
    checkpoint: Path


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # decoding workers must not compete with the training threads


class Trainer:
    """Owns the model, optimizer, objective and (for the combiner) the frozen rotator."""

    def __init__(
        self,
        network: str,
        data: Path,
        out: Path,
        config: TrainConfig,
        *,
        seed: int = 0,
        device: str = "auto",
        rotator_checkpoint: Path | None = None,
        vgg16_weights: Path | None = None,
        num_workers: int | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        if network not in NETWORKS:
            raise ValueError(f"unknown network {network!r}; expected one of {', '.join(NETWORKS)}")
        self.network, self.data, self.out, self.config = network, Path(data), Path(out), config
        self.seed, self.log = seed, log
        self.device = pick_device(device)
        self.num_workers = config.num_workers if num_workers is None else num_workers
        self.info = DatasetInfo.load(self.data)
        self.pose_names = self.info.pose_names(network)
        torch.manual_seed(seed)
        self.model = NETWORKS[network](config.network, len(self.pose_names)).to(self.device)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, betas=tuple(config.betas)
        )
        perceptual = None
        if config.perceptual_weight > 0 or vgg16_weights is not None:
            perceptual = PerceptualLoss(load_vgg16(vgg16_weights)).to(self.device)
        self.objective = Objective(
            perceptual, config.perceptual_weight or 1.0, config.change_weight
        )
        self.rotator, self.rotator_checkpoint = None, None
        if network == "combiner":
            if rotator_checkpoint is None:
                raise ValueError("training the combiner needs --rotator-checkpoint (a rotator run)")
            self.rotator, rstate = ckpt.load_network(rotator_checkpoint, self.device)
            if rstate["network"] != "rotator" or rstate["pose_names"] != self.pose_names:
                raise ValueError(f"{rstate['checkpoint']}: not a rotator for this dataset's schema")
            self.rotator.requires_grad_(False)
            self.rotator_checkpoint = rstate["checkpoint"]
        self.step = 0

    # -- state ------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "network": self.network,
            "config": self.config.to_dict(),
            "pose_names": self.pose_names,
            "schema": self.info.schema,
            "seed": self.seed,
            "data": str(self.data),
            "rotator_checkpoint": self.rotator_checkpoint,
        }

    def save(self) -> Path:
        path = ckpt.save_checkpoint(self.out, self.step, self.model, self.optimizer, self.state())
        self.log(f"saved {path}")
        return path

    def resume(self) -> None:
        """Continue from the run's latest checkpoint."""
        where = ckpt.find_checkpoint(self.out)
        state = ckpt.read_state(where)
        if state["network"] != self.network:
            raise ckpt.CheckpointError(
                f"{where}: a {state['network']} checkpoint, not {self.network}"
            )
        ckpt.load_weights(self.model, where)
        ckpt.load_optimizer(self.optimizer, where, state)
        ckpt.restore_rng(state)
        self.step, self.seed = int(state["step"]), int(state["seed"])
        self.log(f"resumed from {where} (step {self.step})")

    # -- one step ---------------------------------------------------------------------------
    def outputs(self, batch: dict) -> list[torch.Tensor]:
        """The network's output image(s) for a batch (the rotator has two)."""
        image, pose = batch["input"].to(self.device), batch["pose"].to(self.device)
        if self.network == "morpher":
            return [self.model(image, pose)]
        if self.network == "rotator":
            return list(self.model(image, pose))
        with torch.no_grad():
            first, second = self.rotator(image, pose)
        return [self.model(first, second, pose)]

    def train_step(self, batch: dict) -> tuple[float, dict, list[torch.Tensor]]:
        self.model.train()
        outputs = self.outputs(batch)
        target, source = batch["target"].to(self.device), batch["input"].to(self.device)
        loss, parts = self.objective(outputs, target, source)
        if not torch.isfinite(loss.detach()):  # stop before the weights become NaN
            keys = ", ".join(batch["key"][:4])
            raise ValueError(f"step {self.step + 1}: the loss is {loss.item()} (batch {keys}, …)")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return float(loss.detach()), {k: float(v.detach()) for k, v in parts.items()}, outputs

    # -- the loop ---------------------------------------------------------------------------
    def stream(self) -> DataLoader:
        dataset = ShardStream(
            self.data,
            "train",
            self.network,
            size=self.config.network.image_size,
            batch_size=self.config.batch_size,
            seed=self.seed,
            buffer_size=self.config.shuffle_buffer,
            epochs=None,
            start=self.step,
        )
        return DataLoader(
            dataset,
            batch_size=None,
            num_workers=self.num_workers,
            worker_init_fn=_worker_init if self.num_workers else None,
        )

    def run(self, steps: int, time_limit: float | None = None) -> TrainResult:
        """Train until ``steps`` total steps (or ``time_limit`` seconds), then save a checkpoint."""
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.json").write_text(json.dumps(self.state(), indent=2), encoding="utf-8")
        logger = _Logger(self.out, self.step)
        begin = last = time.perf_counter()
        loss, seen, batches = float("nan"), 0, iter(self.stream())
        try:
            while self.step < steps:
                batch = next(batches)
                loss, parts, outputs = self.train_step(batch)
                seen += len(batch["key"])
                out_of_time = time_limit is not None and time.perf_counter() - begin > time_limit
                done = self.step == steps or out_of_time
                if self.step % self.config.log_every == 0 or done:
                    now = time.perf_counter()
                    row = {
                        "step": self.step,
                        "epoch": batch.get("epoch", ""),
                        "loss": loss,
                        "l1": parts["l1"],
                        "changed": parts.get("changed", ""),
                        "perceptual": parts.get("perceptual", ""),
                        "lr": self.optimizer.param_groups[0]["lr"],
                        "examples_per_s": seen / max(now - last, 1e-9),
                        "seconds": now - begin,
                    }
                    logger.write(row)
                    self.log(
                        f"step {self.step}: loss {loss:.5f} ({row['examples_per_s']:.1f} ex/s)"
                    )
                    seen, last = 0, now
                if self.step % self.config.sample_every == 0 or done:
                    self.save_samples(batch, outputs)
                if self.step % self.config.checkpoint_every == 0 and not done:
                    self.save()
                if out_of_time:
                    break
        finally:
            logger.close()
        path = self.save()
        return TrainResult(self.out, self.step, loss, time.perf_counter() - begin, path)

    def save_samples(self, batch: dict, outputs: list[torch.Tensor], count: int = 6) -> Path:
        rows = [batch["input"][:count], *(o[:count].detach().cpu() for o in outputs)]
        rows.append(batch["target"][:count])
        return save_png(grid(rows), self.out / "samples" / f"step_{self.step:06d}.png")


class _Logger:
    """``log.csv`` always (rows past ``start`` from an earlier run are dropped on resume), plus
    TensorBoard scalars when the ``tensorboard`` package is installed."""

    def __init__(self, run_dir: Path, start: int) -> None:
        path = run_dir / "log.csv"
        rows = []
        if start and path.is_file():
            with path.open(newline="", encoding="utf-8") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start]
        self.file = path.open("w", newline="", encoding="utf-8")
        self.csv = csv.DictWriter(self.file, LOG_FIELDS, lineterminator="\n")
        self.csv.writeheader()
        self.csv.writerows(rows)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        except ImportError:
            self.tb = None

    def write(self, row: dict) -> None:
        self.csv.writerow(row)
        self.file.flush()
        if self.tb is not None:
            for key in ("loss", "l1", "changed", "perceptual", "examples_per_s"):
                if row[key] != "":
                    self.tb.add_scalar(f"train/{key}", row[key], row["step"])

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()


def train(
    network: str,
    data: Path,
    out: Path,
    config: TrainConfig,
    *,
    steps: int | None = None,
    resume: bool = False,
    time_limit: float | None = None,
    **options,
) -> TrainResult:
    """Train ``network`` on ``data`` into the run folder ``out`` (see ``Trainer`` for options).

    A fresh run refuses a folder that already has checkpoints; ``resume=True`` continues from the
    latest one up to ``steps`` total steps (default: the config's). ``time_limit`` (seconds) stops
    earlier, for budgeted runs such as the demo.
    """
    out = Path(out)
    if resume:
        state = ckpt.read_state(ckpt.find_checkpoint(out))
        config = TrainConfig.from_dict(state["config"])
        options.setdefault("seed", state["seed"])
    elif any((out / "checkpoints").glob("step_*")):
        raise FileExistsError(f"{out}: already has checkpoints; pass --resume or another --out")
    trainer = Trainer(network, data, out, config, **options)
    if resume:
        trainer.resume()
    return trainer.run(config.steps if steps is None else steps, time_limit)
