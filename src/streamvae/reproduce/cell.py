"""A spec's cells at one budget (row x column: runnable, not implemented, or no data) and reading
the runs that fill them (a run directory or a record; which runs are the same cell)."""
from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import ConfigError
from ..rundir import writer_pid
from .spec import ENVIRONMENT, Column, Row, Spec

@dataclass
class Cell:
    """One row x column of a table at one budget: runnable, or why not."""

    row: Row
    column: Column
    state: str  # "run" | "not implemented" | "no data"
    note: str = ""
    config: str = ""  # the config file (absolute), for a runnable cell
    overrides: tuple[str, ...] = ()  # budget, column's, row's (what the cell is), then the environment's
    expected: dict = field(default_factory=dict)  # resolved config minus ENVIRONMENT (seed 0's, seed removed)
    pinned: dict = field(default_factory=dict)  # ENVIRONMENT fields a shared run must have: precision, and any the row or column sets

    @property
    def key(self) -> str:
        return f"{self.row.key}-{self.column.key}"


def run_name(cell: Cell, seed: int) -> str:
    return f"{cell.key}-s{seed}"


def _identity(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in ENVIRONMENT and k != "seed"}


def cells(spec: Spec, budget: str, data_root: str | None = None, only: tuple[str, ...] = (),
          check_data: bool = True) -> list[Cell]:
    """Every cell of the table (rows outermost), each resolved: an unknown key or bad value in a spec's
    overrides is one error here, before anything runs. ``check_data=False`` (reading records) does not
    look for the datasets: a table of records is the same on every machine."""
    from .. import config as C
    from .. import registry
    from ..catalog import config_path
    from ..data.datasets import DATASETS, locate

    unknown = [o for o in only if o not in {r.key for r in spec.rows}]
    if unknown:
        raise ConfigError(f"--only {unknown[0]!r} is not a row of {spec.name}; rows: "
                          f"{', '.join(r.key for r in spec.rows)}")
    names = set(registry.learner_names())
    out = []
    for row in spec.rows:
        if only and row.key not in only:
            continue
        for col in spec.columns:
            if row.learner not in names:
                out.append(Cell(row, col, "not implemented",
                                f"not implemented: no learner {row.learner!r} is registered"))
                continue
            name = row.config.replace("{column}", col.key)
            try:
                path = str(config_path(name).resolve())
            except ConfigError:
                out.append(Cell(row, col, "not implemented", f"not implemented: no config {name!r} is shipped"))
                continue
            what = (f"budget={budget}", *col.overrides, *row.overrides)
            env = spec.environment.get(budget, ())
            cfg = registry.load_config(path, [*what, *env, "seed=0"])
            missing = [d for d in cfg.stream.datasets if check_data and locate(d, data_root)[0] is None]
            if missing:
                where = ", ".join(f"{d.upper()} under DATA_ROOT/{DATASETS[d].folder}" for d in missing)
                out.append(Cell(row, col, "no data", f"no data: put {where} (--data-root DATA_ROOT, or "
                                                     f"streamvae data fetch {missing[0]})"))
                continue
            # a field of the run environment that the row or column sets is what the cell is about; and a
            # cell of one precision (fp32 at `fast`) never reads another's run (auto, at `paper`, takes either)
            set_here = {o.split("=", 1)[0].strip() for o in (*col.overrides, *row.overrides)} | {"precision"}
            pinned = {k: v for k, v in C.to_dict(cfg).items() if k in ENVIRONMENT and k in set_here}
            out.append(Cell(row, col, "run", "", path, (*what, *env), _identity(C.to_dict(cfg)), pinned))
    return out


