"""Recognising face morphs and head bones by name, across the spellings real models use.

Names only propose candidates; geometry decides which eye a morph closes (`face.py`) and
whether it closes it neutrally or in a smile (`closures.py`): no name rank is used.
"""

from __future__ import annotations

import re
import unicodedata
from enum import Enum

from mmd_loader.model import Model, MorphKind


class EyeMorphKind(Enum):
    BLINK = "blink"  # both eyes: まばたき, blink
    WINK = "wink"  # one eye, side unknown until geometry says


def normalize(name: str) -> str:
    """Fold a morph or bone name to a canonical spelling.

    NFKC turns half-width katakana (ｳｨﾝｸ) and full-width digits/letters (２, Ｌ) into ordinary ones;
    the large イ of ウインク becomes the small ィ of ウィンク; separators and case are dropped.
    """
    text = unicodedata.normalize("NFKC", name).strip().lower()
    text = text.replace("ウインク", "ウィンク")
    return re.sub(r"[\s_・\-.()（）]+", "", text)


_BLINK = re.compile(r"^(まばたき|瞬き|blink|eyeclose|eyesclosed|目閉じ|目を閉じる)")
# ARKit ("perfect sync") names the side: eyeBlinkLeft, eyeBlink_R. Geometry still decides it.
_WINK = re.compile(
    r"^(ウィンク|wink|まばたき(左|右|ひだり|みぎ|l|r)|(左|右|l|r)(ウィンク|wink|まばたき)"
    r"|(eye)?blink(left|right|l|r)|(left|right)(blink|wink|eyeclose))"
)
_MOUTH = re.compile(r"^(あ|a|aa|ah|mouth(open|a)|口開け|口あ)([12２]?)$")
_JAW = re.compile(r"^jawopen$")  # ARKit: the jaw drops, opening the mouth
# Both eyes closed in a smile (^ ^) or squeezed shut (> <): motions drive them as often as
# まばたき. Compared folded (katakana = hiragana: ﾜﾗｲ = わらい).
_SMILE_CLOSURE = re.compile(r"^(笑い|わらい|warai|smile|eyesmile|はぅ|はう)")


def eye_morph_kind(name: str) -> EyeMorphKind | None:
    """Whether a morph name looks like a both-eyes blink, a one-eye wink, or neither."""
    key = normalize(name)
    if _WINK.match(key):
        return EyeMorphKind.WINK
    if _BLINK.match(key):
        # まばたき plus a side word is a wink; plain まばたき (or まばたき2) is both eyes.
        return EyeMorphKind.BLINK
    return None


def is_smile_closure(name: str) -> bool:
    """Named like a both-eyes smile closure (笑い) or squeeze (はぅ); the lids decide what it
    does."""
    return bool(_SMILE_CLOSURE.match(fold(name)))


def is_closure(name: str) -> bool:
    """Named like anything that may close an eye: a blink, a wink or a smile closure."""
    return eye_morph_kind(name) is not None or is_smile_closure(name)


def is_mouth_open(name: str) -> bool:
    key = normalize(name)
    return bool(_MOUTH.match(key) or _JAW.match(key))


def mouth_rank(name: str) -> int:
    """0 for あ itself, 1 for its numbered variants (あ2), 2 for ARKit's jawOpen."""
    match = _MOUTH.match(normalize(name))
    if match is None:
        return 2
    return 0 if not match.group(2) else 1


NECK_NAMES = ("首", "neck", "首1", "neck1", "首根元")
HEAD_NAMES = ("頭", "head", "頭1", "head1")


def bone_rank(name: str, candidates: tuple[str, ...]) -> int | None:
    """Position of a bone name among the accepted spellings, or None if it is not one of them."""
    key = normalize(name)
    for rank, candidate in enumerate(candidates):
        if key == normalize(candidate):
            return rank
    return None


# --- matching schema morph names (render.binding) ------------------------------------------

_KATAKANA = {chr(c): chr(c - 0x60) for c in range(0x30A1, 0x30F7)}  # ァ..ヶ → ぁ..ゖ
_SIDE_WORDS = ("ひだり", "みぎ", "left", "right", "左", "右")
# A single-letter side (ウィンクＬ, brow_R, Lブロウ): upper case, at an end, set off by a separator
# or by a non-Latin neighbour, so that "anger" or "smile" keep their last letter.
_LETTER_SIDE = re.compile(
    r"^(?:(?P<pre>[LR])(?:[\s_\-.]+|(?=[^A-Za-z])))|(?:(?:[\s_\-.]+|(?<=[^A-Za-z\s_\-.]))(?P<post>[LR]))$"
)


def fold(name: str) -> str:
    """`normalize`, and katakana folded to hiragana (ジト目 = じと目, ﾋﾞｯｸﾘ = びっくり): the key
    schema morph names are compared by."""
    return "".join(_KATAKANA.get(c, c) for c in normalize(name))


def side_variant(name: str) -> tuple[str, str | None]:
    """(folded base name, side word or None) of a morph name: 困る左 → (困る, "left"),
    怒り（右） → (怒り, "right"), ウィンクＬ → (うぃんく, "left"), 上 → (上, None).

    The side word only says what the author called it; geometry decides the side a morph moves.
    """
    text = unicodedata.normalize("NFKC", name).strip()
    letter = _LETTER_SIDE.search(text)
    if letter is not None:
        word = "left" if (letter.group("pre") or letter.group("post")) == "L" else "right"
        base = fold(text[: letter.start()] + text[letter.end() :])
        if base:
            return base, word
    key = fold(text)
    for word in _SIDE_WORDS:
        side = "left" if word in ("ひだり", "left", "左") else "right"
        if key.endswith(word) and len(key) > len(word):
            return key[: -len(word)], side
        if key.startswith(word) and len(key) > len(word):
            return key[len(word) :], side
    return key, None


def morph_table(model: Model) -> dict[str, list[str]]:
    """Folded name → the model's vertex/group morph names it stands for: a morph's own folded
    name first (in file order), then morphs whose name is a side-named variant of it (困る左 for
    困る). How schema morph names find a model's morphs (`render.binding`, motions)."""
    exact: dict[str, list[str]] = {}
    variants: dict[str, list[str]] = {}
    for m in model.morphs:
        if m.kind not in (MorphKind.VERTEX, MorphKind.GROUP):
            continue
        exact.setdefault(fold(m.name), []).append(m.name)
        base, side = side_variant(m.name)
        if side is not None:
            variants.setdefault(base, []).append(m.name)
    table = {k: list(dict.fromkeys(v)) for k, v in exact.items()}
    for base, names in variants.items():
        table.setdefault(base, [])
        table[base] = list(dict.fromkeys(table[base] + names))
    return table
