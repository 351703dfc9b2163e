"""Published tables as commands: a table spec (YAML shipped in ``reproduce/specs/``) names its rows
(methods: a config and overrides), its columns (streams, or settings such as passes per arrival), the
published values with their source, the metric and the default seeds; ``streamvae reproduce`` runs the
cells through :func:`streamvae.sweep.run_specs` (finished runs skipped, interrupted ones resumed) and
writes the table.

    streamvae reproduce --list
    streamvae reproduce ocm-table1 --budget fast --seeds 3 --jobs 2          # runs/reproduce/ocm-table1/fast/
    streamvae reproduce ocm-table1 --budget paper --dry-run                  # every cell: command, steps, hours
    streamvae reproduce ocm-table1 --budget paper --from results/            # the table from committed records

A cell is ``<row>-<column>`` and its runs are the folders ``<cell>-s<seed>`` of the output directory
(``runs/reproduce/<spec>/<budget>/`` by default) or of the records (``results/<spec>/<budget>/``).
What a run is, is its resolved config without the run-environment fields (:data:`ENVIRONMENT`: threads,
precision, checkpoint interval...): a run made with ``precision=auto`` is the same cell as one made in
fp32, and the table says which precision each cell's runs used. Another table's run (or a record) stands
in for a cell only at the cell's own precision where that is fixed (fp32 or bf16; ``auto`` takes
either) and with every environment field the row or column sets (:attr:`Cell.pinned`).

A row whose learner is not registered is "not implemented" (it becomes a real row as soon as the
learner is); a column whose data is missing is "no data: put MNIST under DATA_ROOT/mnist"; neither is
a failure of the table.

The package: :mod:`.spec` (reading and checking a spec), :mod:`.cell` (a spec's cells at a budget and
the runs or records that fill them), :mod:`.table` (the table: markdown, csv, LaTeX); here, the
command (list, dry run, run, record) and RESULTS.md's generated blocks.
"""
from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from pathlib import Path

from .. import carry
from ..errors import ConfigError
from ..rundir import writer_pid
from .cell import (Cell, cells, metric_value, read_cell, reproduce_command, run_arrival, run_name, run_progress,
                   same_config, shared_roots)
from .spec import ENVIRONMENT, SPECS, Column, Row, Spec, load_spec, spec_names
from .table import build_table, table_markdown, verdict, verdict_rule, write_tables

DEFAULT_OUT = Path("runs") / "reproduce"
RECORD_FILES = ("results.json", "metrics.jsonl", "events.jsonl", "train.jsonl", "config.yaml")


# ---------------------------------------------------------------------------------------------
# the command


def list_text() -> str:
    lines = ["table specs (streamvae reproduce NAME [--budget B] [--dry-run]):"]
    for n in spec_names():
        s = load_spec(n)
        lines.append(f"  {n:28s} {s.title}")
        lines.append(f"  {'':28s} rows: {', '.join(r.key for r in s.rows)}; columns: "
                     f"{', '.join(c.key for c in s.columns)}; default budget {s.budget}, {s.seeds} seed(s)")
    return "\n".join(lines)


def _seed_specs(spec: Spec, budget: str, runnable: list[Cell], seeds: int, plugins=()):
    from .. import config as C
    from .. import registry
    from ..sweep import RunSpec

    out = []
    for cell in runnable:
        for seed in range(seeds):
            ov = (*cell.overrides, f"seed={seed}")
            cfg = registry.load_config(cell.config, list(ov), plugins)
            expected = {k: v for k, v in C.to_dict(cfg).items() if k not in ENVIRONMENT}
            out.append((cell, seed, RunSpec(name=run_name(cell, seed), group=cell.key, config=cell.config,
                                            overrides=ov, seed=seed, expected=expected)))
    return out


def _shipped_name(arg: str) -> str:
    """A shipped config's path as its name (``split_fashion/ocm``); anything else as it is."""
    from ..catalog import CONFIGS

    try:
        return str(Path(arg).relative_to(CONFIGS.resolve()).with_suffix(""))
    except ValueError:
        return arg


