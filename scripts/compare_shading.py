"""A side-by-side sheet of shadings: rows = models, columns = earlier phong / phong / toon.

    .venv/bin/python scripts/compare_shading.py MODEL... -o sheet.png
    .venv/bin/python scripts/compare_shading.py --procedural 3 5 --size 192 \
        -o docs/media/shading.png

`--procedural SEED...` adds two rows per seed: the character as `thagen make-character` writes it
(diffuse 1, ambient 0.6: the earlier phong drew its textures right) and the same character
dressed as MMD models usually are: textured materials at diffuse 0.8 and ambient 0.5, colour
materials at ambient 0.625 × diffuse (as MMD's bundled models), and the hair's colour moved into
a multiply sphere map over a grey texture (as Miku_Hatsune_metal's hair is coloured).

"Earlier phong" is rendered by the code of an earlier commit (`--earlier-ref`, default: the last
commit before phong used the material's MMD colour and sphere maps), exported with `git archive`
into a temporary folder and run in a subprocess; nothing of it stays in the repository or in git's
worktree list. The other two columns come from the code of this checkout. Every tile is the rest
pose under the default `Lighting` (ambient 0.5, directional 0.5), over a checkerboard.

Real models may be compared for yourself, but their sheets never go into docs/media: their
licences forbid redistribution. Only procedural characters appear there.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from render.preview import _font, checkerboard, sheet_title  # noqa: E402

EARLIER_REF = "d13cd1cfa1c25d21e83a00d71ce04ebcfa18c494"  # phong = diffuse × texture × light
COLUMNS = ("earlier phong", "phong", "toon")
LABEL_PX = 22

# Run by the earlier code: render each model's rest pose with phong, save the images as .npy.
_EARLIER_RENDER = """
import json, sys
import numpy as np
from mmd_loader import detect_face, load
from render import Lighting, Pose, Renderer, RenderSettings

paths, size, out = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with Renderer(RenderSettings(size=size, shading="phong")) as renderer:
    for i, path in enumerate(paths):
        model = load(path)
        renderer.set_model(model, detect_face(model))
        np.save(f"{out}/{i}.npy", renderer.render(Pose.tha1(), Lighting()))
