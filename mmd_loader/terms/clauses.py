"""Reading clauses from sentences: which clause a sentence speaks of, and what it says of it.

For each clause keyword in a sentence (`rules.KEYWORDS`), the marker that decides it is the
nearest one in the same part of the sentence (parts split at "…ですが、", "; but", …): after the
keyword in Japanese (the verb comes last), on either side otherwise, within `rules.REACH`
characters. A ○/×/△ right after the keyword ("改造：×") or opening the line wins. A part without
keywords of its own that follows passes back its conditions ("禁止はしませんが、必ずご連絡
ください" is conditional). A keyword with no marker takes the polarity of the lead-in line of
its list ("NOT allowed for: - redistribution") or of its heading ("禁止事項"). A sentence with
markers and no keywords speaks of the clauses its heading names ("■再配布について■ … OKです"),
and a sentence that only asks to be contacted speaks of the clauses of the sentence before it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from mmd_loader.terms import rules
from mmd_loader.terms.text import Sentence, fold

_KANA = re.compile(r"[\u3040-\u30ff]")


@dataclass(frozen=True)
class Reading:
    """What one sentence says about one clause."""

    clause: str
    value: str  # "forbidden", "allowed" or "conditional"
    line: int
    text: str


@functools.cache
def _compiled() -> dict:
    keywords = {c: re.compile("|".join(f"(?:{p})" for p in ps)) for c, ps in rules.KEYWORDS.items()}
    return {
        "keywords": keywords,
        "special": [(c, re.compile(p), v) for c, p, v in rules.SPECIAL_KEYWORDS],
        "public": re.compile(rules.PUBLIC_ORDER),
        "markers": [(v, re.compile(p)) for v, p in rules.MARKERS],
        "boundary": re.compile(rules.BOUNDARY),
        "default": re.compile(rules.DEFAULT),
        "mark_after": re.compile(rules.MARK_AFTER),
        "mark_line": re.compile(rules.MARK_LINE),
        "no_before": re.compile(rules.NO_BEFORE),
    }


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    kind: str  # a clause (keywords) or a polarity (markers)
    fixed: str | None = None  # a keyword's own polarity


def markers(folded: str) -> list[_Hit]:
    """Non-overlapping markers, most specific first (`rules.MARKERS` order)."""
    taken = bytearray(len(folded))
    out = []
    for polarity, pattern in _compiled()["markers"]:
        for m in pattern.finditer(folded):
            if m.end() > m.start() and not any(taken[m.start() : m.end()]):
                taken[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
                out.append(_Hit(m.start(), m.end(), polarity))
    return sorted(out, key=lambda h: h.start)


def keywords(folded: str) -> list[_Hit]:
    """Clause keywords; special ones (non-commercial, MMD only) first, masking plain ones."""
    compiled = _compiled()
    taken = bytearray(len(folded))
    out = []
    for clause, pattern, fixed in compiled["special"]:
        for m in pattern.finditer(folded):
            taken[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
            out.append(_Hit(m.start(), m.end(), clause, fixed))
    for m in compiled["public"].finditer(folded):
        out += [_Hit(m.start(), m.end(), "adult"), _Hit(m.start(), m.end(), "violence")]
    for clause, pattern in compiled["keywords"].items():
        for m in pattern.finditer(folded):
            if m.end() > m.start() and not any(taken[m.start() : m.end()]):
                out.append(_Hit(m.start(), m.end(), clause))
    return sorted(out, key=lambda h: (h.start, h.kind))


def _useful(polarity: str, clause: str) -> bool:
    return polarity != "wish" and (polarity != "required" or clause == "credit")


def _value(polarity: str, clause: str) -> str:
    return "conditional" if polarity == "required" and clause == "credit" else polarity


def combine(values: list[str]) -> str:
    """One clause's value from its readings: all alike → that value; a condition, or both
    allowed and forbidden (allowed with exceptions) → conditional; none → unstated."""
    found = set(values)
    if not found:
        return "unstated"
    if len(found) == 1:
        return found.pop()
    return "conditional"


def polarity_of(text: str) -> str | None:
    """The polarity a heading or lead-in line carries (its first decisive marker), if any."""
    for hit in markers(fold(text)):
        if hit.kind in ("forbidden", "allowed", "conditional"):
            return hit.kind
    return None


def clauses_named(text: str) -> list[str]:
    """The clauses a heading names."""
    return sorted({h.kind for h in keywords(fold(text))})


def _segment(boundaries: list[int], position: int) -> int:
    return sum(1 for b in boundaries if b <= position)


def _distance(hit: _Hit, key: _Hit) -> int:
    if hit.start >= key.end:
        return hit.start - key.end
    if hit.end <= key.start:
        return key.start - hit.end
    return 0


def _choose(key: _Hit, found: list[_Hit], japanese: bool) -> _Hit | None:
    near = [m for m in found if _useful(m.kind, key.kind) and _distance(m, key) <= rules.REACH]
    if not near:
        return None
    after = [m for m in near if m.start >= key.start]
    pool = after if japanese and after else near
    return min(pool, key=lambda m: (_distance(m, key), m.start < key.start))


def read_sentence(sentence: Sentence) -> list[Reading]:
    """What the sentence says of each clause it names (or inherits from its list or heading)."""
    folded = fold(sentence.text)
    keys, found = keywords(folded), markers(folded)
    if not keys:
        return []
    compiled = _compiled()
    japanese = bool(_KANA.search(folded))
    wish = any(m.kind == "wish" for m in found)
    boundaries = [m.start() for m in compiled["boundary"].finditer(folded)]
    plain = {_segment(boundaries, k.start) for k in keys if k.kind == "commercial" and not k.fixed}
    # a plain commercial keyword beside a special one decides: "商用・非商用問いません"
    keys = [
        k
        for k in keys
        if not (k.kind == "commercial" and k.fixed and _segment(boundaries, k.start) in plain)
    ]
    keyed_segments = {_segment(boundaries, k.start) for k in keys}
    line_mark = compiled["mark_line"].match(folded)
    context = polarity_of(sentence.lead) if sentence.kind == "bullet" else None
    if context is None and sentence.kind == "bullet":
        context = polarity_of(sentence.heading) if sentence.heading != sentence.text else None
    out: list[Reading] = []
    for key in keys:
        segment = _segment(boundaries, key.start)
        own = [m for m in found if _segment(boundaries, m.start) == segment]
        values: list[str] = []
        after = compiled["mark_after"].match(folded, key.end)
        chosen = _choose(key, own, japanese)
        if after:
            values.append(rules.MARKS[after.group(1)])
        elif chosen is not None:
            values.append(_value(chosen.kind, key.kind))
        elif compiled["no_before"].search(folded, 0, key.start):
            values.append("forbidden")
        elif line_mark:
            values.append(rules.MARKS[line_mark.group(1)])
        later = segment + 1
        while later <= len(boundaries) and later not in keyed_segments:
            values += [
                "conditional"
                for m in found
                if m.kind == "conditional" and _segment(boundaries, m.start) == later
            ]
            later += 1
        if not values and context is not None:
            values.append(context)
        if key.fixed is not None and values:
            values = ["conditional" if "conditional" in values else key.fixed]
        elif key.fixed is not None and not values:
            values = [key.fixed]
        if wish:
            values = ["allowed" if v == "conditional" else v for v in values]
            if not values and key.kind == "credit":
                values = ["allowed"]  # asked for, not required
        if values:
            out.append(Reading(key.kind, combine(values), sentence.line, sentence.text))
    return _merge(out)


def _merge(readings: list[Reading]) -> list[Reading]:
    """One reading per clause per sentence."""
    by_clause: dict[str, list[Reading]] = {}
    for reading in readings:
        by_clause.setdefault(reading.clause, []).append(reading)
    return [
        Reading(clause, combine([r.value for r in rs]), rs[0].line, rs[0].text)
        for clause, rs in by_clause.items()
    ]


def read_sentences(sentences: list[Sentence]) -> list[Reading]:
    """Every reading of a file's sentences, in order, with the inheritances the module
    docstring describes."""
    out: list[Reading] = []
    previous: list[str] = []  # the clauses the sentence before spoke of
    for sentence in sentences:
        if sentence.kind == "heading":
            previous = []
            continue
        readings = read_sentence(sentence)
        if readings:
            out += readings
            previous = [r.clause for r in readings]
            continue
        folded = fold(sentence.text)
        found = [m for m in markers(folded) if m.kind in ("forbidden", "allowed", "conditional")]
        if not found or any(m.kind == "wish" for m in markers(folded)):
            previous = []
            continue
        named = clauses_named(sentence.heading) if sentence.heading else []
        if named and sentence.heading != sentence.text:
            value = combine([m.kind for m in found])
            out += [Reading(c, value, sentence.line, sentence.text) for c in named]
        elif previous and all(m.kind == "conditional" for m in found):
            out += [Reading(c, "conditional", sentence.line, sentence.text) for c in previous]
        previous = []
    return out


def default_readings(sentences: list[Sentence]) -> list[Reading]:
    """Sentences that give a default for what the terms do not mention ("what is not written
    here is not allowed"), with the value they give it."""
    out = []
    pattern = _compiled()["default"]
    for sentence in sentences:
        folded = fold(sentence.text)
        if sentence.kind != "heading" and pattern.search(folded):
            value = polarity_of(sentence.text)
            if value in ("forbidden", "conditional"):
                out.append(Reading("default", value, sentence.line, sentence.text))
    return out
