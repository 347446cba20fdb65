"""`make transfer`: do networks trained on procedural characters alone animate real ones?

Trains the `cpu-small` morpher and rotator on N procedural characters only (`thagen
dataset-default`) and evaluates them on the real face models of ../shared/mmd, beside the same
networks trained on half of the real models' families and evaluated on the other half. The two
halves are both folds of a 2-fold cross-validation (`--folds 1` for one), so the real-trained
figures also cover every real model, each evaluated by the network that never saw its family.

Fairness: both arms train for the same steps at the same batch, from the same seed, on the same
number of training examples (`--train-examples`, spread evenly over the arm's characters; the
real arm can only round to whole examples per model), at the same image size and lighting, and
every figure is measured on the same real examples: for each fold, the procedural networks are
evaluated on exactly the held-out half the real-trained ones are evaluated on. Both arms' totals
cover all the usable real models (the procedural arm evaluated once on all of them; the real arm
fold by fold).

Prints L1, RMSE and SSIM (RGBA in [0, 1], `training.evaluate`) of the identity baseline and of
each network, the share of the identity's L1 (and RMSE) each network removes, and the ratio of
the procedural arm's share to the real arm's. Training results do not depend on the machine's
load (only the minutes do). Writes `WORK/transfer.json`; image grids of real models stay in WORK
(never commit them: their authors forbid redistribution).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NETWORKS = ("morpher", "rotator")


def thagen(*args: str) -> None:
    """Run a `thagen` subcommand as a user would (rendering in processes of its own)."""
    exe = Path(sys.executable).parent / "thagen"
    command = [str(exe) if exe.exists() else "thagen", *args]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def real_families(mmd_dir: Path, work: Path) -> list[list[str]]:
    """The usable real models' families (lists of character ids), from `thagen scan`."""
    import pandas as pd

    catalog = work / "catalog.parquet"
    if not catalog.exists():
        thagen("scan", str(mmd_dir), "--out", str(catalog))
    table = pd.read_parquet(catalog)
    table = table[table["usable"].astype(bool)]
    groups = table.groupby("family")["character"].apply(sorted)
    return [groups[f] for f in sorted(groups.index)]


def halves(families: list[list[str]]) -> list[list[str]]:
    """Family ids split into two halves of about equal model counts (largest family first,
    each to the half with fewer models, then fewer families; ties by family id)."""
    parts: list[list[list[str]]] = [[], []]
    for family in sorted(families, key=lambda f: (-len(f), f[0])):
        count = [sum(len(f) for f in p) for p in parts]
        parts[min((0, 1), key=lambda i: (count[i], len(parts[i]), i))].append(family)
    return [[c for f in part for c in f] for part in parts]


def make_real_dataset(
    mmd_dir: Path, out: Path, held_out: list[str], examples: int, size: int, seed: int
) -> None:
    if (out / "dataset.json").exists():
        return
    thagen(
        "generate",
        "--models",
        str(mmd_dir),
        "--out",
        str(out),
        "--size",
        str(size),
        "--examples",
        str(examples),
        "--seed",
        str(seed),
        "--train",
        "1",
        "--val",
        "0",
        "--test",
        "0",
        "--no-progress",
        "--val-characters",
        *held_out,
    )


def make_procedural_dataset(out: Path, characters: int, examples: int, size: int) -> None:
    if (out / "dataset.json").exists():
        return
    thagen(
        "dataset-default",
        "--out",
        str(out),
        "--characters",
        str(characters),
        "--held-out",
        "0",
        "--examples",
        str(examples),
        "--size",
        str(size),
        "--no-progress",
    )


@dataclass(frozen=True)
class Job:
    """One network trained on one dataset and evaluated on real examples."""

    network: str
    data: Path
    run: Path  # this network's run folder
    evals: tuple[tuple[str, Path, str], ...]  # (name, dataset, split)
    steps: int
    seed: int

    @property
    def done(self) -> Path:
        return self.run / "transfer_eval.json"


