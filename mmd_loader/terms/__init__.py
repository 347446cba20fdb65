"""Terms of use of MMD models, read from the readme and terms files beside them and from their
comments: a small rule-based clause reader for Japanese, English and Chinese.

- `files`: which files are terms files (by name; text named after the model in its folder),
- `text`: numbered lines, headings, lists and sentences,
- `rules`: the vocabulary (clause keywords, forbidding/allowing/conditional markers),
- `clauses`: reading a clause's value from a sentence and its context,
- `licences`, `fields`: licences by name; author, title, contact, URL and copyright lines,
- `reader`: one model's terms as JSON (`read_terms`), `sources`: finding its files on disk.
"""

from mmd_loader.terms.reader import (
    Source,
    comment_sources,
    is_unknown,
    read_terms,
    source_from_bytes,
    summary,
    unknown_terms,
)
from mmd_loader.terms.rules import CLAUSES, VALUES
from mmd_loader.terms.sources import find_sources, model_terms

TERMS_FLAG = "terms_unknown"

__all__ = [
    "CLAUSES",
    "TERMS_FLAG",
    "VALUES",
    "Source",
    "comment_sources",
    "find_sources",
    "is_unknown",
    "model_terms",
    "read_terms",
    "source_from_bytes",
    "summary",
    "unknown_terms",
]
