"""Before/after sheets of rendering's hard cases (issue 19), from procedural characters only
(`characters.cases`): the README's `face_shading.png`, `overlays.png` and `brows.png`.

    .venv/bin/python scripts/rendering_cases.py [--out docs/media]

- face_shading.png: a low-poly face with split normals and cheek decals with normals tilted
  70°, under THA1's plain Lambert phong (`RenderSettings(face_ramp=False)`, what thagen drew
  before), under phong with the face lit through its toon ramp (now), and under toon.
- overlays.png: the PMD-like variant of a model whose PMX hides its expression overlays at
  rest, as drawn before (`hide_overlays=False`) and now (its sibling says they are hidden); the
  variant alone with named overlays (hidden where they lie on the face, the sweat drop beside
  the head shown and flagged `overlay_visible`).
- brows.png: brows under a fringe, at rest and with two eyebrow parameters, as modelled and
  over the hair (`--brows over`), the head turned last.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from compare_shading import sheet  # noqa: E402

from characters import cases  # noqa: E402
from mmd_loader import detect_face, load  # noqa: E402
from poses import load_schema  # noqa: E402
from render import Lighting, Renderer, RenderSettings  # noqa: E402

SIZE = 192
HEAD = 0.8  # the head box's share of a tile's height (the face large enough to see)


def render(path: Path, poses: list[tuple[dict, str]], **settings) -> list[np.ndarray]:
    """`path` in tha3's schema values with brow modes, framed on the head."""
    model = load(path)
    roles = detect_face(model)
    schema = load_schema("tha3")
    options = RenderSettings(size=SIZE, head_fraction=HEAD, **settings)
    with Renderer(options) as renderer:
        renderer.set_model(model, roles, schema)
        binding = renderer.bind(schema)
        return [
            renderer.render(binding.pose(values), Lighting(), brows=brows)
            for values, brows in poses
        ]


def face_shading(work: Path) -> tuple[list, tuple[str, ...]]:
    columns = ("Lambert (before)", "face through its ramp", "toon")
    rows = []
    for label, path in (
        (f"low-poly face, {cases.FACETS} rows, split normals", cases.faceted(3, work / "f.pmx")),
        (
            f"cheek decals, normals tilted {cases.DECAL_TILT:g}°",
            cases.tilted_decal(11, work / "d.pmx"),
        ),
    ):
        rest = [({}, "modelled")]
        tiles = render(path, rest, face_ramp=False)
        tiles += render(path, rest)
        tiles += render(path, rest, shading="toon")
        rows.append((label, tiles))
    return rows, columns


def overlays(work: Path) -> tuple[list, tuple[str, ...]]:
    columns = ("drawn at rest (before)", "hidden: sibling PMX", "named, alone")
    _, variant = cases.overlay_pair(5, work / "pair")
    alone = cases.overlays_shown(5, work / "alone" / "c.pmx", named=True)
    rest = [({}, "modelled")]
    tiles = render(variant, rest, hide_overlays=False) + render(variant, rest) + render(alone, rest)
    label = "pale, anger mark, blush, tears, sweat (flagged: overlay_visible)"
    return [(label, tiles)], columns


def brows(work: Path) -> tuple[list, tuple[str, ...]]:
    columns = ("rest", "eyebrow_raised 1", "eyebrow_angry 1", "angry, head_y 1")
    path = cases.fringed(3, work / "fringe" / "c.pmx")
    raised = {"eyebrow_raised_left": 1.0, "eyebrow_raised_right": 1.0}
    angry = {"eyebrow_angry_left": 1.0, "eyebrow_angry_right": 1.0}
    rows = []
    for mode, label in (("modelled", "--brows modelled"), ("over", "--brows over")):
        poses = [({}, mode), (raised, mode), (angry, mode), ({**angry, "head_y": 1.0}, mode)]
        rows.append((label, render(path, poses)))
    return rows, columns


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "media")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for name, make in (
            ("face_shading", face_shading),
            ("overlays", overlays),
            ("brows", brows),
        ):
            rows, columns = make(work)
            out = args.out / f"{name}.png"
            sheet(rows, SIZE, columns).save(out, optimize=True)
            print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
