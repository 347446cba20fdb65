"""Named configurations: ``tha1`` (the write-up's networks and settings, the default) and
``cpu-small`` (the same architecture, narrower and shallower, at 128×128, for a 2-core CPU).

``alpha_bias`` initialises the bias of the "keep the input" alpha heads (morpher, rotator change
path, combiner retouch): 0 is plain initialisation; a positive value makes an untrained network
start near the identity (sigmoid(3) ≈ 0.95 of the input kept), so a short CPU run spends its steps
on what changes (eyes, mouth, pose) rather than first learning to copy the image.

``change_weight`` adds an L1 on the pixels where input and target differ (``training.losses``);
cpu-small uses it because the morpher's changes cover about 1.5 % of the image. The demo
measurements behind cpu-small's values are in ``training/demo.py``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

# Bounds of every field: what `thagen train` options, and configs read back from checkpoints
# (untrusted bytes), must satisfy. (lo, hi) inclusive; None: no bound on that side.
NETWORK_BOUNDS = {
    "image_size": (8, 4096),
    "base_channels": (1, 1024),
    "max_channels": (1, 4096),
    "downsamplings": (0, 8),
    "res_blocks": (0, 64),
    "alpha_bias": (-100.0, 100.0),
}
TRAIN_BOUNDS = {
    "batch_size": (1, 65536),
    "steps": (1, 10**12),
    "lr": (0.0, 10.0),  # exclusive of 0
    "shuffle_buffer": (1, 10**7),
    "num_workers": (0, 256),
    "log_every": (1, None),
    "sample_every": (1, None),
    "checkpoint_every": (1, None),
    "perceptual_weight": (0.0, 1e6),
    "change_weight": (0.0, 1e6),
}


def check_fields(obj: Any, bounds: dict[str, tuple]) -> None:
    """Every field of the dataclass `obj` of the type its default has (an int is a float's
    number too; never a bool) and inside `bounds`: a ValueError naming the field otherwise."""
    for f in fields(obj):
        if f.name not in bounds:
            continue
        value, (lo, hi) = getattr(obj, f.name), bounds[f.name]
        wanted = (int, float) if isinstance(lo, float) else (int,)
        if isinstance(value, bool) or not isinstance(value, wanted):
            kind = "a number" if float in wanted else "an integer"
            raise ValueError(f"{f.name} must be {kind}, not {value!r:.40}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{f.name} must be finite, not {value}")
        positive = f.name == "lr"
        if (lo is not None and (value <= lo if positive else value < lo)) or (
            hi is not None and value > hi
        ):
            low = f"> {lo:g}" if positive else f">= {lo:g}"
            span = f"{low}" + (f" and <= {hi:g}" if hi is not None else "")
            raise ValueError(f"{f.name} must be {span}, not {value}")


@dataclass(frozen=True)
class NetworkConfig:
    image_size: int = 256
    base_channels: int = 64
    max_channels: int = 512
    downsamplings: int = 3
    res_blocks: int = 6
    alpha_bias: float = 0.0

    def __post_init__(self) -> None:
        check_fields(self, NETWORK_BOUNDS)
        if self.image_size % 2**self.downsamplings:
            raise ValueError(
                f"image_size {self.image_size} does not divide by 2^{self.downsamplings}"
            )


@dataclass(frozen=True)
class TrainConfig:
    name: str
    network: NetworkConfig = field(default_factory=NetworkConfig)
    batch_size: int = 25
    steps: int = 120_000  # 6 epochs of 500k examples at batch 25 (THA1's morpher)
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    shuffle_buffer: int = 1000
    num_workers: int = 4
    log_every: int = 100
    sample_every: int = 2000
    checkpoint_every: int = 5000
    perceptual_weight: float = 0.0  # used only when a VGG16 weights file is given
    change_weight: float = 0.0  # weight of the L1 on changed pixels (training.losses)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not 0 < len(self.name) <= 100:
            raise ValueError(f"name must be a short text, not {self.name!r:.40}")
        if not isinstance(self.network, NetworkConfig):
            raise ValueError("network must be a NetworkConfig")
        check_fields(self, TRAIN_BOUNDS)
        betas = self.betas
        if not (
            isinstance(betas, tuple)
            and len(betas) == 2
            and all(isinstance(b, int | float) and not isinstance(b, bool) for b in betas)
            and all(0.0 <= b < 1.0 for b in betas)
        ):
            raise ValueError(f"betas must be two numbers in [0, 1), not {betas!r:.60}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """The config `to_dict` wrote (a checkpoint's): a ValueError for anything else."""
        if not isinstance(data, dict) or not isinstance(data.get("network"), dict):
            raise ValueError("a training config must be an object with a network object")
        data = dict(data)
        data.setdefault("change_weight", 0.0)  # checkpoints written before it existed
        try:
            data["network"] = NetworkConfig(**data["network"])
            betas = data.get("betas", (0.5, 0.999))
            data["betas"] = tuple(betas) if isinstance(betas, list | tuple) else betas
            return cls(**data)
        except TypeError as error:  # unknown or missing fields
            raise ValueError(f"not a training config ({error})") from None

    def with_overrides(self, **changes) -> TrainConfig:
        """A copy with the non-None ``changes`` applied."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


CONFIGS: dict[str, TrainConfig] = {
    "tha1": TrainConfig(name="tha1"),
    "cpu-small": TrainConfig(
        name="cpu-small",
        network=NetworkConfig(
            image_size=128,
            base_channels=8,
            max_channels=32,
            downsamplings=2,
            res_blocks=3,
            alpha_bias=3.0,
        ),
        batch_size=8,
        steps=1500,
        lr=1e-3,
        shuffle_buffer=200,
        num_workers=0,  # decoding 128² PNGs is cheap; a worker process would compete for 2 cores
        change_weight=2.0,
        log_every=25,
        sample_every=250,
        checkpoint_every=500,
    ),
}


def get_config(name: str) -> TrainConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown config {name!r}; expected one of {', '.join(CONFIGS)}") from None
