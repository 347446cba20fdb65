"""Scanning models packed in archives against scanning them unpacked:
`python bench/bench_archives.py [MMD_DIR]`.

Each top-level folder of MMD_DIR is copied as it is (unpacked) and packed as one archive in each
of zip (deflate), 7z (LZMA, solid) and tar.gz. Every file of each tree is scanned as `thagen scan`
scans it (`pipeline.catalog.scan_file`: load, face detection, the quality renders, terms of use),
in one process, tree after tree within each round (so slow phases of a loaded machine hit every
tree alike), best of `rounds`. Costs are CPU seconds of this process (all its threads: the
decompression, the renders, the files written), which other work on the machine disturbs far
less than wall time. It prints the CPU seconds per tree, each archive format's overhead over the
unpacked folders, the archive work alone (listing, extracting the models, their textures and
terms files: `mmd_loader.archive.extract_archive_models`) and, of it, libarchive decompressing
every member (written nowhere).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FORMATS = {
    "zip": ("zip", None, ".zip"),
    "7z": ("7zip", None, ".7z"),
    "tar.gz": ("pax", "gzip", ".tar.gz"),
}


def _pack(folder: Path, archive: Path, fmt: str, filt: str | None) -> None:
    import libarchive

    with libarchive.file_writer(str(archive), fmt, filt) as writer:
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            data = file.read_bytes()
            writer.add_file_from_memory(file.relative_to(folder.parent).as_posix(), len(data), data)


def build_trees(mmd_dir: Path, work: Path) -> dict[str, Path]:
    """'unpacked' and one tree per archive format, each holding every top-level folder."""
    trees = {"unpacked": work / "unpacked"}
    folders = sorted(p for p in mmd_dir.iterdir() if p.is_dir())
    for folder in folders:
        shutil.copytree(folder, trees["unpacked"] / folder.name)
    for name, (fmt, filt, suffix) in FORMATS.items():
        trees[name] = work / name.replace(".", "_")
        trees[name].mkdir()
        for folder in folders:
            _pack(
                trees["unpacked"] / folder.name, trees[name] / f"{folder.name}{suffix}", fmt, filt
            )
    return trees


def _scan_tree(tree: Path) -> tuple[float, int]:
    from pipeline.catalog import find_files, scan_file

    files, _ = find_files(tree)
    start = time.process_time()
    rows = [row for file in files for row in scan_file(file, None, None, tree)]
    return time.process_time() - start, sum(bool(r["usable"]) for r in rows)


def _extract_tree(tree: Path) -> float:
    from mmd_loader.archive import extract_archive_models, is_archive

    start = time.process_time()
    for file in sorted(tree.iterdir()):
        if is_archive(file):
            for _ in extract_archive_models(file, companions=True):
                pass
    return time.process_time() - start


def _decode_tree(tree: Path) -> float:
    """CPU seconds libarchive takes to decompress every member, writing nothing."""
    import os

    from mmd_loader.archive_io import archive_pass

    start = time.process_time()
    for file in sorted(tree.iterdir()):
        fd = os.open(file, os.O_RDONLY)
        try:
            with archive_pass(fd) as reader:
                for _ in reader.entries():
                    for _ in reader.chunks():
                        pass
        finally:
            os.close(fd)
    return time.process_time() - start


def _size(tree: Path) -> int:
    return sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())


def bench_archives(mmd_dir: Path, rounds: int = 3) -> dict[str, float]:
    """Print and return the best scan CPU seconds per tree."""
    with tempfile.TemporaryDirectory(prefix="thagen-bench-archives-") as folder:
        trees = build_trees(Path(mmd_dir), Path(folder))
        sizes = {n: _size(t) for n, t in trees.items()}
        best = dict.fromkeys(trees, float("inf"))
        extract = dict.fromkeys(FORMATS, float("inf"))
        decode = dict.fromkeys(FORMATS, float("inf"))
        usable = {}
        for _ in range(rounds):
            for name, tree in trees.items():
                seconds, usable[name] = _scan_tree(tree)
                best[name] = min(best[name], seconds)
                if name in FORMATS:
                    extract[name] = min(extract[name], _extract_tree(tree))
                    decode[name] = min(decode[name], _decode_tree(tree))
    base = best["unpacked"]
    print(
        f"{'tree':<9} {'MB':>6} {'scan CPU s':>10} {'usable':>6} {'overhead':>9} "
        f"{'archive work CPU s':>19} {'of which decompression':>22}"
    )
    for name in trees:
        over = "" if name == "unpacked" else f"{100 * (best[name] / base - 1):+8.1f}%"
        work = "" if name == "unpacked" else f"{extract[name]:19.2f} {decode[name]:22.2f}"
        figures = f"{sizes[name] / 1e6:6.1f} {best[name]:10.2f} {usable[name]:6d}"
        print(f"{name:<9} {figures} {over:>9} {work}")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mmd_dir", nargs="?", type=Path, default=ROOT.parent / "shared" / "mmd")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bench_archives(args.mmd_dir, args.rounds)


if __name__ == "__main__":
    main()
