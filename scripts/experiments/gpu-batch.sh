#!/usr/bin/env bash
# Run experiment chains side by side on one lent GPU, within one call of the device tool, and pack
# what they measured. SCRIPT is one of the resumable experiment scripts beside this one (issue9.sh,
# demc-hour.sh: tags in, a finished run skipped, an interrupted one resumed); each further argument
# is one chain, its tags run one after another (a reservoir sized to a DEMC run goes after it).
# All chains start at once, one CPU thread each, all on the GPU (`device: auto` picks CUDA).
#
# Before the call, here (once): the data and the cached FID classifier travel in .gpu/, which
# .git/info/exclude ignores:
#   echo /.gpu/ >> .git/info/exclude; mkdir -p .gpu/cache
#   cp -r /usr/share/datasets/fashion-mnist .gpu/; cp -r ~/.cache/streamvae/feature-classifiers .gpu/cache/
# The call (carry [".gpu"], timeout_s 600):
#   LIMIT=535 NAME=hour-gpu bash scripts/experiments/gpu-batch.sh demc-hour.sh \
#       "demc-s0 reservoir-s0" "demc-s1 reservoir-s1" "demc-released-s0 finetune-s0" "demc-released-s1 finetune-s1"
# Runs not finished after LIMIT seconds are stopped with SIGTERM (checkpoint written on the device
# machine's disk: the same command again, while the machine is warm, resumes them). Everything but
# checkpoints is packed into $OUT/$NAME.tgz; unpack it here into runs/.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 2 ] || { echo "usage: gpu-batch.sh SCRIPT CHAIN [CHAIN ...] (SCRIPT: issue9.sh or demc-hour.sh)" >&2; exit 2; }
SCRIPT=scripts/experiments/$1; shift
[ -f "$SCRIPT" ] || { echo "gpu-batch.sh: no experiment script $SCRIPT" >&2; exit 2; }
LIMIT=${LIMIT:-535}
NAME=${NAME:-gpu-batch}
PACK=${OUT:-/tmp/out}
export PY=${PY:-python3} SRC=$PWD/src OUT=$PWD/runs/$NAME PYTHONUNBUFFERED=1
export STREAMVAE_CACHE=$PWD/.gpu/cache
mkdir -p "$OUT" "$PACK"
if [ -d .gpu/fashion-mnist ]; then mkdir -p /usr/share/datasets && cp -r .gpu/fashion-mnist /usr/share/datasets/; fi
t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"

for ch in "$@"; do
  # shellcheck disable=SC2086
  bash "$SCRIPT" $ch >>"$OUT/chains.log" 2>&1 &
done
while [ -n "$(jobs -rp)" ] && [ $(( $(date +%s) - t0 )) -lt "$LIMIT" ]; do
  sleep 15
  el=$(( $(date +%s) - t0 ))
  if [ $(( el % 60 )) -lt 15 ]; then
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader | sed "s/^/[$el s] gpu /"
    for d in "$OUT"/*/; do [ -f "$d/train.jsonl" ] && echo "  $(basename "$d"): $(tail -n 1 "$d/train.jsonl" | cut -c1-90)"; done
  fi
done
if [ -n "$(jobs -rp)" ]; then
  echo "limit reached after $(( $(date +%s) - t0 )) s: stopping the chains"
  kill $(jobs -rp) 2>/dev/null; pkill -TERM -f "streamvae.cli run.*runs/$NAME/"; sleep 20
fi
cat "$OUT/chains.log"
for d in "$OUT"/*/; do
  if [ -f "$d/results.json" ]; then echo "$(basename "$d"): finished"
  else echo "$(basename "$d"): NOT finished"; tail -n 2 "$d/log.txt"; fi
done
tar czf "$PACK/$NAME.tgz" --exclude=checkpoint.pt -C "$(dirname "$OUT")" "$(basename "$OUT")"
ls -la "$PACK"; echo "total $(( $(date +%s) - t0 )) s"
