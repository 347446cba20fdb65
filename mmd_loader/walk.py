"""Finding model files under a folder, with one rule for symlinks, and every skip reported.

The rule (the one texture references already follow, `mmd_loader.textures`): inside a folder
thagen walks or resolves names within, a symlink is followed only when its resolved target
stays inside that folder. The folder the user names (the root) may itself be a symlink: naming
it is the user's choice. Each real folder and file is taken once, under its own path, so a
symlink to a folder inside the root adds nothing (that folder is walked as itself), and a
symlink named like a model is followed only when its target is not a model file the walk lists
anyway. Nothing is skipped silently: `walk_models` returns, beside the files, every entry it
did not take that looked like a model or a folder of them:

- a symlink (to a folder, or named like a model) whose target leaves the root,
- a symlink to a folder inside the root (walked as itself) or to a model file listed as itself,
- a broken symlink named like a model,
- an entry named like a model that is not a regular file (FIFO, socket, device, folder),
- a folder that cannot be listed,
- a file or folder whose name is not valid UTF-8 (no catalog, manifest or report can hold it;
  it is named with its odd bytes as `\\xNN`).

Entries whose names do not end in a model suffix are simply not models and are not reported.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from media.files import kind_of
from mmd_loader.archive import ARCHIVE_SUFFIXES

MODEL_FILE_SUFFIXES = (".pmd", ".pmx", *ARCHIVE_SUFFIXES)


@dataclass(frozen=True)
class Skipped:
    """An entry the walk did not take, and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{shown(self.path)}: {self.reason}"


def _utf8(name: str) -> bool:
    """Whether a file name (as Python decodes it, undecodable bytes as surrogates) is UTF-8."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(path: str | Path) -> str:
    """`path` as text any output takes: bytes that are not UTF-8 written as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def walk_models(
    root: str | Path, suffixes: tuple[str, ...] = MODEL_FILE_SUFFIXES
) -> tuple[list[Path], list[Skipped]]:
    """(model files, skipped entries) under `root`, both sorted by path.

    Files keep the paths they were found at under `root` (a followed symlink is listed under
    its own name). A `root` that is a file is returned as it is (whatever its suffix); one that
    is neither a file nor a folder is skipped; a missing one raises FileNotFoundError.
    """
    root = Path(root)
    try:
        info = os.stat(root)
    except FileNotFoundError:
        raise FileNotFoundError(f"{root}: no such file or folder") from None
    if not stat.S_ISDIR(info.st_mode):
        if stat.S_ISREG(info.st_mode):
            return [root], []
        return [], [Skipped(root, f"is {kind_of(info.st_mode)}, not a regular file")]
    real_root = Path(os.path.realpath(root))
    files: list[Path] = []
    skipped: list[Skipped] = []
    todo = [root]
    while todo:
        folder = todo.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as error:
            skipped.append(Skipped(folder, f"cannot list the folder ({error.strerror or error})"))
            continue
        for entry in entries:
            path = folder / entry.name
            named = entry.name.lower().endswith(suffixes)
            if not _utf8(entry.name):  # a catalog, a manifest, a report cannot hold the name
                if named or entry.is_dir():
                    skipped.append(Skipped(path, "its name is not valid UTF-8: rename it"))
                continue
            if entry.is_symlink():
                taken = _follow(path, named, real_root, root, suffixes)
                if isinstance(taken, Skipped):
                    skipped.append(taken)
                elif taken is not None:
                    files.append(taken)
            elif entry.is_dir(follow_symlinks=False):
                todo.append(path)
            elif named:
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISREG(mode):
                    files.append(path)
                else:
                    skipped.append(Skipped(path, f"is {kind_of(mode)}, not a regular file"))
    return sorted(files), sorted(skipped, key=lambda s: s.path)


def _follow(
    path: Path, named: bool, real_root: Path, root: Path, suffixes: tuple[str, ...]
) -> Path | Skipped | None:
    """The file the symlink `path` contributes, why it contributes none, or None (not a model)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        if not named:
            return None
        return Skipped(path, f"broken symlink (to {os.readlink(path)})")
    is_dir = stat.S_ISDIR(mode)
    if not (is_dir or named):
        return None
    target = Path(os.path.realpath(path))
    if not target.is_relative_to(real_root):
        return Skipped(path, f"symlink to {target}, outside {root}: not followed")
    if is_dir:
        return Skipped(path, f"symlink to the folder {target}, which is walked as itself")
    if not stat.S_ISREG(mode):
        return Skipped(path, f"symlink to {kind_of(mode)}, not a regular file")
    if target.name.lower().endswith(suffixes):
        return Skipped(path, f"symlink to {target}, which is listed as itself")
    return path
