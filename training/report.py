"""The demo's HTML report: a figures table (network vs identity on val) and the image grids."""

from __future__ import annotations

import html
from pathlib import Path

from media.owned import write_atomic
from training.evaluate import METRICS


def reduction(result: dict, row: str) -> float:
    """How far ``row``'s L1 is below the identity baseline's, as a fraction (0.25 = 25 % lower)."""
    base = result["results"]["identity"]["l1"]
    return 1.0 - result["results"][row]["l1"] / base if base > 0 else 0.0


def figures_table(results: list[dict]) -> str:
    head = "".join(f"<th>{m.upper()}</th>" for m in METRICS)
    rows = []
    for result in results:
        for row, values in result["results"].items():
            cells = "".join(f"<td>{values[m]:.5f}</td>" for m in METRICS)
            vs = "" if row == "identity" else f"{100 * reduction(result, row):+.1f} %"
            rows.append(
                f"<tr><td>{html.escape(result['network'])}</td><td>{html.escape(row)}</td>"
                f"{cells}<td>{vs}</td><td>{result['examples']}</td></tr>"
            )
    return (
        "<table><tr><th>network</th><th>output</th>"
        f"{head}<th>L1 below identity</th><th>examples</th></tr>{''.join(rows)}</table>"
    )


def write_report(
    out: Path, title: str, results: list[dict], images: dict[str, Path], notes: list[str]
) -> Path:
    """Write ``out/report.html``; ``images`` maps captions to PNGs inside ``out``."""
    out = Path(out)
    figures = "".join(
        f"<figure><img src='{html.escape(str(Path(p).relative_to(out)))}'>"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for caption, p in images.items()
    )
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 70em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .3em .6em; }}
td {{ text-align: right; font-variant-numeric: tabular-nums; }}
img {{ max-width: 100%; image-rendering: pixelated; }} figure {{ margin: 1.5em 0; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Metrics on the validation split (characters never seen in training), RGBA in [0, 1].
The identity baseline outputs the input unchanged.</p>
{figures_table(results)}
<ul>{items}</ul>
{figures}
</body></html>
"""
    path = out / "report.html"
    write_atomic(path, page.encode("utf-8"), "report")
    return path
