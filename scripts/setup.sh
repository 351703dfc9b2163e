#!/usr/bin/env bash
# One-time set-up on a fresh machine: Debian's Fashion-MNIST (when we can install it), a virtual
# environment with the pinned CPU torch, and streamvae itself. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing Debian's dataset-fashion-mnist ..."
    apt-get install -y dataset-fashion-mnist >/dev/null 2>&1 \
      || (apt-get update >/dev/null 2>&1 && apt-get install -y dataset-fashion-mnist >/dev/null 2>&1) \
      || echo "could not install dataset-fashion-mnist; put the files under \$STREAMVAE_DATA/fashion-mnist/"
  else
    echo "note: Fashion-MNIST is not at /usr/share/datasets/fashion-mnist; run 'sudo apt-get install dataset-fashion-mnist'" \
         "or put the IDX files under \$STREAMVAE_DATA/fashion-mnist/"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
# the pinned CPU build first (a local wheel here; an unpinned torch would pull a multi-GB CUDA build),
# then streamvae, whose torch range it satisfies, so pip keeps it
.venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null \
  || .venv/bin/pip install -q "torch==2.13.0"
.venv/bin/pip install -q -e ".[dev]"