def step_share(learner, arrivals: int):
    """``share(t)``: the part of a run's planned optimiser steps made by arrival ``t``. Steps per arrival
    follow the memory (OCM's grows for 180 arrivals), so the first fifth of OCM's `paper` stream is 6%
    of its steps; None where the learner plans its steps otherwise (the stream's share stands in)."""
    import itertools

    from ..learners.base import Learner

    if type(learner).planned_steps is not Learner.planned_steps or not arrivals:
        return None
    b = learner.cfg.stream.batch_size
    per = [learner.steps_on(b + learner.memory_at(t)) for t in range(arrivals)]
    if None in per or not sum(per):
        return None
    cum = list(itertools.accumulate(per))
    return lambda t: cum[min(t, arrivals) - 1] / cum[-1] if t > 0 else 0.0


def seconds_left(est, done: int, arrivals: int, share=None) -> float:
    """What an interrupted run at arrival ``done`` of ``arrivals`` has left of its estimate
    (a :class:`streamvae.costs.Estimate`): the share of the stream's phases still to come (by
    ``share``, :func:`step_share`, where given; else by arrivals), and its final evaluation whole."""
    final = est.phases["final_evaluation"]
    made = share(done) if share is not None else (done / arrivals if arrivals else 0.0)
    return (est.total_s - final) * max(0.0, 1 - made) + final


def run_pace(run_dir: Path, est, arrivals: int, share=None) -> float | None:
    """How many times the estimate's time this run takes now: the training wall time metrics.jsonl
    records (``wall_s``: this run's training, summed over its resumes) between its last two evaluation
    points before the end, over the estimate's share for those arrivals (a run carried from machine to
    machine goes at the pace of its latest stretch, not of its whole history); with one such point,
    the pace from the start; None before an evaluation point past 5% of the stream. ``est`` is
    calibrated to this machine by a step timed now (``costs.calibrate``); the pace carries the rest:
    the load the run has met, and its own mix of work (before that calibration, 2.5 for Dynamic-OCM
    at `paper` on a 2-core AMD EPYC, bf16, was mostly machine speed)."""
    from ..errors import StreamVAEError
    from ..utils import read_jsonl

    try:
        rows = read_jsonl(run_dir / "metrics.jsonl")
    except (OSError, ValueError, StreamVAEError):
        return None
    done = [r for r in rows if not r.get("final") and isinstance(r.get("wall_s"), (int, float))
            and isinstance(r.get("arrival"), int) and r["arrival"] >= max(1, 0.05 * arrivals)]
    if not done or not arrivals:
        return None

    def made(arrival: int) -> float:
        return min(1.0, share(arrival) if share is not None else arrival / arrivals)

    train = est.total_s - est.phases["final_evaluation"]
    last = done[-1]
    since, wall_since = (int(done[-2]["arrival"]), float(done[-2]["wall_s"])) if len(done) > 1 else (0, 0.0)
    model = train * (made(last["arrival"]) - made(since))
    wall = float(last["wall_s"]) - wall_since
    return wall / model if model > 0 and wall > 0 else None


def _shared_runs(root: Path, runnable: list[Cell], shared: Sequence[Path]) -> dict[tuple[str, int], str]:
    """``{(cell key, seed): run folder}``: seeds of this table that a finished run of the same
    configuration in ``shared`` (:func:`shared_roots`) already made; they are read, not run again."""
    if not shared:
        return {}
    return {(c.key, seed): where for c in runnable for seed, where in read_cell(c, root, shared).shared.items()}


