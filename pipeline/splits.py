"""Train/val/test splits by character family, stable when characters are added.

A family's split depends on its own id only (`pipeline.families`: one face mesh, one family):
u = the first 64 bits of sha256("thagen-split:" + id) as a number in [0, 1), compared with the
cumulative fractions in the order train, val, test. Every character takes its family's split,
so one face is never in two splits, and adding or removing other characters never moves a
family. Without families (a bare list of characters) each character is its own family.

Guaranteeing "at least one val character" is impossible together with that stability (with two
families both hashing to train, one would have to move when the set changes), so small sets
should name their val/test characters explicitly: `explicit` maps a split to family ids,
character ids, or unique prefixes of either; an entry sends its whole family there, and those
assignments win over the hash.
"""

from __future__ import annotations

import hashlib
import math
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
        numbers = all(isinstance(f, int | float) and not isinstance(f, bool) for f in fractions)
        if (
            not numbers
            or not all(math.isfinite(f) for f in fractions)
            or min(fractions) < 0
            or abs(sum(fractions) - 1.0) > 1e-9
        ):
            raise ValueError(f"split fractions must be >= 0 and sum to 1, got {fractions!r:.80}")
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


def hashed_split(key: str, config: SplitConfig) -> str:
    """The split the hash of `key` (a family id) falls in."""
    u = split_hash(key)
    if u < config.train:
        return "train"
    if u < config.train + config.val:
        return "val"
    return "test"


def split_of(character: str, config: SplitConfig | None = None, family: str | None = None) -> str:
    """The split of one character (of its family, when given)."""
    config = config or SplitConfig()
    family = family or character
    for name in SPLITS:
        for prefix in config.explicit.get(name, ()):
            if character.startswith(prefix) or family.startswith(prefix):
                return name
    return hashed_split(family, config)


def assign_splits(
    characters: Iterable[str],
    config: SplitConfig | None = None,
    families: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Split of every character: its family's (`families`: character -> family id; without it
    each character is its own family). An explicit entry must match exactly one family, and
    one family cannot be named for two splits."""
    characters, config = list(characters), config or SplitConfig()
    family_of = {c: (families or {}).get(c, c) for c in characters}
    members: dict[str, list[str]] = {}
    for character in characters:
        members.setdefault(family_of[character], []).append(character)
    chosen: dict[str, tuple[str, str]] = {}  # family -> (split, the entry that chose it)
    for name in SPLITS:
        for prefix in config.explicit.get(name, ()):
            hits = sorted(
                f
                for f, cs in members.items()
                if f.startswith(prefix) or any(c.startswith(prefix) for c in cs)
            )
            if len(hits) > 1:
                raise ValueError(f"explicit {name} entry {prefix!r} matches {len(hits)} families")
            for family in hits:
                other = chosen.get(family)
                if other is not None and other[0] != name:
                    raise ValueError(
                        f"explicit entries {other[1]!r} ({other[0]}) and {prefix!r} ({name}) "
                        f"name one family ({family}); a family cannot span two splits"
                    )
                chosen[family] = (name, prefix)
    split = {f: chosen[f][0] if f in chosen else hashed_split(f, config) for f in members}
    return {c: split[family_of[c]] for c in characters}
