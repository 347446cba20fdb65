"""A contact sheet: one model in the poses that show at once whether it works."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from render.pose import Pose
from render.renderer import Renderer

SHEET_POSES: tuple[tuple[str, Pose], ...] = (
    ("rest", Pose.tha1()),
    ("left_eye 1", Pose.tha1(left_eye=1.0)),
    ("right_eye 1", Pose.tha1(right_eye=1.0)),
    ("mouth 1", Pose.tha1(mouth=1.0)),
    ("all morphs 1", Pose.tha1(left_eye=1.0, right_eye=1.0, mouth=1.0)),
    ("head_x +1", Pose.tha1(head_x=1.0)),
    ("head_x -1", Pose.tha1(head_x=-1.0)),
    ("head_y +1", Pose.tha1(head_y=1.0)),
    ("head_y -1", Pose.tha1(head_y=-1.0)),
    ("neck_z +1", Pose.tha1(neck_z=1.0)),
    ("neck_z -1", Pose.tha1(neck_z=-1.0)),
    ("all rotations", Pose.tha1(head_x=1.0, head_y=1.0, neck_z=1.0)),
)
COLUMNS = 4
LABEL_PX = 22
CHECKER_PX = 8
LAST_DRAWABLE = 0x052F  # the end of Unicode's Cyrillic Supplement block
FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
)


def contact_sheet(renderer: Renderer, title: str, columns: int = COLUMNS) -> Image.Image:
    """Render `SHEET_POSES` with the renderer's current model; tiles over a checkerboard, each
    labelled, the target head box (the middle `head_fraction` of the tile) outlined."""
    size = renderer.settings.size
    tiles = [(label, renderer.render(pose)) for label, pose in SHEET_POSES]
    rows = -(-len(tiles) // columns)
    header = LABEL_PX + 6
    sheet = Image.new("RGB", (columns * size, header + rows * (size + LABEL_PX)), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    font = _font(14)
    draw.text((6, 5), title, fill=(240, 240, 240), font=font)
    background = checkerboard(size)
    inner = renderer.settings.head_fraction * size
    lo, hi = (size - inner) / 2, (size + inner) / 2
    for i, (label, rgba) in enumerate(tiles):
        x, y = (i % columns) * size, header + (i // columns) * (size + LABEL_PX)
        tile = Image.fromarray(background)
        tile.paste(Image.fromarray(rgba, "RGBA"), (0, 0), Image.fromarray(rgba, "RGBA"))
        sheet.paste(tile, (x, y))
        draw.rectangle([x + lo, y + lo, x + hi - 1, y + hi - 1], outline=(255, 80, 80))
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
