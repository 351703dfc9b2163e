"""Command line: ``streamvae run|eval|data|report|compare``. ``main(argv)`` is what tests call.

    streamvae run CONFIG [--set key=value ...] [--out DIR] [--data-root DIR] [--plugin FILE_OR_MODULE ...]
    streamvae run RUN_DIR/config.yaml --out NEW    (a run again, with its own settings)
    streamvae run --resume RUN_DIR [--accept-config-change] [--plugin FILE_OR_MODULE ...]
    streamvae demo [--out DIR]
    streamvae eval RUN_DIR [--set eval.iw_samples=5000] [--plugin FILE_OR_MODULE ...]
    streamvae data list [--data-root DIR]
    streamvae report RUN_DIR [RUN_DIR ...] [--out DIR]
    streamvae compare RUN_DIR [RUN_DIR ...] [--csv FILE] [--latex FILE] [--md FILE]
    streamvae sweep CONFIG [CONFIG ...] --seeds N [--set key=v1,v2 ...] [--jobs J] [--executor local|slurm] --out DIR
    streamvae reproduce --list | NAME [--budget B] [--seeds N] [--only ROW,...] [--dry-run] [--from results/]
                                    [--with-records results/]

Errors print one line to stderr and exit with status 2; ``--debug`` shows the traceback. A run stopped
by Ctrl-C or SIGTERM writes its checkpoint, prints ``stopped: ...`` with the resume command and exits
with status 130 (:data:`EXIT_STOPPED`).
"""
from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .errors import ConfigError, StreamVAEError

if TYPE_CHECKING:  # the type checker sees the module that main() imports before any use
    from . import registry
else:
    registry = None  # streamvae.registry, imported by main() inside its try: a Ctrl-C while torch loads is one line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="streamvae", description="Task-free continual learning of VAEs (OCM, Dynamic-OCM, DEMC, CN-DPM, LIMix).",
        epilog="Start with: streamvae list (learners, configs, budgets); streamvae config show CONFIG; "
               "streamvae run split_fashion/reservoir --set budget=fast")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action="version", version=f"streamvae {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    for add in (_run_parser, _eval_parser, _report_parsers, _sweep_parser, _demo_parser, _reproduce_parser,
                _carry_parser, _catalog_parsers):
        add(sub)
    return p


def _run_parser(sub) -> None:
    r = sub.add_parser("run", help="train on a stream and evaluate")
    r.add_argument("config", nargs="?", help="a YAML experiment file, a shipped config's name "
                                             "(e.g. split_fashion/reservoir; streamvae list shows them) or a "
                                             "finished run's RUN_DIR/config.yaml (reruns it with its own settings)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set budget=fast --set learner.lr=3e-4")
    r.add_argument("--out", help="run directory (default: OUT_DIR/NAME-BUDGET-sSEED from the config's out_dir, name, budget "
                                        "and seed fields)")
    r.add_argument("--data-root", help="folder with one sub-folder per dataset (or STREAMVAE_DATA)")
    r.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its checkpoint")
    r.add_argument("--accept-config-change", action="store_true",
                   help="with --resume: apply an edited RUN_DIR/config.yaml (learner, eval and run fields) from the "
                        "checkpoint on, recorded in config-changes.jsonl and results.json")
    r.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="FILE_OR_MODULE",
                   help="import a file or module that registers learners (streamvae.register_learner); repeatable. "
                        "With --resume: the plugins the run was made with (compared with the run's record by "
                        "sha256; nothing is imported from a run directory)")
    r.add_argument("--force", action="store_true",
                   help="run even when the estimated memory or evaluation work is above this machine's limits")
    r.add_argument("--no-progress", action="store_true",
                   help="no progress bar (fresh runs and --resume alike; the start banner is always printed)")
    r.add_argument("--tensorboard", action="store_true",
                   help="also log scalars and grids to RUN_DIR/tensorboard (needs: pip install tensorboard)")


