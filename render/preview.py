"""A contact sheet: one model in the poses that show at once whether it works."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from poses.schema import Schema
from render.binding import SchemaBinding
from render.brow_layer import choose_brows
from render.renderer import Renderer

COLUMNS = 4
LABEL_PX = 22
CHECKER_PX = 8
LAST_DRAWABLE = 0x052F  # the end of Unicode's Cyrillic Supplement block
FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
)


def sheet_poses(schema: Schema) -> list[tuple[str, dict[str, float]]]:
    """The sheet's poses: rest; each morph parameter at its top; all morphs at once; each
    rotation at both ends; all rotations at their top. Parameters the model lacks stay in (they
    render as rest, which shows that they are missing)."""
    morphs = [p for p in schema.parameters if p.kind == "morph"]
    rotations = [p for p in schema.parameters if p.kind == "rotation"]
    poses: list[tuple[str, dict[str, float]]] = [("rest", {})]
    poses += [(f"{p.name} {p.range[1]:g}", {p.name: p.range[1]}) for p in morphs]
    if len(morphs) > 1:
        poses.append(("all morphs 1", {p.name: p.range[1] for p in morphs}))
    for p in rotations:
        ends = [v for v in (p.range[1], p.range[0]) if v != p.neutral]  # breathing: its top only
        poses += [(f"{p.name} {v:+g}", {p.name: v}) for v in ends]
    if len(rotations) > 1:
        poses.append(("all rotations", {p.name: p.range[1] for p in rotations}))
    return poses


def sheet_tiles(
    renderer: Renderer, binding: SchemaBinding, brows: str = "modelled"
) -> list[tuple[str, dict[str, float], np.ndarray]]:
    """(label, schema values, RGBA image) of each of `sheet_poses`, rendered with the
    renderer's current model. `brows`: the brow mode (`render.brow_layer`; "mix" draws one per
    tile from its index, and says so in the label)."""
    tiles = []
    for i, (label, values) in enumerate(sheet_poses(binding.schema)):
        mode = choose_brows(brows, np.random.default_rng(i))
        image = renderer.render(binding.pose(values), brows=mode)
        if mode == "over" and brows == "mix":
            label = f"{label} (brows over)"
        tiles.append((label, values, image))
    return tiles


def contact_sheet(
    renderer: Renderer,
    title: str,
    binding: SchemaBinding,
    columns: int = COLUMNS,
    brows: str = "modelled",
    tiles: list[tuple[str, dict[str, float], np.ndarray]] | None = None,
    tile_size: int | None = None,
) -> Image.Image:
    """`sheet_tiles` (or the `tiles` given) over a checkerboard, each labelled, the target head
    box (`head_fraction` of the tile, centred at the settings' `head_center`) outlined; tiles
    scaled to `tile_size` px when given."""
    if tiles is None:
        tiles = sheet_tiles(renderer, binding, brows)
    size = tile_size or renderer.settings.size
    rows = -(-len(tiles) // columns)
    header = LABEL_PX + 6
    sheet = Image.new("RGB", (columns * size, header + rows * (size + LABEL_PX)), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    font = _font(14)
    draw.text((6, 5), title, fill=(240, 240, 240), font=font)
    background = checkerboard(size)
    inner = renderer.settings.head_fraction * size
    cx, cy = (c * size for c in renderer.settings.head_center)
    box = (cx - inner / 2, cy - inner / 2, cx + inner / 2 - 1, cy + inner / 2 - 1)
    for i, (label, _, rgba) in enumerate(tiles):
        x, y = (i % columns) * size, header + (i // columns) * (size + LABEL_PX)
        tile = Image.fromarray(background)
        image = Image.fromarray(rgba, "RGBA")
        if image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.BOX)
        tile.paste(image, (0, 0), image)
        sheet.paste(tile, (x, y))
        draw.rectangle([x + box[0], y + box[1], x + box[2], y + box[3]], outline=(255, 80, 80))
        draw.text((x + 6, y + size + 3), label, fill=(240, 240, 240), font=font)
    return sheet


def sheet_title(path: Path, shading: str) -> str:
    """The sheet's title: the model's folder and file name (not its in-file name, usually
    Japanese, which the bundled font cannot draw), with any character beyond Latin, Greek and
    Cyrillic (what DejaVu Sans covers) shown as "?" rather than as a tofu box."""
    name = f"{path.parent.name}/{path.name}" if path.parent.name else path.name
    drawable = "".join(c if ord(c) <= LAST_DRAWABLE else "?" for c in name)
    return f"{drawable}  ({shading})"


def checkerboard(size: int, square: int = CHECKER_PX) -> np.ndarray:
    """(size, size, 3) uint8 light-grey checkerboard."""
    index = np.arange(size) // square
    odd = (index[:, None] + index[None, :]) % 2 == 1
    board = np.where(odd[..., None], np.uint8(205), np.uint8(240))
    return np.repeat(board, 3, axis=2)


def _font(size: int) -> ImageFont.ImageFont:
    for path in FONT_PATHS:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default()
