"""Licences recognised by name, and what the well-defined ones say of the clauses a readme leaves
unstated.

Piapro Character License (PCL) and Crypton's character guidelines, VN3, the Creative Commons
licences (CC0, BY, BY-SA, BY-NC, BY-ND and their combinations), ニコニ・コモンズ and the MIT
licence are recognised. Only the Creative Commons licences imply clause values (used where the
text states nothing): CC0 allows everything and asks no credit; BY asks credit; NC forbids
commercial use; ND forbids modification. PCL, VN3 and ニコニ・コモンズ leave each work's terms
to its author, and the MIT licence in a model's folder is usually a code repository's: they are
listed, not interpreted.
"""

from __future__ import annotations

import functools
import re

from mmd_loader.terms.text import fold

_A, _Z = r"(?<![a-z0-9_])", r"(?![a-z0-9_])"
# "NOT under MIT license", "…ライセンス対象外": a licence named to say it does not apply
_NEGATED = re.compile(
    r"(?<![a-z])not\s+(?:under|licensed|covered)|ではありません|ではない|対象外|不适用|不適用"
)
NAMED = [
    (
        "Piapro Character License",
        r"ピアプロ\s*・?\s*キャラクター\s*・?\s*ライセンス|piapro\s*character\s*licen[cs]e|"
        r"piapro\.jp/license/pcl|" + _A + r"pcl" + _Z,
    ),
    (
        "Crypton character guidelines",
        r"piapro\.jp/license/character_guideline|piapro\.net/en_for_creators|"
        r"キャラクター利用の?ガイドライン|guideline\s+set\s+by\s+crypton",
    ),
    ("VN3", _A + r"vn3" + _Z + r"|vn3\.org"),
    ("ニコニ・コモンズ", r"ニコニ\s*・?\s*コモンズ|niconi\s*commons|commons\.nicovideo\.jp"),
    ("MIT", _A + r"mit\s+licen[cs]e|^\s*mit\s*$"),
]
_CC0 = re.compile(
    _A + r"cc\s*-?\s*0" + _Z + r"|creative\s*commons\s*zero|public\s+domain\s+dedication|"
    r"クリエイティブ\s*・?\s*コモンズ\s*・?\s*ゼロ"
)
_CC = re.compile(
    r"(?:" + _A + r"cc|creative\s*commons|クリエイティブ\s*・?\s*コモンズ)[\s\-:]*"
    r"(by(?:[\s\-]*(?:nc|nd|sa)){0,2})" + _Z + r"(?:[\s\-]*(\d\.\d))?"
)
ALL_CLAUSES_OF_USE = ("ai_training", "outside_mmd", "redistribution", "modification", "commercial")


@functools.cache
def _named() -> list[tuple[str, re.Pattern]]:
    return [(name, re.compile(pattern, re.M)) for name, pattern in NAMED]


def licences_in(text: str) -> list[str]:
    """The licences a line of text names, in a canonical spelling."""
    folded = fold(text)
    if _NEGATED.search(folded):
        return []
    found = [name for name, pattern in _named() if pattern.search(folded)]
    if _CC0.search(folded):
        found.append("CC0")
    for match in _CC.finditer(folded):
        parts = [p for p in re.split(r"[\s\-]+", match.group(1).upper()) if p]
        name = "CC " + "-".join(parts) + (f" {match.group(2)}" if match.group(2) else "")
        found.append(name)
    return list(dict.fromkeys(found))


def implied(licence: str) -> dict[str, str]:
    """Clause values a licence implies (empty for those that leave terms to each work)."""
    if licence == "CC0":
        return dict.fromkeys((*ALL_CLAUSES_OF_USE, "credit"), "allowed")
    if not licence.startswith("CC BY"):
        return {}
    out = dict.fromkeys(ALL_CLAUSES_OF_USE, "allowed") | {"credit": "conditional"}
    parts = licence.split()[1].split("-")
    if "NC" in parts:
        out["commercial"] = "forbidden"
    if "ND" in parts:
        out["modification"] = "forbidden"
    return out