def _eval_parser(sub) -> None:
    e = sub.add_parser("eval", help="evaluate a finished run's final checkpoint again")
    e.add_argument("run_dir")
    e.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="eval.* overrides and the execution fields threads, device, precision, "
                        "e.g. --set eval.iw_samples=5000 --set threads=1")
    e.add_argument("--data-root")
    e.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="FILE_OR_MODULE",
                   help="the plugins the run was made with (compared with the run's record by sha256; nothing "
                        "is imported from a run directory)")
    e.add_argument("--force", action="store_true",
                   help="evaluate even when the estimated memory or evaluation work is above this machine's limits")


def _report_parsers(sub) -> None:
    rep = sub.add_parser("report", help="an HTML + Markdown report (tables, plots, grids) of run directories")
    rep.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    rep.add_argument("--out", help="output folder (default: RUN_DIR/report for one run, ./report for several)")

    cmp = sub.add_parser("compare", help="runs side by side with the published numbers (OCM Table 1's shape)")
    cmp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    cmp.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    cmp.add_argument("--latex", metavar="FILE", help="also write the tables as LaTeX (booktabs)")
    cmp.add_argument("--md", metavar="FILE", help="also write the Markdown tables to a file")


def _sweep_parser(sub) -> None:
    sw = sub.add_parser("sweep", help="configs x --set values x seeds in one command, locally or on Slurm; "
                                      "DIR/summary.md and summary.csv (mean, std, n over seeds)")
    sw.add_argument("configs", nargs="+", metavar="CONFIG", help="YAML files or shipped config names")
    sw.add_argument("--out", required=True, metavar="DIR", help="the sweep directory (one folder per run)")
    sw.add_argument("--seeds", type=int, default=1, metavar="N", help="seeds per configuration (default 1)")
    sw.add_argument("--first-seed", type=int, default=0, metavar="S", help="seeds S, S+1, ... (default 0)")
    sw.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=V1,V2",
                    help="one value for every run (budget=smoke) or several, one run each (learner.lr=1e-4,3e-4); "
                         "commas inside [] or quotes do not split")
    sw.add_argument("--jobs", type=int, default=1, metavar="J",
                    help="local: runs at once (each gets cores // J torch threads; at most one per core)")
    sw.add_argument("--executor", choices=["local", "slurm"], default="local")
    sw.add_argument("--data-root", help="passed to every run")
    sw.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="FILE_OR_MODULE")
    sl = sw.add_argument_group("slurm (--executor slurm; needs pip install 'streamvae[slurm]')")
    sl.add_argument("--partition")
    sl.add_argument("--time", type=int, default=720, metavar="MINUTES", help="time limit per run (default 720)")
    sl.add_argument("--cpus-per-task", type=int, default=4, help="CPUs per run, also its threads (default 4)")
    sl.add_argument("--gpus", type=int, default=0, help="GPUs per run (default 0; use with --set device=cuda)")
    sl.add_argument("--mem-gb", type=float, help="memory per run (default: the partition's)")
    sl.add_argument("--array-parallelism", type=int, default=64, help="runs of the job array at once")
    sl.add_argument("--slurm-arg", dest="slurm_args", action="append", default=[], metavar="KEY=VALUE",
                    help="another sbatch option, e.g. account=abc or qos=high (repeatable)")
    sl.add_argument("--slurm-setup", action="append", default=[], metavar="LINE",
                    help="a shell line run before each job, e.g. 'module load cuda' (repeatable)")
    sl.add_argument("--cluster", choices=["slurm", "local"], default="slurm",
                    help="local: submitit's local executor (the same path, on this machine; for testing)")


def _demo_parser(sub) -> None:
    dm = sub.add_parser("demo", help="fine-tuning vs OCM vs Dynamic-OCM on Split Fashion-MNIST (demo budget, "
                                      "a few minutes), a table with the published values, labelled grids")
    dm.add_argument("--out", default="runs/demo", help="folder of the three run directories (default runs/demo; "
                                                       "finished runs there are kept, interrupted ones resumed)")
    dm.add_argument("--threads", type=int, default=0, help="torch threads (default 0: follow the free cores)")
    dm.add_argument("--data-root", help="folder with one sub-folder per dataset (or STREAMVAE_DATA)")
    dm.add_argument("--no-progress", action="store_true", help="no progress bars")


