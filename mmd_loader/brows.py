"""A model's eyebrows: the triangles that draw them, found from what its brow morphs move.

Drawings (and THA2/THA3's training data) show the brows over the hair; many models put them
under their bangs, where a brow morph changes almost no pixel. The renderer can draw the brows
found here as a layer of their own (`render.brow_layer`). The brows are:

- the vertices the brow morphs move: morphs in MMD's eyebrow panel, and morphs named as THA3's
  eyebrow shapes are (困る, 怒り, 下, 上, にこり, 真面目 and their spellings, `tha3.yaml`);
- grouped into islands (triangles joined by shared vertices): an island at least half of whose
  vertices those morphs move is brow geometry, unless the face roles' morphs move it by
  `LID_SHARE` of their largest move on average (a lid: MEIKO's びっくり眉 also widens the eyes;
  a brow at most follows a blink a little); a material named like a
  brow (眉, まゆ, mayu, brow) adds its islands in the head box. The face's skin is one large
  island of which brow morphs move a small part: brows painted on the face's texture (and
  moved with its skin) have no geometry of their own, and are not found.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

import numpy as np

from mmd_loader.face_parts import material_of_triangles
from mmd_loader.islands import vertex_islands
from mmd_loader.model import Model, MorphKind, Panel
from mmd_loader.morph_names import fold, side_variant
from mmd_loader.roles import FaceRoles
from mmd_loader.textures import material_words

# How the brows are drawn (`render.brow_layer`): as modelled or over the hair; commands also
# take "mix", one of the two drawn per image. Here, GL-free, for the CLIs and the run's config.
BROW_MODES = ("modelled", "over")
BROW_CHOICES = (*BROW_MODES, "mix")
BROW_SHARE = 0.5  # of an island's vertices moved by brow morphs
LID_SHARE = 0.3  # an island the face roles move this far on average (of their largest move)
MOVE_EPS = 1e-5  # of the model's height: shorter displacements do not count
_BROW_WORDS = ("眉", "まゆ", "mayu", "brow")


@dataclass(frozen=True)
class Brows:
    """`triangles`: indices into `model.triangles` of the brows' geometry (ascending);
    `morphs`: the names of the morphs that move them; `how`: why the triangles count."""

    triangles: np.ndarray
    morphs: tuple[str, ...] = ()
    how: str = ""

    @property
    def found(self) -> bool:
        return len(self.triangles) > 0


NO_BROWS = Brows(np.zeros(0, np.int64))


@functools.cache
def brow_morph_names() -> frozenset[str]:
    """Folded names of THA3's eyebrow shapes (every spelling `tha3.yaml` lists)."""
    from poses.schema import load_schema

    schema = load_schema("tha3")
    return frozenset(
        fold(name) for p in schema.parameters if p.group == "eyebrow" for name in p.morphs
    )


def brow_morphs(model: Model) -> list[int]:
    """Vertex and group morphs of the eyebrow panel or named as a THA3 eyebrow shape."""
    names = brow_morph_names()
    out = []
    for i, m in enumerate(model.morphs):
        if m.kind not in (MorphKind.VERTEX, MorphKind.GROUP):
            continue
        if m.panel == Panel.EYEBROW or fold(m.name) in names or side_variant(m.name)[0] in names:
            out.append(i)
    return out


def find_brows(model: Model, roles: FaceRoles | None = None) -> Brows:
    """The brow geometry of `model` (`NO_BROWS` when its brows have no geometry of their own)."""
    if len(model.triangles) == 0:
        return NO_BROWS
    morphs = brow_morphs(model)
    moved = np.zeros(len(model.positions), bool)
    scale = float(np.ptp(model.positions[:, 1])) or 1.0
    for index in morphs:
        indices, offsets = model.vertex_offsets(index)
        moved[indices[np.linalg.norm(offsets, axis=1) > MOVE_EPS * scale]] = True
    triangles = model.triangles.astype(np.int64)
    label = vertex_islands(len(model.positions), triangles)
    size = np.bincount(label, minlength=len(label))
    share = np.bincount(label, weights=moved, minlength=len(label)) / np.maximum(size, 1)
    # Lids, eyes and the mouth move with the face roles' morphs as a whole; a brow at most
    # follows a blink a little (Haku's do).
    blink = np.zeros(len(model.positions))
    for role in roles.morphs.values() if roles is not None else ():
        indices = np.asarray(role.indices, np.int64)
        length = np.linalg.norm(np.asarray(role.offsets, np.float64), axis=1)
        keep = (indices >= 0) & (indices < len(blink))
        if keep.any() and length.max() > 0:
            np.maximum.at(blink, indices[keep], length[keep] / length.max())
    lids = np.bincount(label, weights=blink, minlength=len(label)) >= LID_SHARE * size
    # Brows lie above the eyes: an island a brow morph moves whose centre is below the top of
    # the lids (where the eyes' closures move their vertices a third of the way or more) is part
    # of an eye (MEIKO's びっくり眉 widens its left eye's white).
    lid_vertices = blink >= LID_SHARE
    low = np.zeros(len(label), bool)
    if lid_vertices.any():
        top = float(model.positions[lid_vertices, 1].max())
        heights = np.bincount(label, weights=model.positions[:, 1], minlength=len(label))
        low = heights / np.maximum(size, 1) < top
    island = label[triangles[:, 0]]
    chosen = (share[island] >= BROW_SHARE) & ~lids[island] & ~low[island]
    how = "moved by brow morphs" if chosen.any() else ""
    named = _named_brow_triangles(model, roles, island)
    if named is not None and (named & ~chosen).any():
        chosen |= named
        how = f"{how} and named as brows" if how else "named as brows"
    if not chosen.any():
        return NO_BROWS
    movers = [
        model.morphs[i].name
        for i in morphs
        if moved[model.vertex_offsets(i)[0]].any()
        and np.isin(model.vertex_offsets(i)[0], triangles[chosen]).any()
    ]
    return Brows(np.flatnonzero(chosen), tuple(dict.fromkeys(movers)), how)


def is_brow_name(text: str) -> bool:
    """Whether a material or texture name names eyebrows (眉, まゆ, mayu, brow, eyebrow)."""
    key = unicodedata.normalize("NFKC", text).lower()
    return any(word in key for word in _BROW_WORDS) or "まゆ" in fold(text)


def _named_brow_triangles(
    model: Model, roles: FaceRoles | None, island: np.ndarray
) -> np.ndarray | None:
    """Triangles of materials named like brows, in the head box (None without a head box)."""
    box = roles.head_box if roles is not None else None
    if box is None:
        return None
    owner = material_of_triangles(model)
    names = [is_brow_name(material_words(m)) for m in model.materials]
    if not any(names):
        return None
    named = np.isin(owner, np.flatnonzero(names))
    p = model.positions[model.triangles.astype(np.int64)]
    inside = (
        (np.abs(p[..., 0] - box.center[0]) <= box.half_width)
        & (p[..., 1] >= box.chin)
        & (p[..., 1] <= box.top)
    ).all(axis=1)
    # The whole island of a named triangle in the box, as long as the island stays in it.
    keep = named & inside
    islands = np.unique(island[keep])
    whole = np.isin(island, islands)
    outside = np.unique(island[whole & ~inside])
    return whole & ~np.isin(island, outside)
