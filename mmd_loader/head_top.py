"""The head's top, as THA1's labellers drew it: the top of the hair mass over the skull.

Everything is in units of the eye separation `u` (see `mmd_loader.head_box`).

**The crown of the footprint dome.** Walking up from the eyes in rows of u/24, each horizontal
cut through the head's triangles is rasterised in a top view (cells of u/10;
`mmd_loader.mesh_geometry.footprint`). The skull and hair make a dome: its footprint is widest
near the eyes and, once below 35 % of that, shrinks steeply to nothing; from there on only the
crown's own piece counts (the connected piece overlapping the row below's most), so spikes, buns
and ear cups beside it drop out. The top is where the crown ends: where its footprint falls
below 10 % of the widest (interpolated between rows), or, earlier, where it stops shrinking by
2 % of the widest per row (over the next three rows): a bow, a flower, a headband or headphone
band sitting on the crown, an ahoge or a topknot all leave a small plateau above the hair, which
is not followed. Only cells the crown loses count as shrinking (cells it gains are something
growing beside the dome, e.g. a bun's lower half), and the dome's footprint is followed as what
is left of it, so hair rising beside a bun on the crown is walked to its own top.

**Pieces that do not hang down the head** (a mesh's connected pieces, vertices at one position
welded): hair hangs from the crown past the eyes; bows, flowers, hair sticks, buns, a band, an
ahoge and hats do not. A piece whose lowest point lies more than 0.3 u above the eyes (measured
on ../shared/mmd: hair pieces reaching the crown end at most 0.16 u above the eyes, ornament
pieces at least 0.46 u) is left out of the walk, unless it is a *shell*: one that encloses, by
itself, at least 30 % of the head's widest footprint over the apex of the crown found without it
(a hair cap modelled apart from the hair that hangs, or a hat). A shell is walked with the rest.

**When the top cannot be told.** Geometry cannot tell a hat, a cap, a beret or a hood from a
layer of hair: each encloses a dome and is enclosed in turn. So the piece the crown ends on is
taken away and the walk repeated: when another dome stands under it whose top is a plausible
head's (at least 1.0 u above the eyes) and is not the face's own piece (hair lying on the skull
is certain; something covering other hair may be headwear), `Top.inner` gives that dome's top,
and the head box reports how far below the found top it lies (`head_top_uncertain`).

Every walk is bounded in rows (`MAX_TOP` eye separations above the eyes, `MAX_ROWS`), and the
number of walks and footprints per model by `MAX_FOOTPRINTS`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from mmd_loader.mesh_geometry import (
    GRID,
    footprint,
    highest,
    lowest,
    piece_over,
    row_cuts,
    segment_cells,
)

ROW_STEP = 1 / 24  # top rows, in units of u
MAX_TOP = 8  # eye separations above the eyes: a walk's reach (heads: 1.4-2)
MAX_ROWS = 400  # bound of every row walk, whatever u is
CELL = 1 / 10  # top-view cell, in units of u
CROWN = 0.35  # the dome's crown starts below this share of its widest footprint
CROWN_END = 0.10  # ... and ends below this share
MIN_SHRINK = 0.02  # ... or where it shrinks by less than this share per row,
SHRINK_ROWS = 3  # ... over the next rows (a single row's change is quantised by the grid)
FLOAT = 0.3  # u above the eyes: a piece ending higher does not hang down the head
SHELL = 0.3  # of the widest footprint: a floating piece enclosing this much over the apex
MIDLINE = slice(GRID // 2 - 1, GRID // 2 + 1)  # the grid's columns either side of x = cx
MIN_HEAD = 1.0  # u above the eyes: a dome ending lower is not a head's (real tops: 1.4-2)
WIDEST_ROWS = 9  # samples of the widest footprint, from the eyes to 2 u above
SHELL_ROWS = 6  # rows a shell candidate is cut at
MAX_SHELLS = 4  # shell candidates examined (the largest)
MAX_WALKS = 3  # the crown without floating pieces, with its shells, without its top piece
_WALK_ROWS = int(MAX_TOP / ROW_STEP) + 1
MAX_FOOTPRINTS = MAX_WALKS * _WALK_ROWS + WIDEST_ROWS + MAX_SHELLS * SHELL_ROWS


class HeadBoxError(ValueError):
    """The head cannot be measured; the message names the stage and why."""


@dataclass
class Anchors:
    """The face the box is measured from: eye separation, eye level, front of the face."""

    u: float
    eye_y: float
    face_z: float  # frontmost of the eye and mouth centres
    mouth: np.ndarray | None


@dataclass
class Top:
    """The top found (y), how, and the top of the dome under its top piece when that piece may
    be headwear (None when the top is certain)."""

    y: float
    notes: list[str] = field(default_factory=list)
    inner: float | None = None


@dataclass
class Grid:
    """The top-view grid, centred on the skull behind the face."""

    origin: np.ndarray  # lower (x, z) corner
    cell: float

    @classmethod
    def of(cls, cx: float, anchors: Anchors) -> Grid:
        cell = CELL * anchors.u
        return cls(np.array([cx, anchors.face_z - 1.0 * anchors.u]) - 0.5 * GRID * cell, cell)


def footprints(corners: np.ndarray, rows: np.ndarray, grid: Grid) -> np.ndarray:
    """The footprints (rows, GRID, GRID) of the triangles `corners` at each height in `rows`
    (ascending)."""
    x, z = corners[..., 0].sum(axis=1) / 3, corners[..., 2].sum(axis=1) / 3
    end = grid.origin + GRID * grid.cell
    inside = (x >= grid.origin[0]) & (x < end[0]) & (z >= grid.origin[1]) & (z < end[1])
    if len(rows):
        inside &= highest(corners[..., 1]) >= rows[0]
    corners = corners[inside]
    low, high = lowest(corners[..., 1]), highest(corners[..., 1])
    order = np.argsort(low, kind="stable")
    corners, low, high = corners[order], low[order], high[order]
    masks = np.zeros((len(rows), GRID, GRID), bool)
    for k, y in enumerate(rows):
        stop = int(np.searchsorted(low, y, side="right"))
        near = corners[:stop][high[:stop] >= y]
        p0, p1, _ = row_cuts(near, float(y), axis=1)
        masks[k] = footprint(p0[:, [0, 2]], p1[:, [0, 2]], grid.origin, grid.cell)
    return masks


def widest(corners: np.ndarray, grid: Grid, anchors: Anchors) -> float:
    """The head's widest footprint (cells), sampled between the eyes and 2 u above."""
    rows = anchors.eye_y + anchors.u * np.linspace(0.0, 2.0, WIDEST_ROWS)
    return float(footprints(corners, rows, grid).sum(axis=(1, 2)).max())


