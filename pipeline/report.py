"""`thagen report DATASET`: one self-contained HTML page (inline SVG and base64 PNGs, no assets).

It shows the counts per split, links to the dataset card (README.md) and attributions.csv, the
usable models and every unusable one with its reasons, the terms policy and what it left out
(with the sentence that decided), the models whose terms are unknown, the character families
with more than one file, the failures, each parameter's coverage over the characters, a
histogram of every pose parameter, where the poses came from (the laws, or the motions of
`generate --poses` against the laws: `pipeline.report_poses`), and a grid of sample triples.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from pathlib import Path
from string import Template

import numpy as np
import pandas as pd
from PIL import Image

from media.files import brief
from media.owned import read_owned, write_atomic
from media.shardindex import read_manifest, shard_file
from media.tarfiles import iter_members
from pipeline.catalog import check_catalog
from pipeline.report_poses import pose_source_section
from pipeline.shards import MAX_MEMBER_BYTES

TEMPLATE = Path(__file__).resolve().parent / "templates" / "report.html"
BINS = 20
MAX_INFO_BYTES = 1 << 24
MAX_TABLE_BYTES = 1 << 28  # failures.parquet, catalog.parquet
SPLIT_COUNTS = ("examples", "characters", "shards")
COUNTS = ("models", "usable", "duplicates", "failures")
FAILURE_COLUMNS = ("model", "stage", "error")
MANIFEST_COLUMNS = {
    "key": "text",
    "shard": "text",
    "character": "text",
    "split": "text",
    "example": "number",
}


def write_report(dataset: str | Path, out: str | Path, samples: int = 12) -> Path:
    """Write the report of a complete dataset folder to `out`."""
    dataset, out = Path(dataset), Path(out)
    info_file = dataset / "dataset.json"
    if not (dataset / "manifest.parquet").is_file() or not info_file.is_file():
        raise FileNotFoundError(f"{dataset}: not a complete dataset (no manifest.parquet)")
    info = read_info(info_file)
    schema_name, size = info["schema"]["name"], info["image_size"]
    parameters = info["schema"]["parameters"]
    names = [p["name"] for p in parameters]
    seed = info["config"].get("seed")
    columns = {**MANIFEST_COLUMNS, **dict.fromkeys([*names, "ambient", "directional"], "number")}
    # generate --poses: the motion frame of each pose; the brow layer (render.brow_layer)
    motions = {"motion": "label", "motion_frame": "number", "brows": "label"}
    manifest = read_manifest(dataset, columns, motions).to_pandas()
    failures = _read_parquet(dataset / "failures.parquet", "failures")
    if set(FAILURE_COLUMNS) - set(failures.columns):
        raise ValueError(f"{dataset / 'failures.parquet'}: not a failures table of thagen")
    catalog_file = dataset / "catalog.parquet"
    catalog = None
    if catalog_file.is_file():
        catalog = check_catalog(_read_parquet(catalog_file, "catalog"), catalog_file)
    page = Template(TEMPLATE.read_text("utf-8")).substitute(
        title=html.escape(dataset.name),
        schema=html.escape(schema_name),
        size=size,
        seed=html.escape(str(seed)),
        examples_total=len(manifest),
        splits=_splits_table(info),
        models_summary=_models_summary(info, catalog),
        unusable=_unusable_table(catalog),
        card_links=_card_links(dataset, out),
        terms=_terms_section(catalog, failures, tuple(info["config"].get("terms_exclude", ()))),
        flags=_flags_table(catalog, tuple(info["config"].get("exclude_flags", [])), catalog_file),
        families=_families_table(catalog),
        failures=_table(failures, list(FAILURE_COLUMNS)) if len(failures) else "<p>None.</p>",
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
        pose_source=pose_source_section(info, manifest),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, page.encode("utf-8"), "report")
    return out


def read_info(path: Path) -> dict:
    """A dataset.json read within a size limit (never through a link) and checked against the
    schema the report relies on: anything else is one ValueError naming the file."""
    raw = read_owned(path, MAX_INFO_BYTES, "dataset.json")
    try:
        info = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise ValueError(f"{path}: not a valid dataset.json ({brief(error, 160)})") from None
    problem = _info_problem(info)
    if problem:
        raise ValueError(f"{path}: not a valid dataset.json ({problem})")
    return info


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: object) -> bool:
    return type(value) is int and 0 <= value < 2**63


def _span(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(_number(v) for v in value)
        and value[0] <= value[1]
    )


def _info_problem(info: object) -> str | None:
    """What in a dataset.json breaks the schema the report reads (docs/contracts.md), or None."""
    if not isinstance(info, dict):
        return "not an object"
    schema = info.get("schema")
    if not isinstance(schema, dict) or not isinstance(schema.get("name"), str):
        return "schema must be an object with a name"
    parameters = schema.get("parameters")
    if not isinstance(parameters, list) or not 1 <= len(parameters) <= 1024:
        return "schema.parameters must be a list of 1..1024 parameters"
    for p in parameters:
        if not (isinstance(p, dict) and isinstance(p.get("name"), str) and _span(p.get("range"))):
            return "each parameter needs a name and a range [lo, hi]"
        if p["name"] in MANIFEST_COLUMNS or p["name"] in ("seed", "ambient", "directional"):
            return f"a parameter is named {p['name']!r}"
    lighting = schema.get("lighting")
    if not isinstance(lighting, dict) or not all(
        _span(lighting.get(n)) for n in ("ambient", "directional")
    ):
        return "schema.lighting needs ranges for ambient and directional"
    if type(info.get("image_size")) is not int or not 1 <= info["image_size"] <= 4096:
        return "image_size must be an integer in 1..4096"
    config = info.get("config")
    if not isinstance(config, dict):
        return "config must be an object"
    for key, what in (("exclude_flags", "flag codes"), ("terms_exclude", "terms clauses")):
        names = config.get(key, [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return f"config.{key} must be a list of {what}"
    splits = info.get("splits")
    if not isinstance(splits, dict) or not all(
        isinstance(c, dict) and all(_count(c.get(k)) for k in SPLIT_COUNTS) for c in splits.values()
    ):
        return f"splits must give {', '.join(SPLIT_COUNTS)} per split"
    counts = info.get("counts")
    if not isinstance(counts, dict) or not all(_count(counts.get(k)) for k in COUNTS):
        return f"counts must give {', '.join(COUNTS)}"
    return _poses_problem(info.get("poses"))


def _poses_problem(poses: object) -> str | None:
    """What breaks dataset.json's `poses` (generate --poses; absent or null otherwise)."""
    if not poses:
        return None
    motions = poses.get("motions") if isinstance(poses, dict) else None
    if (
        not isinstance(motions, list)
        or not _number(poses.get("mix"))
        or not _count(poses.get("law_examples"))
        or not all(
            isinstance(m, dict)
            and isinstance(m.get("file"), str)
            and _count(m.get("frames"))
            and _count(m.get("examples"))
            and _number(m.get("share_of_frames"))
            for m in motions
        )
    ):
        return "poses must give the motions (file, frames, share, examples), mix, law examples"
    return None


