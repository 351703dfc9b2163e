#!/usr/bin/env bash
# Issue 11: the fair test of DEMC's claim at the `hour` budget (Split Fashion, full stream, half
# width, 20 updates per arrival), one run after another on one thread. Each run goes to $OUT/<tag>;
# a finished run is skipped, an interrupted one resumed. The reservoir VAE-GAN is sized to the final
# memory (M^t + clusters) of the DEMC run of the same seed, read from its results.json. Usage:
#   SRC=/path/to/frozen/src OUT=runs/hour bash scripts/experiments/demc-hour.sh [TAG ...]
# The loop (skip, resume, CAP) is run_experiments in lib.sh.
OUT=${OUT:-runs/hour}
source "$(dirname "$0")/lib.sh"

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
  # session 6: the model-free statistic (pixel MMD^2 of the batch against M^t, z against permutations)
  "demc-mmd-s0|split_fashion/demc|budget=hour seed=0 memory.novelty_statistic=mmd memory.novelty_test=absolute memory.novelty_threshold=8.0"
  "demc-mmd-s1|split_fashion/demc|budget=hour seed=1 memory.novelty_statistic=mmd memory.novelty_test=absolute memory.novelty_threshold=8.0"
)

run_experiments "$@"
