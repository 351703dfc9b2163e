"""DEMC's novelty statistic around each task switch, and a per-run table of the DEMC claim's runs
(one row per run directory, then mean +- std over the seeds of each group: folders that differ only
in `-s<seed>`). The runs are those of `streamvae reproduce demc-claim --budget hour`:
    .venv/bin/python scripts/experiments/demc-novelty-around-switches.py runs/reproduce/demc-claim/hour/*/
Columns: device, recon_sse (all tasks) and its per-task values, reconstruction and generation FID
and generation IS on the named classifier network (with the number of images), the linear probe,
clusters, memory, switches detected and false alarms (DEMC: a cluster at the boundary arrival or
in the 2 checks after it), updates and wall time. Unfinished runs are listed with their last arrival.
Last, for the DEMC runs, the novelty statistic around each task switch (median over checks): the 20
arrivals before the boundary, the 3 after it, and arrivals +40..60 and +100..120 after it: a
switch the encoder already separates shows as a step, one it has still to learn as a slow ramp.
"""
from __future__ import annotations

import json
import math
import re
import statistics
import sys
from pathlib import Path

from streamvae.evaluation.novelty import novelty_detection
from streamvae.report.runs import load_run

KEYS = ("recon_sse", "fid_classifier_recon", "fid_classifier_gen", "is_classifier_gen", "probe_linear")


def main(dirs: list[str]) -> None:
    print("| run | device | recon_sse | per task | FID recon | FID gen | IS gen | probe | clusters | memory "
          "| switches detected | false alarms | updates | wall (min) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    groups: dict[str, list[dict]] = {}
    around: list[str] = []
    n_fid = None
    for d in map(Path, dirs):
        if not (d / "config.yaml").exists() or d.name.startswith("smoke"):
            continue
        res = d / "results.json"
        if not res.exists():
            lines = (d / "train.jsonl").read_text().split("\n") if (d / "train.jsonl").exists() else []
            last = json.loads([x for x in lines if x.strip()][-1]) if any(x.strip() for x in lines) else {}
            print(f"| `{d.name}` | | running (arrival {last.get('arrival', 0)}) |" + " |" * 11)
            continue
        r = json.loads(res.read_text())
        n_fid = r.get("fid_generated")
        det, fa = "-", "-"
        if r.get("learner") == "demc":
            run = load_run(d)
            s = novelty_detection(run.events, run.task_ends, window=2)
            det, fa = f"{s['detected']}/{s['switches']}", str(s["false_alarms"])
            around.append(f"| `{d.name}` | " + " | ".join(_around(run.events, end) for end in run.task_ends[:-1]) + " |")
        dev = str(r.get("device", "cpu")).replace("cuda (NVIDIA ", "").rstrip(")")
        per = " / ".join(f"{v:.1f}" for v in r["per_task"]["recon_sse"])
        print(f"| `{d.name}` | {dev} | {r['recon_sse']:.2f} | {per} | {r['fid_classifier_recon']:.1f} "
              f"| {r['fid_classifier_gen']:.1f} | {r['is_classifier_gen']:.2f} | {r['probe_linear']:.3f} "
              f"| {r.get('clusters', '-')} | {r['memory']:,} | {det} | {fa} | {r['steps']:,} | {r['wall_s'] / 60:.1f} |")
        groups.setdefault(re.sub(r"-s\d+$", "", d.name), []).append(r)
    print(f"\n(FID and IS on {n_fid} generated or reconstructed images against as many test images.)\n")
    print("| runs | seeds | " + " | ".join(KEYS) + " |")
    print("|---|---|" + "---|" * len(KEYS))
    for name, rs in groups.items():
        cells = []
        for k in KEYS:
            v = [r[k] for r in rs]
            cells.append(f"{statistics.mean(v):.2f} +- {statistics.stdev(v):.2f}" if len(v) > 1 else f"{v[0]:.2f}")
        print(f"| `{name}` | {len(rs)} | " + " | ".join(cells) + " |")
    if around:
        print("\n| DEMC run | switch 1 | switch 2 | switch 3 | switch 4 |  (novelty: before / just after / +40..60 / +100..120)")
        print("|---|---|---|---|---|")
        print("\n".join(around))


def _around(events: list[dict], end: int) -> str:
    """The median novelty before, just after and well after the switch at arrival ``end``."""
    v = {e["arrival"]: e["novelty"] for e in events if e.get("novelty") is not None}

    def med(lo: int, hi: int) -> str:
        x = [v[i] for i in range(end + lo, end + hi) if i in v]
        if not x:
            return "-"
        if min(x) <= 0:  # the mmd statistic is a z-score: a plain median
            return f"{statistics.median(x):.2f}"
        return f"{math.exp(statistics.median([math.log(u) for u in x])):.2f}"  # ratios: in log space
    return " / ".join((med(-20, 0), med(1, 4), med(40, 60), med(100, 120)))


if __name__ == "__main__":
    main(sys.argv[1:])
