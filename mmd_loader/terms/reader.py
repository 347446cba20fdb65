"""A model's terms of use, read from its readme and terms files and its comments: per clause a
value and the sentences it came from, the licences named, copyright lines and the author, title,
contact and URL fields. The result is plain JSON (`read_terms`), which the catalog stores.

```
{"status": "found" | "unknown",
 "clauses": {clause: "forbidden" | "allowed" | "conditional" | "unstated"},
 "evidence": {clause: [{"value", "file", "line", "text"}, ...]},
 "licences": [{"name", "file", "line", "text"}],
 "fields": {"title" | "author" | "contact" | "url": {"value", "file", "line"}},
 "copyright": [{"text", "file", "line"}],
 "default": [{"value", "file", "line", "text"}],
 "files": [{"file", "sha256", "encoding", "bytes"}],  (comments: the model file's sha256)
 "notes": [str]}
```

`status` is `unknown` when no terms file was found and the comments state no clause and name no
licence: the model's terms are not known (flag `terms_unknown`). A clause's value combines its
readings (`clauses.combine`: a mix of allowed and forbidden, or any condition, is `conditional`);
a clause no sentence speaks of takes the value a named Creative Commons licence implies, else
stays `unstated`. Sentences that give a default for what is not mentioned ("記載のない事項は
禁止") are listed under `default`; they do not change unstated clauses.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field

from mmd_loader.terms import clauses as clause_reader
from mmd_loader.terms import fields as field_reader
from mmd_loader.terms.licences import implied, licences_in
from mmd_loader.terms.rules import CLAUSES
from mmd_loader.terms.text import html_lines, sentences, split_lines, url_lines

MAX_EVIDENCE = 8  # sentences kept per clause
MAX_LISTED = 8  # licences, copyright lines and defaults kept
COMMENT = "(comment)"
ENGLISH_COMMENT = "(English comment)"


@dataclass(frozen=True)
class Source:
    """One text terms are read from: a file (its label, as shown in evidence) or a comment."""

    label: str
    text: str
    encoding: str = "utf-8"
    sha256: str = ""
    size: int = 0
    kind: str = "file"  # "file" or "comment"

    @property
    def lines(self) -> list[str]:
        lower = self.label.lower()
        if lower.endswith((".html", ".htm")):
            return html_lines(self.text)
        if lower.endswith(".url"):
            return url_lines(self.text)
        return split_lines(self.text)


@dataclass
class _Facts:
    """What one source says, independent of the model reading it."""

    readings: list = field(default_factory=list)
    defaults: list = field(default_factory=list)
    licences: list = field(default_factory=list)  # (name, line, text)
    fields: dict = field(default_factory=dict)  # field -> (value, line)
    copyright: list = field(default_factory=list)  # (line, text)


def comment_sources(comment: str, english_comment: str, sha256: str = "") -> list[Source]:
    """A model's comments as sources (empty ones left out)."""
    out = []
    for label, text in ((COMMENT, comment), (ENGLISH_COMMENT, english_comment)):
        if text and text.strip():
            out.append(Source(label, text, "model", sha256, len(text), "comment"))
    return out


@functools.lru_cache(maxsize=256)
def _facts(label: str, text: str) -> _Facts:
    lines = Source(label, text).lines
    said = sentences(lines)
    facts = _Facts(
        readings=clause_reader.read_sentences(said),
        defaults=clause_reader.default_readings(said),
    )
    author_lines: set[int] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        for name in licences_in(line):
            facts.licences.append((name, number, line.strip()))
        labelled = field_reader.labelled(line)
        for key, raw in labelled.items():
            value = field_reader.clean(raw) if key in ("title", "author") else raw
            if key in ("author", "contact"):
                author_lines.add(number)
            if key == "url":
                found = field_reader.urls(raw)
                value = found[0] if found else ""
            if key == "contact":
                found = field_reader.emails(raw) or field_reader.urls(raw)
                value = found[0] if found else field_reader.clean(raw)
            if value and key not in facts.fields:
                facts.fields[key] = (value, number)
        if "contact" not in facts.fields:
            found = field_reader.emails(line)
            if found:
                facts.fields["contact"] = (found[0], number)
        if "url" not in facts.fields and any(n in author_lines for n in (number - 2, number - 1)):
            found = field_reader.urls(line)
            if found:
                facts.fields["url"] = (found[0], number)
        if field_reader.is_copyright(line):
            facts.copyright.append((number, line.strip()))
    return facts


