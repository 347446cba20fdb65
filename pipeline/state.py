"""A dataset folder's run state under `.state/`: a sidecar per complete shard
(`NAME.done.json`: its digest, records and failures) and per running shard
(`NAME.progress.json`: the character being rendered and the examples written so far)."""

from __future__ import annotations

import contextlib
import json
import re
import time
from pathlib import Path
from typing import Any

from media.locks import STATE_DIR
from media.owned import read_owned, subfolder, write_atomic
from pipeline.atomic import target_of
from pipeline.shards import read_keys, verify_shard

MAX_DONE_BYTES = 1 << 27  # a sidecar lists its shard's records: ~0.5 kB per example
MAX_PROGRESS_BYTES = 1 << 16
VERIFY_MODES = ("full", "quick")
# What the writers of a dataset folder write through temporary names (see `sweep_temporaries`).
# NAME.PID-TOKEN.tmp; NAME.PID.tmp and NAME.tmp of earlier versions.
OURS = re.compile(
    r"^(?:(?:train|val|test)-\d+\.tar|(?:catalog|manifest|failures)\.parquet|[\w.-]+\.json)$"
)


def state_dir(out: str | Path) -> Path:
    return Path(out) / STATE_DIR


def done_path(out: str | Path, name: str) -> Path:
    return state_dir(out) / f"{name}.done.json"


def progress_path(out: str | Path, name: str) -> Path:
    return state_dir(out) / f"{name}.progress.json"


def write_json_atomic(path: Path, data: Any) -> None:
    """`data` as JSON in `path` (in a real `.state/`-like folder beside its parent), atomically,
    never through a link."""
    subfolder(path.parent.parent, path.parent.name)
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, indent=1)
    write_atomic(path, text.encode("utf-8"), "state")


def sweep_temporaries(out: str | Path, shards: set[str] | None = None) -> list[str]:
    """Remove the temporary files writers left in `out` and its `.state/` (a killed run's);
    only those of `shards` when given (a slice run, beside other slices' writers). Only for a
    run holding the folder's lock, once no earlier writer of those files is left."""
    removed = []
    for folder in (Path(out), state_dir(out)):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            target = target_of(path.name)
            if not target or not OURS.match(target) or not path.is_file() or path.is_symlink():
                continue
            if shards is not None and target.split(".", 1)[0] not in shards:
                continue
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def read_done(
    out: str | Path, name: str, expected_hash: str | None = None, verify: str = "quick"
) -> dict | None:
    """A complete shard's sidecar, or None when the shard must be (re)done.

    Complete means: the sidecar parses, matches `expected_hash`, and the tar is a regular file
    with the recorded size and the recorded example keys in order. `verify="full"` also checks
    the tar's sha256 against the sidecar (every byte read: see `pipeline.shards.verify_shard`).
    """
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
    try:
        done = json.loads(read_owned(done_path(out, name), MAX_DONE_BYTES).decode("utf-8"))
        tar = Path(out) / f"{name}.tar"
        if expected_hash is not None and done["spec_hash"] != expected_hash:
            return None
        digest = done["digest"]
        sha256 = digest["sha256"] if verify == "full" else None
        if not verify_shard(tar, int(digest["bytes"]), sha256):
            return None
        if read_keys(tar) != [r["key"] for r in done["records"]]:
            return None
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    except Exception:  # tarfile.TarError and anything else a damaged file raises
        return None
    return done


def read_progress(out: str | Path, name: str) -> tuple[str, int]:
    """(character, examples written) from a running shard's progress sidecar."""
    try:
        data = json.loads(read_owned(progress_path(out, name), MAX_PROGRESS_BYTES).decode("utf-8"))
        return str(data["character"]), int(data["examples"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return "", 0


class Progress:
    """Writes NAME.progress.json: the character being worked on (the culprit if the process dies)
    and the examples written so far (for the progress bar), at most every `interval` seconds."""

    def __init__(self, out: Path, name: str, interval: float = 0.5) -> None:
        self.path, self.interval, self.last = progress_path(out, name), interval, 0.0
        self.character, self.examples = "", 0

    def start(self, character: str) -> None:
        self.character = character
        self.write()

    def example(self) -> None:
        self.examples += 1
        if time.monotonic() - self.last > self.interval:
            self.write()

    def write(self) -> None:
        """Best effort: a progress file that cannot be written (disk full) is not an error of
        the character being rendered; the shard's own writes report the disk."""
        with contextlib.suppress(OSError):
            write_json_atomic(self.path, {"character": self.character, "examples": self.examples})
        self.last = time.monotonic()

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
