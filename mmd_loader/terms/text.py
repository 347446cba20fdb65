"""A readme's text as the clause reader sees it: numbered lines, then sentences, each knowing the
heading it sits under and the lead-in line of the list it belongs to.

Line numbers are the file's own (1-based; CR, LF and CRLF end a line, nothing else: a cp932
byte that decodes to U+0085 does not). HTML is reduced to its text line by line, so numbers
still point into the source; an Internet shortcut (.url) contributes its URL line.

Lines are classified as blank, heading (decorated like ■…■, 【…】, ：：…：：, ●…, # …, == …,
or underlined by --- / ===, and short), bullet (-, *, ・, •, ※, ○, 1., (1), …) or text. Text
lines run on into the next line until a sentence ends (。！？!? or a period) or a blank line,
heading or bullet comes; the result is cut into sentences, each starting at a known line.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

MAX_LINES = 4000  # lines read per file
MAX_SENTENCE = 600  # characters of one sentence kept
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_TAG = re.compile(r"<[^>]{0,2000}>")
_HEADING_TAG = re.compile(r"<\s*h\d\b[^>]*>(.{0,200}?)<\s*/\s*h\d\s*>", re.I)
_BLOCK_TAG = re.compile(r"<\s*(?:br|/p|/div|/li|/h\d|/tr)\b[^>]*>", re.I)
_DECORATION = "■□◆◇●◎★☆▼▽▲△♪♭◯〇【】[]<>《》〈〉#=＝:：*＊~～-―─━_|｜ \t\u3000"
_HEADING_START = re.compile(r"^\s*(?:[■□◆◇●◎★☆▼▽▲♪【\[《〈#=＝]|[:：]{2}|\*\*)")
_UNDERLINE = re.compile(r"^\s*(?:[-=_―─━~～＝]{3,})\s*$")
_BULLET = re.compile(
    r"^\s*(?:[-*・•·‐‧○◯〇●◆◇▪▫※>＞→]|\d{1,2}[.)．）]|[(（]\d{1,2}[)）]|[①-⑳])\s*(?=\S)"
)
_SENTENCE_END = re.compile(r"(?<=[。！？!?])|(?<=\.)(?=\s|$)")
_TERMINATED = re.compile(r"[。！？!?.」』)）]\s*$")
_FIELD_LINE = re.compile(r"^[^:：]{1,40}[:：]\s*\S.{0,40}$")  # "Redistribution: NG" stands alone
_HEADING_MAX = 40


@dataclass(frozen=True)
class Line:
    number: int
    text: str  # as in the file, without the line break
    kind: str  # "blank", "heading", "bullet", "text"


@dataclass(frozen=True)
class Sentence:
    """One sentence (or heading, or list item) and where it came from."""

    line: int
    text: str  # as written (runs of whitespace folded to one space)
    kind: str  # "heading", "bullet", "text"
    heading: str  # the heading it sits under ("" before any)
    lead: str  # the lead-in line of the list it belongs to ("" if none)


def fold(text: str) -> str:
    """Text as the rules match it: NFKC (full-width to ASCII, half-width kana to full-width),
    case-folded, whitespace runs as one space."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).casefold())


def split_lines(text: str) -> list[str]:
    return _LINE_BREAK.split(text)[:MAX_LINES]


def html_lines(text: str) -> list[str]:
    """Each line of an HTML file reduced to its text (tags dropped, entities decoded)."""
    text = re.sub(
        r"(?is)<(script|style)\b.*?</\1\s*>", lambda m: "\n" * m.group(0).count("\n"), text
    )
    out = []
    for line in split_lines(text):
        line = _HEADING_TAG.sub(lambda m: f"■{m.group(1)}■", line)  # a heading stays one
        line = _BLOCK_TAG.sub(" ", line)
        out.append(html.unescape(_TAG.sub("", line)))
    return out


def url_lines(text: str) -> list[str]:
    """An Internet shortcut's lines: only its URL= line keeps its text."""
    return [line if line.strip().lower().startswith("url=") else "" for line in split_lines(text)]


def _stripped(text: str) -> str:
    return text.strip(_DECORATION)


def classify(lines: list[str]) -> list[Line]:
    """Number and classify every line."""
    out: list[Line] = []
    for i, text in enumerate(lines):
        number = i + 1
        if not text.strip():
            out.append(Line(number, text, "blank"))
        elif _UNDERLINE.match(text):
            if out and out[-1].kind in ("text", "bullet") and len(out[-1].text.strip()) <= 60:
                out[-1] = Line(out[-1].number, out[-1].text, "heading")
            out.append(Line(number, text, "blank"))
        elif _HEADING_START.match(text) and _heading_like(text):
            out.append(Line(number, text, "heading"))
        elif _BULLET.match(text):
            out.append(Line(number, text, "bullet"))
        else:
            out.append(Line(number, text, "text"))
    return out


def _heading_like(text: str) -> bool:
    core = _stripped(text)
    return 0 < len(core) <= _HEADING_MAX and "。" not in core.rstrip("。")


def _cut(text: str) -> list[tuple[int, str]]:
    """(offset, sentence) pieces of a run of text."""
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        end = match.start()
        if end > start:
            pieces.append((start, text[start:end]))
            start = end
    if start < len(text):
        pieces.append((start, text[start:]))
    return [(offset, piece) for offset, piece in pieces if piece.strip()]


def sentences(lines: list[str]) -> list[Sentence]:
    """The sentences of a file's lines, in order."""
    out: list[Sentence] = []
    heading = lead = ""
    run: list[Line] = []

    def flush() -> None:
        if not run:
            return
        joined, starts = "", []
        for line in run:
            starts.append((len(joined), line.number))
            joined += line.text.strip() + " "
        kind = "bullet" if run[0].kind == "bullet" else "text"
        for offset, piece in _cut(joined):
            number = max(n for at, n in starts if at <= offset)
            text = re.sub(r"\s+", " ", piece).strip()[:MAX_SENTENCE]
            out.append(Sentence(number, text, kind, heading, lead if kind == "bullet" else ""))
        run.clear()

    previous_kind = "blank"
    for line in classify(lines):
        if line.kind == "blank":
            flush()
            lead = ""
        elif line.kind == "heading":
            flush()
            heading, lead = _stripped(line.text).strip(), ""
            out.append(Sentence(line.number, heading, "heading", heading, ""))
        elif line.kind == "bullet":
            flush()
            if previous_kind == "text" and out and out[-1].kind == "text":
                lead = out[-1].text
            run.append(line)
            flush()
        else:
            if run and (
                _TERMINATED.search(run[-1].text) or _FIELD_LINE.match(run[-1].text.strip())
            ):
                flush()
            run.append(line)
        previous_kind = line.kind
    flush()
    return out