def _read_parquet(path: Path, what: str) -> pd.DataFrame:
    """A small parquet file of the dataset folder (never through a link, within a limit)."""
    import pyarrow.parquet as pq

    data = read_owned(path, MAX_TABLE_BYTES, what)
    try:
        return pq.read_table(io.BytesIO(data)).to_pandas()
    except Exception as error:  # pyarrow raises many kinds on damaged bytes
        raise ValueError(f"{path}: not a readable {what} table ({brief(error, 200)})") from None


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


def _card_links(dataset: Path, out: Path) -> str:
    """Links to the dataset card and attributions.csv, relative to where the report is written."""
    links = []
    for name, what in (("README.md", "dataset card"), ("attributions.csv", "attributions")):
        if (dataset / name).is_file():
            target = os.path.relpath(dataset / name, out.parent)
            links.append(f'<a href="{html.escape(target)}">{what} ({name})</a>')
    return " · ".join(links) or "No dataset card (made by an older thagen)."


def _terms_section(
    catalog: pd.DataFrame | None, failures: pd.DataFrame, policy: tuple[str, ...]
) -> str:
    """The terms policy, the models it left out and why, and the models with unknown terms."""
    from mmd_loader.terms import is_unknown
    from pipeline.catalog import row_terms
    from pipeline.terms_policy import TALLY_VALUES, describe, tally, with_defaults

    parts = [f"<p>Policy (<code>--terms-exclude {html.escape(','.join(policy) or 'none')}"
             f"</code>): {html.escape(describe(policy))}.</p>"]  # fmt: skip
    left = failures[failures["stage"] == "terms"] if len(failures) else failures
    if len(left):
        parts.append("<p>Left out for their terms:</p>" + _table(left, ["model", "error"]))
    else:
        parts.append("<p>No model was left out for its terms.</p>")
    if catalog is None or "terms" not in catalog:
        return "".join(parts)
    usable = catalog[catalog["usable"].astype(bool)].to_dict("records")
    unknown = [html.escape(_label_of(r)) for r in usable if is_unknown(row_terms(r))]
    if unknown:
        parts.append(
            f"<p>Terms unknown (no readme, terms file or licence; flagged terms_unknown): "
            f"{len(unknown)} usable model(s): {', '.join(unknown[:50])}"
            f"{' …' if len(unknown) > 50 else ''}</p>"
        )
    terms = [row_terms(r) for r in usable]
    head = "".join(f"<th>{v}</th>" for v in ("clause", *TALLY_VALUES))
    body = "".join(
        f"<tr><td>{row[0]}</td>" + "".join(f"<td class=n>{n}</td>" for n in row[1:]) + "</tr>"
        for row in tally(terms)
    )
    parts.append(
        f"<p>What the usable models' terms say, clause by clause (models; "
        f"{with_defaults(terms)} of them say what they do not mention is not allowed):</p>"
        f"<table><tr>{head}</tr>{body}</table>"
    )
    return "".join(parts)