def _carry_parser(sub) -> None:
    c = sub.add_parser("carry", help="move an unfinished run to another machine as one file (pack), restore it "
                                     "bit for bit (unpack), say what a file holds (show)")
    act = c.add_subparsers(dest="action", required=True)
    a = act.add_parser("pack", help="RUN_DIR -> one file (default carry/<run folder>.carry)")
    a.add_argument("run_dir")
    a.add_argument("dest", nargs="?")
    b = act.add_parser("unpack", help="FILE RUN_DIR: restore the run to resume it (streamvae run --resume RUN_DIR)")
    b.add_argument("file")
    b.add_argument("run_dir")
    s = act.add_parser("show", help="FILE: its arrival, steps, precision, device and files; whether its run is "
                                    "already recorded (then the file is left over)")
    s.add_argument("file")
    s.add_argument("--results", default="results", help="the run records (default results/)")


def _catalog_parsers(sub) -> None:
    sub.add_parser("list", help="learners, shipped configs and budgets")
    cs = sub.add_parser("config", help="show a config resolved (budget and overrides applied), with each field's comment")
    cs.add_argument("action", choices=["show"])
    cs.add_argument("config", help="a YAML file or a shipped config's name (e.g. split_fashion/ocm)")
    cs.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    cs.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="FILE_OR_MODULE")

    d = sub.add_parser("data", help="datasets")
    d.add_argument("action", choices=["list", "fetch"], help="list: what is available and from where; "
                   "fetch NAME: download it (checksums verified) to --data-root, else the user cache")
    d.add_argument("name", nargs="?", help="fetch: the dataset (streamvae data list names them)")
    d.add_argument("--data-root")
    d.add_argument("--allow-unverified", action="store_true",
                   help="fetch: accept a download that has no published checksum (OMNIGLOT)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    old_term = None
    if threading.current_thread() is threading.main_thread():
        old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        global registry
        with _signals_deferred():  # a signal inside an import can leave numpy/scipy half-imported
            from . import registry  # heavy (torch, every learner)

            if args.command in ("run", "eval", "demo"):
                from . import loop  # noqa: F401  (scipy, the evaluation)

        if args.command == "run":
            return _run(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "report":
            return _report(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "demo":
            from .demo import run_demo

            _check_data_root(args.data_root)
            return run_demo(args.out, threads=args.threads, data_root=args.data_root, progress=not args.no_progress)
        if args.command == "reproduce":
            return _reproduce(args)
        if args.command == "carry":
            from .carry import command

            return command(args)
        if args.command == "list":
            from .catalog import list_text

            print(list_text())
            return 0
        if args.command == "config":
            from .catalog import show_text
            from .provenance import load_any

            print(show_text(load_any(args.config, args.overrides, plugins=args.plugins)))
            return 0
        return _data(args)
    except StreamVAEError as err:
        if type(err).__name__ == "Interrupted":  # a normal, resumable stop: not an error
            print(f"stopped: {err}", file=sys.stderr)
            return EXIT_STOPPED
        if args.debug:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped: interrupted (Ctrl-C or SIGTERM) before a checkpoint was written", file=sys.stderr)
        return EXIT_STOPPED
    except OSError as err:  # a full disk, a read-only folder, a path that is a file: one line, not a traceback
        if args.debug:
            traceback.print_exc()
        print(f"error: {_os_error(err)}", file=sys.stderr)
        return 2
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


# exit status of a run stopped by Ctrl-C or SIGTERM (checkpoint written, resumable): 128 + SIGINT, as a
# shell reports a process that Ctrl-C ended; distinct from errors (2) and from success (0)
EXIT_STOPPED = 130


def _os_error(err: OSError) -> str:
    """``[Errno 28] No space left on device: 'x'`` -> ``x: No space left on device``."""
    where = f"{err.filename}: " if err.filename else ""
    return f"{where}{err.strerror or err}"


def _on_sigterm(signum, frame):  # before the run loop takes over: SIGTERM ends like Ctrl-C, in one line
    raise KeyboardInterrupt


@contextlib.contextmanager
def _signals_deferred():
    """Ctrl-C and SIGTERM during the block are held and raised (as KeyboardInterrupt) after it: an
    exception raised inside an import leaves the module half-initialised (numpy then recurses
    without end instead of exiting with one line)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    old = {s: signal.signal(s, lambda signum, frame: got.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if got:
        raise KeyboardInterrupt


def _check_data_root(data_root: str | None) -> None:
    if data_root is not None and not Path(data_root).expanduser().is_dir():
        raise ConfigError(f"--data-root {data_root} does not exist or is not a directory")


def _run(args) -> int:
    from . import rundir, sizes
    from .loop import run
    from .utils import load_checkpoint

    if args.accept_config_change and not args.resume:
        raise ConfigError("--accept-config-change goes with --resume RUN_DIR")
    if args.resume:
        if args.config or args.overrides:
            raise ConfigError("--resume takes only the run directory (and the --plugin files the run was made "
                              "with); the config comes from the run")
        run_dir = Path(args.resume)
        if rundir.is_finished(run_dir):
            print(f"{run_dir} is finished (results.json); nothing to resume")
            return 0
        if not (run_dir / "checkpoint.pt").exists():
            raise ConfigError(f"{run_dir} has no checkpoint.pt to resume from")
        _check_data_root(args.data_root)
        # the checkpoint's config governs the run; config.yaml may differ only in run-environment fields
        cfg = rundir.resume_config(run_dir, load_checkpoint(run_dir / "checkpoint.pt"), args.accept_config_change,
                                   overrides=[f"progress={not args.no_progress}"],  # as on a fresh run
                                   plugins=args.plugins)
        sizes.check(cfg, force=args.force)
        results = run(cfg, run_dir, data_root=args.data_root, resume=True,
                      accept_config_change=args.accept_config_change)
    else:
        if not args.config:
            raise ConfigError("give a config file (e.g. configs/split_fashion/reservoir.yaml) or --resume RUN_DIR")
        overrides = list(args.overrides)
        if args.no_progress:
            overrides.append("progress=False")
        if args.tensorboard:
            overrides.append("tensorboard=True")
        from .provenance import load_any

        # a shipped name, an experiment file, or a run's config.yaml (its own settings, budget not re-applied)
        cfg = load_any(args.config, overrides, plugins=args.plugins)
        if cfg.tensorboard:  # fail before anything is written when the optional package is missing
            from .live import require_tensorboard

            require_tensorboard()
        sizes.check(cfg, force=args.force)
        run_dir = Path(args.out) if args.out else Path(cfg.out_dir) / f"{cfg.name}-{cfg.budget}-s{cfg.seed}"
        _check_data_root(args.data_root)
        if run_dir.exists() and not run_dir.is_dir():
            raise ConfigError(f"--out {run_dir} is a file, not a run directory")
        if (run_dir / "results.json").exists() or (run_dir / "checkpoint.pt").exists():
            raise ConfigError(f"{run_dir} already holds a run; use --resume {run_dir} or another --out")
        results = run(cfg, run_dir, data_root=args.data_root)
    print(results_table([results]))
    grids = ", ".join(g for g in ("samples.png", "reconstructions.png", "memory.png") if (run_dir / g).exists())
    print(f"results: {run_dir / 'results.json'}  grids: {run_dir}/{{{grids}}}")
    return 0


EVAL_EXECUTION = ("threads", "device", "precision")  # how `streamvae eval` runs; they change no result


def _eval(args) -> int:
    from dataclasses import replace

    from . import rundir, sizes
    from .errors import CheckpointError
    from .loop import build, evaluate_point, restore_checkpoint
    from .utils import load_checkpoint, write_json

    run_dir = Path(args.run_dir)
    if not (run_dir / "checkpoint.pt").exists():
        raise ConfigError(f"{run_dir} has no checkpoint.pt")
    bad = [o for o in args.overrides if not o.startswith("eval.") and o.split("=", 1)[0].strip() not in EVAL_EXECUTION]
    if bad:
        raise ConfigError(f"streamvae eval accepts eval.* overrides and the execution fields "
                          f"{', '.join(EVAL_EXECUTION)}, got: {', '.join(bad)}")
    _check_data_root(args.data_root)
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")  # first: a crafted or damaged file stops here
    cfg = rundir.resume_config(run_dir, ckpt, overrides=args.overrides, plugins=args.plugins)  # checkpoint's + eval.*
    sizes.check(cfg, force=args.force)
    stream, learner = build(cfg, args.data_root)
    arrival, _ = restore_checkpoint(learner, ckpt, run_dir / "checkpoint.pt")
    n = len(stream)
    if not 0 <= arrival <= n:
        raise CheckpointError(f"{run_dir / 'checkpoint.pt'}: arrival {arrival} is outside this stream (0..{n})")
    test = stream.test_set(cfg.eval, cfg.eval.test_size)
    if arrival == n:  # the run's own final evaluation (same draws): without overrides it reproduces results.json
        row = evaluate_point(cfg, learner, stream, test, n, final=True)
    else:  # an unfinished run: the checkpoint's arrival, scored with the final evaluation's k and test set
        scored = replace(cfg, eval=replace(cfg.eval, curve_iw_samples=cfg.eval.iw_samples))
        row = evaluate_point(scored, learner, stream, test, arrival, final=False)
        row["unfinished"] = True
    row.update({"learner": cfg.learner.name, "budget": cfg.budget, "name": cfg.name})
    shown = row if arrival == n else {**row, "name": f"{cfg.name} (unfinished: arrival {arrival}/{n})"}
    print(results_table([shown]), flush=True)  # first: a run directory that cannot be written loses nothing
    try:
        write_json(run_dir / "eval.json", row)
    except OSError:
        import json

        print(json.dumps(row), flush=True)  # the whole row, as eval.json would have held it
        raise
    return 0


def _report(args) -> int:
    from .report import write_report

    out = Path(args.out) if args.out else (Path(args.run_dirs[0]) / "report" if len(args.run_dirs) == 1
                                            else Path("report"))
    if not args.out and out.is_symlink():  # RUN_DIR/report planted as a link: the report would be written elsewhere
        raise ConfigError(f"{out} is a symbolic link; pass --out DIR for the report")
    html_path, md_path = write_report(args.run_dirs, out)
    print(f"report: {html_path} (self-contained)  {md_path} (with its PNG files)")
    return 0


def _compare(args) -> int:
    from .report import load_runs, to_csv, to_markdown
    from .report.tables import compare_csv_rows, compare_tables

    runs = load_runs(args.run_dirs)  # a sweep directory stands for every run under it
    markdown = "".join(f"### {title}\n\n{to_markdown(header, rows)}\n\n"
                       for title, (header, rows) in compare_tables(runs))
    print(markdown, end="")
    if args.csv:
        to_csv(*compare_csv_rows(runs), path=args.csv)
        print(f"csv: {args.csv}")
    if args.latex:
        from .report.tables import compare_latex

        Path(args.latex).write_text(compare_latex(runs))
        print(f"latex: {args.latex}")
    if args.md:
        Path(args.md).write_text(markdown)
        print(f"markdown: {args.md}")
    return 0


def _sweep(args) -> int:
    from .sweep import SlurmOptions, run_sweep

    slurm = SlurmOptions(partition=args.partition, time_min=args.time, cpus_per_task=args.cpus_per_task,
                         gpus=args.gpus, mem_gb=args.mem_gb, array_parallelism=args.array_parallelism,
                         extra=tuple(args.slurm_args), setup=tuple(args.slurm_setup), cluster=args.cluster)
    return run_sweep(args.configs, args.out, seeds=args.seeds, first_seed=args.first_seed, sets=args.overrides,
                     jobs=args.jobs, executor=args.executor, data_root=args.data_root, plugins=args.plugins,
                     slurm=slurm)


def _reproduce_parser(sub) -> None:
    rp = sub.add_parser("reproduce", help="a published table as a command: runs its missing cells (as sweep does: "
                                          "finished runs skipped, interrupted ones resumed), then table.md/csv/tex")
    rp.add_argument("name", nargs="?", metavar="NAME", help="a table spec (--list shows them) or a spec YAML file")
    rp.add_argument("--list", action="store_true", help="the shipped table specs")
    rp.add_argument("--budget", help="smoke | demo | fast | hour | paper (default: the spec's)")
    rp.add_argument("--seeds", type=int, metavar="N", help="seeds 0..N-1 per cell (default: the spec's)")
    rp.add_argument("--only", metavar="ROW,...", help="only these rows (their keys: --list)")
    rp.add_argument("--jobs", type=int, default=1, metavar="J", help="runs at once (as for sweep)")
    rp.add_argument("--executor", choices=["local", "slurm"], default="local")
    rp.add_argument("--data-root", help="passed to every run; a column whose data is missing there is reported")
    rp.add_argument("--out", metavar="DIR", help="run directories and the tables (default runs/reproduce/NAME/BUDGET)"
                                                 "; with --from: where to write the tables")
    rp.add_argument("--from", dest="records", metavar="DIR", help="build the table from committed records "
                                                                  "(DIR/NAME/BUDGET/<cell>-s<seed>/) and run nothing")
    rp.add_argument("--with-records", metavar="DIR", help="runs recorded in DIR (results/) of the same "
                                                          "configuration count as finished: read, not run again")
    rp.add_argument("--dry-run", action="store_true",
                    help="every cell: its command, planned optimiser steps, estimated hours, and what is finished")
    rp.add_argument("--record", metavar="DIR", help="copy the record files of every finished run (never a "
                                                    "checkpoint) into DIR/NAME/BUDGET/<cell>-s<seed>/ and run nothing")


def _reproduce(args) -> int:
    from . import reproduce

    if args.list:
        print(reproduce.list_text())
        return 0
    if not args.name:
        raise ConfigError("streamvae reproduce NAME: give a table spec (streamvae reproduce --list shows them)")
    only = tuple(x.strip() for x in (args.only or "").split(",") if x.strip())
    return reproduce.reproduce(args.name, budget=args.budget, seeds=args.seeds, only=only, jobs=args.jobs,
                               executor=args.executor, data_root=args.data_root, out=args.out,
                               records=args.records, dry_run=args.dry_run, record=args.record,
                               with_records=args.with_records)


def _data(args) -> int:
    from .data.datasets import dataset_table, fetch

    if args.action == "fetch":
        if not args.name:
            raise ConfigError("streamvae data fetch NAME: give a dataset name (streamvae data list names them)")
        folder, what = fetch(args.name, args.data_root, allow_unverified=args.allow_unverified)
        print(f"{args.name}: {what} in {folder}")
        return 0

    _check_data_root(args.data_root)
    rows = dataset_table(args.data_root)
    print(f"{'dataset':10s} {'available':9s} {'source':10s} path")
    for r in rows:
        problem = f"  ({r['problem']})" if r.get("problem") else ""
        print(f"{r['name']:10s} {'yes' if r['available'] else 'no':9s} {r['source']:10s} {r.get('path') or '-'}{problem}")
    return 0


def results_table(rows: list[dict]) -> str:
    """A small Markdown table of final results (one row per run)."""
    lines = ["| run | learner | budget | log-likelihood | recon_sse | memory | wall (s) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ll_key = next((k for k in r if k.startswith("ll_iw") and not k.endswith("_all_tasks")), None)
        ll = f"{r[ll_key]:.2f} ({ll_key})" if ll_key else "-"
        mem = r.get("memory", 0)
        wall = r.get("train_wall_s")
        lines.append(f"| {r.get('name', '-')} | {r.get('learner', '-')} | {r.get('budget', '-')} | {ll} | "
                     f"{r.get('recon_sse', float('nan')):.2f} | {mem} | {'-' if wall is None else f'{wall:.0f}'} |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
