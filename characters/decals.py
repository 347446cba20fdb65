"""Cheek decals (`CharacterSpec.decal_tilt`): a thin layer on each cheek whose normals tilt down
by `decal_tilt` degrees from the skin's, as a decal modelled on its own often carries. Under a
plain Lambert term it shows darker than the skin it lies on; shaded as the skin under it
(`mmd_loader.face_parts`) it shows its own colour."""

from __future__ import annotations

import numpy as np

from characters.layout import DECAL_LIFT, HEAD
from characters.mesh import Mesh, grid_triangles, normalize
from characters.shape import head_shape
from characters.spec import CharacterSpec


def add_cheek_decals(spec: CharacterSpec, mesh: Mesh) -> None:
    if spec.decal_tilt <= 0:
        return
    shape = head_shape(spec)
    ew, eh = spec.eye_half_width, spec.eye_half_height
    tilt = np.radians(spec.decal_tilt)
    for side in (1, -1):
        x, y = np.meshgrid(
            side * spec.eye_x + np.linspace(-0.8, 0.8, 6) * ew,
            spec.eye_y - eh * np.linspace(1.3, 2.3, 4),
            indexing="ij",
        )
        pos, nrm = shape.on_face(x, y, DECAL_LIFT)
        down = np.broadcast_to([0.0, -1.0, 0.0], nrm.shape)
        tilted = normalize(nrm * np.cos(tilt) + down * np.sin(tilt))
        mesh.add("decal", pos, tilted, np.zeros((*x.shape, 2)), grid_triangles(*x.shape), HEAD)
