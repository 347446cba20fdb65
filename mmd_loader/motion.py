"""MMD motion (VMD) and pose (VPD) files as one `Motion`: keyframes of bones and morphs.

`load_motion(path)` reads either (dispatching on the header), bounded like the model loader:
only a regular file of at most `MAX_MOTION_BYTES` is read, every count is checked against the
bytes left before anything is allocated, and every failure is one `MotionLoadError` naming the
file and the byte offset (VMD) or line (VPD).

Keyframes are converted to thagen's right-handed frame as models are (`mmd_loader.model`):
positions (x, y, -z), quaternions (x, y, z, w) → (-x, -y, z, w). Names are kept twice: decoded
(cp932) for people, and as the bytes the file stores (at most 15 in a VMD, cut wherever the
15th byte falls), which is what MMD matches against a model's cp932 names.

A track is the keyframes of one name, sorted by frame. Files need not be sorted (MMD writes
bones in any order), and a frame may appear twice for one name: MMD's timeline holds one key per
frame, and a later key for the same frame replaces the earlier, so the last one in file order is
kept (`Motion.bone_track`, `Motion.morph_track`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from media.files import open_regular
from mmd_loader.errors import MotionLoadError
from poses.sequence import MOTION_SUFFIXES

__all__ = [
    "MOTION_SUFFIXES",
    "BoneKeys",
    "BoneTrack",
    "MorphKeys",
    "MorphTrack",
    "Motion",
    "load_motion",
]

MAX_MOTION_BYTES = 256 * 1024 * 1024  # a long dance is ~15 MB; camera-only files are smaller
NAME_BYTES = 15  # a VMD keyframe's name field
# The interpolation MMD writes for a linear segment: control points (20, 20) and (107, 107).
LINEAR_CURVE = (20, 20, 107, 107)
CURVES = ("x", "y", "z", "rotation")  # a bone keyframe's four curves, in file order


@dataclass
class BoneKeys:
    """Every bone keyframe of a motion, in file order. `track[i]` indexes the motion's
    `bone_names`; `curves[i, c]` is curve c (x, y, z, rotation) as (x1, y1, x2, y2) in 0..127."""

    track: np.ndarray  # (n,) int32
    frame: np.ndarray  # (n,) int64
    position: np.ndarray  # (n, 3) float32, right-handed
    rotation: np.ndarray  # (n, 4) float32 quaternions (x, y, z, w), right-handed
    curves: np.ndarray  # (n, 4, 4) uint8

    @classmethod
    def empty(cls) -> BoneKeys:
        return cls(
            np.zeros(0, np.int32),
            np.zeros(0, np.int64),
            np.zeros((0, 3), np.float32),
            np.zeros((0, 4), np.float32),
            np.zeros((0, 4, 4), np.uint8),
        )


@dataclass
class MorphKeys:
    """Every morph keyframe of a motion, in file order; `track[i]` indexes `morph_names`."""

    track: np.ndarray  # (n,) int32
    frame: np.ndarray  # (n,) int64
    weight: np.ndarray  # (n,) float32

    @classmethod
    def empty(cls) -> MorphKeys:
        return cls(np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.float32))


@dataclass(frozen=True)
class BoneTrack:
    """One bone's keyframes, sorted by frame with one key per frame."""

    name: str
    frames: np.ndarray  # (k,) float64, strictly increasing
    positions: np.ndarray  # (k, 3) float64
    rotations: np.ndarray  # (k, 4) float64 unit quaternions (x, y, z, w)
    curves: np.ndarray  # (k, 4, 4) uint8: the curves of the segment that ends at each key


@dataclass(frozen=True)
class MorphTrack:
    """One morph's keyframes, sorted by frame with one key per frame."""

    name: str
    frames: np.ndarray  # (k,) float64, strictly increasing
    weights: np.ndarray  # (k,) float64


