"""Command line: ``streamvae run|eval|data``. ``main(argv)`` is what tests call.

    streamvae run CONFIG [--set key=value ...] [--out DIR] [--data-root DIR]
    streamvae run --resume RUN_DIR
    streamvae eval RUN_DIR [--set eval.iw_samples=5000]
    streamvae data list [--data-root DIR]

Errors print one line to stderr and exit non-zero; ``--debug`` shows the traceback.
"""
from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from . import config as C
from .errors import ConfigError, StreamVAEError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="streamvae", description="Task-free continual learning of VAEs")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="train on a stream and evaluate")
    r.add_argument("config", nargs="?", help="YAML experiment file (e.g. configs/split_fashion/reservoir.yaml)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set budget=fast --set learner.lr=3e-4")
    r.add_argument("--out", help="run directory (default: run.out_dir/run.name-budget-seed)")
    r.add_argument("--data-root", help="folder with one sub-folder per dataset (or STREAMVAE_DATA)")
    r.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its checkpoint")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="evaluate a finished run's final checkpoint again")
    e.add_argument("run_dir")
    e.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="eval.* overrides, e.g. --set eval.iw_samples=5000")
    e.add_argument("--data-root")

    d = sub.add_parser("data", help="datasets")
    d.add_argument("action", choices=["list"])
    d.add_argument("--data-root")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "eval":
            return _eval(args)
        return _data(args)
    except StreamVAEError as err:
        if args.debug:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return 130 if type(err).__name__ == "Interrupted" else 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def _run(args) -> int:
    from .loop import run

    if args.resume:
        if args.config or args.overrides:
            raise ConfigError("--resume takes only the run directory; the config comes from its checkpoint")
        run_dir = Path(args.resume)
        if not (run_dir / "checkpoint.pt").exists():
            raise ConfigError(f"{run_dir} has no checkpoint.pt to resume from")
        cfg = C.load_resolved(run_dir / "config.yaml")
        data_root = args.data_root
        results = run(cfg, run_dir, data_root=data_root, resume=True)
    else:
        if not args.config:
            raise ConfigError("give a config file (e.g. configs/split_fashion/reservoir.yaml) or --resume RUN_DIR")
        overrides = list(args.overrides)
        if args.no_progress:
            overrides.append("progress=False")
        cfg = C.load_config(args.config, overrides)
        run_dir = Path(args.out) if args.out else Path(cfg.out_dir) / f"{cfg.name}-{cfg.budget}-s{cfg.seed}"
        if (run_dir / "results.json").exists() or (run_dir / "checkpoint.pt").exists():
            raise ConfigError(f"{run_dir} already holds a run; use --resume {run_dir} or another --out")
        results = run(cfg, run_dir, data_root=args.data_root)
    print(results_table([results]))
    print(f"results: {run_dir / 'results.json'}  grids: {run_dir}/samples.png, reconstructions.png")
    return 0


def _eval(args) -> int:
    import torch

    from .evaluation.evaluator import evaluate
    from .loop import build
    from .utils import load_checkpoint, write_json

    run_dir = Path(args.run_dir)
    if not (run_dir / "checkpoint.pt").exists():
        raise ConfigError(f"{run_dir} has no checkpoint.pt")
    bad = [o for o in args.overrides if not o.startswith("eval.")]
    if bad:
        raise ConfigError(f"streamvae eval accepts only eval.* overrides, got: {', '.join(bad)}")
    cfg = C.load_resolved(run_dir / "config.yaml", args.overrides)
    stream, learner = build(cfg, args.data_root)
    learner.load_state_dict(load_checkpoint(run_dir / "checkpoint.pt")["learner"])
    test = stream.test_set(cfg.eval, cfg.eval.test_size)
    g = torch.Generator().manual_seed(cfg.seed + 12345)
    row = evaluate(learner.components(), test, stream.num_tasks, stream.num_tasks, cfg.eval.iw_samples, g,
                   cfg.eval.chunk_rows)
    row.update({"learner": cfg.learner.name, "budget": cfg.budget, "name": cfg.name,
                "iw_samples": cfg.eval.iw_samples, "test_size": int(test.x.shape[0]), **learner.memory_sizes()})
    write_json(run_dir / "eval.json", row)
    print(results_table([row]))
    return 0


def _data(args) -> int:
    from .data.datasets import dataset_table

    rows = dataset_table(args.data_root)
    print(f"{'dataset':10s} {'available':9s} {'source':10s} path")
    for r in rows:
        print(f"{r['name']:10s} {'yes' if r['available'] else 'no':9s} {r['source']:10s} {r.get('path') or '-'}")
    return 0


def results_table(rows: list[dict]) -> str:
    """A small Markdown table of final results (one row per run)."""
    lines = ["| run | learner | budget | log-likelihood | recon_sse | memory | wall (s) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ll_key = next((k for k in r if k.startswith("ll_iw") and not k.endswith("_all_tasks")), None)
        ll = f"{r[ll_key]:.2f} ({ll_key})" if ll_key else "-"
        mem = r.get("memory", r.get("ltm", 0))
        wall = r.get("train_wall_s")
        lines.append(f"| {r.get('name', '-')} | {r.get('learner', '-')} | {r.get('budget', '-')} | {ll} | "
                     f"{r.get('recon_sse', float('nan')):.2f} | {mem} | {'-' if wall is None else f'{wall:.0f}'} |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