def source_from_bytes(label: str, data: bytes) -> Source:
    """A terms file's bytes, decoded (`mmd_loader.textcodec.decode_text`)."""
    from mmd_loader.textcodec import decode_text

    text, encoding = decode_text(data)
    return Source(label, text, encoding, hashlib.sha256(data).hexdigest(), len(data))


def read_terms(sources: list[Source], notes: list[str] | None = None) -> dict:
    """The terms (module docstring) that `sources` state, comments first, then files nearest to
    the model first."""
    evidence: dict[str, list[dict]] = {}
    licences, copyright_lines, defaults = [], [], []
    found_fields: dict[str, dict] = {}
    for source in sources:
        facts = _facts(source.label, source.text)
        for r in facts.readings:
            item = {"value": r.value, "file": source.label, "line": r.line, "text": r.text}
            evidence.setdefault(r.clause, []).append(item)
        for r in facts.defaults:
            defaults.append(
                {"value": r.value, "file": source.label, "line": r.line, "text": r.text}
            )
        for name, line, text in facts.licences:
            if name not in {lic["name"] for lic in licences}:
                licences.append({"name": name, "file": source.label, "line": line, "text": text})
        for key, (value, line) in facts.fields.items():
            found_fields.setdefault(key, {"value": value, "file": source.label, "line": line})
        for line, text in facts.copyright:
            if text not in {c["text"] for c in copyright_lines}:
                copyright_lines.append({"text": text, "file": source.label, "line": line})
    values = {c: clause_reader.combine([e["value"] for e in evidence.get(c, [])]) for c in CLAUSES}
    unstated = {c for c, v in values.items() if v == "unstated"}
    for licence in licences:  # licences fill what no sentence states; two disagreeing: both
        for clause, value in implied(licence["name"]).items():
            if clause in unstated:
                item = {k: licence[k] for k in ("file", "line", "text")}
                evidence.setdefault(clause, []).append({"value": value, **item})
    for clause in unstated:
        values[clause] = clause_reader.combine([e["value"] for e in evidence.get(clause, [])])
    files = [s for s in sources if s.kind == "file"]
    comments_say = any(
        e["file"] in (COMMENT, ENGLISH_COMMENT) for es in evidence.values() for e in es
    ) or any(lic["file"] in (COMMENT, ENGLISH_COMMENT) for lic in licences)
    return {
        "status": "found" if files or comments_say else "unknown",
        "clauses": values,
        "evidence": {c: evidence[c][:MAX_EVIDENCE] for c in CLAUSES if c in evidence},
        "licences": licences[:MAX_LISTED],
        "fields": found_fields,
        "copyright": copyright_lines[:MAX_LISTED],
        "default": defaults[:MAX_LISTED],
        "files": [
            {"file": s.label, "sha256": s.sha256, "encoding": s.encoding, "bytes": s.size}
            for s in sources
        ],
        "notes": list(notes or []),
    }


def unknown_terms(reason: str | None = None) -> dict:
    """The terms of a model nothing could be read for."""
    return read_terms([], [reason] if reason else [])


def is_unknown(terms: dict | None) -> bool:
    return not terms or terms.get("status") != "found"


def summary(terms: dict | None, limit: int = 9) -> str:
    """One line: the stated clauses and the licences (`terms unknown` when nothing was found)."""
    if is_unknown(terms):
        return "terms unknown"
    clauses = terms.get("clauses") or {}
    stated = [f"{c} {clauses[c]}" for c in CLAUSES if clauses.get(c, "unstated") != "unstated"]
    stated = stated[:limit]
    names = [lic["name"] for lic in terms.get("licences", [])]
    text = "; ".join(stated) if stated else "no clause stated"
    if names:
        text += f"; licences: {', '.join(names)}"
    return text
