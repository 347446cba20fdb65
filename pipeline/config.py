"""What decides a dataset's bytes: `GenerateConfig` (runtime choices like the worker count or the
scheduler are not in it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

# How eyebrows are drawn: as modelled, over the hair, or ("mix") one of the two per example,
# drawn from the example's seed (recorded in its JSON as "brows").
from mmd_loader.brows import BROW_CHOICES
from pipeline.shards import example_bound
from pipeline.splits import SplitConfig
from poses.schema import Schema, load_schema

LIGHTING_MODES = ("character", "example")
# Clauses of the terms of use (mmd_loader.terms.CLAUSES) whose models are left out by default,
# and the other words a terms policy may name ("unknown": models whose terms were not found).
DEFAULT_TERMS_EXCLUDE = ("ai_training",)
TERMS_POLICY_WORDS = ("unknown",)
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
    # Real performances as the pose law (pipeline.motions): the motions folder (absolute), its
    # usable files as (name inside it, sha256, frames), and the share of examples drawn from
    # the schema's laws instead (0 = every pose from the motions).
    poses: str | None = None
    motions: tuple[tuple[str, str, int], ...] = ()
    poses_mix: float = 0.0
    # Terms-of-use clauses a model is left out for when its terms forbid them or put a
    # condition on them (`pipeline.terms_policy`); "unknown" also leaves out models whose terms
    # were not found. () keeps every model.
    terms_exclude: tuple[str, ...] = DEFAULT_TERMS_EXCLUDE

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
        if not 0.0 < self.head_fraction <= 1.0:  # NaN fails this too
            raise ValueError(f"head fraction must be in (0, 1], got {self.head_fraction}")
        if not 1 <= self.supersample <= 8 or self.image_size * self.supersample > 8192:
            raise ValueError(
                f"supersample must be in 1..8 (image size × supersample <= 8192), "
                f"got {self.supersample}"
            )
        if self.shard_max_bytes < 1:
            raise ValueError(f"bytes per shard must be >= 1, got {self.shard_max_bytes}")
        if not 0 <= self.png_compress_level <= 9:
            raise ValueError(f"png_compress_level must be in 0..9, got {self.png_compress_level}")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be in 0..2^63-1, got {self.seed}")
        check_terms_exclude(self.terms_exclude)
        self._check_poses()

    def _check_poses(self) -> None:
        mix = self.poses_mix
        if isinstance(mix, bool) or not isinstance(mix, (int, float)) or not 0.0 <= mix < 1.0:
            raise ValueError(f"poses mix must be a number in [0, 1), got {mix!r:.80}")
        if self.poses is None:
            if self.motions or mix:
                raise ValueError("motions and a poses mix need a motions folder (poses)")
            return
        if not isinstance(self.poses, str) or not self.motions:
            raise ValueError("poses must be a folder path with at least one motion")
        motions = tuple(tuple(m) for m in self.motions)
        for m in motions:
            ok = len(m) == 3 and isinstance(m[0], str) and isinstance(m[1], str)
            if not ok or isinstance(m[2], bool) or not isinstance(m[2], int) or m[2] < 1:
                raise ValueError(f"motions must be (name, sha256, frames ≥ 1), got {m!r:.80}")
        object.__setattr__(self, "motions", motions)
        object.__setattr__(self, "poses_mix", float(mix))

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
        data["motions"] = tuple(tuple(m) for m in data.get("motions", ()))
        data["terms_exclude"] = tuple(data.get("terms_exclude", DEFAULT_TERMS_EXCLUDE))
        return cls(**data, splits=SplitConfig(**splits, explicit=explicit))

    def load_schema(self) -> Schema:
        """The pose schema (parsed once per process while its file is unchanged)."""
        return load_schema(self.schema)

    @property
    def examples_per_shard(self) -> int:
        """Examples per shard: the count limit, lowered so the byte limit holds for any image."""
        bound = example_bound(self.image_size, images=3)
        return max(1, min(self.shard_max_examples, self.shard_max_bytes // bound))


def check_terms_exclude(names: Any) -> None:
    """ValueError unless `names` is a tuple of known clauses and policy words, sorted, once each."""
    from mmd_loader.terms import CLAUSES

    known = (*CLAUSES, *TERMS_POLICY_WORDS)
    if not isinstance(names, tuple) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"terms_exclude must be a tuple of names, got {names!r:.80}")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"terms_exclude: unknown clause(s) {unknown}; clauses: {', '.join(known)}")


def with_overrides(config: GenerateConfig, **changes: Any) -> GenerateConfig:
    """A copy of `config` with some fields changed (None values are ignored)."""
    return replace(config, **{k: v for k, v in changes.items() if v is not None})