def dry_run_text(spec: Spec, budget: str, out: Path, table_cells: list[Cell], seeds: int, jobs: int,
                 data_root: str | None, shared: Sequence[Path] | None = None) -> str:
    """Every cell: its state, its command, planned optimiser steps and the estimated hours here."""
    from .. import registry
    from ..costs import calibrate, duration, estimate
    from ..evaluation.points import eval_points
    from ..loop import build
    from ..sweep import command, cores, local_plan

    runnable = [c for c in table_cells if c.state == "run"]
    plan = _seed_specs(spec, budget, runnable, seeds)
    elsewhere = _shared_runs(out, runnable, shared_roots(out, spec.name, budget) if shared is None else shared)
    todo = [1 for cell, seed, rs in plan if not (out / rs.name / "results.json").exists()
            and writer_pid(out / rs.name) is None and (cell.key, seed) not in elsewhere]
    _, threads = local_plan(jobs, cores(), max(1, len(todo)))
    lines = [f"{spec.name}, budget {budget}, {seeds} seed(s), into {out}"]
    total_h, unknown, cached = 0.0, 0, {}
    # a step timed now scales the cost model to this machine, unless a run of this table is training
    # here now: beside it the timing would be of its load, which ends when it does
    busy = next((rs.name for _, _, rs in plan if writer_pid(out / rs.name) is not None), None)
    for cell in table_cells:
        if cell.state != "run":
            lines.append(f"  {cell.key}: {cell.note}")
    for cell, seed, rs in plan:
        if cell.key not in cached:
            cfg = registry.load_config(cell.config, [*cell.overrides, f"seed={seed}", "progress=false"])
            stream, learner = build(cfg, data_root)
            steps = learner.planned_steps(len(stream))
            est = estimate(cfg, learner, len(stream), threads, 10000 * len(cfg.stream.datasets),
                           len(eval_points(cfg, stream)), stream.x_dim)
            est = est if busy else calibrate(est, cfg, learner, threads)
            cached[cell.key] = (steps, est, len(stream), step_share(learner, len(stream)))
        steps, est, arrivals, share = cached[cell.key]
        hours = est.total_s / 3600 if est is not None else None
        run_dir = out / rs.name
        pid = writer_pid(run_dir)
        done = None  # the arrival a running or interrupted run has reached (train.jsonl, read once)
        if (run_dir / "results.json").exists():
            state = "finished"
        elif (cell.key, seed) in elsewhere:
            state = f"finished as {elsewhere[cell.key, seed]} (the same configuration: not run again)"
        elif pid is not None or (run_dir / "checkpoint.pt").exists():
            done = run_arrival(run_dir)
            where = f"arrival {done}, " if done is not None else ""
            state = f"{where}running (pid {pid})" if pid is not None else f"{where}interrupted: resumes"
        elif (found := carried_run(run_dir, rs)) is not None:
            done = found[1]
            state = f"arrival {done}, carried in {found[0]}: unpacked, then resumes"
        else:
            state = "to run"
        argv = command(rs, run_dir, threads, data_root, resume=state.endswith("resumes"))
        shown = shlex.join(["streamvae", *[_shipped_name(a) for a in argv[3:]]])
        hours_text = "time unknown"
        if est is not None:
            hours_text = f"about {duration(est.total_s)}" + "".join(f" ({n})" for n in est.notes)
            if done is not None:
                left = seconds_left(est, done, arrivals, share)
                hours_text += f", about {duration(left)} left"
                pace = run_pace(run_dir, est, arrivals, share)
                if pace is not None and abs(pace - 1) >= 0.15:
                    left *= pace
                    hours_text += (f" by the model; at this run's latest pace ({pace:.1f}x the model's), "
                                   f"about {duration(left)} left")
                hours = left / 3600
        lines.append(f"  {rs.name}: {state}; {f'{steps:,}' if steps else '?'} optimiser steps, {hours_text}"
                     + ("" if (cell.key, seed) in elsewhere else f"\n      {shown}"))  # read there, never run
        if state in ("to run",) or state.endswith("resumes"):
            total_h += hours or 0.0
            unknown += hours is None
    known = f"about {total_h:.1f} h" if unknown < len(todo) or not todo else "time unknown"
    if unknown and unknown < len(todo):
        known += f" for {len(todo) - unknown} of them, {unknown} of unknown time (no cost model for their learner)"
    ests = [e for _, e, _, _ in cached.values() if e is not None]
    untimed = next((e.untimed for e in ests if e.untimed), "")
    basis = ("the cost model's units scaled by a step timed here now" if any(e.measured_step_s for e in ests) else
             f"the cost model's units, not timed here: {busy} is training here now" if busy else
             f"the cost model's units, {untimed}" if untimed else "the cost model's units")
    lines.append(f"to run: {len(todo)} of {len(plan)} runs, {known} "
                 f"(streamvae.costs, {threads} thread(s) per run; every phase; {basis})")
    return "\n".join(lines)


