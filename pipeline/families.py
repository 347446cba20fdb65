"""Character families: models whose faces are the same mesh, found from geometry, not names.

Real collections hold many files of one character: physics or IK variants, outfits, texture
edits, a PMD and its PMX conversion, and edits of a base model that keep its head. Splitting
them one by one would put one face in train and in test, and the val/test figures would then
measure memory. So splits are drawn per family.

**The face signature.** The face is the set of rest positions of the vertices that the
detected eye and mouth morphs move (eyelids, lashes, mouth), taken relative to the head bone
(頭), so a head moved onto another body or neck still matches. Each point is quantised on two
grids of `QUANTUM` model units (about 0.4 mm of a 1.6 m character), the second offset by half
a cell, so two points closer than a fraction of a cell share a cell in at least one grid
whatever the rounding. The cells are hashed to 64 bits; the signature keeps the `SKETCH`
smallest hashes (a bottom-k sketch) and the number of cells. It does not depend on vertex
order, textures, materials, physics, bones other than 頭, or anything outside the face, and
costs a few milliseconds per model.

**Families.** Two models are one family when at least `MATCH` of the smaller face's cells
coincide with the other's (estimated from the two sketches); families are the connected groups
of that relation. On the real models in ../shared/mmd the same head coincides at 0.99–1.0 and
different heads at 0.00–0.04, so the threshold sits far from both.

**Derived models.** An edit that keeps its base model's face mesh (another character built on a
base head, a re-textured or re-dressed copy) is in the base's family, whatever its name: what
the networks learn from, and could memorise, is the face. Putting such an edit in test while
its base trains would measure recall of a seen face; a family too many costs nothing but a few
models moving together. An edit that remodels the face (new eyes or mouth) is a new family.

**Family ids** are `fam_` and 16 hex digits of a hash of the smallest cell hash of the
family's faces (its "anchor"), so the id does not depend on which files are present: adding a
texture, physics or outfit variant (same face cells) never changes it, and adding a derived
model changes it only if that model brings a new face vertex whose hash is below the anchor.
A model without a face signature (unusable) is a family of its own, named by its character id.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations

import numpy as np

QUANTUM = 0.005  # model units per grid cell
SKETCH = 256  # smallest cell hashes kept per model
MATCH = 0.5  # share of the smaller face's cells that must coincide
MOVED = 1e-5  # a morph offset at least this long moves its vertex
SPAN = 1 << 20  # cells per axis on each side of the head bone (clipped beyond)
MAX_POSTING = 256  # models sharing one hash that are all compared with each other
PREFIX = "fam_"


@dataclass(frozen=True)
class FaceSignature:
    """A face's bottom-k sketch (sorted uint64 hashes) and its number of distinct cells."""

    sketch: np.ndarray
    cells: int

    def to_bytes(self) -> bytes:
        return self.sketch.astype("<u8").tobytes()

    @classmethod
    def from_row(cls, sketch: bytes | None, cells: object) -> FaceSignature | None:
        if not isinstance(sketch, bytes | bytearray) or not sketch or len(sketch) % 8:
            return None
        try:
            count = int(cells)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return None
        values = np.unique(np.frombuffer(bytes(sketch), "<u8").astype(np.uint64))[:SKETCH]
        return cls(values, max(count, len(values)))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a fixed, well-spread 64-bit hash of 64-bit keys."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def cell_hashes(points: np.ndarray, quantum: float = QUANTUM) -> np.ndarray:
    """Sorted unique hashes of the cells of `points` (N, 3) on the two staggered grids."""
    points = np.asarray(points, np.float64).reshape(-1, 3)
    points = points[np.isfinite(points).all(axis=1)]
    keys = []
    for grid, shift in ((0, 0.0), (1, 0.5)):
        cells = np.clip(np.floor(points / quantum + shift), -SPAN, SPAN - 1).astype(np.int64)
        cells = (cells + SPAN).astype(np.uint64)
        packed = (cells[:, 0] << np.uint64(42)) | (cells[:, 1] << np.uint64(21)) | cells[:, 2]
        keys.append((packed << np.uint64(1)) | np.uint64(grid))
    with np.errstate(over="ignore"):
        return np.unique(_mix(np.concatenate(keys)))


def face_points(model, roles) -> np.ndarray:
    """Rest positions, relative to the head bone, of the vertices the role morphs move."""
    if roles is None or roles.head < 0 or not roles.morphs:
        return np.zeros((0, 3))
    moved = []
    for role in sorted(roles.morphs):
        morph = roles.morphs[role]
        if len(morph.indices):
            far = np.linalg.norm(np.asarray(morph.offsets, np.float64), axis=1) >= MOVED
            moved.append(np.asarray(morph.indices)[far])
    if not moved:
        return np.zeros((0, 3))
    indices = np.unique(np.concatenate(moved))
    indices = indices[(indices >= 0) & (indices < len(model.positions))]
    head = np.asarray(model.bones[roles.head].position, np.float64)
    return np.asarray(model.positions, np.float64)[indices] - head


def face_signature(model, roles) -> FaceSignature | None:
    """The face signature of a loaded model and its detected roles (None without a face)."""
    hashes = cell_hashes(face_points(model, roles))
    if not len(hashes):
        return None
    return FaceSignature(hashes[:SKETCH], len(hashes))


def containment(a: FaceSignature, b: FaceSignature) -> float:
    """Estimated share of the smaller face's cells that the other face has too (exact when
    both faces have at most SKETCH cells)."""
    k = min(len(a.sketch), len(b.sketch))
    if k == 0:
        return 0.0
    bottom = np.union1d(a.sketch, b.sketch)[:k]
    shared = np.intersect1d(np.intersect1d(a.sketch, b.sketch), bottom)
    jaccard = len(shared) / len(bottom)
    common = jaccard * (a.cells + b.cells) / (1.0 + jaccard)
    return min(1.0, common / min(a.cells, b.cells))


def assign_families(signatures: Mapping[str, FaceSignature | None]) -> dict[str, str]:
    """Family id of every character (`signatures`: character id -> its face or None)."""
    faces = {c: s for c, s in signatures.items() if s is not None and len(s.sketch)}
    parent = {c: c for c in faces}

    def root(c: str) -> str:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    postings: dict[int, list[str]] = defaultdict(list)
    for character in sorted(faces):
        for value in faces[character].sketch.tolist():
            postings[value].append(character)
    checked: set[tuple[str, str]] = set()
    for members in postings.values():
        for a, b in combinations(members[:MAX_POSTING], 2):
            if (a, b) in checked or root(a) == root(b):
                continue
            checked.add((a, b))
            if containment(faces[a], faces[b]) >= MATCH:
                parent[max(root(a), root(b))] = min(root(a), root(b))
    groups: dict[str, list[str]] = defaultdict(list)
    for character in faces:
        groups[root(character)].append(character)
    families: dict[str, str] = {}
    used: set[int] = set()
    for members in sorted(groups.values(), key=min):
        values = np.unique(np.concatenate([faces[c].sketch for c in members]))
        anchor = next((int(v) for v in values.tolist() if v not in used), int(values[0]))
        used.add(anchor)
        name = hashlib.sha256(f"thagen-family:{anchor:016x}".encode()).hexdigest()[:16]
        for character in members:
            families[character] = f"{PREFIX}{name}"
    for character in signatures:
        if character not in families:
            families[character] = character
    return families
