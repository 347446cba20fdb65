"""Text in the encodings MMD files and archives carry: UTF-8, UTF-16 and the legacy East Asian
code pages, told apart by what the bytes decode to.

Japanese Windows writes cp932 (Shift-JIS), Chinese Windows GBK or Big5, all without saying so.
The same bytes often decode in two of them, so each strict decoding is scored by how plausible
its characters are, and the best one wins (ties go to cp932, then GBK, then Big5: most MMD
files are Japanese):

- kana count most in cp932 and against in GBK and Big5 (Chinese text has none, but both code
  pages encode kana, which is what a Japanese name decoded in them turns into),
- a CJK ideograph counts when it is among the frequent ones of any of the three character sets
  (level 1 of JIS X 0208, of GB 2312 and of Big5, looked up through the codecs themselves), and
  little otherwise: a wrong decoding lands on rare ideographs,
- private-use, control and compatibility characters count against (wrong decodings make them).
"""

from __future__ import annotations

import functools
import re

LEGACY = ("cp932", "gbk", "big5")
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
_DECLARED = re.compile(rb"""(?:charset|encoding)\s*=\s*["']?([A-Za-z0-9_\-]{2,20})""", re.I)
_ALIASES = {
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "ms932": "cp932",
    "gb2312": "gbk",
    "gb18030": "gb18030",
    "euc-cn": "gbk",
    "big5-hkscs": "big5hkscs",
    "euc-jp": "euc_jp",
}


@functools.lru_cache(maxsize=65536)
def _weight(ch: str, codec: str) -> float:
    """How plausible one non-ASCII character is in a name or text decoded from `codec`."""
    o = ord(ch)
    if 0x3041 <= o <= 0x30FF:  # hiragana, katakana
        return 2.0 if codec in ("cp932", "utf-8") else -1.0
    if 0x4E00 <= o <= 0x9FFF:
        return 1.0 if _frequent(ch) else 0.2
    if 0x3000 <= o <= 0x303F or 0xFF01 <= o <= 0xFF5E:  # CJK punctuation, full-width forms
        return 0.5
    if 0xFF61 <= o <= 0xFF9F:  # half-width katakana: real, but a wrong cp932 decode makes many
        return 0.3
    if 0x2000 <= o <= 0x27BF or 0x25A0 <= o <= 0x25FF:  # punctuation, arrows, shapes (■, ★)
        return 0.3
    if 0xE000 <= o <= 0xF8FF or o < 0x20 or 0x7F <= o <= 0x9F or o == 0xFFFD:
        return -5.0
    if 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF:  # extension A, compatibility
        return -2.0
    return -0.5


def _frequent(ch: str) -> bool:
    """A level-1 (frequent) ideograph of JIS X 0208, GB 2312 or Big5."""
    for codec, lo, hi in (("cp932", 0x889F, 0x9872), ("gb2312", 0xB0A1, 0xD7F9)):
        try:
            code = int.from_bytes(ch.encode(codec), "big")
        except UnicodeEncodeError:
            continue
        if lo <= code <= hi:
            return True
    try:
        code = int.from_bytes(ch.encode("big5"), "big")
    except UnicodeEncodeError:
        return False
    return 0xA440 <= code <= 0xC67E


def plausibility(text: str, codec: str = "cp932") -> float:
    """The summed weight of the non-ASCII characters of `text`, decoded from `codec`."""
    return sum(_weight(ch, codec) for ch in text if ord(ch) >= 0x80)


def guess_legacy(samples: list[bytes]) -> str | None:
    """The legacy code page in which all `samples` decode and read best; None if none does."""
    best, best_score = None, float("-inf")
    for codec in LEGACY:
        try:
            score = sum(plausibility(s.decode(codec), codec) for s in samples)
        except UnicodeDecodeError:
            continue
        if score > best_score:
            best, best_score = codec, score
    return best


def decode_names(raws: list[bytes]) -> list[str]:
    """File names stored as bytes (an archive's), decoded. When every name is valid UTF-8 they
    are UTF-8; otherwise the others are in the one legacy code page that reads best over all of
    them (cp932 with replacement characters if none decodes them all), and a name valid in both
    takes the reading that scores better (`ﾐｸ` in cp932 is also valid UTF-8, as 'и')."""
    legacy = []
    for raw in raws:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            legacy.append(raw)
    codec = (guess_legacy(legacy) or "cp932") if legacy else None
    out = []
    for raw in raws:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            out.append(raw.decode(codec or "cp932", errors="replace"))
            continue
        if codec is not None and not raw.isascii():
            try:
                other = raw.decode(codec)
            except UnicodeDecodeError:
                other = None
            if other is not None and plausibility(other, codec) > plausibility(text, "utf-8"):
                text = other
        out.append(text)
    return out


def _aligned(data: bytes, pattern: bytes) -> bool:
    """Whether `pattern` occurs in `data` at an even offset (a whole UTF-16 code unit)."""
    at = data.find(pattern)
    while at >= 0:
        if at % 2 == 0:
            return True
        at = data.find(pattern, at + 1)
    return False


def _utf16_without_bom(data: bytes) -> str | None:
    """'utf-16-le' or 'utf-16-be' when the bytes look like UTF-16 (ASCII, or a line end, with a
    zero byte beside it, in whole code units), else None."""
    if len(data) < 4 or len(data) % 2:
        return None
    even, odd = data[0::2], data[1::2]
    zeros_even, zeros_odd = even.count(0), odd.count(0)
    pairs, head = len(data) // 2, data[:8192]
    if (zeros_odd >= 0.2 * pairs and zeros_even <= 0.02 * pairs) or _aligned(head, b"\n\x00"):
        return "utf-16-le"
    if (zeros_even >= 0.2 * pairs and zeros_odd <= 0.02 * pairs) or _aligned(head, b"\x00\n"):
        return "utf-16-be"
    return None


def decode_text(data: bytes) -> tuple[str, str]:
    """(text, encoding) of a text file: a BOM, UTF-16 without one, UTF-8, an HTML/XML declared
    charset, then the best-reading legacy code page (cp932 with replacements if none fits)."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec), codec.removesuffix("-sig")
            except UnicodeDecodeError:
                break
    wide = _utf16_without_bom(data)
    if wide is not None:
        try:
            return data.decode(wide), wide
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    declared = _DECLARED.search(data[:4096])
    if declared is not None:
        name = declared.group(1).decode("ascii").lower()
        codec = _ALIASES.get(name, name)
        try:
            return data.decode(codec), codec
        except (LookupError, UnicodeDecodeError):
            pass
    codec = guess_legacy([data])
    if codec is not None:
        return data.decode(codec), codec
    return data.decode("cp932", errors="replace"), "cp932 (undecodable bytes replaced)"
