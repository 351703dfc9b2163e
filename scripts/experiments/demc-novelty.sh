#!/usr/bin/env bash
# DEMC issue 11: does the novelty test find the task switches, and what do the released-vs-fixed
# options do to recon_sse? Short runs on a 1/5-size Split Fashion stream (1,200 images per class,
# 37.5 arrivals per task, 187 arrivals) at the `fast` budget (half width, 6 updates per arrival),
# one thread each, no FID or probes. A finished run is skipped, so the script can be restarted.
#   OUT=runs/demc-dev bash scripts/experiments/demc-novelty.sh [TAG ...]
#   .venv/bin/python scripts/experiments/demc-novelty-table.py runs/demc-dev/*/   # the table
# SRC (optional) pins the code the runs import (e.g. a copy of src/; lib.sh).
# The z-score of every check is logged whatever the test, so the absolute runs also show where the
# relative test would first have fired.
# The loop is run_experiments in lib.sh (each run's log is in $OUT/<tag>/log.txt; runs made before
# it have theirs in $OUT/<tag>.log).
OUT=${OUT:-runs/demc-dev}
source "$(dirname "$0")/lib.sh"
# every setting the runs compare is pinned here (the released ones), so that they do not depend on the
# config file's defaults or its `fast` preset
COMMON="budget=fast stream.samples_per_class=1200 eval.fid=false eval.probe=false eval.test_size=2000
eval.curve_test_size=500 memory.novelty_test=absolute memory.novelty_threshold=5.0 memory.novelty_bn=batch
memory.cluster_descriptor=cluster memory.novelty_window=50 memory.novelty_warmup=10 memory.novelty_z=3.0
learner.gp_legacy=true learner.rmsprop_init=one learner.vae_weight=1.0"

# tag | overrides (on configs/split_fashion/demc.yaml, after COMMON)
NOVELTY=(
  "released|"
  "rel-eval-random-z4|memory.novelty_test=relative memory.novelty_bn=eval memory.cluster_descriptor=random memory.novelty_z=4.0"
  "abs-eval-0.25|memory.novelty_bn=eval memory.novelty_threshold=0.25"
  "rel-eval-random|memory.novelty_test=relative memory.novelty_bn=eval memory.cluster_descriptor=random"
  "rel-batch-random|memory.novelty_test=relative memory.cluster_descriptor=random"
  "rel-eval-cluster|memory.novelty_test=relative memory.novelty_bn=eval"
  "rel-eval-tempmem|memory.novelty_test=relative memory.novelty_bn=eval memory.cluster_descriptor=temporary-memory"
  "rel-eval-cluster-z4|memory.novelty_test=relative memory.novelty_bn=eval memory.novelty_z=4.0"
  "gp-standard|learner.gp_legacy=false"
  "rmsprop-zero|learner.rmsprop_init=zero"
  "gp-standard-vae0.19|learner.gp_legacy=false learner.vae_weight=0.19"
  "released-s1|seed=1"
  "gp-standard-s1|seed=1 learner.gp_legacy=false"
  "rmsprop-zero-s1|seed=1 learner.rmsprop_init=zero"
  "rel-eval-random-z4-s1|seed=1 memory.novelty_test=relative memory.novelty_bn=eval memory.cluster_descriptor=random memory.novelty_z=4.0"
  # session 5: the reconstruction-error statistic (memory.novelty_statistic=recon)
  "rel-recon-z4|memory.novelty_test=relative memory.novelty_statistic=recon memory.novelty_z=4.0"
  "rel-recon-z4-s1|seed=1 memory.novelty_test=relative memory.novelty_statistic=recon memory.novelty_z=4.0"
  # session 6: the model-free statistic (pixel MMD^2 against M^t as a permutation z-score), absolute test
  "mmd-abs8|memory.novelty_statistic=mmd memory.novelty_threshold=8.0"
  "mmd-abs8-s1|seed=1 memory.novelty_statistic=mmd memory.novelty_threshold=8.0"
)

EXPERIMENTS=()
for e in "${NOVELTY[@]}"; do
  IFS='|' read -r tag sets <<<"$e"
  EXPERIMENTS+=("$tag|split_fashion/demc|${COMMON//$'\n'/ } $sets")
done
run_experiments "$@"
