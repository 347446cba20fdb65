"""Contact sheets of head boxes on procedural characters with buns, ornament clusters and
headwear, and on real models: each row one character from the front, the side and behind, with
the box found (red) and, for procedural characters, the true top and chin (green).

    .venv/bin/python scripts/head_box_sheet.py -o sheet.png [--seeds 0 3] [--set buns|headwear]
    .venv/bin/python scripts/head_box_sheet.py -o real.png --models ../shared/mmd/...pmx ...
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from characters import spec_for_seed, write_spec  # noqa: E402
from mmd_loader import detect_face, load  # noqa: E402
from render import Pose, Renderer, RenderSettings  # noqa: E402
from render.preview import FONT_PATHS, checkerboard  # noqa: E402

TILE = 176
VIEWS = (("front", 0.0), ("side", 90.0), ("behind", 150.0))
SETS = {
    "buns": {
        "top bun 0.3": dict(bun="top", bun_size=0.3),
        "top bun 0.45": dict(bun="top", bun_size=0.45),
        "back bun 0.2": dict(bun="back", bun_size=0.2),
        "back bun 0.5": dict(bun="back", bun_size=0.5),
        "low bun 0.35": dict(bun="low", bun_size=0.35),
        "side bun 0.3": dict(bun="side", bun_size=0.3),
        "odango 0.4": dict(bun="double", bun_size=0.4),
        "odango 0.45, welded": dict(bun="double", bun_size=0.45, bun_joined=True),
        "back bun 0.45, welded": dict(bun="back", bun_size=0.45, bun_joined=True),
        "cluster of 7 (unnamed)": dict(bun="back", bun_size=0.35, bun_ornaments=7),
        "cluster of 7 named 簪": dict(
            bun="back", bun_size=0.35, bun_ornaments=7, bun_ornament_name="簪"
        ),
    },
    "headwear": {
        "hat (unnamed)": dict(headwear="hat"),
        "hat named hat, skin 顔・耳": dict(headwear="hat", headwear_name="hat", skin_name="顔・耳"),
        "cap (unnamed)": dict(headwear="cap"),
        "cap named キャップ": dict(headwear="cap", headwear_name="キャップ"),
        "beret (unnamed)": dict(headwear="beret"),
        "hood (unnamed)": dict(headwear="hood"),
        "hood named フード": dict(headwear="hood", headwear_name="フード"),
    },
}


def font(size: int):
    for path in FONT_PATHS:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default()


def row(renderer: Renderer, model, roles, truth: tuple[float, float] | None, label: str):
    """One character's tiles with its box lines, and its label."""
    renderer.set_model(model, roles)
    framing, box = renderer.framing, roles.head_box
    tiles = []
    for _, angle in VIEWS:
        rgba = renderer.render(Pose(rotations={"head": (0.0, angle, 0.0)}))
        tile = Image.fromarray(checkerboard(TILE))
        tile.paste(Image.fromarray(rgba, "RGBA"), (0, 0), Image.fromarray(rgba, "RGBA"))
        draw = ImageDraw.Draw(tile)
        lines = [((255, 60, 60), box.top), ((255, 60, 60), box.chin)]
        if truth is not None:
            lines += [((40, 200, 40), truth[0]), ((40, 200, 40), truth[1])]
        for colour, y in lines:
            py = framing.project(np.array([[box.center[0], y, box.center[2]]]), TILE)[0][1]
            draw.line([(0, py), (TILE, py)], fill=colour, width=1)
        tiles.append(tile)
    if truth is not None:
        height = truth[0] - truth[1]
        errors = (box.top - truth[0]) / height, (box.chin - truth[1]) / height
        label += "  top {:+.1%}  chin {:+.1%}".format(*errors)
    flags = [f.code for f in roles.flags]
    return tiles, label + (f"  flags: {', '.join(flags)}" if flags else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[3])
    parser.add_argument("--set", choices=sorted(SETS), default="buns")
    parser.add_argument("--models", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    rows = []
    with Renderer(RenderSettings(size=TILE, head_fraction=0.45)) as renderer, \
            tempfile.TemporaryDirectory() as folder:  # fmt: skip
        for path in args.models:
            model = load(path)
            rows.append(row(renderer, model, detect_face(model), None, path.name))
        for seed in [] if args.models else args.seeds:
            for k, (name, change) in enumerate(SETS[args.set].items()):
                spec = dataclasses.replace(spec_for_seed(seed), ornament="none", **change)
                model = load(write_spec(spec, Path(folder) / f"c{seed}_{k}.pmx"))
                truth = (spec.head_top_y, spec.chin_y)
                rows.append(row(renderer, model, detect_face(model), truth, f"seed {seed}: {name}"))
    label_px = 20
    sheet = Image.new("RGB", (TILE * len(VIEWS), len(rows) * (TILE + label_px)), (30, 30, 30))
    draw = ImageDraw.Draw(sheet)
    for i, (tiles, label) in enumerate(rows):
        y = i * (TILE + label_px)
        draw.text((4, y + 2), label, fill=(235, 235, 235), font=font(12))
        for j, tile in enumerate(tiles):
            sheet.paste(tile, (j * TILE, y + label_px))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
