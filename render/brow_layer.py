"""Eyebrows over the hair, as drawings (and THA2/THA3's training data) show them.

A render takes a brow mode: `"modelled"` draws the model as its author built it; `"over"`
draws the brows (`mmd_loader.brows`) after everything else, depth-tested against the face
only: the main pass leaves the brow triangles out; then, with colour writes off, the brow
triangles set their own pixels to the far depth (depth test ALWAYS, `far.frag`) and the face's
skin near the brows (`BrowLayer.patch`) is drawn into that; last the brows are drawn in their
materials, in file order, against the skin's depth alone. So the bangs, a hat or glasses no
longer hide them, while the face itself still does (a brow tucked into the skin, the far brow
behind the forehead on a turned head). The layer costs one depth-only draw of the brow
triangles and one of a small skin patch, and moves the brows' own draw to the end (no clear,
which would cost llvmpipe a flush); it is built on first use, so a schema without brows never
pays for it.

The pipeline's `"mix"` (`mmd_loader.brows.BROW_CHOICES`) draws one of the two per example.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmd_loader.brows import BROW_CHOICES, Brows, find_brows
from mmd_loader.face_parts import FaceParts, material_of_triangles
from mmd_loader.model import Model
from mmd_loader.proximity import nearest_within
from mmd_loader.roles import FaceRoles

PATCH_REACH = 0.12  # head heights around the brows' vertices: the skin they are tested against


@dataclass(frozen=True)
class BrowLayer:
    """A model's brows (`triangles`, indices into `model.triangles`) and the face's skin
    triangles near them (`patch`); both empty when the brows have no geometry of their own."""

    brows: Brows
    patch: np.ndarray

    @property
    def found(self) -> bool:
        return self.brows.found


def brow_layer(model: Model, roles: FaceRoles, face: FaceParts) -> BrowLayer:
    """The brow layer of `model`: its brows, and the face's skin within `PATCH_REACH` head
    heights of them (the skin of `face`, brows excluded)."""
    brows = find_brows(model, roles)
    empty = np.zeros(0, np.int64)
    if not brows.found or roles.head_box is None or not face.skin:
        return BrowLayer(brows, empty)
    triangles = model.triangles.astype(np.int64)
    skin = np.isin(material_of_triangles(model), list(face.skin))
    skin[brows.triangles] = False
    skin_vertices = np.unique(triangles[skin])
    brow_vertices = np.unique(triangles[brows.triangles])
    reach = PATCH_REACH * max(roles.head_box.height, 1e-6)
    _, distance = nearest_within(
        model.positions[skin_vertices], model.positions[brow_vertices], reach
    )
    near = np.zeros(len(model.positions), bool)
    near[skin_vertices[np.isfinite(distance)]] = True
    return BrowLayer(brows, np.flatnonzero(skin & near[triangles].any(axis=1)))


def choose_brows(choice: str, rng: np.random.Generator) -> str:
    """The brow mode of one image: `choice`, or for "mix" one of `BROW_MODES` drawn from `rng`
    (which draws nothing otherwise)."""
    if choice not in BROW_CHOICES:
        raise ValueError(f"brows must be one of {BROW_CHOICES}, not {choice!r}")
    if choice != "mix":
        return choice
    return "over" if rng.random() < 0.5 else "modelled"
