#!/usr/bin/env bash
# Issue 11: the fair test of DEMC's claim at the `hour` budget (Split Fashion, full stream, half
# width, 20 updates per arrival), one run after another on one thread. Each run goes to $OUT/<tag>;
# a finished run is skipped, an interrupted one resumed. The reservoir VAE-GAN is sized to the final
# memory (M^t + clusters) of the DEMC run of the same seed, read from its results.json. Usage:
#   SRC=/path/to/frozen/src OUT=runs/hour bash scripts/experiments/demc-hour.sh [TAG ...]
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/hour}
PY=${PY:-.venv/bin/python}
CONFIGS=configs
if [ -n "${SRC:-}" ]; then export PYTHONPATH="$SRC"; CONFIGS="$SRC/../configs"; fi
mkdir -p "$OUT"

# tag | config | overrides (CAP(<tag>) = the final memory of run <tag>)
EXPERIMENTS=(
  "demc-s0|split_fashion/demc|budget=hour seed=0"
  "reservoir-s0|split_fashion/reservoir-vaegan|budget=hour seed=0 memory.capacity=CAP(demc-s0)"
  "demc-released-s0|split_fashion/demc|budget=hour seed=0 memory.novelty_test=absolute memory.novelty_bn=batch"
  "finetune-s0|split_fashion/finetune-vaegan|budget=hour seed=0"
  "demc-s1|split_fashion/demc|budget=hour seed=1"
  "reservoir-s1|split_fashion/reservoir-vaegan|budget=hour seed=1 memory.capacity=CAP(demc-s1)"
  "demc-released-s1|split_fashion/demc|budget=hour seed=1 memory.novelty_test=absolute memory.novelty_bn=batch"
  "finetune-s1|split_fashion/finetune-vaegan|budget=hour seed=1"
  # session 5: the reconstruction-error statistic (memory.novelty_statistic=recon) with the relative test
  "demc-recon-s0|split_fashion/demc|budget=hour seed=0 memory.novelty_statistic=recon"
  "demc-recon-s1|split_fashion/demc|budget=hour seed=1 memory.novelty_statistic=recon"
)

want=" $* "
for e in "${EXPERIMENTS[@]}"; do
  IFS='|' read -r tag cfg sets <<<"$e"
  [ $# -gt 0 ] && [[ "$want" != *" $tag "* ]] && continue
  dir="$OUT/$tag"
  if [ -f "$dir/results.json" ]; then echo "skip $tag (finished)"; continue; fi
  if [[ "$sets" =~ CAP\(([a-z0-9-]+)\) ]]; then
    src="$OUT/${BASH_REMATCH[1]}/results.json"
    if [ ! -f "$src" ]; then echo "skip $tag ($src not there yet)"; continue; fi
    cap=$($PY -c "import json, sys; print(json.load(open(sys.argv[1]))['memory'])" "$src")
    sets=${sets/CAP(${BASH_REMATCH[1]})/$cap}
  fi
  args=()
  for s in $sets threads=1; do args+=(--set "$s"); done
  echo "$(date -u +%FT%TZ) start $tag ($sets)" | tee -a "$OUT/chain.log"
  if [ -f "$dir/checkpoint.pt" ]; then
    $PY -m streamvae.cli run --resume "$dir" --no-progress >>"$dir/log.txt" 2>&1; rc=$?
  else
    mkdir -p "$dir"
    $PY -m streamvae.cli run "$CONFIGS/$cfg.yaml" "${args[@]}" --no-progress --out "$dir" >"$dir/log.txt" 2>&1; rc=$?
  fi
  echo "$(date -u +%FT%TZ) end $tag rc=$rc" | tee -a "$OUT/chain.log"
done
