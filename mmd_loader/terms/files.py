"""Which files beside a model hold its terms of use: readmes and licence files by name, and text
files named after the model in its own folder.

A terms file is a text file (`TEXT_SUFFIXES`, or no suffix) whose name, folded (NFKC, case,
spaces and separators removed), contains one of `TERMS_WORDS` (readme, read me, りーどみー,
読んでください, 利用規約, 規約, terms, license, ライセンス, 説明書, 使用说明, ...). In the
model's own folder a text file whose name starts like the model file's is one too
(`miku4.3-jp.txt` beside `miku4.3.pmx`). Files are looked for in the model's folder and its
parents up to the scanned root (inside an archive: up to the archive's root, then beside it).
"""

from __future__ import annotations

import re
import unicodedata

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rdoc", ".rst", ".html", ".htm", ".url", ".text")
TERMS_WORDS = (
    "readme",
    "readfirst",
    "りーどみー",
    "リードミー",
    "読んでください",
    "読んで下さい",
    "よんでください",
    "はじめに",
    "最初に",
    "必読",
    "利用規約",
    "使用規約",
    "規約",
    "利用条件",
    "使用条件",
    "利用許諾",
    "使用許諾",
    "注意事項",
    "説明書",
    "terms",
    "termsofuse",
    "license",
    "licence",
    "copying",
    "ライセンス",
    "らいせんす",
    "使用说明",
    "使用說明",
    "说明",
    "說明",
    "必看",
    "必读",
    "必讀",
    "规约",
    "規約",
    "协议",
    "協議",
    "许可",
    "許可",
    "授权",
    "授權",
    "注意事项",
    "注意事項",
)
MAX_TERMS_BYTES = 1 << 20  # a readme larger than this is not read
MAX_TERMS_FILES = 24  # files read per model, nearest folders first
_SEPARATORS = re.compile(r"[\s_\-\.・･~〜～()（）\[\]【】「」『』!！]+")
_MIN_SHARED_PREFIX = 4


def fold(name: str) -> str:
    """A file name as compared here: NFKC, case-folded, without spaces and separators."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", name).casefold())


def _split(name: str) -> tuple[str, str]:
    """(stem, suffix) with the suffix lower-cased; '' when the name has no text suffix."""
    lower = name.lower()
    for suffix in TEXT_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], suffix
    return name, ""


def is_text_name(name: str) -> bool:
    """A text file's name: a text suffix, or no suffix at all."""
    stem, suffix = _split(name)
    return bool(suffix) or "." not in stem.lstrip(".")


def is_terms_name(name: str) -> bool:
    """Whether a file called `name` is a readme or terms file by its name."""
    if not is_text_name(name) or name.startswith("._"):
        return False
    stem = fold(_split(name)[0])
    return any(word in stem for word in TERMS_WORDS)


def is_model_text(name: str, model_file: str) -> bool:
    """A text file named after the model (`miku4.3-jp.txt` for `miku4.3.pmx`)."""
    stem, suffix = _split(name)
    if not suffix or name.startswith("._"):
        return False
    text, model = fold(stem), fold(model_file.rsplit(".", 1)[0])
    shared = 0
    for a, b in zip(text, model, strict=False):
        if a != b:
            break
        shared += 1
    return shared >= min(_MIN_SHARED_PREFIX, len(model)) and shared > 0


def is_companion(name: str, model_file: str | None) -> bool:
    """A terms file in a folder of the model's chain (`model_file` given for its own folder)."""
    return is_terms_name(name) or (model_file is not None and is_model_text(name, model_file))
