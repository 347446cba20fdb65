"""Character families: models whose faces are the same mesh, found from geometry, not names.

Real collections hold many files of one character: physics or IK variants, outfits, texture
edits, a PMD and its PMX conversion, and edits of a base model that keep its head. Splitting
them one by one would put one face in train and in test, and the val/test figures would then
measure memory. So splits are drawn per family.

**The face signature.** The face is two sets of rest positions: the vertices that the detected
eye morphs move (eyelids, lashes) and those the mouth morph moves, taken relative to the head
bone (頭), so a head moved onto another body or neck still matches. Each point is quantised on two
grids of `QUANTUM` model units (about 0.4 mm of a 1.6 m character), the second offset by half
a cell, so two points closer than a fraction of a cell share a cell in at least one grid
whatever the rounding. The cells are hashed to 64 bits; for each part the signature keeps the
`SKETCH` smallest hashes (a bottom-k sketch) and the number of cells. It does not depend on vertex
order, textures, materials, physics, bones other than 頭, or anything outside the face, and
costs a few milliseconds per model.

**Families.** Two models are one family when their eyes coincide and their mouths coincide:
for each part, at least `MATCH` of the smaller set's cells are in the other's too (estimated
from the two sketches). Families are the connected groups of that relation. On the real models
in ../shared/mmd the same head coincides at 0.98–1.0 and different heads at 0.00–0.05, so the
threshold sits far from both; requiring both parts keeps a model whose eyes were remodelled
(but whose mouth was kept) out of its base's family.

**Derived models.** An edit that keeps its base model's face mesh (another character built on a
base head, a re-textured or re-dressed copy) is in the base's family, whatever its name: what
the networks learn from, and could memorise, is the face. Putting such an edit in test while
its base trains would measure recall of a seen face; a family too many costs nothing but a few
models moving together. An edit that remodels the face (new eyes or mouth) is a new family.

**Family ids** are `fam_` and 16 hex digits of a hash of the `ANCHOR` smallest cell hashes
of the family's eyes and of its mouth (its "anchor"), so the id does not depend on which other
files are present: adding a texture, physics or outfit variant (same face cells) or another
family never changes it, and adding a derived model changes it only if that model brings a new
face vertex whose hash is among the anchor's. (An anchor of the smallest hash of the whole face
was shared by a face and its remodel that kept the mouth; which of the two got it then hung on
character ids, that is on how the local zlib wrote the textures.)
A model without a face signature (unusable) is a family of its own, named by its character id.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

QUANTUM = 0.005  # model units per grid cell
SKETCH = 256  # smallest cell hashes kept per model
MATCH = 0.5  # share of the smaller face's cells that must coincide
MOVED = 1e-5  # a morph offset at least this long moves its vertex
SPAN = 1 << 20  # cells per axis on each side of the head bone (clipped beyond)
KEYS = 32  # smallest hashes of each part under which a face is indexed for candidates
ANCHOR = 8  # smallest hashes of each part that name a family
PREFIX = "fam_"
MAGIC = b"thagen-face-1\0"
EYES = ("left_eye", "right_eye")
MOUTH = ("mouth",)


@dataclass(frozen=True)
class Sketch:
    """A point set's bottom-k sketch (sorted unique uint64 cell hashes) and its cell count."""

    hashes: np.ndarray
    cells: int

    @classmethod
    def of(cls, points: np.ndarray) -> Sketch:
        hashes = cell_hashes(points)
        return cls(hashes[:SKETCH], len(hashes))


@dataclass(frozen=True)
class FaceSignature:
    """The eyes' and the mouth's sketches (each part must coincide for one face)."""

    eyes: Sketch
    mouth: Sketch

    @property
    def hashes(self) -> np.ndarray:
        return np.union1d(self.eyes.hashes, self.mouth.hashes)

    def to_bytes(self) -> bytes:
        head = np.array(
            [self.eyes.cells, self.mouth.cells, len(self.eyes.hashes), len(self.mouth.hashes)],
            "<u8",
        )
        body = np.concatenate([self.eyes.hashes, self.mouth.hashes]).astype("<u8")
        return MAGIC + head.tobytes() + body.tobytes()

    @classmethod
    def from_bytes(cls, data: object) -> FaceSignature | None:
        """The signature `to_bytes` wrote, or None for anything else (a catalog cell)."""
        if not isinstance(data, bytes | bytearray) or not bytes(data).startswith(MAGIC):
            return None
        raw = bytes(data)[len(MAGIC) :]
        if len(raw) < 32 or len(raw) % 8:
            return None
        values = np.frombuffer(raw, "<u8")
        eye_cells, mouth_cells, k_eyes, k_mouth = (int(v) for v in values[:4])
        if (
            not (0 < k_eyes <= SKETCH and 0 < k_mouth <= SKETCH)
            or len(values) != 4 + k_eyes + k_mouth
        ):
            return None
        eyes = np.unique(values[4 : 4 + k_eyes].astype(np.uint64))
        mouth = np.unique(values[4 + k_eyes :].astype(np.uint64))
        return cls(
            Sketch(eyes, max(eye_cells, len(eyes))), Sketch(mouth, max(mouth_cells, len(mouth)))
        )


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


