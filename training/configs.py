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

from dataclasses import asdict, dataclass, field, replace


@dataclass(frozen=True)
class NetworkConfig:
    image_size: int = 256
    base_channels: int = 64
    max_channels: int = 512
    downsamplings: int = 3
    res_blocks: int = 6
    alpha_bias: float = 0.0

    def __post_init__(self) -> None:
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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = dict(data)
        data.setdefault("change_weight", 0.0)  # checkpoints written before it existed
        data["network"] = NetworkConfig(**data["network"])
        data["betas"] = tuple(data["betas"])
        return cls(**data)

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
