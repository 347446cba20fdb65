"""Load time per model: `python bench/bench_load.py [MMD_DIR]` prints a table (best of N runs)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mmd_loader import ModelLoadError, load  # noqa: E402


def bench_load(mmd_dir: Path, runs: int = 5) -> list[dict]:
    """Load every .pmd/.pmx under `mmd_dir` `runs` times; print and return the best times."""
    rows = []
    files = sorted(p for p in Path(mmd_dir).rglob("*") if p.suffix.lower() in (".pmd", ".pmx"))
    for path in files:
        best, vertices, error = float("inf"), 0, ""
        for _ in range(runs):
            start = time.perf_counter()
            try:
                vertices = len(load(path).positions)
            except ModelLoadError as e:
                error = e.reason
                break
            best = min(best, time.perf_counter() - start)
        ms = best * 1000 if not error else float("nan")
        rate = vertices / best if not error and best > 0 else float("nan")
        rows.append(
            {
                "file": str(path.relative_to(mmd_dir)),
                "vertices": vertices,
                "ms": ms,
                "vertices_per_s": rate,
                "error": error,
            }
        )
    width = max([len(r["file"]) for r in rows] + [4])
    print(f"{'file':<{width}}  {'vertices':>9}  {'ms':>8}  {'vertices/s':>12}")
    for r in rows:
        tail = f"  {r['error']}" if r["error"] else ""
        print(
            f"{r['file']:<{width}}  {r['vertices']:>9}  {r['ms']:>8.1f}  "
            f"{r['vertices_per_s']:>12,.0f}{tail}"
        )
    _compare_with_pymeshio(Path(mmd_dir), rows)
    return rows


def _compare_with_pymeshio(mmd_dir: Path, rows: list[dict]) -> None:
    """The same files through pymeshio's own readers (one run each), for scale."""
    from pymeshio.pmd import reader as pmd_reader
    from pymeshio.pmx import reader as pmx_reader

    for name in ("animasa_miku_v2_3/miku_v2.pmd", "j3_animasa_miku_pmx/index.pmx"):
        path = mmd_dir / name
        ours = next((r["ms"] for r in rows if r["file"] == name), None)
        if not path.is_file() or ours is None:
            continue
        reader = pmd_reader if path.suffix == ".pmd" else pmx_reader
        start = time.perf_counter()
        reader.read_from_file(str(path))
        theirs = (time.perf_counter() - start) * 1000
        print(f"pymeshio alone, {name}: {theirs:.0f} ms (thagen: {ours:.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mmd_dir", nargs="?", type=Path, default=ROOT.parent / "shared" / "mmd")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    bench_load(args.mmd_dir, args.runs)


if __name__ == "__main__":
    main()