def _label_of(row: dict) -> str:
    member = row.get("member")
    return f"{row['path']}/{member}" if isinstance(member, str) else str(row["path"])


def _flags_table(catalog: pd.DataFrame | None, excluded: tuple[str, ...], path: Path) -> str:
    """Usable models with quality flags, and which of them `--exclude-flags` left out."""
    if catalog is None or "flags" not in catalog:
        return ""
    rows = []
    for r in catalog[catalog["usable"].astype(bool)].itertuples():
        flags = _flags_of(r.flags, path)
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


def _flags_of(text: object, path: Path) -> list[dict]:
    """A catalog row's flags (JSON text) as a list of {code, message}; a ValueError naming the
    catalog for anything else."""
    if not isinstance(text, str) or not text:
        return []
    try:
        flags = json.loads(text)
    except (ValueError, RecursionError):
        flags = None
    if not isinstance(flags, list) or not all(
        isinstance(f, dict) and isinstance(f.get("code"), str) for f in flags
    ):
        raise ValueError(f"{path}: a row's flags are not a list of flag objects")
    return [{"code": f["code"], "message": str(f.get("message", ""))} for f in flags]


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
    """rest | expression | posed of one example over a checkerboard, as one RGB image (the
    shard's name is checked, and its file must be in the dataset folder: `media.shardindex`)."""
    path = shard_file(dataset, shard, str(dataset / "manifest.parquet"))
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
    skip = ("key", "shard", "character", "split", "example", "seed", "_o", "motion", "motion_frame")
    pose = ", ".join(
        f"{k}={row[k]:.2f}" if isinstance(row[k], (int, float)) else f"{k}={row[k]}"
        for k in row.index
        if k not in skip and pd.notna(row[k])
    )
    if isinstance(row.get("motion"), str) and pd.notna(row.get("motion_frame")):  # --poses
        pose = f"{row['motion']} frame {int(row['motion_frame'])}: {pose}"
    key = html.escape(str(row["key"]))
    return (
        f'<div class="sample"><img src="data:image/png;base64,{data}" alt="{key}">'
        f"<p><b>{html.escape(str(row['split']))}</b>"
        f" {html.escape(names.get(row['character'], ''))} {key}</p><p>{html.escape(pose)}</p></div>"
    )
