"""The training demo: cpu-small morpher and rotator on an existing dataset, evaluated on val.

``run_demo(dataset, out, minutes_budget)`` splits the training budget between the two networks
(``SHARES``: the morpher's small eye and mouth changes need the longer share; each stops at its
step count or its share of the time, and time the morpher leaves unused goes to the rotator),
evaluates both on the val split next to the identity
baseline, and writes ``out/report.html`` with the figures, image grids and minutes per phase.
Dataset generation is the caller's job (``make train-demo`` puts it in front).

Measured on the 2-core machine (24 procedural characters × 100 examples at 128², 20 train / 2 val
characters; val L1 below the identity's): cpu-small as it was (16→64 channels, lr 5e-4, plain L1)
−1 % after 176 steps; the changed-pixel L1 (weight 1) +16 %; 8→32 channels (2.4× faster steps)
+17.5 % after 344 steps, changed weight 0.2 → 0 %, 5 → +18 %; alpha bias 0 or 5 worse than 3. With
cpu-small's final values the morpher reaches +24 % at 500 steps, +36 % at 1000, +47 % at 1500
(8.4 min); the rotator's flow path +55 % after 804 steps (3.3 min).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch

from media.owned import write_atomic
from training.configs import get_config
from training.evaluate import evaluate, format_table
from training.report import reduction, write_report
from training.trainer import train

SHARES = {"morpher": 0.75, "rotator": 0.25}  # of the training budget


def run_demo(
    dataset: Path,
    out: Path,
    minutes_budget: float = 15.0,
    *,
    config: str = "cpu-small",
    steps: int | None = None,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict:
    """Train, evaluate, report; returns ``{"results": [...], "report": path, "seconds": …}``."""
    dataset, out = Path(dataset), Path(out)
    train_config = get_config(config)
    torch.set_flush_denormal(True)  # near-zero activations otherwise slow CPU convolutions
    results, images, notes = [], {}, []
    begin, unused = time.perf_counter(), 0.0
    for network, fraction in SHARES.items():
        share = minutes_budget * 60 * fraction + unused
        run = out / network
        shutil.rmtree(run, ignore_errors=True)
        log(f"training {network} ({config}, ≤ {share / 60:.1f} min)")
        trained = train(
            network, dataset, run, train_config, steps=steps, time_limit=share, seed=seed, log=log
        )
        unused = max(0.0, share - trained.seconds)
        grid_path = out / f"{network}_val.png"
        evaluating = time.perf_counter()
        result = evaluate(
            trained.checkpoint,
            dataset,
            "val",
            out=out / f"{network}_val.json",
            grid_path=grid_path,
        )
        eval_minutes = (time.perf_counter() - evaluating) / 60
        log(format_table(result))
        results.append(result)
        rows = (
            "input / change path / flow path / target"
            if network == "rotator"
            else ("input / output / target")
        )
        images[f"{network}, val examples: {rows}"] = grid_path
        last_sample = sorted((run / "samples").glob("step_*.png"))[-1]
        images[f"{network}, training batch at step {trained.step}: {rows}"] = last_sample
        batch = train_config.batch_size
        notes.append(
            f"{network}: {trained.step} steps of batch {batch} in {trained.seconds / 60:.1f} min, "
            f"evaluated in {eval_minutes:.1f} min; last training loss {trained.loss:.5f}"
        )
        for row in result["results"]:
            if row != "identity":
                notes.append(f"{row}: val L1 {100 * reduction(result, row):+.1f} % below identity")
    seconds = time.perf_counter() - begin
    info = json.loads((dataset / "dataset.json").read_text(encoding="utf-8"))
    notes.append(f"dataset {dataset}: splits {info.get('splits')}, image size {info['image_size']}")
    notes.append(f"total {seconds / 60:.1f} min on {torch.get_num_threads()} torch threads")
    report = write_report(out, "thagen training demo (cpu-small)", results, images, notes)
    summary = {"results": results, "report": str(report), "seconds": seconds, "notes": notes}
    write_atomic(out / "demo.json", json.dumps(summary, indent=2).encode("utf-8"), "summary")
    log(f"wrote {report}")
    return summary
