"""Seeds: every random draw of an example comes from (dataset seed, character id, example index).

Nothing depends on worker count, shard layout or completion order. Each example's generator is
`numpy.random.Generator(PCG64(example_seed(...)))`, and the 64-bit `example_seed` is written into
the example's record, so one record alone reproduces its draws.
"""

from __future__ import annotations

import hashlib

import numpy as np


def character_int(character: str) -> int:
    """A stable non-negative integer for a character id (hex digests use their first 128 bits)."""
    try:
        return int(character[:32], 16)
    except ValueError:
        return int.from_bytes(hashlib.sha256(character.encode("utf-8")).digest()[:16], "big")


def example_seed(dataset_seed: int, character: str, index: int) -> int:
    """The 64-bit seed of one example."""
    if dataset_seed < 0 or index < 0:
        raise ValueError(f"seeds and indices must be non-negative: {dataset_seed}, {index}")
    sequence = np.random.SeedSequence((dataset_seed, character_int(character), index))
    return int(sequence.generate_state(1, np.uint64)[0])


def example_rng(dataset_seed: int, character: str, index: int) -> np.random.Generator:
    """The generator every draw of one example comes from."""
    return rng_of(example_seed(dataset_seed, character, index))


def rng_of(seed: int) -> np.random.Generator:
    """The generator of an example's 64-bit seed."""
    return np.random.Generator(np.random.PCG64(seed))