def record_runs(spec: Spec, budget: str, root: Path, table_cells: list[Cell], seeds: int, dest: Path,
                shared: Sequence[Path] | None = None) -> list[str]:
    """Copy the record files (:data:`RECORD_FILES`, never a checkpoint) of every finished run of the
    table under ``root`` into ``dest/<spec>/<budget>/<run>/``, each file written atomically; runs not
    finished are left out. Returns the runs copied (``(unchanged)`` where the record was already equal)."""
    from ..utils import atomic_write_bytes

    done = []
    runnable = [c for c in table_cells if c.state == "run"]
    elsewhere = _shared_runs(root, runnable, shared_roots(root, spec.name, budget) if shared is None else shared)
    for cell, seed, rs in _seed_specs(spec, budget, runnable, seeds):
        src = root / rs.name
        if (cell.key, seed) in elsewhere:
            done.append(f"{rs.name}: is {elsewhere[cell.key, seed]} (the same configuration): its record is kept there")
            continue
        if not (src / "results.json").is_file() or writer_pid(src) is not None:
            continue
        target = dest / spec.name / budget / rs.name
        changed = False
        for name in RECORD_FILES:
            f = src / name
            if not f.is_file() or f.is_symlink():
                continue
            data = f.read_bytes()
            if not (target / name).is_file() or (target / name).read_bytes() != data:
                target.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(target / name, data)
                changed = True
        done.append(f"{target}{'' if changed else ' (unchanged)'}")
    return done


def carried_run(run_dir: Path, rs, carried: Path = carry.CARRY_DIR) -> tuple[Path, int] | None:
    """``(file, arrival)`` when ``carried/<run>.carry`` holds this run (its configuration is ``rs.expected``)
    and ``run_dir`` has neither a checkpoint nor results: a run that travelled from another machine, which
    ``reproduce`` unpacks and resumes instead of starting it again."""
    from ..errors import StreamVAEError

    f = carried / f"{rs.name}.carry"
    if not f.is_file() or (run_dir / "checkpoint.pt").exists() or (run_dir / "results.json").exists():
        return None
    try:
        config, arrival = carry.carried_config(f)
    except StreamVAEError:
        return None
    return (f, arrival) if config is not None and same_config(rs.expected, rs.seed, config) else None


def leftover_carries(carried: Path, records: Path) -> list[str]:
    """One line for each carried file under ``carried`` whose run is finished and recorded under
    ``records``: it has done its work and goes, so that none stays in the tree once its run ends."""
    from ..errors import StreamVAEError

    lines = []
    for f in sorted(carried.glob("*.carry")) if carried.is_dir() else []:
        try:
            done = carry.recorded_at(f, records)
        except StreamVAEError:
            continue
        if done is not None:
            lines.append(f"{f}: its run is finished and recorded in {done}: remove it (git rm {f})")
    return lines