@dataclass
class Walk:
    """A walk up the dome: the top, and the crown's cells in its last row (at `row_y`)."""

    y: float
    row_y: float
    crown: np.ndarray
    widest: float = 0.0  # the widest footprint below 2 u above the eyes, in cells


def walk(
    corners: np.ndarray, grid: Grid, anchors: Anchors, widest_cells: float | None = None
) -> Walk:
    """The top of the dome the triangles `corners` make (see the module docstring); shares are of
    `widest_cells` when given (the head's own widest footprint, not a hat brim's), else of the
    widest footprint between the eyes and 2 u above."""
    u, eye_y = anchors.u, anchors.eye_y
    empty = np.zeros((GRID, GRID), bool)
    highest_y = float(corners[..., 1].max()) if len(corners) else eye_y
    if highest_y <= eye_y:
        return Walk(eye_y + 1.5 * u, eye_y, empty)
    reach = min(highest_y, eye_y + MAX_TOP * u)  # no head's top is further above its eyes
    count = min(int(np.ceil((reach - eye_y) / (ROW_STEP * u))), MAX_ROWS)
    rows = eye_y + ROW_STEP * u * np.arange(count + 1)
    widest_below = eye_y + 2.0 * u
    masks = footprints(corners, rows, grid)
    areas = masks[rows <= widest_below].sum(axis=(1, 2))
    end = crown_end(rows, masks, widest_below, widest_cells)
    if end is None and reach >= highest_y:
        end = (float(rows[-1]), len(rows) - 1, masks[-1])  # the crown ends with the geometry
    if end is None:
        raise HeadBoxError(
            f"head box: the head goes on more than {MAX_TOP:g} eye separations above the eyes "
            f"(eye separation {u:.3g} is too small for this head)"
        )
    y, k, crown = end
    return Walk(y, float(rows[k]), crown, float(areas.max(initial=0)))