def run_job(job: Job) -> dict:
    """Train (resuming a run cut short) and evaluate, on one thread: several jobs run side by
    side, one per core, which on a shared or busy machine is far faster than one job on two
    threads. Returns {eval name: result} (also written to `job.done`)."""
    import torch

    from training import checkpoint as ckpt
    from training.configs import get_config
    from training.evaluate import evaluate
    from training.trainer import train

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)  # near-zero activations otherwise slow CPU convolutions
    begin = time.perf_counter()
    resume = any((job.run / "checkpoints").glob("step_*"))
    if resume and ckpt.read_state(ckpt.find_checkpoint(job.run))["step"] >= job.steps:
        checkpoint = job.run
    else:
        config = get_config("cpu-small")
        checkpoint = train(
            job.network,
            job.data,
            job.run,
            config,
            steps=job.steps,
            seed=job.seed,
            resume=resume,
            log=lambda _: None,
        ).checkpoint
    minutes = (time.perf_counter() - begin) / 60
    results = {"minutes": minutes}
    for name, dataset, split in job.evals:
        results[name] = evaluate(checkpoint, dataset, split, grid_path=job.run / f"{name}.png")
    job.done.write_text(json.dumps(results, indent=2))
    return results


def run_jobs(jobs: list[Job], workers: int, log) -> list[dict]:
    """Every job's results (read back when done before), `workers` jobs at a time."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    results: dict[int, dict] = {}
    todo = []
    for k, job in enumerate(jobs):
        if job.done.exists():
            results[k] = json.loads(job.done.read_text())
        else:
            todo.append(k)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max(1, min(workers, len(todo) or 1)), mp_context=context) as pool:
        futures = {pool.submit(run_job, jobs[k]): k for k in todo}
        for future in futures:
            k = futures[future]
            results[k] = future.result()
            job = jobs[k]
            log(f"  {job.network} on {job.data.name}: {results[k]['minutes']:.1f} min training")
    return [results[k] for k in range(len(jobs))]


def combine(results: list[dict]) -> dict:
    """Example-weighted means of several `evaluate` results of one network."""
    total = sum(r["examples"] for r in results)
    rows = results[0]["results"]
    return {
        "examples": total,
        "results": {
            row: {
                m: sum(r["results"][row][m] * r["examples"] for r in results) / total
                for m in rows[row]
            }
            for row in rows
        },
    }


def below(result: dict, row: str, metric: str) -> float:
    """Share of the identity's error (L1, RMSE) that `row` removes; for SSIM, the share of
    the identity's dissimilarity (1 − SSIM) removed."""
    ident, value = result["results"]["identity"][metric], result["results"][row][metric]
    if metric == "ssim":
        ident, value = 1 - ident, 1 - value
    return (ident - value) / ident if ident else math.nan


