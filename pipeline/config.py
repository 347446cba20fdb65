"""What decides a dataset's bytes: `GenerateConfig` (runtime choices like the worker count or the
scheduler are not in it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pipeline.shards import example_bound
from pipeline.splits import SplitConfig
from poses.schema import Schema, load_schema

LIGHTING_MODES = ("character", "example")
# How eyebrows are drawn (render.brow_layer.BROW_CHOICES): as modelled, over the hair, or one of
# the two per example, drawn from the example's seed (recorded in its JSON as "brows").
BROW_CHOICES = ("modelled", "over", "mix")
MAX_IMAGE_SIZE = 4096
MAX_EXAMPLES_PER_CHARACTER = 10_000_000
FIELD_TYPES = {
    "schema": str,
    "seed": int,
    "examples_per_character": int,
    "image_size": int,
    "head_fraction": (int, float),
    "shading": str,
    "supersample": int,
    "lighting": str,
    "brows": str,
    "png_compress_level": int,
    "shard_max_examples": int,
    "shard_max_bytes": int,
}


@dataclass(frozen=True)
class GenerateConfig:
    """Everything that decides a dataset's bytes.

    `lighting="character"` draws the lighting once per character, so the rest image (rendered
    once, identical in all of a character's examples) is lit like its expression and posed
    images; `"example"` draws it per example and renders the rest image per example too.

    `image_size` and `head_fraction` left as None take the schema's framing (tha1: 256², 0.5;
    tha3: 512², 0.25); where the head box's centre lands is always the schema's.

    `brows` (`BROW_CHOICES`) left as None is "mix" for a schema with eyebrow parameters (tha2,
    tha3: THA2/THA3's data show brows over the hair, and the networks should see both) and
    "modelled" for one without (tha1).
    """

    schema: str = "tha1"
    seed: int = 0
    examples_per_character: int = 100
    image_size: int | None = None  # None: the schema's framing
    head_fraction: float | None = None
    shading: str = "phong"
    supersample: int = 2
    lighting: str = "character"
    brows: str | None = None  # None: the schema's default (see above)
    png_compress_level: int = 1
    shard_max_examples: int = 1000
    shard_max_bytes: int = 1 << 30
    splits: SplitConfig = field(default_factory=SplitConfig)
    # Face overrides (mmd_loader.overrides): model pattern -> fields; they decide roles and framing.
    overrides: dict[str, dict] = field(default_factory=dict)
    # Quality-flag codes (pipeline.quality) whose models are left out of the dataset.
    exclude_flags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.schema, str):
            raise ValueError(f"schema must be a str, got {self.schema!r:.80}")
        if self.image_size is None or self.head_fraction is None:  # the schema's framing
            framing = self.load_schema().framing
            if self.image_size is None:
                object.__setattr__(self, "image_size", framing.size)
            if self.head_fraction is None:
                object.__setattr__(self, "head_fraction", framing.head_fraction)
        if self.brows is None:
            has_brows = any(p.group == "eyebrow" for p in self.load_schema().parameters)
            object.__setattr__(self, "brows", "mix" if has_brows else "modelled")
        for name, kind in FIELD_TYPES.items():
            value = getattr(self, name)
            if not isinstance(value, kind) or isinstance(value, bool):
                wanted = "a number" if isinstance(kind, tuple) else f"a {kind.__name__}"
                raise ValueError(f"{name} must be {wanted}, got {value!r:.80}")
        if not isinstance(self.splits, SplitConfig) or not isinstance(self.overrides, dict):
            raise ValueError("splits must be a SplitConfig and overrides a mapping")
        if self.lighting not in LIGHTING_MODES:
            raise ValueError(f"lighting must be one of {LIGHTING_MODES}, got {self.lighting!r}")
        if self.brows not in BROW_CHOICES:
            raise ValueError(f"brows must be one of {BROW_CHOICES}, got {self.brows!r}")
        if not 1 <= self.examples_per_character <= MAX_EXAMPLES_PER_CHARACTER:
            raise ValueError(
                f"examples per character must be in 1..{MAX_EXAMPLES_PER_CHARACTER}, "
                f"got {self.examples_per_character}"
            )
        if self.shard_max_examples < 1:
            raise ValueError(f"examples per shard must be >= 1, got {self.shard_max_examples}")
        if not 8 <= self.image_size <= MAX_IMAGE_SIZE:
            raise ValueError(f"image size must be in 8..{MAX_IMAGE_SIZE}, got {self.image_size}")
        if not 0.0 < self.head_fraction <= 1.0:
            raise ValueError(f"head fraction must be in (0, 1], got {self.head_fraction}")
        if not 0 <= self.png_compress_level <= 9:
            raise ValueError(f"png_compress_level must be in 0..9, got {self.png_compress_level}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["splits"] = self.splits.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GenerateConfig:
        """The config `to_json` wrote (ValueError/TypeError for anything else)."""
        data = dict(data)
        splits = dict(data.pop("splits", {}))
        explicit = {k: tuple(map(str, v)) for k, v in dict(splits.pop("explicit", {})).items()}
        data["exclude_flags"] = tuple(data.get("exclude_flags", ()))
        return cls(**data, splits=SplitConfig(**splits, explicit=explicit))

    def load_schema(self) -> Schema:
        """The pose schema (parsed once per process while its file is unchanged)."""
        return load_schema(self.schema)

    @property
    def examples_per_shard(self) -> int:
        """Examples per shard: the count limit, lowered so the byte limit holds for any image."""
        bound = example_bound(self.image_size, images=3)
        return max(1, min(self.shard_max_examples, self.shard_max_bytes // bound))


def with_overrides(config: GenerateConfig, **changes: Any) -> GenerateConfig:
    """A copy of `config` with some fields changed (None values are ignored)."""
    return replace(config, **{k: v for k, v in changes.items() if v is not None})