@dataclass
class Motion:
    """A VMD or VPD file: bone and morph keyframes (frames at MMD's 30 per second)."""

    path: Path
    format: str  # "vmd" or "vpd"
    version: str  # VMD: "0002" or "0001" (the old "file" header); VPD: "1"
    model_name: str
    bone_names: list[str]
    bone_raw: list[bytes]  # each name as stored in the file (cp932)
    bones: BoneKeys
    morph_names: list[str]
    morph_raw: list[bytes]
    morphs: MorphKeys
    # Names are stored cut at this many bytes (a VMD's 15; None: whole, as in a VPD).
    name_limit: int | None = NAME_BYTES
    # Sections read past (thagen poses faces, not cameras or lights): keyframe counts.
    camera_keys: int = 0
    light_keys: int = 0
    shadow_keys: int = 0
    ik_keys: int = 0
    warnings: list[str] = field(default_factory=list)
    _bone_order: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _morph_order: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (
            f"<Motion {self.format} {self.model_name!r} {len(self.bones.frame)} bone keys "
            f"({len(self.bone_names)} bones), {len(self.morphs.frame)} morph keys "
            f"({len(self.morph_names)} morphs), last frame {self.last_frame}>"
        )

    @property
    def last_frame(self) -> int:
        """The last keyframe's frame over bones and morphs (0 without keyframes)."""
        ends = [int(k.frame.max()) for k in (self.bones, self.morphs) if len(k.frame)]
        return max(ends, default=0)

    @property
    def frame_count(self) -> int:
        """Frames 0..last_frame, at MMD's 30 per second."""
        return self.last_frame + 1

    def bone_track(self, index: int) -> BoneTrack:
        """The keyframes of bone name `index` (into `bone_names`)."""
        if self._bone_order is None:
            self._bone_order = _track_order(self.bones.track, self.bones.frame)
        rows = _rows(self._bone_order, index)
        keys = self.bones
        return BoneTrack(
            self.bone_names[index],
            keys.frame[rows].astype(np.float64),
            keys.position[rows].astype(np.float64),
            unit_quaternions(keys.rotation[rows]),
            keys.curves[rows],
        )

    def morph_track(self, index: int) -> MorphTrack:
        """The keyframes of morph name `index` (into `morph_names`)."""
        if self._morph_order is None:
            self._morph_order = _track_order(self.morphs.track, self.morphs.frame)
        rows = _rows(self._morph_order, index)
        weights = self.morphs.weight[rows].astype(np.float64)
        return MorphTrack(
            self.morph_names[index],
            self.morphs.frame[rows].astype(np.float64),
            np.nan_to_num(weights, nan=0.0, posinf=0.0, neginf=0.0),
        )


def _track_order(track: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, starts): the keyframe rows sorted by (track, frame), one per (track, frame) (the
    last in file order), and where each track's rows start (len = tracks + 1)."""
    key = track.astype(np.int64) << 32 | frame.astype(np.int64)
    order = np.lexsort((np.arange(len(key)), key))  # by key, then file order
    sorted_key = key[order]
    last = np.ones(len(order), bool)
    last[:-1] = sorted_key[1:] != sorted_key[:-1]
    rows = order[last]
    count = int(track.max()) + 1 if len(track) else 0
    starts = np.searchsorted(track[rows], np.arange(count + 1))
    return rows, starts


def _rows(order: tuple[np.ndarray, np.ndarray], index: int) -> np.ndarray:
    rows, starts = order
    if not 0 <= index < len(starts) - 1:
        return rows[:0]
    return rows[starts[index] : starts[index + 1]]


def unit_quaternions(q: np.ndarray) -> np.ndarray:
    """Quaternions normalised in float64; a zero or non-finite one becomes the identity."""
    q = np.asarray(q, np.float64).reshape(-1, 4)
    with np.errstate(invalid="ignore", over="ignore"):
        norm = np.linalg.norm(q, axis=1)
    bad = ~np.isfinite(norm) | (norm < 1e-12)
    out = np.where(bad[:, None], (0.0, 0.0, 0.0, 1.0), q)
    return out / np.where(bad, 1.0, norm)[:, None]


def decode_name(raw: bytes) -> str:
    """A name field's text: the bytes before the first NUL, decoded from cp932 (an undecodable
    byte, e.g. half a character cut at the 15th byte, becomes U+FFFD)."""
    return raw.split(b"\0", 1)[0].decode("cp932", errors="replace")


def encode_name(name: str, size: int = NAME_BYTES) -> bytes | None:
    """A model's bone or morph name as a VMD stores it (cp932, cut at `size` bytes), or None
    when cp932 cannot write it (no VMD can name it)."""
    try:
        return name.encode("cp932")[:size]
    except UnicodeEncodeError:
        return None


def load_motion(path: str | Path) -> Motion:
    """Read a .vmd or .vpd file (by its header, whatever its suffix)."""
    path = Path(path)
    with open_regular(path, "motion", MAX_MOTION_BYTES, error=MotionLoadError) as f:
        try:
            data = f.read(MAX_MOTION_BYTES + 1)
            size = os.fstat(f.fileno()).st_size
        except OSError as error:
            raise MotionLoadError(path, f"cannot read: {error.strerror or error}") from None
    if len(data) > MAX_MOTION_BYTES or len(data) != size:
        raise MotionLoadError(path, "file changed size while being read")
    return parse_motion(data, path)


def parse_motion(data: bytes, path: str | Path) -> Motion:
    """Parse VMD or VPD bytes; `path` names the file in errors and in the Motion."""
    from mmd_loader.vmd import VMD_MAGIC, parse_vmd
    from mmd_loader.vpd import parse_vpd, sniff_vpd

    path = Path(path)
    if data.startswith(VMD_MAGIC):
        return parse_vmd(data, path)
    if sniff_vpd(data):
        return parse_vpd(data, path)
    raise MotionLoadError(path, f"not a VMD or VPD file (starts with {data[:24]!r})", 0)
