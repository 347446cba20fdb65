"""Measure what the face morpher sees, on real models and on procedural characters, side by side.

    .venv/bin/python scripts/measure_faces.py [--mmd-dir ../shared/mmd] [--seeds 60]
        [--figure docs/media/face_measures.png] [--per-model]

Each model is rendered as the pipeline renders it (THA1's framing: the head box, top to chin,
spans the middle half of the image; the default lighting, which shows the author's colours) at
rest, with both eyes closed (`left_eye = right_eye = 1`) and with the mouth open (`mouth = 1`).
What changes is measured in head heights (H: the head box's height) from the renders:

- `eye y`, `eye spacing`, `eye w`, `eye h`: the pixels a closure changes, per side (split at the
  head box's centre line): the centre's height below the head top, the distance between the two
  centres, each side's width and height (all / H).
- `closure area`, `mouth area`: changed pixels (any channel by more than 24 of 255) / H².
- `closure L1`, `mouth L1`: the mean |change| over the whole image (RGBA in [0, 1]): the L1 of
  the identity baseline on that pose, which the morpher must remove.
- `mouth y`, `mouth w`, `mouth h`: the open mouth's changed pixels, as for the eyes.
- `iris V`, `iris S`: value and saturation (HSV) of the eye's darker half at rest (iris, pupil,
  lashes) among the pixels the closure changes; `iris hue` only describes the spread.
- `lid V`, `line V`: the closed eye's pixels: the brighter half's median value (the lid's
  skin) and the darkest tenth's (the lash line).
- `skin`: the lid skin's colour (R, G, B medians); `mouth V`, `mouth R-G`: the open mouth's
  changed pixels (median value, and how red: R − G).

Prints a table: for each measure the median and the 10th-90th percentiles over the real models
and over the procedural characters (seeds 0..N-1). `--figure` plots each measure's values, real
above procedural; numbers only, no render of a real model is written anywhere.
"""

from __future__ import annotations

import argparse
import colorsys
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZE = 256
THRESHOLD = 24  # of 255: a pixel "changes" when a channel moves by more than this
MEASURES = (
    "eye y",
    "eye spacing",
    "eye w",
    "eye h",
    "closure area",
    "closure L1",
    "iris V",
    "iris S",
    "lid V",
    "line V",
    "skin R",
    "skin G",
    "skin B",
    "mouth y",
    "mouth w",
    "mouth h",
    "mouth area",
    "mouth L1",
    "mouth V",
    "mouth R-G",
)


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(-1) > THRESHOLD