def crown_end(
    rows: np.ndarray, masks: np.ndarray, widest_below: float, widest_cells: float | None = None
) -> tuple[float, int, np.ndarray] | None:
    """(top, its row, the crown's cells there) of the dome of footprints `masks` (per row y in
    `rows`; see the module doc), or None when it has not ended by the last row. Shares are of
    `widest_cells`, by default the widest footprint in the rows up to `widest_below`."""
    areas = masks.sum(axis=(1, 2)).astype(np.float64)
    search = rows <= widest_below
    peak = int(np.argmax(np.where(search, areas, -1.0)))
    widest_cells = areas[peak] if widest_cells is None else widest_cells
    if widest_cells <= 0:
        return float(rows[-1]), len(rows) - 1, masks[-1]
    k = peak
    # The skull's dome is on the face's midline: the cells every footprint from the widest row
    # up has kept must cover the midline (two buns side by side are not the crown, however wide
    # together).
    kept = np.logical_and.accumulate(masks[peak:, :, MIDLINE], axis=0).any(axis=(1, 2))

    def on_midline(j: int) -> bool:
        return bool(kept[j - peak])

    while k + 1 < len(rows) and areas[k + 1] >= CROWN * widest_cells and on_midline(k + 1):
        k += 1
    crown = Crown(masks, k)  # above here, only the crown's own piece of each footprint counts

    def share(j: int) -> float:
        return crown.cells(min(j, len(rows) - 1)) / widest_cells

    while k + 1 < len(rows) and share(k + 1) >= CROWN_END:
        if crown.lost(k, k + SHRINK_ROWS) < MIN_SHRINK * SHRINK_ROWS * widest_cells:
            break  # no longer shrinking like a dome: what lies above sits on the crown
        if not on_midline(k + 1):
            break  # the skull's crown is on the face's midline: this is beside it (a bun)
        k += 1
    if k + 1 == len(rows):
        return None  # the rows ran out with the crown still wide
    if share(k + 1) < CROWN_END <= share(k):
        # the crown runs out between rows k and k + 1: interpolate the crossing
        t = (share(k) - CROWN_END) / max(share(k) - share(k + 1), 1e-12)
        return float(rows[k] + t * (rows[k + 1] - rows[k])), k, crown.mask(k)
    return float(rows[k]), k, crown.mask(k)


class Crown:
    """The crown's cells in the footprints from row `start`, followed upwards on demand: in each
    row, the connected piece that overlaps the previous row's crown most (a spike, a bun or an
    ear cup beside it is left out). `dome` is what is left of the crown's first row: cells the
    crown gains above it (something growing beside the dome) are not the dome's."""

    def __init__(self, masks: np.ndarray, start: int) -> None:
        self.masks, self.start = masks, start
        self.pieces = [masks[start]]
        self.domes = [masks[start]]

    def _follow(self, row: int) -> None:
        while self.start + len(self.pieces) - 1 < row:
            previous = self.pieces[-1]
            piece = piece_over(self.masks[self.start + len(self.pieces)], previous)
            self.pieces.append(piece)
            self.domes.append(piece & self.domes[-1])

    def mask(self, row: int) -> np.ndarray:
        row = max(row, self.start)
        self._follow(row)
        return self.pieces[row - self.start]

    def dome(self, row: int) -> np.ndarray:
        """The dome's cells in `row` (at or after the crown's start)."""
        row = max(row, self.start)
        self._follow(row)
        return self.domes[row - self.start]

    def cells(self, row: int) -> float:
        """The dome's cells in `row` (the whole footprint at or below the crown's start)."""
        if row <= self.start:
            return float(self.masks[row].sum())
        self._follow(row)
        return float(self.domes[row - self.start].sum())

    def lost(self, row: int, above: int) -> float:
        """The dome's cells in `row` no longer in it at row `above` (capped at the last row)."""
        above = min(above, len(self.masks) - 1)
        return self.cells(row) - self.cells(above)


