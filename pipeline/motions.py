"""Real performances as the pose law (`generate --poses MOTIONS`): a folder of MMD motions whose
frames the examples' poses are drawn from.

The folder is walked by `mmd_loader.walk` for .vmd/.vpd files (symlinks followed only when they
stay inside it; everything not taken reported). Each file is read bounded (`load_motion`'s
limits), must hold bone or morph keyframes within the converter's length, and is recorded in
the run's config by its name inside the folder, sha256 and frame count (frames 0..last at
MMD's 30 per second). A file that cannot be used is one line, and the others are used.

Draws: an example draws from the schema's laws with probability `poses_mix` (one uniform, drawn
only when the mix is above 0), else one frame uniformly over all motions' frames together (one
integer), from its own generator as every draw (`pipeline.seeds`), so the output does not
depend on workers or shards. The frame is mapped through that character's model
(`mmd_loader.motion_schema`): what each morph does there decides the parameters it drives.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from media.files import read_regular
from mmd_loader.errors import MotionLoadError
from mmd_loader.motion import MAX_MOTION_BYTES, Motion, parse_motion
from mmd_loader.motion_schema import motion_problem
from poses.sequence import MOTION_SUFFIXES

MAX_MOTIONS = 100_000  # files in one motions folder
CACHE_BYTES = 512 * 1024 * 1024  # parsed keyframes a worker keeps


@dataclass(frozen=True)
class MotionFile:
    """A motion of the folder: its path inside it (POSIX separators), digest and frames."""

    name: str
    sha256: str
    frames: int

    def to_json(self) -> list:
        return [self.name, self.sha256, self.frames]


def scan_motions(folder: str | Path) -> tuple[list[MotionFile], list[str]]:
    """The usable motions under `folder` (sorted by name) and one line per file or entry left
    out, saying why."""
    from mmd_loader.walk import walk_models

    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"--poses {root}: not a folder of motions (.vmd, .vpd)")
    files, skipped = walk_models(root, MOTION_SUFFIXES)
    lines = [f"skipped motion {s.path}: {s.reason}" for s in skipped]
    if len(files) > MAX_MOTIONS:
        raise ValueError(f"--poses {root}: more than {MAX_MOTIONS} motion files")
    found = []
    for path in files:
        try:
            data, motion = read_motion(path)
        except MotionLoadError as error:
            lines.append(f"skipped motion {error}")
            continue
        reason = motion_problem(motion)
        if reason:
            lines.append(f"skipped motion {path}: {reason}")
            continue
        name = path.relative_to(root).as_posix()
        found.append(MotionFile(name, hashlib.sha256(data).hexdigest(), motion.frame_count))
    return sorted(found, key=lambda m: m.name), lines


def read_motion(path: Path) -> tuple[bytes, Motion]:
    """The file's bytes (a regular file within the motion limit) and the motion they hold."""
    data = read_regular(path, "motion", MAX_MOTION_BYTES, error=MotionLoadError)
    return data, parse_motion(data, path)


class MotionLibrary:
    """The run's motions, read on demand in a worker and checked against the run's digests.
    Parsed motions are kept up to `CACHE_BYTES` of keyframes (a five-minute dance is about
    6 MB), least recently used first out; reading one again costs ~40 ms per 10 MB file."""

    def __init__(self, folder: str, motions: Sequence[Sequence]) -> None:
        self.folder = Path(folder)
        self.files = [MotionFile(str(n), str(d), int(f)) for n, d, f in motions]
        self.starts = np.cumsum([0] + [m.frames for m in self.files])
        self._loaded: OrderedDict[int, Motion] = OrderedDict()

    @property
    def total(self) -> int:
        """Frames of all motions together."""
        return int(self.starts[-1])

    def locate(self, frame: int) -> tuple[int, int]:
        """(motion index, its frame) of a frame counted over all motions."""
        k = int(np.searchsorted(self.starts, frame, side="right")) - 1
        return k, frame - int(self.starts[k])

    def motion(self, k: int) -> Motion:
        if k in self._loaded:
            self._loaded.move_to_end(k)
            return self._loaded[k]
        entry = self.files[k]
        path = self.folder / entry.name
        try:
            data, motion = read_motion(path)
        except MotionLoadError as error:
            raise MotionSourceError(f"motion {error}") from None
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise MotionSourceError(
                f"{path}: the motion changed since the run started (its sha256 differs from "
                "the one in the run's config); run again to use the new file"
            )
        self._loaded[k] = motion
        while len(self._loaded) > 1 and sum(map(_size, self._loaded.values())) > CACHE_BYTES:
            self._loaded.popitem(last=False)
        return motion


def _size(motion: Motion) -> int:
    keys = (motion.bones, motion.morphs)
    return sum(a.nbytes for k in keys for a in vars(k).values() if isinstance(a, np.ndarray))


class MotionSourceError(RuntimeError):
    """A motion the run was planned with cannot be read as it was: the run stops (every
    character would draw from it), naming the file."""


@functools.lru_cache(maxsize=2)
def library(folder: str, motions: tuple) -> MotionLibrary:
    """This process's library for a config's motions (kept across shard tasks)."""
    return MotionLibrary(folder, motions)


def absolute(folder: str | Path) -> str:
    """The folder as an absolute path (links kept: the folder named may be one)."""
    return os.path.abspath(folder)
