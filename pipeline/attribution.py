"""`attributions.csv`: who made each character in a dataset, and what its terms say.

One row per character with examples in the dataset, in the order of their model files: its id,
family and split, the model file (relative to the folder the models were scanned from;
`archive/member` for archived ones), title (the model's own name, else a title field), author,
contact and URL (readme and comment fields), the licences named, the copyright lines, each
clause's value, and the terms files read with their sha256 (`file:sha256`, `;`-separated; the
model's comments as `(comment)` with the model file's sha256). Deterministic: the same dataset
gives the same bytes.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pandas as pd

from mmd_loader.terms import CLAUSES
from pipeline.catalog import row_terms

BASE_COLUMNS = [
    "character",
    "family",
    "split",
    "model",
    "title",
    "author",
    "contact",
    "url",
    "licences",
    "copyright",
    "terms",
]
COLUMNS = [*BASE_COLUMNS, *CLAUSES, "evidence_files"]


def models_root(catalog: pd.DataFrame) -> Path | None:
    """The folder every catalog path lies under (their common parent)."""
    paths = [str(Path(p).parent) for p in catalog["path"]] if len(catalog) else []
    if not paths:
        return None
    try:
        return Path(os.path.commonpath(paths))
    except ValueError:  # different drives, or relative and absolute mixed
        return None


def model_label(row: dict, root: Path | None) -> str:
    """A row's model as the dataset names it: relative to `root`, with the archive member."""
    path = Path(row["path"])
    try:
        shown = path.relative_to(root).as_posix() if root is not None else path.name
    except ValueError:
        shown = path.name
    member = row.get("member")
    return f"{shown}/{member}" if isinstance(member, str) and member else shown


def attribution_rows(catalog: pd.DataFrame, characters: set[str]) -> list[dict]:
    """The attributions of `characters` (those with examples), in model file order."""
    root = models_root(catalog)
    rows = []
    for row in sorted(catalog.to_dict("records"), key=lambda r: r["character"]):
        if row["character"] not in characters:
            continue
        terms = row_terms(row)
        fields = terms.get("fields") or {}
        value = {k: (v or {}).get("value", "") for k, v in fields.items()}.get
        out = {
            "character": row["character"],
            "family": row.get("family") or "",
            "split": row.get("split") or "",
            "model": model_label(row, root),
            "title": row.get("name") or value("title", ""),
            "author": value("author", ""),
            "contact": value("contact", ""),
            "url": value("url", ""),
            "licences": "; ".join(lic["name"] for lic in terms.get("licences", [])),
            "copyright": "; ".join(c["text"] for c in terms.get("copyright", [])),
            "terms": terms.get("status") or "unknown",
        }
        clauses = terms.get("clauses") or {}
        out |= {c: clauses.get(c, "unstated") for c in CLAUSES}
        files = [f"{f['file']}:{f['sha256']}" for f in terms.get("files", [])]
        out["evidence_files"] = "; ".join(files)
        rows.append(out)
    return sorted(rows, key=lambda r: (r["model"], r["character"]))


def attributions_csv(rows: list[dict]) -> bytes:
    """The rows as UTF-8 CSV with a header (Excel reads it: a BOM is not added; quoting is
    minimal and lines end in \\n on every platform)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")
