#!/usr/bin/env bash
# Run every GPU path of pgan against its CPU result and time both (bench/gpu_check.py says what
# is compared):  bash scripts/gpu-check.sh OUT_DIR [--budget 300] [--only knn,mmd] [--dry-run]
# Writes OUT_DIR/gpu-check.json and OUT_DIR/gpu-check.md (the table for BENCHMARKS.md); exits 0
# with one line and runs nothing when torch sees no CUDA GPU. Installs nothing: the interpreter is
# $PYTHON, else .venv/bin/python, else python3.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -n "${PYTHON:-}" ]; then
  py="$PYTHON"
elif [ -x "$root/.venv/bin/python" ]; then
  py="$root/.venv/bin/python"
else
  py=python3
fi
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$py" "$root/bench/gpu_check.py" "$@"
