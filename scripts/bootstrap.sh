#!/usr/bin/env bash
# Create .venv (when missing) and install pgan with its test extras into it.
# Idempotent: a second run does nothing unless pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "creating .venv with $($PY --version)" >&2
    "$PY" -m venv .venv
fi
stamp=.venv/.pgan-installed
want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    echo "installing pgan and its dependencies into .venv (first run: a few minutes)" >&2
    .venv/bin/python -m pip install -q --upgrade pip
    # torch/torchvision first, pinned: pip takes these from the local wheel cache here
    .venv/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
    .venv/bin/python -m pip install -q -e '.[dev]'
    echo "$want" > "$stamp"
fi
