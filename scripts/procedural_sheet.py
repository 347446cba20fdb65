"""Contact sheets of characters at rest as the pipeline frames them: procedural characters, or
(for your eyes only) the real models of a folder, and the two side by side.

    .venv/bin/python scripts/procedural_sheet.py -o docs/media/procedural_characters.png
        [--count 50] [--seed 0] [--tile 128] [--columns 10] [--face]
    .venv/bin/python scripts/procedural_sheet.py -o ../notes/real.png --real ../shared/mmd
        [--side-by-side ../notes/both.png]

Each tile is one character's rest render (THA1's framing: 256², the head box, top to chin,
spanning the middle half; the default lighting), over grey, scaled to `--tile` px, numbered by
seed (procedural) or in file order (real: the numbers are printed with the files). `--face`
crops each render to the head box and a margin before scaling, for a closer look. Real models'
authors forbid redistribution: with `--real`, every output must be outside the repository.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from characters.batch import write_characters  # noqa: E402
from mmd_loader import ModelLoadError, detect_face, load  # noqa: E402
from poses import load_schema  # noqa: E402
from render import Renderer, RenderSettings  # noqa: E402
from render.preview import FONT_PATHS  # noqa: E402

SIZE = 256  # the pipeline's render size
FACE_CROP = (48, 40, 208, 200)  # the head box (64..192) and a margin, for --face
BACKGROUND = (200, 205, 212)
GAP = 2  # px between tiles
LABEL_PX = 11


def font(size: int) -> ImageFont.ImageFont:
    for path in FONT_PATHS:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default()


def tile(rgba: np.ndarray, size: int, label: str, face: bool) -> Image.Image:
    """One render over grey, cropped (with `face`) and scaled to `size` px, labelled."""
    image = Image.fromarray(rgba)
    if face:
        image = image.crop(FACE_CROP)
    grey = Image.new("RGBA", image.size, (*BACKGROUND, 255))
    grey.alpha_composite(image)
    out = grey.convert("RGB").resize((size, size), Image.LANCZOS)
    draw = ImageDraw.Draw(out)
    draw.text((3, 1), label, fill=(40, 40, 40), font=font(LABEL_PX))
    return out


def usable(paths: list[Path], labels: list[str]) -> tuple[list[tuple], list[str]]:
    """(model, face roles) and label of each model among `paths` that loads and whose face is
    found; the others are reported and left out."""
    models, kept = [], []
    for path, label in zip(paths, labels, strict=True):
        try:
            model = load(path)
        except ModelLoadError as error:
            print(f"skipped {path}: {error}", file=sys.stderr)
            continue
        roles = detect_face(model)
        if roles.problems:
            print(f"skipped {path}: {'; '.join(map(str, roles.problems))}", file=sys.stderr)
            continue
        models.append((model, roles))
        kept.append(label)
    return models, kept


def render_rest(models: list[tuple]) -> list[np.ndarray]:
    """Each model's rest render, as the pipeline draws it."""
    images = []
    with Renderer(RenderSettings(size=SIZE)) as renderer:
        for model, roles in models:
            renderer.set_model(model, roles)
            binding = renderer.bind(load_schema("tha1"))
            images.append(renderer.render(binding.pose({})))
    return images


def grid(tiles: list[Image.Image], columns: int) -> Image.Image:
    """Tiles in rows of `columns`, GAP px apart on white."""
    size = tiles[0].width
    rows = -(-len(tiles) // columns)
    step = size + GAP
    sheet = Image.new("RGB", (columns * step - GAP, rows * step - GAP), (255, 255, 255))
    for k, image in enumerate(tiles):
        r, c = divmod(k, columns)
        sheet.paste(image, (c * step, r * step))
    return sheet


def side_by_side(left: Image.Image, right: Image.Image, titles: tuple[str, str]) -> Image.Image:
    """Two sheets beside each other, top-aligned, each under its title."""
    head, gap = 18, 16
    out = Image.new(
        "RGB",
        (left.width + gap + right.width, head + max(left.height, right.height)),
        (255, 255, 255),
    )
    draw = ImageDraw.Draw(out)
    for x, sheet, title in ((0, left, titles[0]), (left.width + gap, right, titles[1])):
        draw.text((x, 2), title, fill=(0, 0, 0), font=font(13))
        out.paste(sheet, (x, head))
    return out


def real_models(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".pmd", ".pmx"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--out", type=Path, required=True, help="the sheet (PNG)")
    parser.add_argument(
        "--real", type=Path, help="a folder of real models: their sheet instead (outside the repo)"
    )
    parser.add_argument(
        "--side-by-side",
        type=Path,
        help="with --real: the procedural sheet beside the real one, to this PNG (outside the "
        "repository)",
    )
    parser.add_argument("--count", type=int, default=50, help="procedural characters")
    parser.add_argument("--seed", type=int, default=0, help="the first procedural seed")
    parser.add_argument("--tile", type=int, default=128, help="px per tile")
    parser.add_argument("--columns", type=int, default=10, help="tiles per row")
    parser.add_argument("--face", action="store_true", help="crop to the head box and a margin")
    args = parser.parse_args()
    if args.side_by_side and not args.real:
        parser.error("--side-by-side needs --real")
    if args.real:
        for path in (args.out, args.side_by_side):
            if path is not None and path.resolve().is_relative_to(ROOT):
                parser.error(f"{path}: real models' renders are written outside the repository")
    if not (1 <= args.count <= 1000 and 16 <= args.tile <= 512 and args.columns >= 1):
        parser.error("--count in 1..1000, --tile in 16..512, --columns >= 1")

    def tiles(models: list[tuple], labels: list[str]) -> list[Image.Image]:
        images = zip(render_rest(models), labels, strict=True)
        return [tile(image, args.tile, label, args.face) for image, label in images]

    seeds = list(range(args.seed, args.seed + args.count))
    ours = None
    if not args.real or args.side_by_side:
        with tempfile.TemporaryDirectory() as folder:
            paths, _ = write_characters(Path(folder), seeds)
            ours = tiles(*usable(paths, [str(s) for s in seeds]))
    if args.real:
        paths = real_models(args.real)
        models, names = usable(paths, [str(p) for p in paths])
        if not models:
            parser.error(f"{args.real}: no usable models")
        for k, name in enumerate(names):
            print(f"{k:3d} {name}")
        theirs = tiles(models, [str(k) for k in range(len(models))])
        grid(theirs, args.columns).save(args.out)
        print(f"wrote {args.out}")
        if args.side_by_side:  # the real ones in half as many columns: about as tall
            titles = (f"procedural, seeds {seeds[0]}-{seeds[-1]}", f"real ({len(models)})")
            both = grid(ours, args.columns), grid(theirs, max(1, args.columns // 2))
            side_by_side(*both, titles).save(args.side_by_side)
            print(f"wrote {args.side_by_side}")
    else:
        grid(ours, args.columns).save(args.out, optimize=True)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
