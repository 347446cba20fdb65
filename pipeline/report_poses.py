"""The report's "Pose source" section for datasets drawn from motions (`generate --poses`): the
motions used and their share, and the motion-drawn poses against the schema's laws: each
parameter's distribution and the correlations between parameters, drawn with Pillow as inline
PNGs.

The laws are sampled here (`LAW_SAMPLES` poses, from a generator seeded by the dataset's seed)
from the schema the config names; a schema file that is gone leaves the laws out, with a note.
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

LAW_SAMPLES = 5000
BINS = 20
PANEL_COLUMNS = 5
MOTION_COLOUR, LAW_COLOUR = "#d0743c", "#4a78b5"


def pose_source_section(info: dict, manifest: pd.DataFrame) -> str:
    sources = info.get("poses")
    if not sources:
        return "<p>Every pose was drawn from the schema's laws.</p>"
    total_examples = len(manifest)
    rows = "".join(
        f"<tr><td>{html.escape(m['file'])}</td><td class=n>{m['frames']}</td>"
        f"<td class=n>{100 * m['share_of_frames']:.1f}%</td><td class=n>{m['examples']}</td>"
        f"<td class=n>{_share(m['examples'], total_examples)}</td></tr>"
        for m in sources["motions"]
    )
    table = (
        "<table><tr><th>motion</th><th>frames</th><th>share of frames</th><th>examples</th>"
        f"<th>share of examples</th></tr>{rows}<tr><td><i>the schema's laws</i> (mix "
        f"{sources['mix']:g})</td><td></td><td></td><td class=n>{sources['law_examples']}</td>"
        f"<td class=n>{_share(sources['law_examples'], total_examples)}</td></tr></table>"
    )
    parameters = list(info["schema"]["parameters"])
    drawn = manifest[manifest["motion"].notna()] if "motion" in manifest else manifest.iloc[:0]
    laws = law_samples(info)
    note = (
        f"<p class=muted>{len(drawn)} examples drawn from motions (orange) against "
        f"{LAW_SAMPLES} poses drawn from the schema's laws (blue): densities of the values "
        "other than 0 over each range; under each panel, the shares at 0 (motions / laws)."
        "</p>"
    )
    if laws is None:
        note = f"<p class=muted>The schema {html.escape(str(info['config']['schema']))} cannot be "
        note += "read here: the laws are left out.</p>"
        laws = pd.DataFrame(columns=[p["name"] for p in parameters])
    names = [p["name"] for p in parameters]
    motion_corr, law_corr = _correlations(drawn, names), _correlations(laws, names)
    return (
        f"{table}{note}{_png(_overlays(drawn, laws, parameters), 'distributions')}"
        "<h3>Correlations between parameters</h3><p class=muted>Pearson's r over the examples "
        "drawn from motions and over the law samples; red positive, blue negative.</p>"
        + _png(_heatmaps([("motions", motion_corr), ("the laws", law_corr)], names), "r")
        + _strongest(motion_corr, law_corr, names)
    )


def _share(count: int, total: int) -> str:
    return f"{100 * count / total:.1f}%" if total else "-"


def law_samples(info: dict) -> pd.DataFrame | None:
    """`LAW_SAMPLES` poses of the config's schema, or None when it cannot be loaded."""
    from poses.sampling import sample_pose
    from poses.schema import SchemaError, load_schema

    try:
        schema = load_schema(info["config"]["schema"])
    except (SchemaError, OSError, KeyError):
        return None
    rng = np.random.default_rng([int(info["config"].get("seed", 0)), 0x1A55])
    return pd.DataFrame([sample_pose(schema, rng) for _ in range(LAW_SAMPLES)])


