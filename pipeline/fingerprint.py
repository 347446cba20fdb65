"""A fingerprint of the code that decides a dataset's bytes.

Resuming reuses a complete shard only when its sidecar was written by the same code: the hash
covers every source, shader and schema file of `mmd_loader`, `render` and `pipeline`.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

PACKAGES = ("mmd_loader", "render", "pipeline")
SUFFIXES = (".py", ".glsl", ".vert", ".frag", ".yaml", ".html")


@functools.cache
def code_fingerprint() -> str:
    """sha256 over (relative path, bytes) of the packages' files, in sorted order."""
    root = Path(__file__).resolve().parent.parent
    sha = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.suffix in SUFFIXES and "__pycache__" not in path.parts:
                sha.update(path.relative_to(root).as_posix().encode() + b"\0")
                sha.update(path.read_bytes() + b"\0")
    return sha.hexdigest()
