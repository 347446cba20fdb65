"""Every quality flag's false-positive rate, and the measured values its threshold is derived
from, on ../shared/mmd's face models, procedural characters with known truth and procedural
characters broken in known ways (`pipeline.flag_survey`).

    .venv/bin/python scripts/flag_rates.py [--models ../shared/mmd] [--seeds 108] [-v]

The README's table of flags quotes its output (at the default arguments).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.flag_survey import flag_rates, real_models, survey, value_ranges  # noqa: E402
from pipeline.quality import FLAG_CODES, quality_settings  # noqa: E402
from render import Renderer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=ROOT.parent / "shared" / "mmd")
    parser.add_argument("--seeds", type=int, default=108, help="procedural characters")
    parser.add_argument("--json", type=Path, help="also write every character's row here")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per character")
    args = parser.parse_args()
    started = time.time()

    def progress(row) -> None:
        if args.verbose:
            wrong = f"  FALSE {sorted(row.false)}" if row.false else ""
            wrong += f"  MISSED {sorted(row.missed)}" if row.missed else ""
            print(f"  {row.label}: flags {row.flags or '-'}{wrong}", flush=True)

    with Renderer(quality_settings()) as renderer:
        rows = survey(renderer, real_models(args.models), args.seeds, progress=progress)
    kinds = {k: [r for r in rows if r.kind == k] for k in ("real", "procedural", "defect")}
    print(
        f"{len(kinds['real'])} real face models ({sum(not r.problems for r in kinds['real'])} "
        f"usable), {len(kinds['procedural'])} procedural characters, {len(kinds['defect'])} "
        f"broken ones; {time.time() - started:.0f} s"
    )
    rates = flag_rates(rows, FLAG_CODES)
    print(f"\n{'flag':<26}{'real false':>14}{'procedural false':>20}{'true':>6}{'missed':>8}")
    for code, by in rates.items():
        r, p = by["real"], by["procedural"]
        true = sum(v["fired"] - v["false"] for v in by.values())
        missed = sum(v["missed"] for v in by.values())
        print(
            f"{code:<26}{r['false']:>4}/{r['characters']:<3}{r['rate']:>6.1%}"
            f"{p['false']:>9}/{p['characters']:<3}{p['rate']:>6.1%}{true:>6}{missed:>8}"
        )
    for kind, group in kinds.items():
        usable = [r for r in group if not r.problems]
        wrong = [r for r in usable if r.false or r.missed]
        print(f"{kind}: {sum(bool(r.false) for r in usable)} of {len(usable)} carry a false flag, "
              f"{sum(bool(r.missed) for r in usable)} miss a flag")  # fmt: skip
        for r in wrong:
            print(f"  {r.label}: false {sorted(r.false)} missed {sorted(r.missed)}")
    print("\nmeasured on clean characters (min .. max, n; log-normal fit of the pooled ones) and")
    print("on the broken ones:")
    for name, by in sorted(value_ranges(rows).items()):
        print(f"  {name}")
        pooled = [v for k in ("real", "procedural") for v in by.get(k, [])]
        for kind, values in sorted(by.items()):
            print(f"    {kind:<34} {min(values):.4g} .. {max(values):.4g} ({len(values)})")
        positive = np.array([v for v in pooled if v > 0])
        if len(positive) > 2:
            logs = np.log(positive)
            spreads = [np.std(np.log([v for v in by.get(k, []) if v > 0]), ddof=1)
                       for k in ("real", "procedural") if len(by.get(k, [])) > 2]  # fmt: skip
            print(
                f"    {'log fit (pooled mean, widest sd)':<34} mean {logs.mean():.4f} sd "
                f"{max(spreads):.4f}: ±4 sd = {np.exp(logs.mean() - 4 * max(spreads)):.4g} .. "
                f"{np.exp(logs.mean() + 4 * max(spreads)):.4g}"
            )
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    r.__dict__ | {k: sorted(getattr(r, k)) for k in ("required", "allowed")}
                    for r in rows
                ],
                indent=1,
                ensure_ascii=False,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
