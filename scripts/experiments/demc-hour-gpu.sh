#!/usr/bin/env bash
# Issue 11's hour table on one lent GPU, in one call of the device tool: the eight runs of
# demc-hour.sh as four chains side by side (each reservoir starts when the DEMC run it is sized to
# has finished). Expects the Fashion-MNIST files and the cached FID classifier carried in .gpu/
# (fashion-mnist/, cache/feature-classifiers/). Runs that are not finished after LIMIT seconds are
# stopped (SIGTERM: a checkpoint is written there, but only the logs and results come back).
# Everything but checkpoints is packed into $OUT/hour-gpu.tgz. Usage on the device machine:
#   LIMIT=520 bash scripts/experiments/demc-hour-gpu.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
LIMIT=${LIMIT:-520}
PACK=${OUT:-/tmp/out}
export PY=${PY:-python3} SRC=$PWD/src OUT=$PWD/runs/hour-gpu PYTHONUNBUFFERED=1
export STREAMVAE_CACHE=$PWD/.gpu/cache
mkdir -p /usr/share/datasets "$OUT" "$PACK" && cp -r .gpu/fashion-mnist /usr/share/datasets/
t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"

chains=("demc-s0 reservoir-s0" "demc-s1 reservoir-s1" "demc-released-s0 finetune-s0" "demc-released-s1 finetune-s1")
for ch in "${chains[@]}"; do
  # shellcheck disable=SC2086
  bash scripts/experiments/demc-hour.sh $ch >>"$OUT/chains.log" 2>&1 &
done
while [ -n "$(jobs -rp)" ] && [ $(( $(date +%s) - t0 )) -lt "$LIMIT" ]; do
  sleep 15
  el=$(( $(date +%s) - t0 ))
  if [ $(( el % 60 )) -lt 15 ]; then
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader | sed "s/^/[$el s] gpu /"
    for d in "$OUT"/*/; do [ -f "$d/train.jsonl" ] && echo "  $(basename "$d"): $(tail -c 300 "$d/train.jsonl" | tail -n 1 | cut -c1-90)"; done
  fi
done
if [ -n "$(jobs -rp)" ]; then
  echo "limit reached after $(( $(date +%s) - t0 )) s: stopping the chains"
  pkill -f demc-hour.sh; pkill -TERM -f "streamvae.cli run.*hour-gpu"; sleep 20
fi
cat "$OUT/chains.log"
for d in "$OUT"/*/; do
  r="$d/results.json"
  if [ -f "$r" ]; then echo "$(basename "$d"): finished"; else echo "$(basename "$d"): NOT finished"; tail -n 2 "$d/log.txt"; fi
done
tar czf "$PACK/hour-gpu.tgz" --exclude=checkpoint.pt -C "$(dirname "$OUT")" "$(basename "$OUT")"
ls -la "$PACK"; echo "total $(( $(date +%s) - t0 )) s"
