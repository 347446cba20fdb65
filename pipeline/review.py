"""`thagen review`: one HTML page to review a model collection in minutes, not months.

Flagged models come first (`pipeline.quality`'s and face detection's flags), then unusable
models with their reasons, then the rest (those with load warnings first). A flagged or usable
model shows its contact sheet (the poses of `render.preview`, with the head box the framing came
from), its flags, its load warnings (skipped morph entries, substituted or missing textures,
...), its terms of use (each stated clause with the sentence it was read from, the licences,
author and URL), and a ready overrides line — the roles and head box that were detected, as YAML
to paste into an overrides file (`--overrides`) and correct. The sheets are rendered on a
`Runner`, in parallel.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.catalog import read_warnings

SHEET_SIZE = 128  # tile size of the contact sheets
THUMB_LIMIT = 400  # unflagged models shown with a sheet, at most (the rest are listed)
WARNINGS_SHOWN = 5  # load warnings listed open on a card; more are folded


def review_sheet(
    row: dict,
    overrides: dict[str, dict] | None = None,
    schema: str = "tha1",
    brows: str | None = None,
) -> dict:
    """A catalog row's contact sheet in `schema`'s poses as PNG bytes (rendered in this worker's
    renderer), with the per-parameter visibility read off its tiles and the flags that gives
    (`pipeline.visibility`): {"sheet", "visibility", "flags"}. `brows`: the run's brow choice
    (None: the schema's default, as `generate`)."""
    from pipeline.config import GenerateConfig
    from pipeline.visibility import review_renderer_settings
    from pipeline.worker import STATE, load_character
    from render.preview import contact_sheet, sheet_title

    config = GenerateConfig(schema=schema, brows=brows, overrides=overrides or {})
    settings = review_renderer_settings(config.load_schema(), SHEET_SIZE)
    renderer = STATE.renderer_with(settings)
    STATE.current = None
    bound = load_character(renderer, row, config)
    label = Path(row["path"]) / row["member"] if row.get("member") else Path(row["path"])
    visibility, flags, tiles = review_visibility(renderer, bound.roles, config)
    title = sheet_title(label, "phong")
    binding = renderer.bind(config.load_schema())
    sheet = contact_sheet(renderer, title, binding, tiles=tiles, tile_size=SHEET_SIZE)
    del bound
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", optimize=True)
    return {"sheet": buffer.getvalue(), "visibility": visibility, "flags": flags}


def review_visibility(renderer: Any, roles: Any, config: Any) -> tuple[list, list, list]:
    """(per-parameter visibility, its flags, the sheet's tiles) of the renderer's model."""
    from pipeline.visibility import (
        head_box_pixels,
        invisible_flag,
        parameter_visibility,
        review_brows,
    )
    from render.preview import sheet_tiles

    schema = config.load_schema()
    binding = renderer.bind(schema)
    tiles = sheet_tiles(renderer, binding, review_brows(config.brows))
    visibility = parameter_visibility(tiles, binding, head_box_pixels(renderer, roles))
    found = invisible_flag(visibility, schema.name)
    return visibility, [found] if found else [], tiles


def overrides_line(row: Any) -> str:
    """The detected roles and head box of a catalog row as one overrides YAML entry, keyed by
    the model's full path (which matches it alone)."""
    roles = json.loads(row["roles"]) if isinstance(row["roles"], str) else {}
    fields = {}
    for role in ("left_eye", "right_eye", "mouth", "neck", "head"):
        value = roles.get(role)
        if value:
            fields[role] = value.rsplit(" (", 1)[0]
        elif row.get("format"):  # loaded, but detection found nothing: a blank to fill in
            fields[role] = "BONE?" if role in ("neck", "head") else "MORPH?"
    for key, column in (("head_top", "head_top"), ("chin", "head_chin")):
        value = row[column]
        if value is not None and value == value:
            fields[key] = round(float(value), 4)
    member = row.get("member")
    name = f"{row['path']}/{member}" if isinstance(member, str) else str(row["path"])
    body = ", ".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in fields.items())
    return f"{json.dumps(name, ensure_ascii=False)}: {{{body}}}"


