"""A dataset folder's index, for the readers that must not trust a glob (training, evaluation,
the report): which shards it holds and what their bytes must be.

`thagen generate` writes `manifest.parquet` (one row per example, with its shard's name) and a
sidecar per complete shard, `.state/NAME.done.json` (its size, sha256 and example count)
(docs/contracts.md, "Dataset shards"). Readers take the shards the manifest lists and nothing
else; everything here is untrusted bytes:

- A shard name must be `{split}-{NNNNNN}` (six digits) of the split it is listed under; its file
  `NAME.tar` must be in the folder: a regular file, or a link whose target stays inside the
  folder. A name like `../x` or `/abs/x`, a missing shard, a link leading out and a
  `{split}-*.tar` in the folder that the manifest does not list are each refused in one line.
- `manifest.parquet` is opened without following a link and read within limits checked on its
  footer before any row is decoded (file size, rows, uncompressed bytes of the columns read);
  only the `shard` and `split` columns are read, in batches, so memory grows with the number of
  shards, not with the file.
- A sidecar is bounded JSON with a schema; the shard's size is checked against it when the list
  is made (one `stat` per shard) and its sha256 (`verify_sha256`, every byte read once per
  process, at about 1.8 GB/s) before its first example is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from media.files import brief, open_regular
from media.locks import STATE_DIR
from media.owned import open_owned, read_owned

SPLITS = ("train", "val", "test")
SHARD_NAME = re.compile(r"(train|val|test)-[0-9]{6}")
MAX_MANIFEST_BYTES = 1 << 32  # 4 GiB: tens of millions of examples
MAX_MANIFEST_ROWS = 100_000_000
MAX_COLUMN_BYTES = 1 << 30  # uncompressed bytes of one column in one row group
MAX_SHARDS = 1_000_000
MAX_SIDECAR_BYTES = 1 << 27  # a sidecar lists its shard's records (~0.5 kB per example)
MAX_NAME = 80  # characters of a hostile name quoted in an error
SHA256 = re.compile(r"[0-9a-f]{64}")


class ShardIndexError(ValueError):
    """A dataset folder whose index is missing, damaged or points outside; names the file."""


@dataclass(frozen=True)
class Shard:
    """One shard a dataset's index lists: its file and what its bytes must be."""

    name: str
    split: str
    path: Path
    bytes: int
    sha256: str
    examples: int


def _quote(name: object) -> str:
    text = str(name)
    return repr(text if len(text) <= MAX_NAME else text[:MAX_NAME] + "…")


def check_name(name: object, where: str, split: str | None = None) -> str:
    """`name` if it is a shard name (`{split}-{NNNNNN}`, of `split` when given)."""
    if not isinstance(name, str) or not SHARD_NAME.fullmatch(name):
        raise ShardIndexError(
            f"{where}: shard name {_quote(name)} is not a shard of this folder "
            "({split}-NNNNNN); the index was damaged or tampered with"
        )
    if split is not None and not name.startswith(f"{split}-"):
        raise ShardIndexError(f"{where}: shard {name} is listed under the {split!r} split")
    return name


