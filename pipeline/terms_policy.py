"""Which models a dataset leaves out for their terms of use, and why (`--terms-exclude`).

A model is left out when, for a clause the policy names, its terms say `forbidden` or
`conditional`: a condition (ask first, contact the author, allowed only in some ways) is one a
generator cannot check, so it counts as not given. `unknown` in the policy also leaves out models
whose terms were not found at all. By default (`ai_training`) a model is left out only when its
terms forbid, or put a condition on, AI training; models with unknown terms are kept, flagged
`terms_unknown`, and listed as such in the dataset card, because an absent readme is far more
often a lost file than a prohibition and leaving them out silently would hide that from the
person publishing the dataset (pass `--terms-exclude ai_training,unknown` to leave them out).
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

from mmd_loader.terms import CLAUSES, is_unknown
from pipeline.catalog import row_terms

REFUSING = ("forbidden", "conditional")
VERB = {"forbidden": "forbid", "conditional": "put a condition on"}


def reasons(terms: dict, policy: tuple[str, ...]) -> list[str]:
    """Why a model with these terms is left out under `policy` (empty: it is kept); each reason
    names the clause, its value and the first sentence it came from (file:line)."""
    if not policy:
        return []
    if is_unknown(terms):
        return (
            ["terms of use unknown (no readme, terms file or licence found)"]
            if ("unknown" in policy)
            else []
        )
    out = []
    for clause in policy:
        value = terms.get("clauses", {}).get(clause)
        if value not in REFUSING:
            continue
        evidence = (terms.get("evidence") or {}).get(clause) or [{}]
        first = evidence[0]
        where = f" ({first['file']}:{first['line']}: {first['text'][:120]})" if first else ""
        out.append(f"terms {VERB[value]} {clause}{where}")
    return out


def excluded_by_terms(catalog: pd.DataFrame, policy: tuple[str, ...]) -> pd.Series:
    """Per catalog row: the reasons its terms leave it out (empty when kept)."""
    if "terms" not in catalog or not policy:
        return pd.Series([[] for _ in range(len(catalog))], index=catalog.index, dtype=object)
    rows = catalog.to_dict("records")
    return pd.Series([reasons(row_terms(r), policy) for r in rows], index=catalog.index)


def describe(policy: tuple[str, ...]) -> str:
    """The policy in words, for reports and the dataset card."""
    if not policy:
        return "none: every usable model is kept whatever its terms say"
    clauses = [c for c in policy if c != "unknown"]
    text = (
        f"models whose terms forbid or put a condition on {', '.join(clauses)} are left out"
        if clauses
        else "no clause leaves a model out"
    )
    if "unknown" in policy:
        return text + "; models whose terms were not found are left out too"
    return text + "; models whose terms were not found are kept and listed as unknown"


TALLY_VALUES = ("forbidden", "conditional", "allowed", "unstated")


def tally(terms: list[dict]) -> list[list]:
    """Per clause, how many of these terms forbid, condition, allow it or leave it unstated."""
    counts = {
        c: Counter((t.get("clauses") or {}).get(c, "unstated") for t in terms) for c in CLAUSES
    }
    return [[c, *(counts[c].get(v, 0) for v in TALLY_VALUES)] for c in CLAUSES]


def with_defaults(terms: list[dict]) -> int:
    """How many of these terms say that what they do not mention is forbidden or conditional."""
    return sum(1 for t in terms if t.get("default"))
