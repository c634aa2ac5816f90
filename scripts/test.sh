#!/usr/bin/env bash
# Run the whole test suite (creates .venv and installs pgan first when needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# two test processes on two cores: one BLAS/OpenMP thread each, no oversubscription
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
exec .venv/bin/python -m pytest -q -n 2 --durations=15 "$@"