def shard_file(root: str | Path, name: str, where: str) -> Path:
    """The file of shard `name` in `root`: present, a regular file, and (a link) inside `root`."""
    root = Path(root)
    path = root / f"{check_name(name, where)}.tar"
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise ShardIndexError(f"{path}: listed in {where} but missing") from None
    if stat.S_ISLNK(info.st_mode):
        target = Path(os.path.realpath(path))
        if not target.is_relative_to(Path(os.path.realpath(root))):
            raise ShardIndexError(f"{path}: a link to {target}, outside {root}: not read")
        try:
            info = os.stat(path)
        except OSError:
            raise ShardIndexError(f"{path}: a broken link (to {os.readlink(path)})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ShardIndexError(f"{path}: not a regular file")
    return path


@contextmanager
def open_manifest(root: str | Path, columns: Iterable[str] | Mapping[str, str]) -> Iterator:
    """`pyarrow.parquet.ParquetFile` of `root/manifest.parquet` (never through a link), its
    footer checked against the limits for `columns` (which must be there, as text or numbers;
    a mapping says which: {name: "text" | "number"}) before any row is read."""
    import pyarrow.parquet as pq

    path = Path(root) / "manifest.parquet"
    try:
        fd = open_owned(path, os.O_RDONLY, "manifest")
    except FileNotFoundError:
        raise ShardIndexError(
            f"{path}: not found ({root} is not a complete thagen dataset; finish it with "
            "`thagen generate` or `thagen merge`)"
        ) from None
    with os.fdopen(fd, "rb") as source:
        size = os.fstat(fd).st_size
        if size > MAX_MANIFEST_BYTES:
            raise ShardIndexError(f"{path}: {size} bytes, more than {MAX_MANIFEST_BYTES}")
        try:
            manifest = pq.ParquetFile(source)
            _check_footer(path, manifest, columns)
        except ShardIndexError:
            raise
        except Exception as error:  # pyarrow raises many kinds on damaged bytes
            raise ShardIndexError(
                f"{path}: not a readable manifest ({brief(error, 200)})"
            ) from None
        yield manifest


def _check_footer(path: Path, manifest, columns: Iterable[str] | Mapping[str, str]) -> None:
    import pyarrow as pa

    kinds = dict(columns) if isinstance(columns, Mapping) else dict.fromkeys(columns, "any")
    tests = {
        "text": (pa.types.is_string, pa.types.is_large_string, pa.types.is_null),
        "number": (pa.types.is_integer, pa.types.is_floating, pa.types.is_null),
    }
    tests["label"] = tests["text"]  # text that may be null (a motion's name: only some rows)
    tests["any"] = tests["text"] + tests["number"]
    meta, schema = manifest.metadata, manifest.schema_arrow
    if not 0 <= meta.num_rows <= MAX_MANIFEST_ROWS:
        raise ShardIndexError(f"{path}: {meta.num_rows} rows, more than {MAX_MANIFEST_ROWS}")
    for column, kind in kinds.items():
        if column not in schema.names:
            raise ShardIndexError(f"{path}: no column {column!r}; not a thagen manifest")
        declared = schema.field(column).type
        if not any(test(declared) for test in tests[kind]):
            wanted = {"text": "text", "number": "numbers"}.get(kind, "text or numbers")
            raise ShardIndexError(f"{path}: column {column!r} holds {declared}, not {wanted}")
        index = schema.names.index(column)
        for group in range(meta.num_row_groups):
            size = meta.row_group(group).column(index).total_uncompressed_size
            if not 0 <= size <= MAX_COLUMN_BYTES:
                raise ShardIndexError(
                    f"{path}: column {column!r} declares {size} bytes in row group {group}; "
                    f"the limit is {MAX_COLUMN_BYTES}"
                )


def read_manifest(
    root: str | Path, columns: Mapping[str, str], optional: Mapping[str, str] | None = None
):
    """The `columns` of `root/manifest.parquet` ({name: "text" | "label" | "number"}; text
    never null, a label may be) and those of `optional` the file has, as a pyarrow Table
    (limits as `open_manifest`; a file that does not decode is one `ShardIndexError`)."""
    path = Path(root) / "manifest.parquet"
    with open_manifest(root, columns) as manifest:
        present = manifest.schema_arrow.names
        columns = {**columns, **{k: v for k, v in (optional or {}).items() if k in present}}
        _check_footer(path, manifest, columns)
        try:
            table = manifest.read(columns=list(columns))
        except Exception as error:  # pyarrow raises many kinds on damaged bytes
            raise ShardIndexError(
                f"{path}: not a readable manifest ({brief(error, 200)})"
            ) from None
    for column, kind in columns.items():
        if kind == "text" and table.column(column).null_count:
            raise ShardIndexError(f"{path}: column {column!r} has empty (null) rows")
    return table


def manifest_shards(root: str | Path) -> dict[str, list[str]]:
    """Split → the shard names the manifest lists for it, sorted (each name checked)."""
    path = Path(root) / "manifest.parquet"
    found: dict[str, set[str]] = {}
    with open_manifest(root, {"shard": "text", "split": "text"}) as manifest:
        try:
            for batch in manifest.iter_batches(batch_size=1 << 16, columns=["shard", "split"]):
                shards, splits = (batch.column(i).to_pylist() for i in (0, 1))
                for name, split in set(zip(shards, splits, strict=True)):
                    if split not in SPLITS:
                        raise ShardIndexError(
                            f"{path}: split {_quote(split)} is not one of {SPLITS}"
                        )
                    found.setdefault(split, set()).add(check_name(name, str(path), split))
                if sum(len(s) for s in found.values()) > MAX_SHARDS:
                    raise ShardIndexError(f"{path}: more than {MAX_SHARDS} shards")
        except ShardIndexError:
            raise
        except Exception as error:
            raise ShardIndexError(
                f"{path}: not a readable manifest ({brief(error, 200)})"
            ) from None
    return {split: sorted(names) for split, names in found.items()}


def read_digest(root: str | Path, name: str) -> tuple[int, str, int]:
    """(bytes, sha256, examples) of shard `name` from its sidecar `.state/NAME.done.json`."""
    path = Path(root) / STATE_DIR / f"{name}.done.json"
    try:
        raw = read_owned(path, MAX_SIDECAR_BYTES, "sidecar")
    except FileNotFoundError:
        raise ShardIndexError(
            f"{path}: not found: the shard {name} has no record of its bytes (copy a dataset "
            "folder whole, with its .state/ folder)"
        ) from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise ShardIndexError(f"{path}: not a thagen sidecar ({brief(error, 120)})") from None
    digest = data.get("digest") if isinstance(data, dict) else None
    digest = digest if isinstance(digest, dict) else {}
    size, sha, examples = (digest.get(k) for k in ("bytes", "sha256", "examples"))
    if not (
        type(size) is int
        and type(examples) is int
        and 0 <= size < 1 << 62
        and 0 <= examples < 1 << 62
        and isinstance(sha, str)
        and SHA256.fullmatch(sha)
    ):
        raise ShardIndexError(f"{path}: not a thagen sidecar (no digest with bytes and sha256)")
    return size, sha, examples


def dataset_shards(root: str | Path, split: str) -> list[Shard]:
    """The shards of `split` the index lists, each present with the size its sidecar records;
    a `{split}-*.tar` in the folder the manifest does not list is refused too."""
    root = Path(root)
    if split not in SPLITS:
        raise ShardIndexError(f"unknown split {split!r}; a dataset has {', '.join(SPLITS)}")
    listed = manifest_shards(root)
    names = listed.get(split, [])
    where = f"{root / 'manifest.parquet'}"
    extra = sorted(p.name for p in root.glob(f"{split}-*.tar") if p.name[:-4] not in names)
    if extra:
        raise ShardIndexError(
            f"{root / extra[0]}: a shard that manifest.parquet does not list ({len(extra)} such "
            "files); a leftover of another run? remove it, or regenerate the dataset"
        )
    if not names:
        raise ShardIndexError(f"{where}: no {split} shards")
    shards = []
    for name in names:
        path = shard_file(root, name, where)
        size, sha, examples = read_digest(root, name)
        actual = os.stat(path).st_size
        if actual != size:
            raise ShardIndexError(
                f"{path}: {actual} bytes, but its sidecar records {size}: the shard changed "
                "after it was written (regenerate it: `thagen generate` redoes it)"
            )
        shards.append(Shard(name, split, path, size, sha, examples))
    return shards


_VERIFIED: set[tuple] = set()


def verify_sha256(shard: Shard) -> None:
    """Check the shard's sha256 against its sidecar (once per process per unchanged file)."""
    with open_regular(shard.path, "tar shard") as f:
        info = os.fstat(f.fileno())
        key = (str(shard.path), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        if key in _VERIFIED and info.st_size == shard.bytes:
            return
        sha = hashlib.sha256()
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    if sha.hexdigest() != shard.sha256 or info.st_size != shard.bytes:
        raise ShardIndexError(
            f"{shard.path}: its bytes are not the ones its sidecar records (sha256 differs): "
            "the shard changed after it was written (regenerate it: `thagen generate` redoes it)"
        )
    _VERIFIED.add(key)
