"""The cost model (``streamvae.costs``) against the measured phases of whole runs (``wall_by_phase_s``).

    python benchmarks/cost_model.py            # the tables of BENCHMARKS.md, "The cost model"
    python benchmarks/cost_model.py RUN_DIR..  # also these run directories (results.json + config.yaml)

The measured rows are the runs RESULTS.md and BENCHMARKS.md report, with their phases as written
there (seconds); a run directory given on the command line is read from its own files. No data is
read and nothing is trained: each learner is built on an empty stream shape to count its steps.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from streamvae import costs
from streamvae.catalog import config_path
from streamvae.models import build_model
from streamvae.registry import get_learner, load_config, load_resolved

# (label, config, overrides, threads, measured phases {train_steps, memory_and_events, rest, final_evaluation},
#  where it was measured)
MEASURED = [
    ("OCM fast s0", "split_fashion/ocm", ["budget=fast"], 1,
     {"train_steps": 461.5, "memory_and_events": 2.7, "rest": 11.6, "final_evaluation": 39.0},
     "BENCHMARKS.md session 10, 1 thread beside another run, Intel"),
    ("Dynamic-OCM fast s0", "split_fashion/dynamic-ocm", ["budget=fast"], 1,
     {"train_steps": 319.4, "memory_and_events": 421.4, "rest": 47.7, "final_evaluation": 416.3},
     "BENCHMARKS.md session 10, 1 thread beside another run, Intel"),
    ("Dynamic-OCM paper, 10-sample ELBO", "split_fashion/dynamic-ocm", ["budget=paper", "learner.elbo_samples=10"], 1,
     {"train_steps": 7049.0, "memory_and_events": 2431.0, "rest": 44.0, "final_evaluation": 474.0},
     "BENCHMARKS.md session 8, 1 thread beside another run, Intel"),
    ("Dynamic-OCM paper (as released), 1 thread", "split_fashion/dynamic-ocm", ["budget=paper"], 1,
     {"train_steps": 20694.0, "memory_and_events": 1724.0, "rest": 35.0, "final_evaluation": 280.0},
     "RESULTS.md session 9: summed over machines (arrivals 1-484 one thread AMD/Intel, 485-937 two threads Intel)"),
    ("Dynamic-OCM paper (as released), 2 threads", "split_fashion/dynamic-ocm", ["budget=paper"], 2,
     {"train_steps": 20694.0, "memory_and_events": 1724.0, "rest": 35.0, "final_evaluation": 280.0},
     "the same run: its estimate with 2 threads"),
]

MEASURED += [  # CN-DPM: results/ocm-table1/{paper,fast}/cndpm-split_fashion-s*/results.json
    ("CN-DPM paper s0", "split_fashion/cndpm", ["budget=paper", "checkpoint_every=10"], 1,
     {"train_steps": 1590.3, "memory_and_events": 0.9, "rest": 230.9, "final_evaluation": 1164.1},
     "2026-12-06, 1 thread beside another run, AMD EPYC"),
    ("CN-DPM fast s1", "split_fashion/cndpm", ["budget=fast"], 1,
     {"train_steps": 530.2, "memory_and_events": 1.0, "rest": 169.0, "final_evaluation": 284.1},
     "2026-12-06, 1 thread beside another run, AMD EPYC"),
    ("CN-DPM fast s2", "split_fashion/cndpm", ["budget=fast"], 1,
     {"train_steps": 416.9, "memory_and_events": 0.9, "rest": 124.9, "final_evaluation": 288.7},
     "2026-12-06, 1 thread beside another run, AMD EPYC"),
]

MEASURED += [  # LIMix: results/{ocm-table1,peers-options}/*/limix*-split_fashion-s*/results.json; its estimate
    # is given the run's final component count (the count is only known at the end)
    ("LIMix paper s0 (threshold 50: 2 components)", "split_fashion/limix", ["budget=paper", "checkpoint_every=10"],
     1, {"train_steps": 1377.1, "memory_and_events": 3.7, "rest": 12.6, "final_evaluation": 172.8},
     "2026-12-06, 1 thread beside another run, AMD EPYC", 2),
    ("LIMix paper, threshold 25 (7 components)", "split_fashion/limix",
     ["budget=paper", "checkpoint_every=10", "learner.threshold=25"], 1,
     {"train_steps": 2034.5, "memory_and_events": 8.7, "rest": 31.8, "final_evaluation": 495.4},
     "2026-12-06, 1 thread beside another run, AMD EPYC", 7),
    ("LIMix fast s1 (21 components)", "split_fashion/limix", ["budget=fast"], 1,
     {"train_steps": 98.6, "memory_and_events": 37.4, "rest": 132.3, "final_evaluation": 295.1},
     "2026-12-06, 1 thread beside another run, AMD EPYC", 21),
    ("LIMix fast s2 (21 components)", "split_fashion/limix", ["budget=fast"], 1,
     {"train_steps": 92.4, "memory_and_events": 35.5, "rest": 114.0, "final_evaluation": 262.0},
     "2026-12-06, 1 thread beside another run, AMD EPYC", 21),
    ("LIMix fast, Bernoulli loss (30 components)", "split_fashion/limix", ["budget=fast", "learner.loss=bernoulli"], 1,
     {"train_steps": 111.2, "memory_and_events": 49.5, "rest": 154.7, "final_evaluation": 407.7},
     "2026-12-06, 1 thread beside another run, AMD EPYC", 30),
]

ESTIMATED = ["split_fashion/finetune", "split_fashion/reservoir", "split_fashion/ocm", "split_fashion/iwae-ocm",
             "split_fashion/dynamic-ocm", "split_fashion/cndpm", "split_fashion/limix"]


def _learner(cfg):
    cls = get_learner(cfg.learner.name)
    model = build_model(cfg.model, 784, seed=0, shape=(1, 28, 28), native=False, kind=cls.model_kind)
    extra = {"dataset": torch.zeros(0, 784)} if cls.needs_dataset else {}
    return cls(cfg, model, torch.Generator().manual_seed(0), **extra)


def row(label: str, cfg, threads: int, measured: dict, where: str, arrivals: int = 937,
        components: int | None = None) -> str:
    est = costs.estimate(cfg, _learner(cfg), arrivals, threads, components=components)
    assert est is not None
    p = est.phases
    rest = p["evaluation_points"] + p["checkpoints"] + p["stream_and_logs"]
    total_m, total_e = sum(measured.values()), est.total_s
    return (f"| {label} | {threads} | {measured['train_steps']:,.0f} / {p['train_steps']:,.0f} | "
            f"{measured['memory_and_events']:,.0f} / {p['memory_and_events']:,.0f} | "
            f"{measured['final_evaluation']:,.0f} / {p['final_evaluation']:,.0f} | {measured['rest']:,.0f} / {rest:,.0f} | "
            f"{total_m:,.0f} / {total_e:,.0f} | **{total_e / total_m:.2f}** | {where} |")


def main(argv: list[str]) -> None:
    print("| run | threads | training steps (s, measured / estimated) | memory and expansion tests | final evaluation "
          "| evaluation points, checkpoints, logs | total | estimate / measured | measured on |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for label, name, overrides, threads, measured, where, *components in MEASURED:
        print(row(label, load_config(config_path(name), overrides), threads, measured, where,
                  components=components[0] if components else None))
    print()
    print("| config (Split Fashion) | budget | 1 thread | 2 threads |")
    print("|---|---|---:|---:|")
    for name in ESTIMATED:
        for budget in ("paper", "fast", "demo"):
            cfg = load_config(config_path(name), [f"budget={budget}"])
            learner = _learner(cfg)
            est = [costs.estimate(cfg, learner, 937, t, eval_points=5) for t in (1, 2)]
            print(f"| {name} | {budget} | {costs.duration(est[0].total_s)} | {costs.duration(est[1].total_s)} |")
    for d in argv:
        d = Path(d)
        r = json.loads((d / "results.json").read_text())
        cfg = load_resolved(d / "config.yaml")
        ph = r["wall_by_phase_s"]
        measured = {"train_steps": ph["train_steps"], "memory_and_events": ph["memory_and_events"],
                    "rest": ph["evaluation_points"] + ph["checkpoints"] + ph["stream_and_logs"],
                    "final_evaluation": ph["final_evaluation"]}
        print(row(f"{d.name}", cfg, cfg.threads or 2, measured, "this run's results.json", r["arrivals"]))


if __name__ == "__main__":
    main(sys.argv[1:])
