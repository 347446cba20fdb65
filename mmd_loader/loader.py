"""`load(path)`: one entry point for PMD, PMX and archived models; every failure a
ModelLoadError."""

from __future__ import annotations

import os
import tempfile
import weakref
from pathlib import Path
from typing import BinaryIO

from pymeshio import common

from media.files import open_regular
from mmd_loader.binary import MAX_FILE_BYTES, BoundedReader, FormatError
from mmd_loader.errors import ModelLoadError, quote
from mmd_loader.model import Model
from mmd_loader.textures import resolve_textures

HEAD_BYTES = 512  # enough to tell an archive (a tar's magic is at byte 257) from a model


def load(path: str | Path, member: str | None = None, companions: bool = False) -> Model:
    """Load a PMD/PMX file or one model inside an archive (zip, rar, 7z, lzh, tar.*),
    dispatching on the magic bytes.

    For an archive, `member` names the model inside it (backslashes and any letter case
    accepted; `inner.rar/m.pmx` for one inside an inner archive); without it the archive must
    hold exactly one. An archived model's files (the model and the textures it references, and
    with `companions` its terms files) are extracted to a temporary folder kept alive by
    `model.keepalive` and removed when the model is garbage-collected (`model.archive_root` is
    that folder). Only a regular file is read (a FIFO, device or directory is refused before
    anything is opened for reading).
    """
    from mmd_loader.archive import _sniff

    path = Path(path)
    with open_regular(path, "model", error=ModelLoadError) as f:
        try:
            head = f.read(HEAD_BYTES)
            packed = _sniff(head, path.name)
            data = b"" if packed else head + _read_rest(path, f, len(head))
        except OSError as e:
            raise ModelLoadError(path, f"cannot read: {e.strerror or e}") from e
    if packed:
        return _load_archived(path, member, companions)
    if member is not None:
        raise ModelLoadError(path, f"member {quote(member)} given, but the file is not an archive")
    return placed(parse(data, path), path.parent)


def placed(model: Model, folder: Path) -> Model:
    """A parsed model whose textures resolve inside `folder` (as `load` leaves it)."""
    model.root = Path(folder)
    resolve_textures(model)
    return model


def _read_rest(path: Path, f: BinaryIO, done: int) -> bytes:
    """The rest of a model file after its first `done` bytes, within MAX_FILE_BYTES."""
    size = os.fstat(f.fileno()).st_size
    if size > MAX_FILE_BYTES:
        raise ModelLoadError(path, f"file is {size} bytes, over the {MAX_FILE_BYTES} limit")
    rest = f.read(max(size - done, 0) + 1)
    if done + len(rest) > size:
        raise ModelLoadError(path, "file grew while being read")
    return rest


def parse(data: bytes, path: Path) -> Model:
    """Parse PMD or PMX bytes; `path` is only used to name the file in errors and the Model."""
    from mmd_loader.pmd import parse_pmd
    from mmd_loader.pmx import parse_pmx

    if data.startswith(b"PMX "):
        parser = parse_pmx
    elif data.startswith(b"Pmd"):
        parser = parse_pmd
    else:
        raise ModelLoadError(path, f"not a PMD/PMX model (starts with {data[:4]!r})", 0)
    try:
        model = parser(data, path)
    except FormatError as e:
        raise ModelLoadError(path, e.message, e.offset) from None
    except common.ParseException as e:
        raise ModelLoadError(path, str(e.message), _offset(e)) from e
    except Exception as e:  # any other failure inside a parser is malformed input
        raise ModelLoadError(path, f"malformed data ({type(e).__name__}: {e})", _offset(e)) from e
    model.check_group_morphs()  # bounds nested group morphs once; skipped ones become warnings
    return model


def _offset(error: BaseException) -> int | None:
    """The reader position when `error` was raised, from the innermost parser frame."""
    tb, offset = error.__traceback__, None
    while tb is not None:
        reader = tb.tb_frame.f_locals.get("self", tb.tb_frame.f_locals.get("r"))
        if isinstance(reader, BoundedReader):
            offset = reader.pos
        tb = tb.tb_next
    return offset


def _load_archived(path: Path, member: str | None, companions: bool) -> Model:
    """Extract the model and its textures into a temporary folder that lives as long as the
    returned Model.

    The folder (a `TemporaryDirectory` in `model.keepalive`; `model.root` is inside it) holds the
    files the materials' texture paths point to. It is removed when the model is garbage-collected,
    which CPython's reference counting does as soon as the last reference goes (and at exit).
    """
    from mmd_loader.archive import extract_and_parse

    folder = tempfile.TemporaryDirectory(prefix="thagen-model-")
    try:
        inner, model = extract_and_parse(path, member, Path(folder.name), companions=companions)
    except BaseException:
        folder.cleanup()
        raise
    model.root = inner.parent
    model.archive_root = Path(folder.name)
    model.keepalive.append(folder)
    weakref.finalize(model, folder.cleanup)  # explicit: no "implicitly cleaning up" warning
    resolve_textures(model)
    return model
