"""The table of scripts/experiments/demc-novelty.sh: per run, the novelty settings, the clusters made,
switches detected (an expansion at the boundary batch or within the 2 checks after it) and false alarms,
the largest z-score in each detection window and elsewhere, and recon_sse. For the mmd statistic the
z-score is the statistic itself (against its permutation null).
    .venv/bin/python scripts/experiments/demc-novelty-table.py runs/demc-dev/*/"""
import sys

from streamvae.evaluation.novelty import novelty_detection
from streamvae.report.runs import load_run

WINDOW = 2

print("| run | statistic | test | BN | descriptor | clusters | switches detected | false alarms | max z at switches 1-4 "
      "| max z elsewhere | recon_sse | wall (min) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for path in sys.argv[1:]:
    try:
        run = load_run(path)
    except Exception as e:  # noqa: BLE001 - a run without rows yet
        print(f"<!-- {path}: {e} -->")
        continue
    if not run.finished:
        continue
    m, ends = run.config.get("memory", {}), run.task_ends
    s = novelty_detection(run.events, ends, window=WINDOW)
    statistic = m.get("novelty_statistic", "kl")
    checks = [e for e in run.events if e.get("novelty") is not None]
    if statistic == "mmd":  # the statistic is the z-score
        checks = [{**e, "z": e["novelty"]} for e in checks]
    windows, in_window = [], set()
    for end in ends[:-1]:
        idx = [i for i, e in enumerate(checks) if e["arrival"] == end]
        idx += [i for i, e in enumerate(checks) if e["arrival"] > end][:WINDOW]
        in_window |= set(idx)
        zs = [checks[i]["z"] for i in idx if checks[i].get("z") is not None]
        windows.append(f"{max(zs):.1f}" if zs else "-")
    rest = [e["z"] for i, e in enumerate(checks) if i not in in_window and e.get("z") is not None]
    test = m.get("novelty_test")
    test += f" z>{m.get('novelty_z')}" if test == "relative" else f" >{m.get('novelty_threshold')}"
    per = "".join("y" if t["detected"] else "n" for t in s["per_task"][1:])
    print(f"| {run.path.name} | {statistic} | {test} | {m.get('novelty_bn')} | {m.get('cluster_descriptor')} "
          f"| {run.final.get('clusters')} | {s['detected']}/{s['switches']} ({per}) | {s['false_alarms']} "
          f"| {' / '.join(windows)} | {max(rest) if rest else float('nan'):.1f} | {run.final.get('recon_sse', float('nan')):.2f} "
          f"| {run.final.get('wall_s', 0) / 60:.0f} |")