def reproduce(name: str, budget: str | None = None, seeds: int | None = None, only: tuple[str, ...] = (),
              jobs: int = 1, executor: str = "local", data_root: str | None = None, out: str | None = None,
              records: str | None = None, dry_run: bool = False, slurm=None, record: str | None = None,
              with_records: str | None = None) -> int:
    """``streamvae reproduce``: run what is missing (or, with ``records``, only read; with ``record``,
    only copy the finished runs' records), write and print the table. ``with_records``
    (``--with-records results/``): runs recorded there, of the same configuration, count as finished."""
    from ..sweep import run_specs

    spec = load_spec(name)
    budget = budget or spec.budget
    from ..config import BUDGET_NAMES

    if budget not in BUDGET_NAMES:
        raise ConfigError(f"--budget {budget!r} is unknown; valid budgets: {', '.join(BUDGET_NAMES)}")
    if seeds is not None and seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    if data_root is not None and not Path(data_root).expanduser().is_dir():
        raise ConfigError(f"--data-root {data_root} does not exist or is not a directory")
    n_seeds = seeds if seeds is not None else spec.seeds
    table_cells = cells(spec, budget, data_root, only, check_data=records is None and record is None)
    command = reproduce_command(spec, budget, None, seeds)
    if records is not None and record is not None:
        raise ConfigError("--from reads records and --record writes them: give one of them")
    if with_records is not None and records is not None:
        raise ConfigError("--from reads only records; --with-records adds them to the runs: give one of them")
    if with_records is not None and not Path(with_records).is_dir():
        raise ConfigError(f"--with-records {with_records} is not a directory (the records live in results/)")
    if records is not None:
        if dry_run:
            raise ConfigError("--dry-run plans runs; --from only reads records: give one of them")
        root = Path(records) / spec.name / budget
        if not Path(records).is_dir():
            raise ConfigError(f"--from {records} is not a directory (the records live in results/)")
        text = table_markdown(spec, budget, root, table_cells, seeds, command, records=records)
        if out is not None:
            write_tables(spec, budget, root, table_cells, Path(out), seeds, command, records=records)
        print(text, end="")
        return 0
    root = Path(out) if out is not None else DEFAULT_OUT / spec.name / budget
    shared = shared_roots(root, spec.name, budget, with_records)
    if record is not None:
        if dry_run:
            raise ConfigError("--dry-run plans runs; --record only copies finished runs' records: give one of them")
        copied = record_runs(spec, budget, root, table_cells, n_seeds, Path(record), shared)
        print("\n".join(f"recorded: {c}" for c in copied) if copied else f"no finished run under {root} to record")
        for line in leftover_carries(carry.CARRY_DIR, Path(record)):
            print(line)
        return 0
    if dry_run:
        print(dry_run_text(spec, budget, root, table_cells, n_seeds, jobs, data_root, shared))
        return 0
    runnable = [c for c in table_cells if c.state == "run"]
    plan = _seed_specs(spec, budget, runnable, n_seeds)
    elsewhere = _shared_runs(root, runnable, shared)
    running = [rs for _, _, rs in plan if writer_pid(root / rs.name) is not None]
    for rs in running:
        print(f"reproduce: {rs.name} is being written by another process ({run_progress(root / rs.name)}"
              f"pid {writer_pid(root / rs.name)}): left to it", flush=True)
    for cell, seed, rs in plan:
        if (cell.key, seed) in elsewhere:
            print(f"reproduce: {rs.name} is the finished run {elsewhere[cell.key, seed]} (the same "
                  "configuration): read, not run again", flush=True)
    specs = [rs for cell, seed, rs in plan if rs not in running and (cell.key, seed) not in elsewhere]
    for rs in specs:
        found = carried_run(root / rs.name, rs)
        if found is not None:
            carry.unpack(found[0], root / rs.name)
            print(f"reproduce: {rs.name}: unpacked {found[0]} (arrival {found[1]}): resumed, not started again",
                  flush=True)
    code = run_specs(specs, root, jobs, executor, data_root, (), slurm, summary=False, ignore=ENVIRONMENT,
                     label="reproduce") if specs else 0
    paths = write_tables(spec, budget, root, table_cells, root, seeds, command, shared)
    print(paths[0].read_text(), end="")  # table.md, as written (not built a second time)
    print(f"tables: {', '.join(str(p) for p in paths)}")
    return code


# ---------------------------------------------------------------------------------------------
# RESULTS.md: its tables are generated from the records


_BLOCK = re.compile(r"<!-- streamvae reproduce (?P<name>[a-z0-9_.-]+) --budget (?P<budget>[a-z]+) --from results/ -->\n"
                    r"(?P<body>.*?)<!-- end of generated table -->", re.S)


def records_table(name: str, budget: str, records: str | Path, shown: str | None = None) -> str:
    """What ``streamvae reproduce NAME --budget BUDGET --from RECORDS`` prints (``shown``: how its
    commands name RECORDS, ``results/`` on RESULTS.md; default: as given)."""
    spec = load_spec(name)
    table_cells = cells(spec, budget, check_data=False)
    return table_markdown(spec, budget, Path(records) / spec.name / budget, table_cells, None,
                          reproduce_command(spec, budget), records=shown if shown is not None else str(records))


def regenerate_page(text: str, records: str | Path) -> str:
    """``text`` (RESULTS.md) with every generated block (``<!-- streamvae reproduce NAME --budget B
    --from results/ -->`` ... ``<!-- end of generated table -->``) remade from ``records``."""
    def remake(m: re.Match) -> str:
        head = m.group(0).split("\n", 1)[0]
        return f"{head}\n{records_table(m.group('name'), m.group('budget'), records, 'results/')}<!-- end of generated table -->"

    return _BLOCK.sub(remake, text)


def page_blocks(text: str) -> list[tuple[str, str]]:
    """``[(name, budget)]`` of the generated blocks of a page."""
    return [(m.group("name"), m.group("budget")) for m in _BLOCK.finditer(text)]


__all__ = ["records_table", "regenerate_page", "page_blocks", "Spec", "Row", "Column", "Cell", "ENVIRONMENT", "SPECS", "spec_names", "load_spec", "cells", "run_name",
           "read_cell", "metric_value", "verdict", "verdict_rule", "build_table", "table_markdown", "write_tables",
           "reproduce", "record_runs", "carried_run", "leftover_carries", "list_text", "dry_run_text"]