def part_points(model, roles, names: tuple[str, ...]) -> np.ndarray:
    """Rest positions, relative to the head bone, of the vertices the role morphs `names`
    move."""
    if roles is None or roles.head < 0 or roles.head >= len(model.bones):
        return np.zeros((0, 3))
    moved = []
    for role in names:
        morph = roles.morphs.get(role)
        if morph is not None and len(morph.indices):
            far = np.linalg.norm(np.asarray(morph.offsets, np.float64), axis=1) >= MOVED
            moved.append(np.asarray(morph.indices)[far])
    if not moved:
        return np.zeros((0, 3))
    indices = np.unique(np.concatenate(moved))
    indices = indices[(indices >= 0) & (indices < len(model.positions))]
    head = np.asarray(model.bones[roles.head].position, np.float64)
    return np.asarray(model.positions, np.float64)[indices] - head


def face_signature(model, roles) -> FaceSignature | None:
    """The face signature of a loaded model and its detected roles (None without eyes and
    a mouth)."""
    eyes = Sketch.of(part_points(model, roles, EYES))
    mouth = Sketch.of(part_points(model, roles, MOUTH))
    if not eyes.cells or not mouth.cells:
        return None
    return FaceSignature(eyes, mouth)


def containment(a: Sketch, b: Sketch) -> float:
    """Estimated share of the smaller set's cells that the other has too (exact when both
    have at most SKETCH cells)."""
    k = min(len(a.hashes), len(b.hashes))
    if k == 0:
        return 0.0
    bottom = np.union1d(a.hashes, b.hashes)[:k]
    shared = np.intersect1d(np.intersect1d(a.hashes, b.hashes), bottom)
    jaccard = len(shared) / len(bottom)
    common = jaccard * (a.cells + b.cells) / (1.0 + jaccard)
    return min(1.0, common / min(a.cells, b.cells))


def same_face(a: FaceSignature, b: FaceSignature) -> bool:
    """Whether two faces are one mesh: the eyes coincide and the mouth coincides."""
    return containment(a.eyes, b.eyes) >= MATCH and containment(a.mouth, b.mouth) >= MATCH


def _anchor(members: list[FaceSignature]) -> bytes:
    """A family's anchor: the `ANCHOR` smallest cell hashes of its eyes and of its mouth over
    all its members. It depends on the family's own faces only, so adding another family never
    changes it; two families share it only if both parts' smallest cells coincide, which for
    faces that are not one mesh is rare (at most their eyes' or mouth's resemblance to the
    power ANCHOR)."""
    eyes = np.unique(np.concatenate([m.eyes.hashes for m in members]))[:ANCHOR]
    mouth = np.unique(np.concatenate([m.mouth.hashes for m in members]))[:ANCHOR]
    return eyes.astype("<u8").tobytes() + b"|" + mouth.astype("<u8").tobytes()


def assign_families(signatures: Mapping[str, FaceSignature | None]) -> dict[str, str]:
    """Family id of every character (`signatures`: character id -> its face or None)."""
    faces = {c: s for c, s in signatures.items() if s is not None}
    parent = {c: c for c in faces}

    def root(c: str) -> str:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    # Candidates share one of their smallest hashes (similar sets share most of them); each is
    # checked against one member of every group already met under that hash, so a posting of a
    # big family costs a comparison per member, not per pair.
    postings: dict[int, list[str]] = defaultdict(list)
    for character in sorted(faces):
        face = faces[character]
        for value in np.union1d(face.eyes.hashes[:KEYS], face.mouth.hashes[:KEYS]).tolist():
            postings[value].append(character)
    checked: set[tuple[str, str]] = set()
    for members in postings.values():
        seen: list[str] = []  # one character per group met under this hash
        for character in members:
            for other in seen:
                a, b = root(other), root(character)
                if a == b:
                    break
                if (other, character) in checked:
                    continue
                checked.add((other, character))
                if same_face(faces[other], faces[character]):
                    parent[max(a, b)] = min(a, b)
                    break
            else:
                seen.append(character)
    groups: dict[str, list[str]] = defaultdict(list)
    for character in faces:
        groups[root(character)].append(character)
    anchors = {key: _anchor([faces[c] for c in members]) for key, members in groups.items()}
    families: dict[str, str] = {}
    used: set[bytes] = set()
    # Faces alone order the groups (never character ids, which hash file bytes that another
    # zlib writes differently), so a rare collision of anchors resolves the same everywhere.
    for key in sorted(groups, key=lambda k: anchors[k]):
        anchor, extra = anchors[key], 0
        while anchor + extra.to_bytes(4, "little") in used:
            extra += 1
        used.add(anchor + extra.to_bytes(4, "little"))
        digest = hashlib.sha256(b"thagen-family:" + anchor + extra.to_bytes(4, "little"))
        for character in groups[key]:
            families[character] = f"{PREFIX}{digest.hexdigest()[:16]}"
    for character in signatures:
        if character not in families:
            families[character] = character
    return families
