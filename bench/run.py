"""`make bench`: every stage's figures in one run (load, render, pipeline: tha1 at 256² and tha3
at 512², decode, cluster, networks, motion: a five-minute dance to poses), with the load average
before it, since other work on the machine slows the rates."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mmd-dir", type=Path, default=ROOT.parent / "shared" / "mmd")
    parser.add_argument(
        "--only",
        choices=["load", "render", "pipeline", "decode", "cluster", "networks", "motion"],
        action="append",
    )
    args = parser.parse_args()
    if not args.mmd_dir.is_dir():
        print(f"real models not found at {args.mmd_dir} (pass --mmd-dir)", file=sys.stderr)
        return 2
    miku = args.mmd_dir / "animasa_miku_v2_3" / "miku_v2.pmd"
    stages = {
        "load": ("bench.bench_load", "bench_load", (args.mmd_dir,)),
        "render": ("bench.bench_render", "bench_render", (miku,)),
        "pipeline": ("bench.bench_pipeline", "bench_pipelines", (miku,)),
        "decode": ("bench.bench_decode", "bench_decode", (miku,)),
        "cluster": ("bench.bench_cluster", "bench_cluster", (miku,)),
        "networks": ("bench.bench_networks", "bench_networks", ()),
        "motion": ("bench.bench_motion", "bench_motion", ()),
    }
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    for name, (module, function, call_args) in stages.items():
        if args.only and name not in args.only:
            continue
        print(f"\n== {name} ==", flush=True)
        getattr(importlib.import_module(module), function)(*call_args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
