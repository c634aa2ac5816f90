#!/usr/bin/env bash
# Run the whole test suite (creates .venv and installs pgan first when needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest -q -n 2 --durations=15 "$@"