def table(title: str, procedural: dict, real: dict | None) -> list[str]:
    """Rows: identity, procedural-trained and real-trained outputs on the same examples."""
    lines = [
        f"{title} ({procedural['examples']} examples)",
        f"  {'output':34}{'L1':>9}{'RMSE':>9}{'SSIM':>8}{'L1 below id':>13}{'RMSE below':>12}",
    ]

    def row(name: str, result: dict, key: str) -> None:
        v = result["results"][key]
        cells = f"{v['l1']:9.5f}{v['rmse']:9.4f}{v['ssim']:8.4f}"
        if key != "identity":
            l1, rmse = below(result, key, "l1"), below(result, key, "rmse")
            cells += f"{100 * l1:+12.1f}%{100 * rmse:+11.1f}%"
        lines.append(f"  {name:34}{cells}")

    row("identity", procedural, "identity")
    for key in procedural["results"]:
        if key == "identity":
            continue
        row(f"{key}, trained on procedural", procedural, key)
        if real is None:
            continue
        row(f"{key}, trained on real (other half)", real, key)
        p, r = below(procedural, key, "l1"), below(real, key, "l1")
        ratio = p / r if r > 0 else math.nan
        lines.append(f"  {'':34}procedural / real L1 reduction: {ratio:.2f}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mmd-dir", type=Path, default=ROOT.parent / "shared" / "mmd")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "transfer")
    parser.add_argument("--characters", type=int, default=100, help="procedural characters")
    parser.add_argument("--train-examples", type=int, default=1200, help="per arm")
    parser.add_argument("--eval-examples", type=int, default=60, help="per real model")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, choices=(1, 2), default=2)
    parser.add_argument(
        "--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS), help="to train"
    )
    parser.add_argument("--jobs", type=int, default=2, help="networks trained at once")
    parser.add_argument("--tag", default="", help="names the procedural dataset and run folders")
    parser.add_argument(
        "--procedural-only",
        action="store_true",
        help="skip training on real models (reuse WORK's real-arm results when present)",
    )
    args = parser.parse_args()
    if not args.mmd_dir.is_dir():
        print(f"real models not found at {args.mmd_dir} (pass --mmd-dir)", file=sys.stderr)
        return 2
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    begin = time.perf_counter()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    log = lambda text: print(text, flush=True)  # noqa: E731

    everyone = halves(real_families(args.mmd_dir, work))
    parts = everyone[: args.folds]
    models = sum(len(p) for p in everyone)
    per_proc = math.ceil(args.train_examples / args.characters)
    log(
        f"procedural: {args.characters} characters x {per_proc} examples; real: {models} models "
        f"in halves of {len(everyone[0])} and {len(everyone[1])}; {args.steps} steps each"
    )

    proc_name = f"procedural{args.tag}-{args.characters}x{per_proc}"
    proc_data = work / proc_name
    stamp = time.perf_counter()
    make_procedural_dataset(proc_data, args.characters, per_proc, args.size)
    log(f"procedural dataset in {(time.perf_counter() - stamp) / 60:.1f} min")

    # Evaluation: one real dataset, half 0 in its train split and half 1 in val (fold k is
    # evaluated on the half it did not train on); training: one dataset per fold, the fold's
    # half in train.
    stamp = time.perf_counter()
    eval_data = work / "real-eval"
    make_real_dataset(
        args.mmd_dir, eval_data, everyone[1], args.eval_examples, args.size, args.seed + 1
    )
    evals = {"fold0": (eval_data, "val"), "fold1": (eval_data, "train")}
    folds = []
    for k, held_in in enumerate(parts):
        held_out = [c for p in everyone for c in p if c not in held_in]
        per_real = math.ceil(args.train_examples / len(held_in))
        data = work / f"real-fold{k}-x{per_real}"
        make_real_dataset(args.mmd_dir, data, held_out, per_real, args.size, args.seed)
        folds.append(data)
    log(f"real datasets in {(time.perf_counter() - stamp) / 60:.1f} min")

    evals = {"fold0": (eval_data, "val"), "fold1": (eval_data, "train")}
    proc_run = work / f"run-{proc_name}"
    jobs = [
        Job(
            n,
            proc_data,
            proc_run / n,
            tuple((k, *v) for k, v in evals.items()),
            args.steps,
            args.seed,
        )
        for n in args.networks
    ]
    real_jobs = []
    for k, data in enumerate(folds):
        fold = f"fold{k}"
        for n in args.networks:
            job = Job(
                n,
                data,
                work / f"run-real-{fold}" / n,
                ((fold, *evals[fold]),),
                args.steps,
                args.seed,
            )
            if not args.procedural_only or job.done.exists():
                real_jobs.append((k, job))
    log(f"training {len(jobs) + len(real_jobs)} networks, {args.jobs} at a time, one thread each")
    stamp = time.perf_counter()
    results = run_jobs(jobs + [j for _, j in real_jobs], args.jobs, log)
    log(f"trained and evaluated in {(time.perf_counter() - stamp) / 60:.1f} min")
    procedural = dict(zip(args.networks, results[: len(jobs)], strict=True))
    real: dict[str, list[dict]] = {n: [] for n in args.networks}
    for (k, job), result in zip(real_jobs, results[len(jobs) :], strict=True):
        real[job.network].append(result[f"fold{k}"])

    summary = {"args": {k: str(v) for k, v in vars(args).items()}, "networks": {}}
    for network in args.networks:
        print(f"\n== {network} ==")
        p_folds = [procedural[network][f"fold{k}"] for k in range(2)]
        r_folds = real[network]
        for k, r in enumerate(r_folds):
            title = f"fold {k}: real half {1 - k} (held out by both)"
            print("\n".join(table(title, p_folds[k], r)))
        p_all = combine(p_folds)
        r_all = combine(r_folds) if len(r_folds) == 2 else None
        print("\n".join(table("all real models", p_all, r_all)))
        summary["networks"][network] = {
            "procedural": p_all,
            "real": r_all,
            "procedural_folds": p_folds,
            "real_folds": r_folds,
        }
    minutes = (time.perf_counter() - begin) / 60
    summary["minutes"] = minutes
    (work / "transfer.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(f"\n{minutes:.1f} min in all; {work / 'transfer.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
