"""Which parts of a model draw the face, so that it can be shaded as its author saw it.

MMD draws every material through a toon ramp, and on the lit side of a face the ramps of real
models are flat (white, or nearly): the author never sees the face's geometry in its shading.
Faces are built for that. Lat式ミク's eye sockets and mouth are boxy plates and its nose a thin
ridge turned sideways, hzeo KAITO's nose a ridge, a low-poly face is faceted, and a decal (a
blush, a cheek shadow) carries normals of its own: under a plain Lambert term each shows as a
grey plate or line that MMD never draws. The renderer therefore lights the vertices found here
through their material's own ramp (`render.materials`), and gives each decal the normals of
the skin it lies on.

- The skin (`FaceParts.skin`): the materials whose triangles the face roles' morphs move
  (eyes, mouth): the face's skin, lids, lashes, mouth interior. All their vertices are face.
- Parts on the face: islands (triangles joined by shared vertices) of other materials, at
  least `SHELL_SHARE` of whose vertices lie in the head box and of those as many within
  `SHELL` head heights of the skin: eyes, brows, a nose line, blushes, decals, expression
  overlays. Their vertices are face too; those in materials without a sphere map are
  `decals`, which take the skin's normals (a sphere map is looked up with the normal: the eyes'
  highlights keep theirs). Other islands of those materials (a hairpin sharing the nose
  line's material) are not.
- Fins on the face (`_fins`): small islands standing off the skin, seen edge-on (Lat式ミク's
  nose line, a ridge from the nose tip to the forehead, with sideways normals): face too.
- `layers`: the materials that lie on the face as a whole (what `mmd_loader.overlays` calls a
  layer on the face).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mmd_loader.islands import vertex_islands
from mmd_loader.model import Model
from mmd_loader.proximity import any_within, nearest_within, surface_samples
from mmd_loader.roles import FaceRoles

SHELL = 0.03  # head heights from the skin: on the face
SHELL_SHARE = 0.9  # of an island's (a material's) vertices
FIN_REACH = 0.15  # head heights from the skin: a fin standing off the face
FIN_EDGE_ON = 0.35  # |cos| of a fin's normals with the view and with the skin's
FIN_SHARE = 0.5  # of a fin's vertices edge-on
FIN_VERTICES = 400  # a fin is a small island


@dataclass(frozen=True)
class FaceParts:
    """The face: `skin` and `layers` are material indices, `vertices` and `decals` (V,) masks
    (the vertices lit through their ramp; those that take the skin's normals)."""

    skin: frozenset[int] = frozenset()
    layers: frozenset[int] = frozenset()
    vertices: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    decals: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def materials(self, model: Model) -> frozenset[int]:
        """The materials with a face vertex."""
        if not self.vertices.any():
            return frozenset()
        owner = material_of_triangles(model)
        hit = self.vertices[model.triangles].any(axis=1) & (owner >= 0)
        return frozenset(int(i) for i in np.unique(owner[hit]))


def material_of_triangles(model: Model) -> np.ndarray:
    """(F,) the material index of each triangle (-1 for triangles no material covers)."""
    out = np.full(len(model.triangles), -1, np.int64)
    for i, m in enumerate(model.materials):
        out[m.face_start : m.face_start + m.face_count] = i
    return out


def face_parts(model: Model, roles: FaceRoles) -> FaceParts:
    """The face's parts (empty without face roles or a head box)."""
    box = roles.head_box
    count = len(model.positions)
    if box is None or not roles.morphs or len(model.triangles) == 0:
        return FaceParts(vertices=np.zeros(count, bool), decals=np.zeros(count, bool))
    moved = np.zeros(count, bool)
    for role in roles.morphs.values():
        indices = np.asarray(role.indices, np.int64)
        moved[indices[(indices >= 0) & (indices < count)]] = True
    triangles = model.triangles.astype(np.int64)
    owner = material_of_triangles(model)
    skin = frozenset(int(i) for i in np.unique(owner[moved[triangles].any(axis=1) & (owner >= 0)]))
    is_skin = np.zeros(count, bool)
    is_skin[triangles[np.isin(owner, list(skin))]] = True
    if not skin:
        return FaceParts(vertices=is_skin, decals=np.zeros(count, bool))
    positions = model.positions.astype(np.float64)
    inside = _in_box(positions, roles)
    used = np.zeros(count, bool)
    used[triangles] = True
    radius = SHELL * max(box.height, 1e-6)
    skin_in_box = np.isin(owner, list(skin)) & inside[triangles].all(axis=1)
    if not skin_in_box.any():
        return FaceParts(skin, vertices=is_skin, decals=np.zeros(count, bool))
    candidates = np.flatnonzero(used & inside & ~is_skin)
    near = np.zeros(count, bool)
    near[candidates] = near_surface(positions, triangles[skin_in_box], candidates, radius)

    # Islands on the face.
    label = vertex_islands(count, triangles)
    weights = used.astype(np.float64)
    total = np.bincount(label, weights=weights, minlength=count)
    held = np.bincount(label, weights=used & inside, minlength=count)
    close = np.bincount(label, weights=near, minlength=count)
    has_skin = np.bincount(label, weights=is_skin, minlength=count) > 0
    on_face = (
        ~has_skin
        & (total >= 3)
        & (held >= SHELL_SHARE * total)
        & (close >= SHELL_SHARE * np.maximum(held, 1))
    )
    others = ~on_face & ~has_skin
    on_face |= _fins(model, positions, label, used, inside, is_skin, box.height, others)
    parts = used & on_face[label]
    no_sphere = np.array([not m.sphere_mode or m.sphere is None for m in model.materials])
    decal_triangles = parts[triangles].all(axis=1) & (owner >= 0) & no_sphere[np.maximum(owner, 0)]
    decals = np.zeros(count, bool)
    decals[triangles[decal_triangles]] = True

    # Materials on the face as a whole, over their triangles' corners.
    corners, flat = np.repeat(owner, 3), triangles.reshape(-1)
    valid = corners >= 0
    corners, flat = corners[valid], flat[valid]
    n = len(model.materials)
    all_corners = np.bincount(corners, minlength=n)
    in_box = np.bincount(corners, weights=inside[flat], minlength=n)
    on_skin = np.bincount(corners, weights=near[flat], minlength=n)
    whole = (in_box >= 3) & (in_box >= SHELL_SHARE * all_corners)
    whole &= on_skin >= SHELL_SHARE * np.maximum(in_box, 1)
    layers = frozenset(int(i) for i in np.flatnonzero(whole) if i not in skin)
    return FaceParts(skin, layers, is_skin | parts, decals & ~is_skin)


def near_surface(
    positions: np.ndarray, surface: np.ndarray, points: np.ndarray, radius: float
) -> np.ndarray:
    """(len(points),) whether each of the vertices `points` lies within about `radius` of the
    triangles `surface`: of their surface, not only their vertices (a face's triangles can be
    larger than `radius`). The surface is sampled `radius` apart and a point within 1.3
    `radius` of a sample counts (so within 0.7-1.3 `radius` of the surface)."""
    sites = surface_samples(positions, surface, radius)
    return any_within(positions[points], sites, 1.3 * radius)


def _fins(
    model: Model,
    positions: np.ndarray,
    label: np.ndarray,
    used: np.ndarray,
    inside: np.ndarray,
    is_skin: np.ndarray,
    height: float,
    candidate: np.ndarray,
) -> np.ndarray:
    """(V,) per island label: a fin, drawn edge-on in front of the face (a nose line or ridge
    standing off the skin): at least `SHELL_SHARE` of its vertices in the head box and within
    `FIN_REACH` head heights of the skin, and at least `FIN_SHARE` of them with normals turned
    sideways both to the camera and to the skin beside them (|n.z| and |n·n_skin| below
    `FIN_EDGE_ON`). Hair lies along the skin (its normals agree) or faces the camera."""
    count = len(positions)
    normals = model.normals.astype(np.float64)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    size = np.bincount(label, weights=used, minlength=count)
    held = np.bincount(label, weights=used & inside, minlength=count)
    side_on = np.bincount(
        label, weights=used & (np.abs(normals[:, 2]) < FIN_EDGE_ON), minlength=count
    )
    candidate = candidate & (size >= 3) & (size <= FIN_VERTICES) & (held >= SHELL_SHARE * size)
    candidate &= side_on >= FIN_SHARE * size  # edge-on to the camera: cheap, tested first
    vertices = np.flatnonzero(used & candidate[label])
    skin = np.flatnonzero(is_skin & inside)
    if len(vertices) == 0 or len(skin) == 0:
        return np.zeros(count, bool)
    nearest, _ = nearest_within(positions[vertices], positions[skin], FIN_REACH * height)
    found = nearest >= 0
    own = normals[vertices]
    beside = normals[skin[np.maximum(nearest, 0)]]
    edge_on = (
        found
        & (np.abs(own[:, 2]) < FIN_EDGE_ON)
        & (np.abs((own * beside).sum(axis=1)) < FIN_EDGE_ON)
    )
    near = np.bincount(label[vertices], weights=found, minlength=count)
    sideways = np.bincount(label[vertices], weights=edge_on, minlength=count)
    return candidate & (near >= SHELL_SHARE * size) & (sideways >= FIN_SHARE * size)


def decal_normals(model: Model, roles: FaceRoles, face: FaceParts) -> np.ndarray:
    """The model's normals with each decal vertex's replaced by the skin's normal at its nearest
    skin vertex (a decal is shaded as the skin under it); the model's own array when there is
    no decal. The skin's normal there is smooth: the mean over the skin vertices sharing that
    position (a faceted skin splits its vertices, one normal per facet)."""
    if not face.decals.any():
        return model.normals
    positions = model.positions.astype(np.float64)
    owner = material_of_triangles(model)
    skin_vertices = np.unique(model.triangles[np.isin(owner, list(face.skin))])
    skin_vertices = skin_vertices[_in_box(positions, roles)[skin_vertices]]
    decal_vertices = np.flatnonzero(face.decals)
    radius = SHELL * max(roles.head_box.height, 1e-6)
    nearest, _ = nearest_within(positions[decal_vertices], positions[skin_vertices], radius)
    found = nearest >= 0
    smooth = _smooth_normals(positions[skin_vertices], model.normals[skin_vertices], radius)
    normals = model.normals.copy()
    normals[decal_vertices[found]] = smooth[nearest[found]]
    return normals


def _smooth_normals(points: np.ndarray, normals: np.ndarray, radius: float) -> np.ndarray:
    """Per point, the normalised mean of the normals of the points at its position (within
    1e-4 of `radius`): split vertices share one normal."""
    key = np.round(points / (1e-4 * radius)).astype(np.int64)
    _, group = np.unique(key, axis=0, return_inverse=True)
    group = group.reshape(-1)
    unit = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    summed = np.zeros((group.max() + 1 if len(group) else 0, 3))
    np.add.at(summed, group, unit)
    mean = summed[group]
    length = np.linalg.norm(mean, axis=1, keepdims=True)
    return np.where(length > 1e-6, mean / np.maximum(length, 1e-12), unit).astype(np.float32)


def _in_box(positions: np.ndarray, roles: FaceRoles) -> np.ndarray:
    box = roles.head_box
    x, y = positions[:, 0], positions[:, 1]
    return (np.abs(x - box.center[0]) <= box.half_width) & (y >= box.chin) & (y <= box.top)