def write_review(
    catalog: pd.DataFrame,
    out: str | Path,
    runner: Any,
    overrides: dict[str, dict] | None = None,
    progress: bool = True,
    schema: str = "tha1",
    brows: str | None = None,
) -> dict:
    """Render the sheets (in `schema`'s poses, brows as a run with `brows` draws them) and write
    the page; returns the summary (counts, flag shares)."""
    from tqdm import tqdm

    rows = catalog.to_dict("records")
    flags = [_flags(r) for r in rows]
    usable = [bool(r["usable"]) for r in rows]
    flagged = [i for i, f in enumerate(flags) if f and usable[i]]
    clean = [i for i in range(len(rows)) if usable[i] and not flags[i]]
    clean.sort(key=lambda i: not read_warnings(rows[i]))  # those with warnings first
    drawn = flagged + clean[:THUMB_LIMIT]
    sheets: dict[int, bytes | str] = {}
    visibility: dict[int, list] = {}
    bar = tqdm(total=len(drawn), desc="review", unit="model", disable=not progress)
    items = [(_task_row(rows[i]), overrides, schema, brows) for i in drawn]
    for k, outcome in runner.map(_sheet_task, items):
        i = drawn[k]
        if isinstance(outcome, dict):
            sheets[i], visibility[i] = outcome["sheet"], outcome["visibility"]
            flags[i] = flags[i] + outcome["flags"]
        else:
            sheets[i] = f"{outcome}"
        bar.update(1)
    bar.close()
    flagged = [i for i, f in enumerate(flags) if f and usable[i]]  # with the sheets' flags
    unusable = [i for i in range(len(rows)) if not usable[i]]
    clean = [i for i in range(len(rows)) if usable[i] and not flags[i]]
    clean.sort(key=lambda i: not read_warnings(rows[i]))
    summary = _summary(rows, flags, usable)
    summary["warned"] = sum(1 for r in rows if read_warnings(r))
    cards = {i: _card(rows[i], flags[i], sheets.get(i), visibility.get(i)) for i in drawn}
    sections = [
        _section("Flagged models", [cards[i] for i in flagged]),
        _section("Unusable models", [_card(rows[i], [], None) for i in unusable]),
        _section(
            "Models without flags",
            [cards.get(i) or _card(rows[i], [], None) for i in clean],
        ),
    ]
    page = PAGE.format(summary=_summary_html(summary), sections="".join(sections))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, "utf-8")
    return summary


def _sheet_task(item: tuple) -> dict:
    return review_sheet(*item)


def _task_row(row: dict) -> dict:
    member = row["member"] if isinstance(row.get("member"), str) else None
    return {
        "character": row["character"],
        "path": row["path"],
        "member": member,
        "name": row["name"],
    }


def _flags(row: dict) -> list[dict]:
    text = row.get("flags")
    return json.loads(text) if isinstance(text, str) and text else []


def _summary(rows: list[dict], flags: list[list[dict]], usable: list[bool]) -> dict:
    count = Counter(code for f in flags for code in {x["code"] for x in f})
    models = len(rows)
    return {
        "models": models,
        "usable": sum(usable),
        "flagged": sum(1 for f, u in zip(flags, usable, strict=True) if f and u),
        "flags": {
            code: {"models": n, "share": n / models if models else 0.0}
            for code, n in sorted(count.items())
        },
    }


def _summary_html(summary: dict) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(code)}</td><td class=n>{v['models']}</td>"
        f"<td class=n>{v['share']:.0%}</td></tr>"
        for code, v in summary["flags"].items()
    )
    table = (
        f"<table><tr><th>flag</th><th>models</th><th>share</th></tr>{rows}</table>"
        if rows
        else "<p>No model carries a flag.</p>"
    )
    warned = summary.get("warned", 0)
    return (
        f"<p>{summary['models']} models, {summary['usable']} usable, "
        f"{summary['flagged']} usable with flags (listed first); {warned} with load warnings "
        f"(on their cards).</p>{table}"
    )


def _warnings_html(warnings: list[str]) -> str:
    """A model's load warnings (what loading skipped, substituted or could not find), folded
    away behind their count when there are more than a few."""
    if not warnings:
        return ""
    items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
    label = f"{len(warnings)} load warning{'s' if len(warnings) > 1 else ''}"
    if len(warnings) <= WARNINGS_SHOWN:
        return f"<p class=muted>{label}:</p><ul class=warnings>{items}</ul>"
    return f"<details><summary>{label}</summary><ul class=warnings>{items}</ul></details>"


