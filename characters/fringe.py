"""A fringe over the brows (`CharacterSpec.fringe`): a sheet of hair in front of the forehead
from the hairline down to just above the upper lashes, covering the brows in every brow shape.
The brows under it are the case `render.brow_layer` draws over the hair."""

from __future__ import annotations

import numpy as np

from characters.layout import HEAD
from characters.mesh import Mesh, grid_triangles
from characters.shape import cap_lift, head_shape
from characters.spec import CharacterSpec

BOTTOM = 1.3  # eye half-heights above the eye's centre: below the lowest brow, above the lashes


def add_fringe(spec: CharacterSpec, mesh: Mesh) -> None:
    if not spec.fringe:
        return
    shape = head_shape(spec)
    reach = spec.eye_x + 1.5 * spec.eye_half_width
    top = spec.head_centre_y + 0.75 * spec.head_height
    cols, rows = 17, 6
    x = np.linspace(-reach, reach, cols)
    # A slightly jagged lower edge (strand tips), never above BOTTOM.
    tips = spec.eye_y + spec.eye_half_height * (BOTTOM - 0.06 * (np.arange(cols) % 2))
    y = tips[None, :] + np.linspace(1.0, 0.0, rows)[:, None] * (top - tips[None, :])
    xx = np.broadcast_to(x, y.shape)
    pos, nrm = shape.on_face(xx, y, cap_lift(spec) + 0.04)
    uv = np.stack(np.meshgrid(np.linspace(0.3, 0.7, cols), np.linspace(0.0, 0.55, rows)), -1)
    mesh.add("hair", pos, nrm, uv, grid_triangles(rows, cols), HEAD)
