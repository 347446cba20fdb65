#!/bin/bash
# Render a thagen dataset as a SLURM array: each task renders one slice of the shards into the same
# shared folder, then one dependent job merges them (checks every shard, writes the manifest).
#
#   thagen scan /shared/mmd --out /shared/catalog.parquet        # once, on any node
#   sbatch docs/slurm_array.sh                                    # 32 slices
#   # when the array is done: the merge job below runs automatically
#
# Every slice must use the same config (same flags). A slice that dies can simply be resubmitted
# (`sbatch --array=7 docs/slurm_array.sh`): complete shards are skipped, partial ones redone.
#SBATCH --job-name=thagen
#SBATCH --array=0-31
#SBATCH --cpus-per-task=8
#SBATCH --mem=16G
#SBATCH --time=04:00:00
#SBATCH --output=logs/thagen-%A_%a.out
set -euo pipefail

CATALOG=${CATALOG:-/shared/catalog.parquet}
OUT=${OUT:-/shared/datasets/tha1}
SLICES=${SLURM_ARRAY_TASK_COUNT:-32}

thagen generate --catalog "$CATALOG" --out "$OUT" \
    --schema tha1 --seed 0 --examples 100 --size 256 \
    --workers "${SLURM_CPUS_PER_TASK:-8}" --no-progress \
    --shard-index "$SLURM_ARRAY_TASK_ID" --num-shards "$SLICES"

# The last task to finish submits nothing; instead submit the merge once, from task 0, as a job
# that waits for the whole array.
if [ "$SLURM_ARRAY_TASK_ID" -eq 0 ]; then
    sbatch --dependency="afterok:${SLURM_ARRAY_JOB_ID}" --job-name=thagen-merge \
        --cpus-per-task=1 --mem=4G --time=00:30:00 --output=logs/thagen-merge-%j.out \
        --wrap="thagen merge '$OUT' && thagen report '$OUT' -o '$OUT/report.html'"
fi