def reproduce_command(spec: Spec, budget: str, row: Row | None = None, seeds: int | None = None,
                      with_records: str | None = None) -> str:
    """The ``streamvae reproduce`` command that (re)makes the table, or one row of it (``with_records``:
    counting the runs recorded there as finished)."""
    parts = ["streamvae", "reproduce", spec.name, "--budget", budget]
    if seeds is not None and seeds != spec.seeds:
        parts += ["--seeds", str(seeds)]
    if row is not None:
        parts += ["--only", row.key]
    if with_records is not None:
        parts += ["--with-records", with_records]
    return shlex.join(parts)


# ---------------------------------------------------------------------------------------------
# reading finished runs


def _read_config(config_file: Path) -> dict | str:
    """A run's config.yaml as a mapping, or why it cannot be read."""
    try:
        have = yaml.safe_load(config_file.read_text()) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return f"{config_file} is missing or unreadable"
    if not isinstance(have, dict):
        return f"{config_file} is not a mapping"
    return have


def _differs(expected: dict, config_file: Path | dict) -> str | None:
    """The first field where a run's config.yaml differs from the cell's (fields on one side only, such
    as those added to the code after the run was made, are not compared), or None."""
    from ..config import flatten

    have = _read_config(config_file) if isinstance(config_file, Path) else config_file
    if isinstance(have, str):
        return have
    a, b = flatten(_identity(have)), flatten(expected)
    for k in sorted(set(a) & set(b)):
        if a[k] != b[k]:
            return f"{k} is {a[k]!r} there, {b[k]!r} in the spec"
    return None


def shared_roots(root: Path, spec: str, budget: str, records: str | Path | None = None) -> list[Path]:
    """Where :func:`read_cell` looks for a finished run of the very same configuration that ``root``
    lacks: the other tables' folders at the same budget beside ``root`` when ``root`` is
    ``BASE/spec/budget`` (``results/`` or ``runs/reproduce/``), and with ``records`` (``--with-records
    results/``) this table's recorded runs there and the other tables' beside them."""
    def beside(folder: Path) -> list[Path]:
        if folder.name != budget or folder.parent.name != spec or not folder.parent.parent.is_dir():
            return []
        return sorted(p / budget for p in folder.parent.parent.iterdir() if p.name != spec and (p / budget).is_dir())

    out = beside(root)
    if records is not None:
        mine = Path(records) / spec / budget
        for folder in ([mine] if mine.is_dir() else []) + beside(mine):
            if folder.resolve() != root.resolve() and folder not in out:
                out.append(folder)
    return out


_CONFIGS: dict[tuple[str, int, int], dict | str] = {}


def _config_cached(config_file: Path) -> dict | str:
    try:
        st = config_file.stat()
    except OSError:
        return f"{config_file} is missing"
    key = (str(config_file), st.st_mtime_ns, st.st_size)
    if key not in _CONFIGS:
        _CONFIGS[key] = _read_config(config_file)
    return _CONFIGS[key]


def _same_run(expected: dict, seed: int, run_dir: Path) -> bool:
    """Whether the finished run in ``run_dir`` is this cell's configuration at ``seed``: every field both
    configs have is equal, the seed too, and the run's config has (nearly) every field of the cell's, so
    that a record of an older code that lacks most of them never stands in for a cell."""
    return same_config(expected, seed, _config_cached(run_dir / "config.yaml"))


def same_config(expected: dict, seed: int, have: dict | str) -> bool:
    """:func:`_same_run` for a config already read (``have``; a string says why it could not be)."""
    from ..config import flatten

    if isinstance(have, str) or have.get("seed") != seed or _differs(expected, have) is not None:
        return False
    want = flatten(expected)
    return len(set(flatten(_identity(have))) & set(want)) >= 0.95 * len(want)


def _pinned_match(pinned: dict, config: dict | str, results: dict) -> bool:
    """Whether a run has the environment fields a cell sets (:attr:`Cell.pinned`): precision as the run
    resolved it (``results.json``: ``auto`` may have been either), the others as its config says."""
    if not pinned:
        return True
    if isinstance(config, str) or not isinstance(results, dict):
        return False
    for key, want in pinned.items():
        have = results.get("precision", config.get(key)) if key == "precision" else config.get(key)
        if want != "auto" and have != want:
            return False
    return True


