"""`thagen scan`: every model under a folder (archives included) inspected once, as
`catalog.parquet`.

A character is identified by its model file's bytes and the bytes of the textures it uses
(`pipeline.identity`; for a zip, of the member and its textures): identical ones are one
character, kept at the first path in sorted order with the other paths listed in `duplicates`.
Characters whose faces are one mesh form a family (`pipeline.families`); splits are drawn per
family. Models that fail to load, take longer than the per-model time limit, or lack the THA1
face are kept, unusable, with their reasons (and, for failures, the stage). Each row holds the
model's terms of use (`terms`, JSON: `mmd_loader.terms`), read from its comments and the terms
files beside it up to the scanned root; a model whose terms are not found is flagged
`terms_unknown`.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from media.owned import write_atomic
from pipeline.deadline import DEFAULT_MODEL_TIMEOUT, Deadline, ModelTimeout
from pipeline.families import FaceSignature, assign_families, face_signature
from pipeline.splits import SplitConfig, assign_splits

if TYPE_CHECKING:
    from pipeline.runners import Runner

COLUMNS = [
    "character",
    "path",
    "member",
    "name",
    "format",
    "usable",
    "stage",
    "reasons",
    "roles",
    "head_top",
    "head_chin",
    "head_center_x",
    "head_half_width",
    "vertices",
    "faces",
    "morphs",
    "split",
    "duplicates",
    "family",
    "face",
    "flags",
    "terms",
    "warnings",
]


def find_files(root: str | Path) -> tuple[list[Path], list]:
    """(model files and zips, skipped entries) under `root` (a folder or a single file), sorted.

    The walk and its symlink rule are `mmd_loader.walk.walk_models`'s; skipped entries
    (`Skipped`: path and reason) are what it did not follow, for the caller to report.
    """
    from mmd_loader.walk import walk_models

    return walk_models(root)


def scan_file(
    path: str | Path,
    overrides: dict[str, dict] | None = None,
    timeout: float | None = DEFAULT_MODEL_TIMEOUT,
    root: str | Path | None = None,
) -> list[dict]:
    """Catalog rows for one file: one row for a model, one per model inside an archive (and
    inside an archive in it); a refused inner archive is one unusable row.

    `overrides` is the face-overrides table as plain dicts (`GenerateConfig.overrides`);
    `timeout` the per-model time limit in seconds (None: none); `root` the scanned folder that
    terms files are looked for up to (default: the file's folder)."""
    from mmd_loader import ModelLoadError
    from mmd_loader.archive import extract_archive_models, is_archive

    path = Path(path)
    root = Path(root) if root is not None else path.parent
    if not is_archive(path):
        return [_inspect(path, None, path, overrides, timeout, (root, None))]
    rows = []
    try:
        for found in extract_archive_models(path, companions=True):
            if found.error is not None:
                digest = hashlib.sha256(f"{_sha256(path)}:{found.name}".encode()).hexdigest()
                row = _row(path, found.name, digest)
                rows.append({**row, "stage": "load", "reasons": [str(found.error)]})
                continue
            where = (root, found.root)
            rows.append(
                _inspect(path, found.name, found.path, overrides, timeout, where, found.model)
            )
    except ModelLoadError as error:
        row = _row(path, None, _sha256(path))
        return [{**row, "stage": "load", "reasons": [str(error)]}]
    return rows


def _inspect(
    path: Path,
    member: str | None,
    file: Path,
    overrides: dict[str, dict] | None,
    timeout: float | None = DEFAULT_MODEL_TIMEOUT,
    where: tuple[Path, Path | None] = (Path("."), None),
    parsed=None,
) -> dict:
    """Hash, load and inspect one model file (`file` is the extracted copy for archive members;
    `where` is (the scanned root, the extraction's root); `parsed`, the model already parsed
    while extracting it) within the time limit; a model over it is an unusable row naming the
    stage."""
    from mmd_loader.inspection import terms_flag
    from mmd_loader.terms import is_unknown

    row = _row(path, member, _sha256(file))
    loaded: list = []  # the model, once loaded
    try:
        with Deadline(timeout, "load") as clock:
            result = _inspect_within(
                row, path, member, file, overrides, clock, where, parsed, loaded
            )
    except ModelTimeout as error:
        reason = f"{_label(path, member)}: {error}"
        result = {**row, "stage": error.stage, "reasons": [reason]}
    # Terms are read outside the model's time limit: their files are bounded in size and count,
    # and reading them is not the model's work.
    model = loaded[0] if loaded else None
    terms = _terms(model, path, member, file, where, row["character"])
    if model is not None and result["format"] and is_unknown(terms):
        result["flags"] = _json([*read_flags(result), terms_flag()])
    return {**result, "terms": _json(terms)}


def _terms(model, path: Path, member: str | None, file: Path, where, digest: str) -> dict:
    """The model's terms: read from its comments and the terms files up to the scanned root."""
    from mmd_loader.terms import model_terms

    root, tree = where
    if member:
        return model_terms(model, file, root, path, tree, digest)
    return model_terms(model, file, root, model_sha256=digest)


def _inspect_within(
    row: dict,
    path: Path,
    member: str | None,
    file: Path,
    overrides: dict[str, dict] | None,
    clock: Deadline,
    where: tuple[Path, Path | None],
    parsed=None,
    loaded: list | None = None,
) -> dict:
    from mmd_loader import ModelLoadError, detect_face, load
    from mmd_loader.inspection import summarize
    from mmd_loader.loader import placed
    from mmd_loader.overrides import OverridesError, overrides_for, table_from_json
    from pipeline.identity import character_id

    table = table_from_json(overrides or {})
    label = Path(path) / member if member else Path(path)
    try:
        forced = overrides_for(label, table)
    except OverridesError as error:  # a bad sidecar costs its model, not the scan
        return {**row, "stage": "overrides", "reasons": [str(error)]}
    try:
        model = placed(parsed, file.parent) if parsed is not None else load(file)
    except ModelLoadError as error:
        return {**row, "stage": "load", "reasons": [str(error).replace(str(file), str(label))]}
    if loaded is not None:
        loaded.append(model)
    clock.stage = "identity"
    character = character_id(row["character"], model)
    clock.stage = "face"
    roles = detect_face(model, forced)
    report = summarize(model, roles, file, None)
    clock.stage = "family"
    face = face_signature(model, roles) if roles.usable else None
    clock.stage = "flags"
    flags = model_flags(model, roles)
    box = report.head_box or {}
    return {
        **row,
        "character": character,
        "face": face.to_bytes() if face else None,
        "flags": json.dumps(flags, ensure_ascii=False, sort_keys=True),
        "warnings": json.dumps(report.warnings, ensure_ascii=False),
        "name": report.name,
        "format": report.format,
        "usable": report.usable,
        "reasons": list(report.reasons),
        "roles": json.dumps(report.roles, ensure_ascii=False, sort_keys=True),
        "head_top": box.get("top"),
        "head_chin": box.get("chin"),
        "head_center_x": box.get("center_x"),
        "head_half_width": box.get("half_width"),
        "vertices": report.vertices,
        "faces": report.faces,
        "morphs": report.morphs,
    }


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def row_terms(row) -> dict:
    """A catalog row's terms as a dict (empty: not read, which counts as unknown)."""
    text = row.get("terms") if hasattr(row, "get") else getattr(row, "terms", None)
    return json.loads(text) if isinstance(text, str) and text else {}


def model_flags(model, roles) -> list[dict]:
    """Face detection's flags and, for a usable model, the flags of its own renders."""
    flags = [dict(f) if isinstance(f, dict) else _as_dict(f) for f in getattr(roles, "flags", [])]
    return flags + render_flags_of(model, roles)


def render_flags_of(model, roles) -> list[dict]:
    """The flags of a usable model's own renders (`pipeline.quality`), rendered in this
    process's renderer (none for an unusable model)."""
    from pipeline.quality import flag, quality_settings, render_flags
    from pipeline.worker import STATE

    flags: list[dict] = []
    if roles is None or not roles.usable:
        return flags
    try:
        renderer = STATE.renderer_with(quality_settings())
        STATE.current = None  # the renderer's model is no longer a shard's character
        renderer.set_model(model, roles)
        flags += render_flags(renderer, model, roles)
    except Exception as error:  # the model will fail at generate too; say so here
        flags.append(flag("render_failed", f"{type(error).__name__}: {error}"[:300]))
    return flags


def _as_dict(item) -> dict:
    return {k: getattr(item, k, None) for k in ("code", "role", "value", "message")}


def read_flags(row) -> list[dict]:
    """A catalog row's flags as a list of dicts."""
    text = row.get("flags")
    return json.loads(text) if isinstance(text, str) and text else []


def read_warnings(row) -> list[str]:
    """A catalog row's load warnings (skipped morph entries, substituted or missing textures,
    ...) as a list of strings."""
    text = row.get("warnings")
    return json.loads(text) if isinstance(text, str) and text else []


def _row(path: Path, member: str | None, character: str) -> dict:
    return {
        "character": character,
        "path": str(path),
        "member": member,
        "name": None,
        "format": None,
        "usable": False,
        "stage": None,
        "reasons": [],
        "roles": "{}",
        "head_top": None,
        "head_chin": None,
        "head_center_x": None,
        "head_half_width": None,
        "vertices": 0,
        "faces": 0,
        "morphs": 0,
        "split": None,
        "duplicates": [],
        "family": None,
        "face": None,
        "flags": "[]",
        "terms": "{}",
        "warnings": "[]",
    }


def _label(path: Path, member: str | None) -> str:
    return f"{path}/{member}" if isinstance(member, str) and member else str(path)


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                sha.update(chunk)
    except OSError as error:
        sha.update(f"unreadable:{path}:{error}".encode())
    return sha.hexdigest()


def scan(
    roots: Sequence[str | Path],
    splits: SplitConfig | None = None,
    jobs: int = -1,
    progress: bool = True,
    overrides: dict[str, dict] | None = None,
    runner: Runner | None = None,
    timeout: float | None = DEFAULT_MODEL_TIMEOUT,
) -> pd.DataFrame:
    """Inspect every model under `roots` on `runner` (default: `jobs` local processes, all
    cores for -1); one row per character. A file whose task fails (even a worker that dies on
    it) becomes an unusable row naming the failure; `timeout` is the per-model time limit."""
    from tqdm import tqdm

    from pipeline.runners import LocalRunner

    found = [find_files(root) for root in roots]
    files = sorted({f.resolve() for part, _ in found for f in part})
    roots_of: dict[Path, Path] = {}
    for root, (part, _) in zip(roots, found, strict=True):
        top = Path(root).resolve() if Path(root).is_dir() else Path(root).resolve().parent
        for f in part:
            roots_of.setdefault(f.resolve(), top)
    skipped = [str(s) for _, part in found for s in part]
    for line in skipped:  # every entry the walk did not follow is reported
        print(f"skipped {line}", file=sys.stderr)
    own = runner is None
    runner = runner or LocalRunner(max(jobs, 0))
    parts: list[list[dict]] = [[] for _ in files]
    try:
        bar = tqdm(total=len(files), desc="scan", unit="file", disable=not progress)
        items = [(f, overrides, timeout, roots_of.get(f)) for f in files]
        for index, outcome in runner.map(scan_task, items):
            if isinstance(outcome, BaseException):
                row = _row(files[index], None, _sha256(files[index]))
                reason = f"{files[index]}: scan failed: {outcome}"
                outcome = [{**row, "stage": "load", "reasons": [reason]}]
            parts[index] = outcome
            bar.update(1)
        bar.close()
    finally:
        if own:
            runner.close()
    table = build_catalog([row for part in parts for row in part], splits)
    table.attrs["skipped"] = skipped
    return table


def scan_task(item: tuple) -> list[dict]:
    """`scan_file` on one (path, overrides, timeout[, root]), as the runner submits it."""
    return scan_file(*item)


def build_catalog(rows: list[dict], splits: SplitConfig | None = None) -> pd.DataFrame:
    """Deduplicate rows by character (first path in sorted order wins), group the characters
    into families by their faces and assign splits per family."""
    rows = sorted(rows, key=lambda r: (r["path"], r["member"] or ""))
    kept: dict[str, dict] = {}
    for row in rows:
        first = kept.get(row["character"])
        if first is None:
            kept[row["character"]] = {c: row.get(c) for c in COLUMNS} | {
                "duplicates": list(row["duplicates"])
            }
        else:
            first["duplicates"].append(_label(Path(row["path"]), row["member"]))
    table = pd.DataFrame(list(kept.values()), columns=COLUMNS)
    faces = {r.character: FaceSignature.from_bytes(r.face) for r in table.itertuples()}
    families = assign_families(faces)
    table["family"] = [families[c] for c in table["character"]]
    split = assign_splits(table["character"], splits or SplitConfig(), families)
    table["split"] = [split[c] for c in table["character"]]
    return table.reset_index(drop=True)


def family_table(catalog: pd.DataFrame) -> pd.DataFrame:
    """Families with more than one file (duplicates included): family, split, files."""
    rows = []
    for family, members in catalog.groupby("family", sort=True):
        files = [
            label
            for r in members.sort_values(["path", "member"], na_position="first").itertuples()
            for label in (_label(Path(r.path), r.member), *r.duplicates)
        ]
        if len(files) > 1:
            splits = sorted(set(members["split"]))
            rows.append({"family": family, "split": ", ".join(splits), "files": files})
    return pd.DataFrame(rows, columns=["family", "split", "files"])


def write_catalog(table: pd.DataFrame, path: str | Path) -> Path:
    """Write the catalog as parquet (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: table.to_parquet(f, index=False), "catalog")
    return path


def read_catalog(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no catalog (make one with `thagen scan`)")
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable catalog ({error})") from None
    return check_catalog(table, path)


def check_catalog(table: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """A catalog read back from parquet: every column there (a ValueError naming `path`
    otherwise), list columns as lists, members as text or None."""
    missing = set(COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(
            f"{path}: not a catalog of this thagen (missing columns {sorted(missing)}); "
            "make it again with `thagen scan`"
        )
    for column in LIST_COLUMNS:  # parquet gives arrays back; the catalog holds lists
        table[column] = [_as_list(v) for v in table[column]]
    table["member"] = [m if isinstance(m, str) else None for m in table["member"]]
    return table


LIST_COLUMNS = ("reasons", "duplicates")


def _as_list(value) -> list[str]:
    """A list column's cell as a list of strings (parquet reads lists back as arrays)."""
    if value is None or isinstance(value, float):
        return []
    return [str(v) for v in value]
