# Shared by the resumable experiment scripts beside this file (demc-novelty.sh; the published tables
# are `streamvae reproduce` specs, not scripts). A script sets OUT's default and EXPERIMENTS, sources this file and calls
#   run_experiments "$@"
# EXPERIMENTS entries are "tag|config|overrides": config is a file under configs/ without .yaml,
# overrides are --set KEY=VALUE pairs separated by spaces, and CAP(<tag>) in them is replaced by
# the final memory of run <tag> (its results.json; the entry waits, skipped, until that run is done).
# Each run goes to $OUT/<tag> on THREADS threads (default 1) with its log in $OUT/<tag>/log.txt; a
# finished run is skipped and an interrupted one resumed from its checkpoint, so a script can simply
# be started again after a stop. With tags as arguments only those entries run (in EXPERIMENTS order).
# Environment: OUT (where runs go), PY (the python, default .venv/bin/python), THREADS (threads per
# run for new runs, default 1; a resumed run keeps its config.yaml's), SRC (optional: pins
# the code the runs import, a git worktree's src/, so that editing this tree does not change runs
# already queued; the configs are then read from beside it too).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PY=${PY:-.venv/bin/python}
CONFIGS=configs
if [ -n "${SRC:-}" ]; then export PYTHONPATH="$SRC"; CONFIGS="$SRC/../configs"; fi

run_experiments() {
  mkdir -p "$OUT"
  local want=" $* " e tag cfg sets dir src cap s rc
  local -a args
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
    for s in $sets threads=${THREADS:-1}; do args+=(--set "$s"); done
    echo "$(date -u +%FT%TZ) start $tag ($sets)" | tee -a "$OUT/chain.log"
    if [ -f "$dir/checkpoint.pt" ]; then
      $PY -m streamvae.cli run --resume "$dir" --no-progress >>"$dir/log.txt" 2>&1; rc=$?
    else
      mkdir -p "$dir"
      $PY -m streamvae.cli run "$CONFIGS/$cfg.yaml" "${args[@]}" --no-progress --out "$dir" >"$dir/log.txt" 2>&1; rc=$?
    fi
    echo "$(date -u +%FT%TZ) end $tag rc=$rc" | tee -a "$OUT/chain.log"
  done
}
