"""The training loop for one network: data stream → forward → loss → Adam, with logs, sample
grids and checkpoints under ``RUN/`` (``config.json``, ``log.csv``, ``samples/``, ``checkpoints/``).

Resuming is exact: weights, Adam state, the fp16 loss scale and the torch RNG come from the
checkpoint, and the data stream is a pure function of (seed, batches consumed, rank) (see
``training.data``), so N steps, a save, a resume and M more steps equal N + M straight steps — for
the same number of processes (``training.distributed``: each rank trains at the config's batch
size, so N ranks take the steps one process takes at N times the batch).

``precision`` runs the forward pass under autocast: ``bf16`` (the choice on current GPUs) or
``fp16`` (with a gradient scaler that skips steps whose gradients overflow); the weights, the
optimizer and the loss stay in fp32. ``channels_last`` stores images and activations NHWC, which
tensor-core convolutions prefer. A loss that is not finite stops the run with an error naming the
step, before the weights are touched, and no checkpoint is written with non-finite weights.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from media.locks import RunLock, reading_dataset
from media.owned import open_owned, read_owned, require_no_link, subfolder, write_atomic
from training import checkpoint as ckpt
from training.configs import TrainConfig
from training.data import DatasetInfo, ShardStream, list_shards
from training.distributed import Distributed, from_environment, resolve_device
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


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class NonFiniteLoss(ValueError):
    """Training produced a loss (or weights) that is NaN or infinite; nothing was saved."""


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    step: int
    loss: float  # the last step's loss
    seconds: float  # wall time of this call's loop
    checkpoint: Path


def pick_device(name: str = "auto") -> torch.device:
    """The device `name` names, checked to exist (`training.distributed.resolve_device`)."""
    return resolve_device(name)


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
        precision: str = "fp32",
        channels_last: bool = False,
        distributed: Distributed | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        if network not in NETWORKS:
            raise ValueError(f"unknown network {network!r}; expected one of {', '.join(NETWORKS)}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self.network, self.data, self.out, self.config = network, Path(data), Path(out), config
        self.dist = distributed or Distributed()
        self.seed = seed
        self.log = log if self.dist.is_main else (lambda _: None)
        self.device = self.dist.device(device)
        self.precision, self.channels_last = precision, channels_last
        self.autocast_dtype = PRECISIONS[precision]
        if precision == "fp16" and self.device.type == "cpu":
            self.log("note: fp16 autocast on the CPU is slow; bf16 is the CPU's half precision")
        self.num_workers = config.num_workers if num_workers is None else num_workers
        self.info = DatasetInfo.load(self.data)
        self.pose_names = self.info.pose_names(network)
        torch.manual_seed(seed)
        self.model = NETWORKS[network](config.network, len(self.pose_names)).to(self.device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # The module the steps call: the model itself, or its DDP wrapper, which averages the
        # gradients over the ranks during backward (and starts every rank from rank 0's weights).
        self.net: torch.nn.Module = self.model
        if self.dist.active:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, betas=tuple(config.betas)
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=precision == "fp16")
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
            "world_size": self.dist.world_size,
            "precision": self.precision,
            "channels_last": self.channels_last,
            "grad_scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
        }

    def checkpoint_path(self) -> Path:
        return ckpt.checkpoint_dir(self.out, self.step)

    def save(self) -> Path:
        """Write a checkpoint (rank 0 only; every rank returns its path). Refuses weights that
        are not finite."""
        if self.dist.is_main:
            bad = [n for n, p in self.model.named_parameters() if not torch.isfinite(p).all()]
            if bad:
                raise NonFiniteLoss(
                    f"step {self.step}: weights {', '.join(bad[:3])} are not finite; not saved "
                    "(the last checkpoint is kept)"
                )
            path = ckpt.save_checkpoint(
                self.out, self.step, self.model, self.optimizer, self.state()
            )
            self.log(f"saved {path}")
        self.dist.barrier()  # no rank runs ahead of (or reads) a checkpoint being written
        return self.checkpoint_path()

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
        if self.scaler.is_enabled() and state.get("grad_scaler"):
            self.scaler.load_state_dict(state["grad_scaler"])
        self.step, self.seed = int(state["step"]), int(state["seed"])
        self.log(f"resumed from {where} (step {self.step})")
        world = int(state.get("world_size", 1))
        if world != self.dist.world_size:
            self.log(
                f"note: the run was trained with {world} process(es), now {self.dist.world_size}:"
                " it continues, but not on the examples a straight run would have seen"
            )

    # -- one step ---------------------------------------------------------------------------
    def _images(self, batch: dict, key: str) -> torch.Tensor:
        memory = torch.channels_last if self.channels_last else torch.contiguous_format
        return batch[key].to(self.device, non_blocking=True, memory_format=memory)

    def outputs(self, batch: dict) -> list[torch.Tensor]:
        """The network's output image(s) for a batch (the rotator has two), in fp32."""
        image, pose = self._images(batch, "input"), batch["pose"].to(self.device)
        with torch.autocast(
            self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None
        ):
            if self.network == "morpher":
                out = [self.net(image, pose)]
            elif self.network == "rotator":
                out = list(self.net(image, pose))
            else:
                with torch.no_grad():
                    first, second = self.rotator(image, pose)
                out = [self.net(first, second, pose)]
        return [o.float() for o in out]

    def train_step(self, batch: dict) -> tuple[float, dict, list[torch.Tensor]]:
        self.net.train()
        outputs = self.outputs(batch)
        target, source = self._images(batch, "target"), self._images(batch, "input")
        loss, parts = self.objective(outputs, target, source)
        values = torch.stack([loss.detach(), *(v.detach() for v in parts.values())])
        values = self.dist.mean(values)  # every rank sees the same figures, and stops alike
        if not torch.isfinite(values[0]):
            keys = ", ".join(batch["key"][:4]) + (", …" if len(batch["key"]) > 4 else "")
            raise NonFiniteLoss(
                f"step {self.step + 1}: the loss is {float(values[0])} (batch {keys}); stopped "
                "before updating the weights (the last checkpoint is kept). Check the data for "
                "out-of-range values, or lower --lr, or train with --precision fp32"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        figures = dict(zip(parts, (float(v) for v in values[1:]), strict=True))
        return float(values[0]), figures, outputs

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
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        return DataLoader(
            dataset,
            batch_size=None,
            num_workers=self.num_workers,
            worker_init_fn=_worker_init if self.num_workers else None,
            pin_memory=self.device.type == "cuda",
            persistent_workers=self.num_workers > 0,
        )

    def run(self, steps: int, time_limit: float | None = None) -> TrainResult:
        """Train until ``steps`` total steps (or ``time_limit`` seconds), then save a checkpoint."""
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            text = json.dumps(self.state(), indent=2)
            write_atomic(self.out / "config.json", text.encode("utf-8"), "run config")
        logger = _Logger(self.out, self.step) if self.dist.is_main else _NoLogger()
        begin = last = time.perf_counter()
        loss, seen, batches = float("nan"), 0, iter(self.stream())
        try:
            while self.step < steps:
                batch = next(batches)
                loss, parts, outputs = self.train_step(batch)
                seen += len(batch["key"]) * self.dist.world_size
                out_of_time = time_limit is not None and time.perf_counter() - begin > time_limit
                if self.dist.active and time_limit is not None:  # all stop at the same step
                    flag = torch.tensor([float(out_of_time)], device=self.device)
                    out_of_time = bool(self.dist.mean(flag) > 0)
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
                if (self.step % self.config.sample_every == 0 or done) and self.dist.is_main:
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
        folder = subfolder(self.out, "samples")
        return save_png(grid(rows), folder / f"step_{self.step:06d}.png")


class _NoLogger:
    """What ranks other than 0 log: nothing."""

    def write(self, row: dict) -> None:
        pass

    def close(self) -> None:
        pass


MAX_LOG_BYTES = 1 << 28


def _step(row: dict) -> float:
    """A log row's step (rows that do not say are dropped on resume, as rows past it are)."""
    try:
        return int(row.get("step") or "")
    except (TypeError, ValueError):
        return float("inf")


class _Logger:
    """``log.csv`` always (rows past ``start`` from an earlier run are dropped on resume), plus
    TensorBoard scalars when the ``tensorboard`` package is installed."""

    def __init__(self, run_dir: Path, start: int) -> None:
        path = run_dir / "log.csv"
        rows = []
        if start and require_no_link(path, "log") is not None:
            text = read_owned(path, MAX_LOG_BYTES, "log").decode("utf-8", "replace")
            rows = [r for r in csv.DictReader(io.StringIO(text, newline="")) if _step(r) <= start]
        fd = open_owned(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "log")
        self.file = os.fdopen(fd, "w", newline="", encoding="utf-8")
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
    distributed = options.setdefault("distributed", from_environment())  # torchrun's ranks
    with ExitStack() as held:
        # The dataset must not change while it is read; the run folder has one writer (rank 0).
        held.enter_context(reading_dataset(data, "train"))
        DatasetInfo.load(Path(data))
        list_shards(Path(data), "train")  # a damaged index is refused before the run folder
        if distributed.is_main:
            held.enter_context(RunLock(out, "train"))
            ckpt.sweep_temporaries(out)
        if resume:
            state = ckpt.read_state(ckpt.find_checkpoint(out))
            config = TrainConfig.from_dict(state["config"])
            options.setdefault("seed", state["seed"])
        elif any((out / "checkpoints").glob("step_*[0-9]")):
            raise FileExistsError(f"{out}: already has checkpoints; pass --resume or another --out")
        trainer = Trainer(network, data, out, config, **options)
        if resume:
            trainer.resume()
        return trainer.run(config.steps if steps is None else steps, time_limit)
