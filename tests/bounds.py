"""Time and memory bounds for parsing hostile input (the loader and motion fuzz tests)."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

SECONDS_PER_CASE = 2.0  # generous: real files parse in milliseconds; a hang takes far longer
HEAP_OVER_FILE = 64  # peak Python heap at most this many times the input's size (+ 16 MiB)


@contextmanager
def bounded(size: int, measure_memory: bool = False) -> Iterator[None]:
    """Fail unless the block ends within SECONDS_PER_CASE and (when measured) its peak Python
    heap stays within HEAP_OVER_FILE × `size` + 16 MiB."""
    if measure_memory:
        tracemalloc.start()
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] if measure_memory else 0
        if measure_memory:
            tracemalloc.stop()
    assert peak <= HEAP_OVER_FILE * size + (16 << 20), f"peak heap {peak} bytes"
    assert elapsed < SECONDS_PER_CASE, f"{elapsed:.2f} s"
