"""The one error every loading failure becomes, and how messages quote what a file says.

Names decoded from a file (morphs, materials, bones, zip members) can be anything a lying length
field makes them: tens of kilobytes of garbage. Messages quote them with `quote`, which keeps
at most `QUOTE_LIMIT` characters; a `ModelLoadError` also caps its whole reason at
`REASON_LIMIT` characters, so no failure row or log line grows with its input.
"""

from __future__ import annotations

from pathlib import Path

QUOTE_LIMIT = 80  # characters of a decoded name quoted in a message
REASON_LIMIT = 1000  # characters of a ModelLoadError's reason
ELLIPSIS = "…"


def quote(text: object, limit: int = QUOTE_LIMIT) -> str:
    """`repr` of `text` cut to `limit` characters, with "…" inside the quotes when cut."""
    text = str(text)
    if len(text) > limit:
        text = text[:limit] + ELLIPSIS
    return repr(text)


def cap(text: str, limit: int = REASON_LIMIT) -> str:
    """`text` cut to `limit` characters, ending in "…" when cut."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


class ModelLoadError(Exception):
    """A model file could not be loaded. Names the file and, when known, the byte offset."""

    def __init__(self, path: str | Path, message: str, offset: int | None = None) -> None:
        self.path = str(path)
        self.offset = offset
        self.reason = cap(str(message))
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{self.path}{where}: {self.reason}")


class MotionLoadError(ValueError):
    """A motion (VMD) or pose (VPD) file could not be read. Names the file and, when known, the
    byte offset (VMD) or line (VPD); the reason is capped like a `ModelLoadError`'s."""

    def __init__(
        self,
        path: str | Path,
        message: str,
        offset: int | None = None,
        line: int | None = None,
    ) -> None:
        self.path = str(path)
        self.offset = offset
        self.line = line
        self.reason = cap(str(message))
        where = f" at byte {offset}" if offset is not None else ""
        where += f" line {line}" if line is not None else ""
        super().__init__(f"{self.path}{where}: {self.reason}")
