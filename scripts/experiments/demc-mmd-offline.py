"""DEMC's novelty process with the model-free statistic (memory.novelty_statistic=mmd), replayed
without training: which arrivals would expand, and how many task switches that detects.

The mmd statistic needs no model, so where DEMC expands depends only on the stream, the temporary
memory and the random draws: this replay runs the learner's temporary memory (M^t takes the batch; when it
overflows, the batch is compared with a random ``reference`` of M^t as it was before the batch; an
expansion empties M^t, otherwise M^t is cut back to its capacity at random) and scores the result
with the evaluator's ``novelty_detection``. It takes seconds per run, so a threshold can be chosen
for a new stream before any training. The training run draws its randomness differently (the same
distribution), so its expansions can differ from these by a check or two.

    python scripts/experiments/demc-mmd-offline.py --seeds 0 1 2 --thresholds 6 8 10
    python scripts/experiments/demc-mmd-offline.py --set stream.samples_per_class=1200 --profile
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))

from streamvae.data.streams import Stream  # noqa: E402
from streamvae.evaluation.novelty import novelty_detection  # noqa: E402
from streamvae.memory import TEMPORARY_MEMORIES  # noqa: E402
from streamvae.memory.demc import mmd_permutation_z  # noqa: E402
from streamvae.registry import load_config  # noqa: E402


def replay(cfg, seed: int, threshold: float) -> tuple[list[dict], list[int]]:
    """The checks of one run: ``[{"arrival", "novelty", "expanded"}]`` and the stream's task ends."""
    m = cfg.memory
    stream = Stream(cfg.stream, seed=seed)  # data root: STREAMVAE_DATA or the system datasets
    g = torch.Generator().manual_seed(seed)
    temp = TEMPORARY_MEMORIES[m.temp_policy](m.temp_capacity, stream.x_dim)  # the learner's M^t
    clusters, events = 0, []
    for t in range(len(stream)):
        x = stream.batch(t).x
        temp.add(x)
        if not temp.over_capacity():
            temp.shrink(g)
            continue
        if not clusters:
            novelty, expanded = None, True
        else:
            before = temp.data[: len(temp) - len(x)]
            ref = before[torch.randperm(len(before), generator=g)[: m.novelty_mmd_reference]]
            novelty = mmd_permutation_z(x, ref, m.novelty_mmd_permutations, g)
            expanded = novelty > threshold
        events.append({"arrival": t + 1, "novelty": novelty, "expanded": expanded})
        if expanded:
            clusters += 1
            temp.clear()
        else:
            temp.shrink(g)
    return events, stream.task_ends()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(REPO / "configs/split_fashion/demc.yaml"))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--thresholds", type=float, nargs="+", default=[8.0])
    p.add_argument("--window", type=int, default=2, help="checks after a switch that may still detect it")
    p.add_argument("--profile", action="store_true", help="also print the statistic around each switch")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    cfg = load_config(a.config, ["memory.novelty_statistic=mmd", *a.overrides])
    print("| threshold | seed | switches detected | false alarms | clusters | expansions at arrival |")
    print("|---|---|---|---|---|---|")
    for thr in a.thresholds:
        for seed in a.seeds:
            events, ends = replay(cfg, seed, thr)
            det = novelty_detection(events, ends, a.window)
            grown = [e["arrival"] for e in events if e["expanded"]]
            print(f"| {thr:g} | {seed} | {det['detected']}/{det['switches']} | {det['false_alarms']} | "
                  f"{len(grown)} | {', '.join(map(str, grown))} |", flush=True)
    if a.profile:  # the raw statistic with no expansion after the first: how far a switch stands out
        for seed in a.seeds:
            events, ends = replay(cfg, seed, float("inf"))
            z = {e["arrival"]: e["novelty"] for e in events if e["novelty"] is not None}
            cells = []
            for end in ends[:-1]:
                near = [z[i] for i in range(end, end + 3) if i in z]
                inside = [z[i] for i in range(end - 40, end - 2) if i in z]
                cells.append(f"into task {ends.index(end) + 1}: max {max(near):.1f} after, median "
                             f"{statistics.median(inside):.1f} before")
            print(f"seed {seed}: " + "; ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