def _overlays(drawn: pd.DataFrame, laws: pd.DataFrame, parameters: list[dict]) -> Image.Image:
    """Per parameter: the motions' histogram (bars) and the laws' (a step line), as densities
    over its range, in a grid of panels. Values at exactly 0 (at rest: a morph not used, a
    shape another of its group excluded) are counted apart, as shares under the panel,
    so that what is drawn is how the parameter moves when it does."""
    from pipeline.report import histogram_counts

    cols = min(PANEL_COLUMNS, max(len(parameters), 1))
    rows = -(-len(parameters) // cols)
    w, h, top = 200, 64, 16  # a panel's plot and title heights
    image = Image.new("RGB", (cols * (w + 12) + 8, rows * (h + top + 18) + 8), "white")
    draw = ImageDraw.Draw(image)
    font = _font(10)
    for n, param in enumerate(parameters):
        name, (lo, hi) = param["name"], param["range"]
        x0 = 8 + (n % cols) * (w + 12)
        y0 = 4 + (n // cols) * (h + top + 18)
        densities, rest = [], []
        for frame in (drawn, laws):
            values = frame[name].dropna().to_numpy(float) if name in frame else np.zeros(0)
            rest.append(f"{100 * np.mean(values == 0):.0f}%" if len(values) else "-")
            counts = histogram_counts(values[values != 0], lo, hi, BINS).astype(float)
            densities.append(counts / max(counts.sum(), 1.0))
        motion, law = densities
        peak = max(float(motion.max()), float(law.max()), 1e-9)
        base, bar = y0 + top + h, w / BINS
        for i, c in enumerate(motion):
            if c > 0:
                x = x0 + i * bar
                draw.rectangle([x, base - c / peak * h, x + bar - 1, base], fill=MOTION_COLOUR)
        points = []
        for i, c in enumerate(law):
            y = base - c / peak * h
            points += [(x0 + i * bar, y), (x0 + (i + 1) * bar, y)]
        draw.line(points, fill=LAW_COLOUR, width=2)
        draw.line([(x0, base), (x0 + w, base)], fill="#999999")
        draw.text((x0, y0), name, fill="black", font=font)
        share = f"at 0: {rest[0]} / {rest[1]}"
        draw.text((x0 + w / 2, base + 2), share, fill="#555555", font=font, anchor="ma")
        draw.text((x0, base + 2), f"{lo:g}", fill="#555555", font=font)
        draw.text((x0 + w, base + 2), f"{hi:g}", fill="#555555", font=font, anchor="ra")
    return image


def _correlations(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    """(k, k) Pearson r over the rows where both parameters are present; NaN where one does
    not vary."""
    columns = [frame[n] if n in frame else pd.Series(dtype=float) for n in names]
    table = pd.concat(columns, axis=1, keys=names).astype(float)
    with np.errstate(all="ignore"):
        return table.corr(min_periods=3).to_numpy()


def _colour(r: float) -> tuple[int, int, int]:
    if not np.isfinite(r):
        return (221, 221, 221)
    a = min(abs(r), 1.0)
    base = (203, 68, 58) if r > 0 else (58, 108, 203)
    return tuple(round(255 + (c - 255) * a) for c in base)


def _heatmaps(maps: list[tuple[str, np.ndarray]], names: list[str]) -> Image.Image:
    """Correlation matrices side by side, parameter names on the left, a colour key below."""
    k = len(names)
    cell = max(6, min(18, 400 // max(k, 1)))
    font = _font(min(cell, 11))
    label = max(int(font.getlength(n)) for n in names) + 8 if names else 8
    size = k * cell
    width = max(label + len(maps) * (size + 16) + 8, label + 280)
    image = Image.new("RGB", (width, size + 74), "white")
    draw = ImageDraw.Draw(image)
    for i, name in enumerate(names):
        draw.text((label - 4, 20 + (i + 0.5) * cell), name, fill="black", font=font, anchor="rm")
    for m, (title, corr) in enumerate(maps):
        x0 = label + m * (size + 16)
        draw.text((x0, 4), title, fill="black", font=_font(12))
        for i in range(k):
            for j in range(k):
                x, y = x0 + j * cell, 20 + i * cell
                draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=_colour(corr[i, j]))
    key_y = size + 30
    for step in range(101):
        r = step / 50 - 1
        draw.rectangle([label + step * 2, key_y, label + step * 2 + 1, key_y + 10], fill=_colour(r))
    small = _font(10)
    for r in (-1, 0, 1):
        text = f"{r:+d}" if r else "0"
        draw.text((label + (r + 1) * 100, key_y + 12), text, fill="black", font=small, anchor="ma")
    note = "Pearson's r; grey: a parameter that does not vary"
    draw.text((label, key_y + 26), note, fill="#555555", font=small)
    return image


def _png(image: Image.Image, alt: str) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _strongest(motion: np.ndarray, laws: np.ndarray, names: list[str], count: int = 10) -> str:
    """The parameter pairs the motions correlate most, with the laws' r beside."""
    pairs = [
        (abs(motion[i, j]), i, j)
        for i in range(len(names))
        for j in range(i + 1, len(names))
        if np.isfinite(motion[i, j])
    ]
    if not pairs:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(names[i])}</td><td>{html.escape(names[j])}</td>"
        f"<td class=n>{motion[i, j]:+.2f}</td><td class=n>{_r(laws[i, j])}</td></tr>"
        for _, i, j in sorted(pairs, reverse=True)[:count]
    )
    head = "<tr><th colspan=2>pair</th><th>r, motions</th><th>r, laws</th></tr>"
    return f"<table>{head}{rows}</table>"


def _r(value: float) -> str:
    return f"{value:+.2f}" if np.isfinite(value) else "-"