def find_top(
    model,
    considered: np.ndarray,
    pieces: np.ndarray,
    cx: float,
    anchors: Anchors,
    face: int,
) -> Top:
    """The top of the hair over the skull from the triangles `considered` (head-driven, not left
    out by name); `pieces` labels every triangle's connected piece (-1: not the head's), `face`
    is the face skin's piece (-1: unknown). See the module docstring."""
    u, eye_y = anchors.u, anchors.eye_y
    grid = Grid.of(cx, anchors)
    positions, triangles = model.positions, model.triangles
    ys = positions[triangles, 1]
    upper = considered & (highest(ys) >= eye_y)
    floating = _floating_pieces(pieces, lowest(ys), considered, eye_y + FLOAT * u)
    in_floating = np.isin(pieces, floating) & (pieces >= 0)
    core = upper & ~in_floating

    def corners(mask: np.ndarray) -> np.ndarray:
        return positions[triangles[mask]].astype(np.float64)

    def walk_over(mask: np.ndarray, widest_cells: float | None = None) -> Walk:
        return walk(corners(mask), grid, anchors, widest_cells)

    notes = []
    head = walk_over(core)
    if floating.size:
        apex = _apex(head.crown)
        shells = _shells(model, upper, pieces, floating, grid, head.y, apex, head.widest, u)
        left_out = int(floating.size - len(shells))
        if left_out:
            notes.append(f"left out {left_out} piece(s) above the eyes that do not hang down")
        if shells:
            notes.append(f"{len(shells)} piece(s) over the crown walked as its shell")
            core = core | (np.isin(pieces, shells) & upper)
            head = walk_over(core, head.widest)  # a hat's brim is not the head's width
    notes.append(f"top: crown of the hair mass at {head.y:.4g}")
    top = Top(head.y, notes)
    piece = _top_piece(corners, core, pieces, head, grid)
    looks = _Looks(model, pieces, core)
    hangs = piece not in set(floating.tolist())
    if piece < 0 or piece == face or (hangs and looks.shared(piece)):
        return top  # hair on the skull, or hair hanging down like the rest of the hair
    inner = walk_over(core & (pieces != piece))
    below = _top_piece(corners, core & (pieces != piece), pieces, inner, grid)
    if not eye_y + MIN_HEAD * u <= inner.y < head.y or below in (-1, face):
        return top  # nothing under it but the skull: it is the hair
    if hangs and looks.alike(piece, below):
        return top  # hair over more hair of the same material or texture
    top.inner = inner.y
    notes.append(f"the top piece may be headwear: the dome under it ends at {inner.y:.4g}")
    return top


