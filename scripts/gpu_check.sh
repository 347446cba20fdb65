#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py): render MODEL on an NVIDIA GPU through EGL (images/s),
# generate a small dataset on every GPU, train the full tha1 morpher for 300 steps at batch 25
# in bf16 (steps/s, peak memory), and print the figures. Where there is no NVIDIA GPU (for EGL
# or for torch) it prints one line saying what is missing and exits 1.
#
#   scripts/gpu_check.sh [MODEL] [--examples 500] [--steps 300] [--batch-size 25] [--json F]
#
# MODEL defaults to $THAGEN_MMD_DIR (else ../shared/mmd)/animasa_miku_v2_3/miku_v2.pmd. Training needs a CUDA build of
# torch in the venv (the Makefile pins a CPU build: reinstall torch==2.13.0 with CUDA first).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
if [ ! -x "$PY" ]; then
    echo "gpu_check: $PY not found (run make setup in $ROOT, or set PYTHON)" >&2
    exit 1
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m bench.gpu_check "$@"
