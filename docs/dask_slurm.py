"""Render a thagen dataset on a SLURM cluster through Dask: dask-jobqueue starts the workers as
SLURM jobs, this process runs the Dask scheduler and `thagen generate --scheduler`.

    pip install dask-jobqueue                     # beside thagen's cluster extra
    thagen scan /shared/mmd --out /shared/catalog.parquet
    python docs/dask_slurm.py --jobs 16           # 16 nodes × 8 single-threaded workers

Each SLURM job is one node-sized block: `processes` Dask worker processes with one thread each
(one GL context per process; llvmpipe rasterises in the worker's own thread), so a job with 8
cores renders like `thagen generate --workers 8` on that node. Every node must see the catalog,
the models and the output folder at the same paths (a shared file system). The worker processes
of one job share its environment, so on GPU nodes use the SLURM array instead
(docs/slurm_array.sh with `--gpus 0,1,2,3`): the local runner binds one GPU per worker process.
Jobs that die are replaced by `scale`; their shards are retried, complete shards are kept.
"""

from __future__ import annotations

import argparse

from dask_jobqueue import SLURMCluster
from distributed import Client

from thagen.cli import main


def run(args: argparse.Namespace) -> int:
    cluster = SLURMCluster(
        queue=args.queue,
        account=args.account,
        cores=args.cores,  # CPU cores per job
        processes=args.cores,  # one single-threaded worker process per core
        memory=args.memory,  # per job; a worker holds one model and one GL context (~0.6 GB)
        walltime=args.walltime,
        job_script_prologue=[f"source {args.venv}/bin/activate"],
        worker_extra_args=["--nthreads", "1"],
    )
    cluster.scale(jobs=args.jobs)
    with Client(cluster) as client:
        client.wait_for_workers(args.cores)  # start when the first job is up; others join
        return main(
            [
                "generate",
                "--catalog", args.catalog,
                "--out", args.out,
                "--examples", str(args.examples),
                "--scheduler", cluster.scheduler_address,
                "--no-progress",
            ]
        )  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=16, help="SLURM jobs (nodes)")
    parser.add_argument("--cores", type=int, default=8, help="cores per job")
    parser.add_argument("--memory", default="16GB", help="memory per job")
    parser.add_argument("--walltime", default="04:00:00")
    parser.add_argument("--queue", default=None)
    parser.add_argument("--account", default=None)
    parser.add_argument("--venv", default=".venv", help="the venv with thagen on every node")
    parser.add_argument("--catalog", default="/shared/catalog.parquet")
    parser.add_argument("--out", default="/shared/datasets/tha1")
    parser.add_argument("--examples", type=int, default=100, help="per character")
    raise SystemExit(run(parser.parse_args()))