def box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """(centre x, centre y, width, height) of a mask's pixels, in pixels."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return (
        float(xs.mean()),
        float(ys.mean()),
        float(xs.max() - xs.min() + 1),
        float(ys.max() - ys.min() + 1),
    )


def hsv(pixels: np.ndarray) -> np.ndarray:
    """(N, 3) RGB uint8 → (N, 3) HSV in [0, 1]."""
    rgb = pixels[:, :3].astype(np.float64) / 255
    return np.array([colorsys.rgb_to_hsv(*p) for p in rgb]) if len(rgb) else np.zeros((0, 3))


def measure(rest: np.ndarray, closed: np.ndarray, opened: np.ndarray) -> dict[str, float]:
    """The measures of one model from its three renders (RGBA uint8, THA1 framing)."""
    h = SIZE / 2  # the head box's height in pixels
    top = SIZE / 4  # the head box's top row
    out: dict[str, float] = dict.fromkeys(MEASURES, np.nan)
    eyes = changed(rest, closed)
    sides = [box(eyes[:, : SIZE // 2]), box(eyes[:, SIZE // 2 :])]
    if all(sides):
        right, left = sides
        out["eye y"] = ((right[1] + left[1]) / 2 - top) / h
        out["eye spacing"] = (left[0] + SIZE // 2 - right[0]) / h
        out["eye w"] = (right[2] + left[2]) / 2 / h
        out["eye h"] = (right[3] + left[3]) / 2 / h
    out["closure area"] = eyes.sum() / h**2
    out["closure L1"] = float(np.abs(rest.astype(float) - closed).mean() / 255)
    if eyes.sum() >= 8:
        at_rest, shut = rest[eyes], closed[eyes]
        v = hsv(at_rest)
        dark = v[v[:, 2] <= np.median(v[:, 2])]
        out["iris V"], out["iris S"] = float(np.median(dark[:, 2])), float(np.median(dark[:, 1]))
        v = hsv(shut)
        bright = v[:, 2] >= np.median(v[:, 2])
        out["lid V"] = float(np.median(v[bright, 2]))
        out["line V"] = float(np.percentile(v[:, 2], 10))
        skin = np.median(shut[bright, :3], axis=0) / 255
        out["skin R"], out["skin G"], out["skin B"] = (float(c) for c in skin)
    mouth = changed(rest, opened)
    b = box(mouth)
    if b is not None:
        out["mouth y"] = (b[1] - top) / h
        out["mouth w"], out["mouth h"] = b[2] / h, b[3] / h
        px = opened[mouth]
        out["mouth V"] = float(np.median(hsv(px)[:, 2]))
        out["mouth R-G"] = float(np.median(px[:, 0].astype(float) - px[:, 1]) / 255)
    out["mouth area"] = mouth.sum() / h**2
    out["mouth L1"] = float(np.abs(rest.astype(float) - opened).mean() / 255)
    return out


def render_three(renderer, model, roles) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from poses import load_schema
    from render import Lighting

    renderer.set_model(model, roles)
    binding = renderer.bind(load_schema("tha1"))
    return tuple(  # type: ignore[return-value]
        renderer.render(binding.pose(values), Lighting())
        for values in ({}, {"left_eye": 1.0, "right_eye": 1.0}, {"mouth": 1.0})
    )


def measure_files(paths: list[Path], cells: list | None = None) -> dict[str, dict[str, float]]:
    """Measures of every usable model among `paths` (by file name); with `cells`, each model's
    contact sheet cell is appended to it."""
    from mmd_loader import ModelLoadError, detect_face, load
    from render import Renderer, RenderSettings

    out = {}
    with Renderer(RenderSettings(size=SIZE)) as renderer:
        for path in paths:
            try:
                model = load(path)
            except ModelLoadError:
                continue
            roles = detect_face(model)
            if roles.problems:
                continue
            images = render_three(renderer, model, roles)
            out[str(path)] = measure(*images)
            if cells is not None:
                cells.append(cell(images))
    return out


CELL = 96  # px per face in a contact sheet


def cell(images) -> np.ndarray:
    """A contact sheet cell: the face (the head box and a margin) at rest, eyes closed and
    mouth open, side by side over grey."""
    from PIL import Image

    crops = []
    for rgba in images:
        face = Image.fromarray(rgba).crop((48, 56, 208, 216)).resize((CELL, CELL), Image.LANCZOS)
        grey = Image.new("RGBA", face.size, (128, 128, 128, 255))
        grey.alpha_composite(face)
        crops.append(np.asarray(grey.convert("RGB")))
    return np.concatenate(crops, axis=1)


def write_sheet(cells: list[np.ndarray], out: Path, columns: int = 5) -> None:
    """Cells in rows of `columns`, 4 px apart."""
    from PIL import Image

    rows = -(-len(cells) // columns)
    h, w = cells[0].shape[:2]
    sheet = np.full((rows * (h + 4), columns * (w + 4), 3), 255, np.uint8)
    for k, image in enumerate(cells):
        r, c = divmod(k, columns)
        sheet[r * (h + 4) : r * (h + 4) + h, c * (w + 4) : c * (w + 4) + w] = image
    Image.fromarray(sheet).save(out)


def real_models(mmd_dir: Path) -> list[Path]:
    return sorted(p for p in mmd_dir.rglob("*") if p.suffix.lower() in (".pmd", ".pmx"))


def procedural_models(seeds: int, folder: Path) -> list[Path]:
    from characters import write_character

    return [
        write_character(seed, folder / f"character_{seed:03d}" / "character.pmx")
        for seed in range(seeds)
    ]


def summary(rows: dict[str, dict[str, float]], name: str) -> np.ndarray:
    return np.array([[r[name] for r in rows.values()]], float)[0]


def table(real: dict, procedural: dict) -> str:
    def cell(values: np.ndarray) -> str:
        values = values[np.isfinite(values)]
        if not len(values):
            return f"{'-':>22}"
        p10, p50, p90 = np.percentile(values, [10, 50, 90])
        return f"{p50:8.3f} [{p10:6.3f}–{p90:6.3f}]"

    lines = [
        f"{'measure':14}{'real (' + str(len(real)) + ')':>24}"
        f"{'procedural (' + str(len(procedural)) + ')':>26}",
    ]
    for name in MEASURES:
        lines.append(f"{name:14}  {cell(summary(real, name))}  {cell(summary(procedural, name))}")
    return "\n".join(lines)


def figure(real: dict, procedural: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 5
    rows = -(-len(MEASURES) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 1.5 * rows))
    rng = np.random.default_rng(0)
    for ax, name in zip(axes.ravel(), MEASURES, strict=False):
        for k, (_, data, colour) in enumerate(
            (("real", real, "tab:red"), ("procedural", procedural, "tab:blue"))
        ):
            values = summary(data, name)
            values = values[np.isfinite(values)]
            ax.scatter(values, 1 - k + rng.uniform(-0.2, 0.2, len(values)), s=6, c=colour)
        ax.set_yticks([1, 0], ["real", "proc."])
        ax.set_ylim(-0.5, 1.5)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(MEASURES) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=90)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mmd-dir", type=Path, default=ROOT.parent / "shared" / "mmd")
    parser.add_argument("--seeds", type=int, default=60, help="procedural characters 0..N-1")
    parser.add_argument("--figure", type=Path, help="plot every measure to this PNG")
    parser.add_argument("--per-model", action="store_true", help="print every model's row")
    parser.add_argument(
        "--sheet",
        type=Path,
        help="contact sheet of the procedural characters (rest, eyes "
        "closed, mouth open) to this PNG",
    )
    parser.add_argument(
        "--real-sheet",
        type=Path,
        help="the same of the real models, for your eyes only: outside the repository (their "
        "authors forbid redistribution)",
    )
    args = parser.parse_args()
    if args.real_sheet and args.real_sheet.resolve().is_relative_to(ROOT):
        parser.error("--real-sheet must be outside the repository: real models are not ours")
    real_cells: list = [] if args.real_sheet else None
    real = measure_files(real_models(args.mmd_dir), real_cells) if args.mmd_dir.is_dir() else {}
    if not real:
        print(f"no usable real models in {args.mmd_dir}; procedural only", file=sys.stderr)
    cells: list = [] if args.sheet else None
    with tempfile.TemporaryDirectory() as folder:
        procedural = measure_files(procedural_models(args.seeds, Path(folder)), cells)
    if args.sheet:
        write_sheet(cells, args.sheet)
        print(f"wrote {args.sheet}")
    if real_cells:
        write_sheet(real_cells, args.real_sheet)
        print(f"wrote {args.real_sheet}")
    if args.per_model:
        for label, rows in (("real", real), ("procedural", procedural)):
            for path, row in rows.items():
                cells = " ".join(f"{row[m]:.3f}" for m in MEASURES)
                print(f"{label} {Path(path).name if label == 'real' else path}: {cells}")
    print(table(real, procedural))
    if args.figure:
        figure(real, procedural, args.figure)
        print(f"wrote {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
