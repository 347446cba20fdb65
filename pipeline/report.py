"""`thagen report DATASET`: one self-contained HTML page (inline SVG and base64 PNGs, no assets).

It shows the counts per split, the usable models and every unusable one with its reasons, the
character families with more than one file, the failures, each parameter's coverage over the
characters, a histogram of every pose parameter, and a grid of sample triples.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from string import Template

import numpy as np
import pandas as pd
from PIL import Image

from media.files import read_regular
from media.tarfiles import iter_members
from pipeline.shards import MAX_MEMBER_BYTES

TEMPLATE = Path(__file__).resolve().parent / "templates" / "report.html"
BINS = 20
MAX_INFO_BYTES = 1 << 24


def write_report(dataset: str | Path, out: str | Path, samples: int = 12) -> Path:
    """Write the report of a complete dataset folder to `out`."""
    dataset, out = Path(dataset), Path(out)
    info_file = dataset / "dataset.json"
    if not (dataset / "manifest.parquet").is_file() or not info_file.is_file():
        raise FileNotFoundError(f"{dataset}: not a complete dataset (no manifest.parquet)")
    try:
        info = json.loads(read_regular(info_file, "dataset.json", MAX_INFO_BYTES).decode("utf-8"))
        schema_name, size = str(info["schema"]["name"]), int(info["image_size"])
        parameters = list(info["schema"]["parameters"])
        seed = info["config"]["seed"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{info_file}: not a valid dataset.json ({error!r})") from None
    manifest = pd.read_parquet(dataset / "manifest.parquet")
    failures = pd.read_parquet(dataset / "failures.parquet")
    catalog_file = dataset / "catalog.parquet"
    catalog = pd.read_parquet(catalog_file) if catalog_file.is_file() else None
    page = Template(TEMPLATE.read_text("utf-8")).substitute(
        title=html.escape(dataset.name),
        schema=html.escape(schema_name),
        size=size,
        seed=html.escape(str(seed)),
        examples_total=len(manifest),
        splits=_splits_table(info),
        models_summary=_models_summary(info, catalog),
        unusable=_unusable_table(catalog),
        flags=_flags_table(catalog, tuple(info["config"].get("exclude_flags", ()))),
        families=_families_table(catalog),
        failures=_table(failures, ["model", "stage", "error"]) if len(failures) else "<p>None.</p>",
        coverage=_coverage_table(manifest, parameters, _model_names(catalog)),
        histograms="".join(_histogram(manifest, p) for p in parameters)
        + "".join(
            _histogram(manifest, {"name": n, "range": info["schema"]["lighting"][n]})
            for n in ("ambient", "directional")
        ),
        samples="".join(
            _sample(dataset, row, _model_names(catalog), size) for row in _pick(manifest, samples)
        ),
        config=html.escape(json.dumps(info["config"], indent=2, ensure_ascii=False)),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, "utf-8")
    return out


def _splits_table(info: dict) -> str:
    rows = "".join(
        f"<tr><td>{s}</td><td class=n>{c['examples']}</td><td class=n>{c['characters']}</td>"
        f"<td class=n>{c['shards']}</td></tr>"
        for s, c in info["splits"].items()
    )
    return f"<table><tr><th>split</th><th>examples</th><th>characters</th><th>shards</th></tr>{rows}</table>"  # noqa: E501


def _models_summary(info: dict, catalog: pd.DataFrame | None) -> str:
    c = info["counts"]
    text = (
        f"{c['models']} distinct models, <b>{c['usable']} usable</b>, "
        f"{c['models'] - c['usable']} unusable, {c['duplicates']} duplicate files merged."
    )
    if catalog is not None and c["duplicates"]:
        dups = [
            f"{html.escape(p)} = {html.escape(str(r.path))}"
            for r in catalog.itertuples()
            for p in r.duplicates
        ]
        text += "<br><span class=muted>duplicates: " + "; ".join(dups) + "</span>"
    return text


def _unusable_table(catalog: pd.DataFrame | None) -> str:
    if catalog is None:
        return ""
    bad = catalog[~catalog["usable"].astype(bool)]
    if not len(bad):
        return "<p>Every model is usable.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(_label(r))}</td><td>{html.escape(str(r.name or ''))}</td>"
        f"<td>{html.escape('; '.join(r.reasons))}</td></tr>"
        for r in bad.itertuples()
    )
    return f"<table><tr><th>unusable model</th><th>name</th><th>reasons</th></tr>{rows}</table>"


def _flags_table(catalog: pd.DataFrame | None, excluded: tuple[str, ...]) -> str:
    """Usable models with quality flags, and which of them `--exclude-flags` left out."""
    if catalog is None or "flags" not in catalog:
        return ""
    rows = []
    for r in catalog[catalog["usable"].astype(bool)].itertuples():
        flags = json.loads(r.flags) if isinstance(r.flags, str) and r.flags else []
        if not flags:
            continue
        codes = sorted({f["code"] for f in flags})
        verdict = "left out" if set(codes) & set(excluded) else "kept"
        text = "; ".join(f"{f['code']}: {f['message']}" for f in flags)
        rows.append(
            f"<tr><td>{html.escape(_label(r))}</td><td>{verdict}</td>"
            f"<td>{html.escape(text)}</td></tr>"
        )
    note = f"<p>--exclude-flags: {html.escape(', '.join(excluded) or 'none')}</p>"
    if not rows:
        return note + "<p>No usable model carries a quality flag.</p>"
    head = "<tr><th>flagged model</th><th>dataset</th><th>flags</th></tr>"
    return note + f"<table>{head}{''.join(rows)}</table>"


def _families_table(catalog: pd.DataFrame | None) -> str:
    from pipeline.catalog import family_table

    if catalog is None or "family" not in catalog:
        return ""
    table = family_table(catalog)
    if not len(table):
        return "<p>Every family has one file.</p>"
    rows = "".join(
        f"<tr><td><code>{html.escape(r.family)}</code></td><td>{html.escape(r.split)}</td>"
        f"<td>{'<br>'.join(html.escape(f) for f in r.files)}</td></tr>"
        for r in table.itertuples()
    )
    return f"<table><tr><th>family</th><th>split</th><th>files</th></tr>{rows}</table>"


def _label(row) -> str:
    return f"{row.path}/{row.member}" if isinstance(row.member, str) else str(row.path)


def _table(frame: pd.DataFrame, columns: list[str]) -> str:
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in frame[columns].itertuples(index=False)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def coverage(manifest: pd.DataFrame, names: list[str]) -> dict[str, tuple[int, list[str]]]:
    """Parameter → (characters that drive it, the characters that do not), over the manifest."""
    characters = sorted(manifest["character"].unique()) if len(manifest) else []
    out = {}
    for name in names:
        if name not in manifest:
            out[name] = (0, list(characters))
            continue
        driven = manifest.groupby("character")[name].apply(lambda c: bool(c.notna().any()))
        out[name] = (int(driven.sum()), sorted(c for c, d in driven.items() if not d))
    return out


def _coverage_table(manifest: pd.DataFrame, params: list[dict], names: dict[str, str]) -> str:
    total = int(manifest["character"].nunique()) if len(manifest) else 0
    rows = []
    for name, (count, missing) in coverage(manifest, [p["name"] for p in params]).items():
        share = f"{100 * count / total:.0f}%" if total else "-"
        lacking = ", ".join(html.escape(names.get(c, c[:12])) for c in missing[:8])
        if len(missing) > 8:
            lacking += f" and {len(missing) - 8} more"
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td class=n>{count}/{total}</td>"
            f"<td class=n>{share}</td><td class=muted>{lacking}</td></tr>"
        )
    head = "<tr><th>parameter</th><th>characters</th><th>share</th><th>lacking it</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def histogram_counts(values: np.ndarray, lo: float, hi: float, bins: int = BINS) -> np.ndarray:
    """Counts of `values` in `bins` equal bins over [lo, hi] (hi included in the last)."""
    if hi <= lo:
        hi = lo + 1e-9
    return np.histogram(values, bins=bins, range=(lo, hi))[0]


def _histogram(manifest: pd.DataFrame, param: dict) -> str:
    name, (lo, hi) = param["name"], param["range"]
    column = manifest[name] if name in manifest else pd.Series([], dtype=float)
    values = column.dropna().to_numpy(dtype=float)
    nulls = int(column.isna().sum())
    counts = histogram_counts(values, lo, hi)
    w, h, pad = 220, 90, 14
    peak = max(int(counts.max()) if len(counts) else 0, 1)
    bar = w / len(counts)
    rects = "".join(
        f'<rect x="{i * bar:.1f}" y="{h - c / peak * h:.1f}" width="{bar - 1:.1f}" '
        f'height="{c / peak * h:.1f}" fill="#4a78b5"/>'
        for i, c in enumerate(counts)
    )
    axis = (
        f'<text x="0" y="{h + pad - 2}" font-size="10">{lo:g}</text>'
        f'<text x="{w}" y="{h + pad - 2}" font-size="10" text-anchor="end">{hi:g}</text>'
    )
    svg = f'<svg width="{w}" height="{h + pad}" xmlns="http://www.w3.org/2000/svg">{rects}{axis}</svg>'
    stats = f"n={len(values)}" + (f", null={nulls}" if nulls else "")
    if len(values):
        stats += f", mean={values.mean():.3f}"
    return f'<div class="hist"><p><b>{html.escape(name)}</b> <span class=muted>{stats}</span></p>{svg}</div>'  # noqa: E501


def _pick(manifest: pd.DataFrame, count: int) -> list[pd.Series]:
    """Up to `count` examples: one per character in turn (val and test first), deterministic."""
    order = {"val": 0, "test": 1, "train": 2}
    frame = manifest.assign(_o=manifest["split"].map(order)).sort_values(
        ["_o", "character", "example"]
    )
    firsts = frame.groupby("character", sort=False).head(2)
    return [row for _, row in firsts.head(count).iterrows()]


def checkerboard(size: int, cell: int = 8) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] // cell
    return np.where(((x + y) % 2 == 0)[..., None], 220, 160).astype(np.uint8).repeat(3, axis=2)


def over_checkerboard(rgba: np.ndarray) -> np.ndarray:
    """RGBA (straight alpha) composited over a grey checkerboard, as RGB uint8."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    board = checkerboard(rgba.shape[0]).astype(np.float32)
    return (rgba[..., :3] * alpha + board * (1 - alpha) + 0.5).astype(np.uint8)


