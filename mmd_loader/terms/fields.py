"""The author, title, contact and URL fields readmes and model comments write: 【モデル名】,
モデル名：, 【モデラー】, モデリング：, 制作者, 作者, 作成:, Author:, Modeling by, created by …

A field is a labelled line (the label at the line's start, after decorations, then a colon,
`>>`, a tab or a full-width space, then the value). An e-mail address is a contact; a URL is
taken from a labelled line (URL, HP, 配布元, Twitter, …) or from the two lines after an author or
contact line, never from elsewhere (readmes also link the software they thank).
"""

from __future__ import annotations

import functools
import re
import unicodedata

_LEAD = r"^[\s■□◆◇●◎★☆・\-*#＊【\[<《〈(（]*"
_SEP = r"(?:[\s】\]>》〉)）]*(?:[:：=＝]|>>|≫|\t|\u3000|\s{2,}|\s+-\s+)|[】\]》〉])\s*"
LABELS = {
    "title": r"モデル名|モデルデータ|作品名|名称|タイトル|model\s*name|mmd\s*model|title|模型名称?",
    "author": r"モデラー|モデリング[^\s:：]{0,12}|モデル(?:制作|製作|作成)|制作者|製作者|作成者|"
    r"作者|作成|制作|製作|author|modell?er|creator|建模|模型作者",
    "contact": r"連絡先|お問い?合わせ|メール|mail|e-mail|contact|twitter|联系方式|聯繫方式",
    "url": r"配布元|配布場所|配布先|配布ページ|ダウンロード|url|hp|homepage|ホームページ|サイト|"
    r"web|blog|ブログ|twitter|bowlroll|booth|下载|下載|主页|主頁",
}
_BY = re.compile(
    r"(?<![a-z])(?:modell?ing|modell?ed|created|made|converted)?\s*by\s*[:：]?\s*"
    r"([^\s,;\"“”(（][^,;\"“”\n]{0,60})",
    re.I,
)
_BY_LINE = re.compile(r"^\s*(?:modell?ing\s*by|model\s+by|created\s+by|made\s+by|by)\s*(.+)$", re.I)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"https?://[^\s\"'<>）)」』、。]+")
_HONORIFIC = re.compile(r"(?:氏|様|さん|さま)$")
_COPYRIGHT = re.compile(
    r"©|\(c\)\s*\d{4}|copyright\s*(?:\(c\)|©|[:：]\s*\S|\d{4})|版权所有|版權所有|著作権者\s*[:：]",
    re.I,
)
# "Copyright CRYPTON FUTURE MEDIA": a capitalised Copyright followed by a name, not by a noun
_COPYRIGHT_NAME = re.compile(
    r"(?<![A-Za-z])Copyright\s+(?!(?:notice|holders?|law|owners?|and|of|to|in|is)\b)[A-Z]|"
    r"\([Cc]\)\s*[A-Z0-9]"
)
_NONE = {"なし", "無し", "none", "n/a", "-", "―", "不明", "无", "無"}
_LICENCE_HOSTS = ("piapro.", "creativecommons.org", "vn3.org", "opensource.org")


@functools.cache
def _label_patterns() -> dict[str, re.Pattern]:
    return {f: re.compile(_LEAD + f"(?:{p})" + _SEP + r"(.+)$", re.I) for f, p in LABELS.items()}


def clean(value: str) -> str:
    """A field value without decorations, parenthesised addresses or honorifics."""
    value = _EMAIL.sub("", _URL.sub("", value))
    value = re.sub(r"[(（]\s*[)）]", "", value)
    value = value.strip(" \t\u3000:：-―─【】[]「」『』<>")
    value = _HONORIFIC.sub("", value).strip()[:80]
    return "" if value.casefold() in _NONE else value


def labelled(line: str) -> dict[str, str]:
    """The fields a line labels (raw values)."""
    out = {}
    text = unicodedata.normalize("NFKC", line)
    for field, pattern in _label_patterns().items():
        match = pattern.match(text)
        if match:
            out[field] = match.group(1).strip()
    if "author" not in out:
        match = _BY_LINE.match(text)
        if match and len(text) <= 80:
            out["author"] = match.group(1)
        elif not re.match(_LEAD + r"(?:converted|data)", text, re.I):
            by = re.search(r"(?:created|made|modell?ed)\s+by\s+([^,;.\"“”]{1,60})", text, re.I)
            if by:
                out["author"] = by.group(1)
    return out


def emails(line: str) -> list[str]:
    return _EMAIL.findall(line)


def urls(line: str) -> list[str]:
    return [u for u in _URL.findall(line) if not any(h in u for h in _LICENCE_HOSTS)]


def is_copyright(line: str) -> bool:
    text = unicodedata.normalize("NFKC", line)
    return bool(_COPYRIGHT.search(text) or _COPYRIGHT_NAME.search(text))
