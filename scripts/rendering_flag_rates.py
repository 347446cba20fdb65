"""False-positive rates of the rendering flags (face_shading_artifacts, overlay_visible,
parameter_invisible) on ../shared/mmd and the procedural characters, and whether they catch the
procedural cases built to raise them.

    .venv/bin/python scripts/rendering_flag_rates.py [--mmd ../shared/mmd] [--seeds 40]

Truth: no face model in ../shared/mmd and no procedural seed has grey plates on its face (with
the face shading; looked at), an expression overlay drawn at rest, or a tha3 eyebrow, eye or
mouth parameter that changes nothing with the brows over the hair (tests/test_brow_layer.py);
every flag they raise is a false positive. The positives are characters.cases: a skin ramp dark
on its lit side, named overlays shown at rest with a sweat drop beside the head, brows under a
fringe reviewed as modelled. Brows reviewed as modelled are reported too: there a flag on a
real model is a brow under its bangs (Rin's, Meiko Sakine's), which is true.
Prints a Markdown table (the README's, under Quality flags).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from characters import cases, write_character  # noqa: E402
from mmd_loader import detect_face, load  # noqa: E402
from pipeline.catalog import model_flags  # noqa: E402
from pipeline.visibility import (  # noqa: E402
    head_box_pixels,
    invisible_flag,
    parameter_visibility,
    review_renderer_settings,
)
from poses import load_schema  # noqa: E402
from render import Renderer  # noqa: E402
from render.preview import sheet_tiles  # noqa: E402

FLAGS = ("face_shading_artifacts", "overlay_visible", "parameter_invisible")


def models(mmd: Path, seeds: int, work: Path) -> dict[str, list[Path]]:
    real = sorted(p for p in mmd.rglob("*") if p.suffix.lower() in (".pmd", ".pmx"))
    procedural = [write_character(s, work / f"seed{s}" / "c.pmx") for s in range(seeds)]
    return {"../shared/mmd": real, "procedural": procedural}


def flags_of(path: Path, renderer: Renderer, schema, brows: str) -> set[str] | None:
    """The codes of FLAGS `path` raises (None for a model that is not usable)."""
    model = load(path)
    roles = detect_face(model)
    if not roles.usable:
        return None
    codes = {f["code"] for f in model_flags(model, roles)}
    renderer.set_model(model, roles, schema)
    binding = renderer.bind(schema)
    tiles = sheet_tiles(renderer, binding, brows)
    visibility = parameter_visibility(tiles, binding, head_box_pixels(renderer, roles))
    if invisible_flag(visibility, schema.name):
        codes.add("parameter_invisible")
    return codes & set(FLAGS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mmd", type=Path, default=ROOT.parent / "shared" / "mmd")
    parser.add_argument("--seeds", type=int, default=40)
    args = parser.parse_args()
    schema = load_schema("tha3")
    work = Path(tempfile.mkdtemp(prefix="flag-rates-"))
    sets = models(args.mmd, args.seeds, work)
    positives = {
        "face_shading_artifacts": cases.dark_ramp(3, work / "dark" / "c.pmx"),
        "overlay_visible": cases.overlays_shown(3, work / "shown" / "c.pmx", named=True),
        "parameter_invisible": cases.fringed(3, work / "fringe" / "c.pmx"),
    }
    counts: dict[tuple[str, str], list[str]] = {}
    sizes: dict[str, int] = {}
    modelled: list[str] = []
    with Renderer(review_renderer_settings(schema, 128)) as renderer:
        for name, paths in sets.items():
            usable = 0
            for path in paths:
                found = flags_of(path, renderer, schema, "over")
                if found is None:
                    continue
                usable += 1
                for code in found:
                    counts.setdefault((name, code), []).append(path.name)
                if name == "../shared/mmd" and "parameter_invisible" in (
                    flags_of(path, renderer, schema, "modelled") or set()
                ):
                    modelled.append(path.name)
            sizes[name] = usable
        caught = {}
        for code, path in positives.items():
            brows = "modelled" if code == "parameter_invisible" else "over"
            caught[code] = code in (flags_of(path, renderer, schema, brows) or set())
    print("| flag | ../shared/mmd | procedural | raised on its procedural case |")
    print("|---|---|---|---|")
    for code in FLAGS:
        cells = []
        for name in sets:
            hits = counts.get((name, code), [])
            rate = len(hits) / sizes[name] if sizes[name] else 0.0
            listed = f" ({', '.join(hits)})" if hits else ""
            cells.append(f"{len(hits)} of {sizes[name]} ({rate:.0%}){listed}")
        print(f"| `{code}` | {cells[0]} | {cells[1]} | {'yes' if caught[code] else 'no'} |")
    print()
    print(
        "parameter_invisible with the brows as modelled, on ../shared/mmd: "
        + (", ".join(modelled) if modelled else "none")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