"""


def earlier_phong(paths: list[Path], size: int, ref: str, work: Path) -> list[np.ndarray]:
    """The rest pose of each model as the code at `ref` renders it with phong."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "mmd_loader", "render"],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise SystemExit(f"cannot export {ref} with git archive: {error}") from error
    code = work / "earlier"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(code, filter="data")
    images = work / "images"
    images.mkdir()
    script = f"import sys; sys.path.insert(0, {str(code)!r})\n" + _EARLIER_RENDER
    env = {**os.environ, "PYTHONPATH": str(code)}
    args = [sys.executable, "-c", script, json.dumps([str(p) for p in paths]), str(size)]
    done = subprocess.run([*args, str(images)], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the earlier renderer failed:\n{done.stderr}")
    return [np.load(images / f"{i}.npy") for i in range(len(paths))]


def current(paths: list[Path], size: int, shading: str) -> list[np.ndarray]:
    """The rest pose of each model as this checkout renders it with `shading`."""
    from mmd_loader import detect_face, load
    from render import Lighting, Pose, Renderer, RenderSettings

    out = []
    with Renderer(RenderSettings(size=size, shading=shading)) as renderer:
        for path in paths:
            model = load(path)
            renderer.set_model(model, detect_face(model))
            out.append(renderer.render(Pose(), Lighting()))
    return out


def mmd_dressed(seed: int, folder: Path) -> Path:
    """Procedural character `seed` with MMD's usual material values (see the module doc)."""
    from characters import build_character, spec_for_seed
    from mmd_loader.pmx_writer import write_pmx

    data, images = build_character(spec_for_seed(seed), "tex")
    tex = folder / "tex"
    tex.mkdir(parents=True)
    for name, pixels in images.items():
        Image.fromarray(pixels).save(tex / name)
    hair = np.asarray(images["hair.png"], np.float64)
    grey = hair[..., :3].mean(axis=2, keepdims=True)
    tint = hair[..., :3].reshape(-1, 3).mean(axis=0) / np.maximum(grey.mean(), 1.0)
    Image.fromarray(np.repeat(np.clip(grey, 0, 255).astype(np.uint8), 3, axis=2)).save(
        tex / "hair_grey.png"
    )
    data.textures += ["tex\\hair_grey.png", "tex\\hair.sph"]
    Image.fromarray(sphere_map(np.clip(tint / tint.max(), 0, 1))).save(
        tex / "hair.sph", format="BMP"
    )
    for material in data.materials:
        if material.english_name == "hair":
            material.texture = len(data.textures) - 2
            material.sphere, material.sphere_mode = len(data.textures) - 1, 1
        if material.texture >= 0:
            material.diffuse, material.ambient = (0.8, 0.8, 0.8, 1.0), (0.5, 0.5, 0.5)
        else:
            material.ambient = tuple(0.625 * c for c in material.diffuse[:3])
    return write_pmx(folder / "character.pmx", data)


def sphere_map(colour: np.ndarray, size: int = 64) -> np.ndarray:
    """A multiply sphere map: `colour`, brightening towards a highlight up and to the left."""
    y, x = (np.mgrid[0:size, 0:size] + 0.5) / size * 2 - 1
    light = np.clip(1.0 - 0.5 * np.hypot(x + 0.3, y + 0.4), 0.0, 1.0)[..., None]
    rgb = colour[None, None, :] * (0.85 + 0.15 * light) + 0.25 * light**4
    return np.clip(rgb * 255, 0, 255).astype(np.uint8)


def sheet(
    rows: list[tuple[str, list[np.ndarray]]], size: int, columns: tuple[str, ...] = COLUMNS
) -> Image.Image:
    """Tiles over a checkerboard, a column header and a label per row."""
    header = LABEL_PX + 4
    image = Image.new(
        "RGB", (len(columns) * size, header + len(rows) * (size + LABEL_PX)), (32, 32, 32)
    )
    draw = ImageDraw.Draw(image)
    font = _font(14)
    for c, name in enumerate(columns):
        draw.text((c * size + 6, 5), name, fill=(240, 240, 240), font=font)
    background = checkerboard(size)
    for r, (label, tiles) in enumerate(rows):
        y = header + r * (size + LABEL_PX)
        for c, rgba in enumerate(tiles):
            tile = Image.fromarray(background)
            layer = Image.fromarray(rgba, "RGBA")
            tile.paste(layer, (0, 0), layer)
            image.paste(tile, (c * size, y))
        draw.text((6, y + size + 3), label, fill=(240, 240, 240), font=font)
    return image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", type=Path, help="PMD/PMX files")
    parser.add_argument("--procedural", nargs="*", type=int, default=[], metavar="SEED")
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--earlier-ref", default=EARLIER_REF, help="git commit of the old phong")
    args = parser.parse_args(argv)
    if not args.models and not args.procedural:
        parser.error("give MODEL files and/or --procedural SEED...")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        paths, labels = [], []
        for path in args.models:
            paths.append(path.resolve())
            labels.append(sheet_title(path, "rest, default lighting").split("  ")[0])
        if args.procedural:
            from characters import write_character

            for seed in args.procedural:
                paths.append(write_character(seed, work / f"seed{seed}" / "character.pmx"))
                labels.append(f"procedural character, seed {seed}")
                paths.append(mmd_dressed(seed, work / f"seed{seed}-mmd"))
                labels.append(
                    f"seed {seed} with MMD-style materials (diffuse 0.8, hair from a .sph)"
                )
        columns = [
            earlier_phong(paths, args.size, args.earlier_ref, work),
            current(paths, args.size, "phong"),
            current(paths, args.size, "toon"),
        ]
        rows = [(label, [column[i] for column in columns]) for i, label in enumerate(labels)]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        sheet(rows, args.size).save(args.out, optimize=True)
    print(f"wrote {args.out} ({len(rows)} models)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
