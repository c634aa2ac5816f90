#!/usr/bin/env bash
# The main job: real handwritten digits -> dataset file -> members/holdout/reference splits.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
out=${OUT:-out/digits}
mkdir -p "$out"
pgan data digits --size 16 -o "$out/real.h5"
pgan data split "$out/real.h5" --out-dir "$out/splits" --seed 0
pgan data info "$out/splits/train.h5"
