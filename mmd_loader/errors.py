"""The one error every loading failure becomes."""

from __future__ import annotations

from pathlib import Path


class ModelLoadError(Exception):
    """A model file could not be loaded. Names the file and, when known, the byte offset."""

    def __init__(self, path: str | Path, message: str, offset: int | None = None) -> None:
        self.path = str(path)
        self.offset = offset
        self.reason = message
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{self.path}{where}: {message}")
