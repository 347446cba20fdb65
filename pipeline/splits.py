"""Train/val/test splits by character, stable when characters are added.

A character's split depends on its own id only: u = the first 64 bits of
sha256("thagen-split:" + id) as a number in [0, 1), compared with the cumulative fractions in the
order train, val, test. Adding or removing other characters therefore never moves a character, and
no character can be in two splits.

Guaranteeing "at least one val character" is impossible together with that stability (with two
characters both hashing to train, one would have to move when the set changes), so small sets
should name their val/test characters explicitly: `explicit` maps a split to character ids (or
unique id prefixes), and those assignments win over the hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitConfig:
    train: float = 0.9
    val: float = 0.05
    test: float = 0.05
    explicit: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        fractions = (self.train, self.val, self.test)
        if min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-9:
            raise ValueError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
        unknown = set(self.explicit) - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown split names {sorted(unknown)} (use {', '.join(SPLITS)})")

    def to_json(self) -> dict:
        return {
            "train": self.train,
            "val": self.val,
            "test": self.test,
            "explicit": {k: sorted(v) for k, v in sorted(self.explicit.items())},
        }


def split_hash(character: str) -> float:
    """The character's stable position in [0, 1)."""
    digest = hashlib.sha256(f"thagen-split:{character}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_of(character: str, config: SplitConfig | None = None) -> str:
    """The split of one character."""
    config = config or SplitConfig()
    for name in SPLITS:
        if any(character.startswith(prefix) for prefix in config.explicit.get(name, ())):
            return name
    u = split_hash(character)
    if u < config.train:
        return "train"
    if u < config.train + config.val:
        return "val"
    return "test"


def assign_splits(characters: Iterable[str], config: SplitConfig | None = None) -> dict[str, str]:
    """Split of every character; explicit entries must each match exactly one character."""
    characters, config = list(characters), config or SplitConfig()
    for name, prefixes in config.explicit.items():
        for prefix in prefixes:
            hits = [c for c in characters if c.startswith(prefix)]
            if len(hits) > 1:
                raise ValueError(f"explicit {name} entry {prefix!r} matches {len(hits)} characters")
    return {c: split_of(c, config) for c in characters}