def metric_value(results: dict, metric: str) -> tuple[float | None, str | None]:
    """``(value, key)`` of ``metric`` in a results.json: ``ll`` / ``ll_mixture`` pick the run's ll_iw{k}."""
    from ..evaluation.continual import ll_key

    if metric in ("ll", "ll_mixture"):
        if metric == "ll_mixture" and results.get("components", 1) <= 1:
            return None, None
        key = ll_key(results, "" if metric == "ll" else "_mixture")
    else:
        key = metric if metric in results else None
    v = results.get(key) if key else None
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v), key
    return None, None


@dataclass
class CellRuns:
    """What a cell's folder holds: finished runs by seed, and the others."""

    finished: dict[int, dict] = field(default_factory=dict)  # seed -> results.json
    running: dict[int, str] = field(default_factory=dict)  # seed -> "arrival 412/937 (pid 123)"
    interrupted: dict[int, str] = field(default_factory=dict)
    foreign: dict[int, str] = field(default_factory=dict)  # seed -> why the folder is another configuration
    shared: dict[int, str] = field(default_factory=dict)  # seed -> "results/ocm-table1/fast/ocm-split_fashion-s0":
    # a finished run of the same configuration elsewhere (another table's, or a record): read, not run again


def read_cell(cell: Cell, root: Path, shared: Sequence[Path] = ()) -> CellRuns:
    """The runs of ``cell`` in ``root``, and, for seeds it has not finished, a finished run of the same
    configuration in one of the ``shared`` folders (other tables' runs at this budget: see
    :func:`shared_roots`)."""
    out = CellRuns()
    if cell.state != "run":
        return out
    for d in sorted(root.glob(f"{cell.key}-s*")) if root.is_dir() else ():
        m = re.fullmatch(re.escape(cell.key) + r"-s(\d+)", d.name)
        if not m or not d.is_dir():
            continue
        seed = int(m.group(1))
        why = _differs(cell.expected, d / "config.yaml")
        if why:
            out.foreign[seed] = why
            continue
        try:
            out.finished[seed] = json.loads((d / "results.json").read_text())
            continue
        except (OSError, ValueError):
            pass
        where = run_progress(d)
        pid = writer_pid(d)
        if pid is not None:
            out.running[seed] = f"{where}running (pid {pid})"
        elif (d / "checkpoint.pt").exists():
            out.interrupted[seed] = f"{where}interrupted"
    for other in shared:
        for d in sorted(other.glob("*-s*")):
            m = re.fullmatch(r".+-s(\d+)", d.name)
            if not m or int(m.group(1)) in out.finished or not (d / "results.json").is_file():
                continue
            seed = int(m.group(1))
            if not _same_run(cell.expected, seed, d) or writer_pid(d) is not None:
                continue
            try:
                results = json.loads((d / "results.json").read_text())
            except (OSError, ValueError):
                continue
            if not _pinned_match(cell.pinned, _config_cached(d / "config.yaml"), results):
                continue
            out.finished[seed] = results
            out.shared[seed] = str(d)
            for held in (out.running, out.interrupted, out.foreign):
                held.pop(seed, None)
    return out


def run_arrival(run_dir: Path) -> int | None:
    """The last arrival train.jsonl records (where an interrupted run resumes, about), or None."""
    try:
        with open(run_dir / "train.jsonl", "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            last = f.read().decode(errors="replace").strip().splitlines()[-1]
        return int(json.loads(last)["arrival"])
    except (OSError, ValueError, IndexError, KeyError, TypeError):
        return None


def run_progress(run_dir: Path) -> str:
    """``"arrival 412, "`` from the last line of train.jsonl, or ``""``."""
    arrival = run_arrival(run_dir)
    return f"arrival {arrival}, " if arrival is not None else ""