def sample_strip(dataset: Path, shard: str, key: str, size: int | None = None) -> np.ndarray:
    """rest | expression | posed of one example over a checkerboard, as one RGB image."""
    path = dataset / f"{shard}.tar"
    wanted = {f"{key}.{part}.png": part for part in ("rest", "expression", "posed")}
    found: dict[str, bytes] = {}
    for member, data in iter_members(path, MAX_MEMBER_BYTES):
        if member.name in wanted and data is not None:
            found[wanted[member.name]] = data
        if len(found) == len(wanted):
            break
    images = []
    for part in ("rest", "expression", "posed"):
        if part not in found:
            raise ValueError(f"{path}: no member {key}.{part}.png")
        try:
            with Image.open(io.BytesIO(found[part])) as image:
                if size is not None and image.size != (size, size):
                    w, h = image.size
                    raise ValueError(
                        f"{path}: {key}.{part}.png is {w}×{h}; the dataset's images are "
                        f"{size}×{size}"
                    )
                images.append(over_checkerboard(np.asarray(image.convert("RGBA"))))
        except (OSError, SyntaxError, Image.DecompressionBombError) as error:
            raise ValueError(f"{path}: {key}.{part}.png is not a readable PNG ({error})") from None
    return np.concatenate(images, axis=1)


def _model_names(catalog: pd.DataFrame | None) -> dict[str, str]:
    """Character id → the model's file (and zip member) name, for captions."""
    if catalog is None:
        return {}
    return {row.character: Path(_label(row)).name for row in catalog.itertuples()}


def _sample(dataset: Path, row: pd.Series, names: dict[str, str], size: int) -> str:
    strip = sample_strip(dataset, row["shard"], row["key"], size)
    image = Image.fromarray(strip)
    if image.height > 160:
        image = image.resize((image.width * 160 // image.height, 160), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    pose = ", ".join(
        f"{k}={row[k]:.2f}" if isinstance(row[k], (int, float)) else f"{k}={row[k]}"
        for k in row.index
        if k not in ("key", "shard", "character", "split", "example", "seed", "_o")
        and pd.notna(row[k])
    )
    return (
        f'<div class="sample"><img src="data:image/png;base64,{data}" alt="{row["key"]}">'
        f"<p><b>{row['split']}</b> {html.escape(names.get(row['character'], ''))}"
        f" {html.escape(row['key'])}</p><p>{html.escape(pose)}</p></div>"
    )
