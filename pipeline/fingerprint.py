"""A fingerprint of the code that decides a dataset's bytes.

Resuming reuses a complete shard only when its sidecar was written by the same code. The hash
covers exactly what a shard's bytes depend on: the project modules that rendering a shard can
import — the static import closure of `pipeline.worker`, every `import` statement counted,
including those inside functions — and the data files of their packages (shaders, schemas).
Editing the report, the tracker, the CLI or training never invalidates a shard.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("mmd_loader", "render", "pipeline", "poses", "media")
ENTRY = "pipeline.worker"
DATA_SUFFIXES = (".glsl", ".vert", ".frag", ".yaml")


def module_path(name: str) -> Path | None:
    """The source file of a project module (a package's `__init__.py`), or None."""
    parts = name.split(".")
    if parts[0] not in PROJECT:
        return None
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports_of(path: Path, name: str) -> set[str]:
    """Project modules `path` (module `name`) imports, with the packages above each."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            parts = target.split(".")
            found.update(".".join(parts[:k]) for k in range(1, len(parts) + 1))
    return {m for m in found if module_path(m) is not None}


def closure(entry: str = ENTRY) -> list[str]:
    """Every project module reachable from `entry` by imports, sorted."""
    seen, todo = set(), [entry]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_path(name)
        if path is not None:
            todo.extend(imports_of(path, name) - seen)
    return sorted(seen)


def fingerprint_files(entry: str = ENTRY) -> list[Path]:
    """The files the fingerprint hashes: the closure's sources and its packages' data files."""
    files = {p for m in closure(entry) if (p := module_path(m)) is not None}
    packages = {p.parent for p in files}
    for folder in packages:
        for path in folder.rglob("*"):
            if path.suffix in DATA_SUFFIXES and "__pycache__" not in path.parts:
                files.add(path)
    return sorted(files)


@functools.cache
def code_fingerprint() -> str:
    """sha256 over (relative path, bytes) of `fingerprint_files()`, in sorted order."""
    sha = hashlib.sha256()
    for path in fingerprint_files():
        sha.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
        sha.update(path.read_bytes() + b"\0")
    return sha.hexdigest()