class _Looks:
    """What each piece is drawn with: its triangles' materials and their texture files."""

    def __init__(self, model, pieces: np.ndarray, core: np.ndarray) -> None:
        self.material_of = np.full(len(model.triangles), -1, np.int64)
        for index, material in enumerate(model.materials):
            start = max(int(material.face_start), 0)
            self.material_of[start : start + max(int(material.face_count), 0)] = index
        self.textures = [(m.texture_ref or "").strip().lower() for m in model.materials]
        self.pieces, self.core = pieces, core

    def of(self, piece: int) -> tuple[set[int], set[str]]:
        materials = set(np.unique(self.material_of[self.pieces == piece]).tolist()) - {-1}
        return materials, {self.textures[m] for m in materials} - {""}

    def alike(self, a: int, b: int) -> bool:
        (ma, ta), (mb, tb) = self.of(a), self.of(b)
        return bool(ma & mb or ta & tb)

    def shared(self, piece: int) -> bool:
        """Whether another piece of the walk reaching above the eyes shares a material or a
        texture with `piece` (the hair's pieces do; a hood or a hat is one of its kind)."""
        materials, textures = self.of(piece)
        others = self.core & (self.pieces != piece)
        theirs = set(np.unique(self.material_of[others]).tolist()) - {-1}
        return bool(materials & theirs or textures & {self.textures[m] for m in theirs})


def _floating_pieces(
    pieces: np.ndarray, low: np.ndarray, considered: np.ndarray, level: float
) -> np.ndarray:
    """Labels of the pieces whose every considered triangle lies above `level`."""
    labels = pieces[considered & (pieces >= 0)]
    if labels.size == 0:
        return np.zeros(0, np.int64)
    lows = np.full(int(pieces.max()) + 1, np.inf)
    np.minimum.at(lows, labels, low[considered & (pieces >= 0)])
    return np.flatnonzero(lows > level)


def _apex(crown: np.ndarray) -> tuple[int, int] | None:
    """The cell (row j along z, column i along x) at the middle of the crown's last cells."""
    js, is_ = np.nonzero(crown)
    if len(js) == 0:
        return None
    nearest = np.argmin((js - np.median(js)) ** 2 + (is_ - np.median(is_)) ** 2)
    return int(js[nearest]), int(is_[nearest])


def _shells(model, upper, pieces, floating, grid, top, apex, widest_cells, u) -> list[int]:
    """The floating pieces that enclose, by themselves, at least SHELL of the widest footprint
    over the crown's apex (a hair cap apart from the hanging hair, or a hat)."""
    if apex is None or widest_cells <= 0:
        return []
    positions, triangles = model.positions, model.triangles
    need = SHELL * widest_cells * grid.cell**2
    candidates = []
    for label in floating.tolist():
        mask = upper & (pieces == label)
        if not mask.any():
            continue
        points = positions[triangles[mask]].reshape(-1, 3)
        span = np.ptp(points[:, 0]) * np.ptp(points[:, 2])
        if span >= need:  # a piece smaller than that in plan cannot enclose it
            candidates.append((float(span), label, mask, points))
    shells = []
    for _, label, mask, points in sorted(candidates, key=lambda c: (-c[0], c[1]))[:MAX_SHELLS]:
        low_y = max(float(points[:, 1].min()), top - 0.6 * u)
        high_y = float(points[:, 1].max())
        if high_y <= low_y:
            continue
        rows = np.linspace(low_y, high_y, SHELL_ROWS + 2)[1:-1]
        masks = footprints(positions[triangles[mask]].astype(np.float64), rows, grid)
        covers = masks[:, apex[0], apex[1]] & (masks.sum(axis=(1, 2)) >= SHELL * widest_cells)
        if covers.any():
            shells.append(label)
    return shells


def _top_piece(corners, mask: np.ndarray, pieces: np.ndarray, head: Walk, grid: Grid) -> int:
    """The piece most of the crown's cut is made of in the walk's last row (-1: none)."""
    if not head.crown.any():
        return -1
    chosen = np.flatnonzero(mask)
    p0, p1, hit = row_cuts(corners(mask), head.row_y, axis=1)
    if len(p0) == 0:
        return -1
    cells, owner = segment_cells(p0[:, [0, 2]], p1[:, [0, 2]], grid.origin, grid.cell)
    inside = head.crown[cells[:, 1], cells[:, 0]]
    labels = pieces[chosen[hit]][owner[inside]]
    if labels.size == 0:
        return -1
    return Counter(labels.tolist()).most_common(1)[0][0]