def _section(title: str, cards: list[str]) -> str:
    if not cards:
        return ""
    return f"<h2>{html.escape(title)} ({len(cards)})</h2>" + "".join(cards)


def _card(
    row: dict, flags: list[dict], sheet: bytes | str | None, visibility: list | None = None
) -> str:
    label = f"{row['path']}/{row['member']}" if isinstance(row.get("member"), str) else row["path"]
    parts = [f"<div class=card><h3>{html.escape(str(label))}</h3>"]
    if row.get("name"):
        parts.append(f"<p class=muted>{html.escape(str(row['name']))}</p>")
    if flags:
        items = "".join(
            f"<li><b>{html.escape(f['code'])}</b>"
            + (f" ({html.escape(str(f['role']))})" if f.get("role") else "")
            + f": {html.escape(str(f['message']))}</li>"
            for f in flags
        )
        parts.append(f"<ul class=flags>{items}</ul>")
    parts.append(_warnings_html(read_warnings(row)))
    reasons = list(row.get("reasons") or [])
    if reasons:
        parts.append(
            "<ul class=reasons>" + "".join(f"<li>{html.escape(r)}</li>" for r in reasons) + "</ul>"
        )
    parts.append(_terms_html(row))
    if isinstance(sheet, bytes):
        data = base64.b64encode(sheet).decode()
        parts.append(f'<img alt="contact sheet" src="data:image/png;base64,{data}">')
    elif isinstance(sheet, str):
        parts.append(f"<p class=reasons>no sheet: {html.escape(sheet)}</p>")
    if visibility:
        from pipeline.visibility import visibility_html

        parts.append(visibility_html(visibility))
    parts.append(f"<pre>{html.escape(overrides_line(row))}</pre></div>")
    return "".join(parts)


def _terms_html(row: dict) -> str:
    """A card's terms: the summary line, then each stated clause's sentences (file:line)."""
    from mmd_loader.terms import CLAUSES, summary
    from pipeline.catalog import row_terms

    terms = row_terms(row)
    head = f"<p class=terms><b>terms</b>: {html.escape(summary(terms))}</p>"
    fields = terms.get("fields") or {}
    said = ", ".join(f"{k}: {v['value']}" for k, v in fields.items())
    evidence = terms.get("evidence") or {}
    items = [
        f"<li><b>{html.escape(clause)}</b> {html.escape(e['value'])}: "
        f"<code>{html.escape(e['file'])}:{e['line']}</code> {html.escape(e['text'])}</li>"
        for clause in CLAUSES
        for e in evidence.get(clause, [])[:3]
    ]
    items += [
        f"<li>default ({html.escape(d['value'])}): <code>{html.escape(d['file'])}:{d['line']}"
        f"</code> {html.escape(d['text'])}</li>"
        for d in terms.get("default") or []
    ]
    body = (f"<p class=muted>{html.escape(said)}</p>" if said else "") + (
        f"<details><summary>evidence</summary><ul class=evidence>{''.join(items)}</ul></details>"
        if items
        else ""
    )
    return head + body


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>thagen review</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
h2 {{ border-bottom: 1px solid #ddd; margin-top: 2em; }} h3 {{ margin: .2em 0; font-size: 1em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ddd; padding: .2em .6em; }}
td.n {{ text-align: right; }} .card {{ border: 1px solid #ddd; padding: .6em; margin: .8em 0; }}
.flags li {{ color: #a40; }} .reasons li, p.reasons {{ color: #a00; }} .muted {{ color: #777; }}
.warnings li {{ color: #555; font-size: 13px; }}
pre {{ background: #f6f6f6; padding: .4em; white-space: pre-wrap; font-size: 12px; }}
p.terms {{ margin: .3em 0; }} .evidence {{ font-size: 12px; }}
</style></head><body>
<h1>thagen review</h1>
<p class=muted>Each card: the contact sheet (rest, each eye, the mouth, each rotation; red: the
head box the framing uses), the flags, the load warnings, and the detected roles and head box as
an overrides line to correct and pass with <code>--overrides</code>.</p>
{summary}
{sections}
</body></html>
"""
