"""Print the issue-9 / issue-10 tables (markdown) from finished runs: one row per run directory.

    .venv/bin/python scripts/experiments/issue9-table.py runs/issue9/*/

Columns: ll_iw1000 (selected for mixtures), its value on task 0 (the first-task runs), tasks seen, mixture, K, expansion arrivals (events.jsonl), memory,
Adam steps, recon_sse, precision, training wall time and, where the run recorded it, the share of
the wall time spent in optimiser updates. Unfinished runs are listed with their last arrival.
Then mean +- sample std over seeds for every group of runs whose tags differ only in `-s<seed>`.
"""
from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path


def row(d: Path) -> dict | None:
    res = d / "results.json"
    if not res.exists():
        train = d / "train.jsonl"
        last = train.read_text().strip().splitlines()[-1] if train.exists() and train.read_text().strip() else "{}"
        return {"tag": d.name, "unfinished": json.loads(last).get("arrival", 0)}
    r = json.loads(res.read_text())
    ev = d / "events.jsonl"
    exp = [json.loads(x)["arrival"] for x in ev.read_text().splitlines() if json.loads(x).get("expanded")] if ev.exists() else []
    phases = r.get("wall_by_phase_s") or {}
    total = sum(phases.values()) if phases else None
    return {"tag": d.name, "ll": r.get("ll_iw1000_selected", r.get("ll_iw1000")), "mix": r.get("ll_iw1000_mixture"),
            "K": r.get("components", 1), "exp": exp, "memory": r.get("memory"), "steps": r.get("steps"),
            "recon": r.get("recon_sse"), "precision": r.get("precision", "fp32"), "wall": r.get("train_wall_s"),
            "train_share": (phases.get("train_steps", 0) / total) if total else None,
            "task0": (r.get("per_task") or {}).get("ll_iw1000", [None])[0], "tasks": r.get("tasks_seen")}


def fmt(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def main(dirs: list[str]) -> None:
    rows = [r for r in (row(Path(d.rstrip("/"))) for d in dirs if (Path(d) / "config.yaml").exists()) if r]
    print("| run | ll_iw1000 (selected) | task 0 | tasks seen | mixture | K | expansions at arrival | memory | Adam steps | recon_sse | precision | train wall (s) | in updates |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "unfinished" in r:
            print(f"| `{r['tag']}` | running (arrival {r['unfinished']}) | | | | | | | | | | | |")
            continue
        exp = ", ".join(map(str, r["exp"])) or "-"
        share = "-" if r["train_share"] is None else f"{r['train_share']:.0%}"
        print(f"| `{r['tag']}` | {fmt(r['ll'])} | {fmt(r['task0'])} | {r['tasks']} | {fmt(r['mix'])} | {r['K']} | {exp} | {r['memory']} | "
              f"{r['steps']:,} | {fmt(r['recon'])} | {r['precision']} | {fmt(r['wall'], '.0f')} | {share} |")
    groups: dict[str, list[dict]] = {}
    for r in rows:
        if "unfinished" not in r:
            groups.setdefault(re.sub(r"-s\d+$", "", r["tag"]), []).append(r)
    print("\n| runs | seeds | ll_iw1000 mean +- std | mixture mean +- std | recon_sse mean +- std |")
    print("|---|---|---|---|---|")
    for name, rs in groups.items():
        def ms(key):
            v = [r[key] for r in rs if r[key] is not None]
            if not v:
                return "-"
            return f"{statistics.mean(v):.2f} +- {statistics.stdev(v):.2f}" if len(v) > 1 else f"{v[0]:.2f}"
        print(f"| `{name}` | {len(rs)} | {ms('ll')} | {ms('mix')} | {ms('recon')} |")


if __name__ == "__main__":
    main(sys.argv[1:])
