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
"""
from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..rundir import writer_pid

SPECS = Path(__file__).with_name("specs")
# top-level config fields that say how a run was executed, not what it computes (a cell is the rest)
ENVIRONMENT = ("threads", "progress", "tensorboard", "kernels", "device", "precision", "checkpoint_every",
               "out_dir")
DEFAULT_OUT = Path("runs") / "reproduce"
RECORD_FILES = ("results.json", "metrics.jsonl", "events.jsonl", "train.jsonl", "config.yaml")

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_TOP = {"name": str, "title": str, "source": str, "metric": str, "also": list, "higher_is_better": bool,
        "unit": str, "seeds": int, "budget": str, "verdict": dict, "environment": dict, "columns": list,
        "rows": list}
_REQUIRED = ("name", "title", "source", "metric", "columns", "rows")
_COLUMN = {"key": str, "label": str, "overrides": list}
_ROW = {"key": str, "label": str, "learner": str, "config": str, "overrides": list, "published": dict,
        "ours": bool}


# ---------------------------------------------------------------------------------------------
# specs


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    learner: str
    config: str  # a shipped config name or a path; "{column}" is replaced by the column's key
    overrides: tuple[str, ...] = ()
    published: dict[str, float] = field(default_factory=dict)
    ours: bool = False  # our own reference row: the paper has none


@dataclass(frozen=True)
class Spec:
    name: str
    title: str
    source: str
    metric: str  # "ll", "ll_mixture" or a results.json key
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    also: tuple[str, ...] = ()
    higher_is_better: bool = True
    unit: str = ""
    seeds: int = 1
    budget: str = "paper"
    verdict_sd: float = 2.0
    verdict_abs: float = 1.0
    environment: dict[str, tuple[str, ...]] = field(default_factory=dict)  # budget -> run-environment overrides
    path: str = ""

    def row(self, key: str) -> Row:
        return next(r for r in self.rows if r.key == key)

    def label_of(self, metric: str) -> str:
        """How a metric is named in the table (``ll`` is the run's ``ll_iw1000``)."""
        return {"ll": "ll_iw1000", "ll_mixture": "ll_iw1000 (mixture)"}.get(metric, metric)


def spec_names() -> list[str]:
    return sorted(p.stem for p in SPECS.glob("*.yaml"))


def _check_fields(where: str, d: Any, allowed: dict[str, Any], required: tuple[str, ...]) -> None:
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must be a mapping of {', '.join(allowed)}")
    for k, v in d.items():
        if k not in allowed:
            raise ConfigError(f"{where}: unknown field {k!r}; valid fields: {', '.join(allowed)}")
        want = allowed[k]
        if not isinstance(v, want) or (isinstance(v, bool) and want is not bool):
            name = "number" if isinstance(want, tuple) else {"str": "string", "dict": "mapping"}.get(
                want.__name__, want.__name__)
            raise ConfigError(f"{where}: {k} must be a {name}, got {type(v).__name__} {v!r}")
    missing = [k for k in required if k not in d]
    if missing:
        raise ConfigError(f"{where}: missing field(s) {', '.join(missing)}")


def _strings(where: str, items: list) -> tuple[str, ...]:
    if not all(isinstance(x, str) and x for x in items):
        raise ConfigError(f"{where} must be a list of non-empty strings")
    return tuple(items)


def _overrides(where: str, items: list) -> tuple[str, ...]:
    out = _strings(where, items)
    for o in out:
        key = o.split("=", 1)[0].strip()
        if "=" not in o or key in ("seed", "budget"):
            raise ConfigError(f"{where}: {o!r} must look like key=value and may not set seed or budget "
                              "(--seeds and --budget do)")
    return out


def load_spec(name_or_path: str) -> Spec:
    """A shipped spec by name (``ocm-table1``) or a YAML file; any schema error is one ConfigError line."""
    p = Path(name_or_path)
    if not p.is_file():
        p = SPECS / f"{name_or_path}.yaml"
        if not _NAME.fullmatch(name_or_path) or not p.is_file():
            raise ConfigError(f"table spec {name_or_path!r} is neither a file nor a shipped spec; shipped: "
                              f"{', '.join(spec_names())} (streamvae reproduce --list)")
    try:
        raw = yaml.safe_load(p.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"table spec {p}: cannot read it ({e})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"table spec {p}: not valid YAML ({str(e).splitlines()[0]})") from None
    where = f"table spec {p}"
    _check_fields(where, raw, _TOP, _REQUIRED)
    if not _NAME.fullmatch(raw["name"]):
        raise ConfigError(f"{where}: name {raw['name']!r} must be lower-case letters, digits, '-', '_' or '.'")
    if raw["metric"] == "" or not re.fullmatch(r"[A-Za-z0-9_.]+", raw["metric"]):
        raise ConfigError(f"{where}: metric {raw['metric']!r} must be ll, ll_mixture or a results.json key")
    from ..config import BUDGET_NAMES

    budget = raw.get("budget", "paper")
    if budget not in BUDGET_NAMES:
        raise ConfigError(f"{where}: budget {budget!r} is unknown; valid budgets: {', '.join(BUDGET_NAMES)}")
    seeds = raw.get("seeds", 1)
    if seeds < 1:
        raise ConfigError(f"{where}: seeds must be at least 1, got {seeds}")
    verdict = raw.get("verdict", {})
    _check_fields(f"{where}: verdict", verdict, {"sd": (int, float), "abs": (int, float)}, ())
    env = raw.get("environment", {})
    if not isinstance(env, dict) or any(b not in BUDGET_NAMES for b in env):
        raise ConfigError(f"{where}: environment maps budgets ({', '.join(BUDGET_NAMES)}) to lists of key=value")
    environment = {}
    for b, items in env.items():
        if not isinstance(items, list):
            raise ConfigError(f"{where}: environment.{b} must be a list of key=value")
        environment[b] = _overrides(f"{where}: environment.{b}", items)
        bad = [o for o in environment[b] if o.split("=", 1)[0].strip() not in ENVIRONMENT]
        if bad:
            raise ConfigError(f"{where}: environment.{b}: {bad[0]!r} is not a run-environment field; valid: "
                              f"{', '.join(ENVIRONMENT)} (fields that change the result belong to a row or column)")
    columns = []
    for i, c in enumerate(raw["columns"]):
        w = f"{where}: columns[{i}]"
        _check_fields(w, c, _COLUMN, ("key", "label"))
        if not _NAME.fullmatch(c["key"]):
            raise ConfigError(f"{w}: key {c['key']!r} must be lower-case letters, digits, '-', '_' or '.'")
        columns.append(Column(c["key"], c["label"], _overrides(f"{w}: overrides", c.get("overrides", []))))
    keys = [c.key for c in columns]
    if not columns or len(set(keys)) != len(keys):
        raise ConfigError(f"{where}: columns must be a non-empty list with distinct keys")
    rows = []
    for i, r in enumerate(raw["rows"]):
        w = f"{where}: rows[{i}]"
        _check_fields(w, r, _ROW, ("key", "label", "learner", "config"))
        if not _NAME.fullmatch(r["key"]):
            raise ConfigError(f"{w}: key {r['key']!r} must be lower-case letters, digits, '-', '_' or '.'")
        published = r.get("published", {})
        for col, v in published.items():
            if col not in keys:
                raise ConfigError(f"{w}: published names column {col!r}; columns: {', '.join(keys)}")
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise ConfigError(f"{w}: published.{col} must be a number, got {v!r}")
        rows.append(Row(r["key"], r["label"], r["learner"], r["config"],
                        _overrides(f"{w}: overrides", r.get("overrides", [])),
                        {k: float(v) for k, v in published.items()}, r.get("ours", False)))
    rkeys = [r.key for r in rows]
    if not rows or len(set(rkeys)) != len(rkeys):
        raise ConfigError(f"{where}: rows must be a non-empty list with distinct keys")
    also = _strings(f"{where}: also", raw.get("also", []))
    return Spec(raw["name"], raw["title"], raw["source"], raw["metric"], tuple(columns), tuple(rows), also,
                raw.get("higher_is_better", True), raw.get("unit", ""), seeds, budget,
                float(verdict.get("sd", 2.0)), float(verdict.get("abs", 1.0)), environment, str(p))


# ---------------------------------------------------------------------------------------------
# cells


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
    from ..config import flatten

    have = _config_cached(run_dir / "config.yaml")
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
        where = _progress(d)
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


def _arrival(run_dir: Path) -> int | None:
    """The last arrival train.jsonl records (where an interrupted run resumes, about), or None."""
    try:
        with open(run_dir / "train.jsonl", "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            last = f.read().decode(errors="replace").strip().splitlines()[-1]
        return int(json.loads(last)["arrival"])
    except (OSError, ValueError, IndexError, KeyError, TypeError):
        return None


def _progress(run_dir: Path) -> str:
    """``"arrival 412, "`` from the last line of train.jsonl, or ``""``."""
    arrival = _arrival(run_dir)
    return f"arrival {arrival}, " if arrival is not None else ""


# ---------------------------------------------------------------------------------------------
# the table


HEADER = ["method", "column", "ours", "published", "ours - published", "verdict", "budget", "precision", "note"]


def _mean_sd(values: list[float]) -> tuple[float, float | None]:
    from ..report.tables import mean_std

    mean, sd, _ = mean_std(values)
    assert mean is not None
    return mean, sd


def _digits(metric: str) -> int:
    if metric.startswith(("probe", "is_")):
        return 3 if metric.startswith("probe") else 2
    if metric in ("memory", "components", "clusters"):
        return 0
    return 2


def _ours_text(values: list[float], keys: set[str], nominal: str, digits: int) -> str:
    mean, sd = _mean_sd(values)
    spread = f" ± {sd:.{digits}f}" if sd is not None else ""
    shown = sorted(k for k in keys if k != nominal)
    note = f", {'/'.join(shown)}" if shown else ""
    return f"{mean:.{digits}f}{spread} (n={len(values)}{note})"


def verdict(spec: Spec, mean: float, sd: float | None, published: float) -> str:
    """``within`` when ``|ours - published| <= max(verdict_sd x sd, verdict_abs)``; else better / worse."""
    diff = mean - published
    tol = max(spec.verdict_sd * sd if sd is not None else 0.0, spec.verdict_abs)
    if abs(diff) <= tol:
        return "within"
    return "better" if (diff > 0) == spec.higher_is_better else "worse"


def verdict_rule(spec: Spec) -> str:
    unit = "nat" if spec.unit == "nats" else spec.unit or "unit"
    direction = "higher" if spec.higher_is_better else "lower"
    return (f"within: |ours - published| <= max({spec.verdict_sd:g} sd, {spec.verdict_abs:g} {unit}); "
            f"otherwise better or worse ({direction} is better)")


def build_table(spec: Spec, budget: str, root: Path, table_cells: list[Cell], seeds: int | None = None,
                shared: Sequence[Path] | None = None, records: str | None = None
                ) -> tuple[list[str], list[list], list[list]]:
    """``(header, rows for Markdown / LaTeX, rows for CSV)``: one line per cell (``shared``: see
    :func:`shared_roots`, whose default for ``root`` it is; ``records``: the table is read from the
    records there, so a cell's "more seeds" command keeps them with ``--with-records``)."""
    nominal = "ll_iw1000" if spec.metric == "ll" else spec.metric
    digits = _digits(spec.metric)
    header = HEADER[:3] + [f"{spec.label_of(a)}" for a in spec.also] + HEADER[3:]
    csv_header = ["spec", "row", "method", "column", "row_source", "metric", "mean", "sd", "n", "seeds",
                  *[f"{a}_mean" for a in spec.also], "published", "difference", "verdict", "budget", "precision",
                  "state", "note"]
    md_rows, csv_rows = [], []
    shared = shared_roots(root, spec.name, budget) if shared is None else shared
    for cell in table_cells:
        label = cell.row.label + (" (ours)" if cell.row.ours else "")
        pub = cell.row.published.get(cell.column.key)
        pub_text = f"{pub:.{digits}f}" if pub is not None else "-"
        runs = read_cell(cell, root, shared)
        values: list[float] = []
        keys: set[str] = set()
        also_vals: dict[str, list[float]] = {a: [] for a in spec.also}
        precisions: list[str] = []
        found_seeds: list[int] = []
        for seed, res in sorted(runs.finished.items()):
            v, k = metric_value(res, spec.metric)
            if v is None or k is None:
                continue
            values.append(v)
            keys.add(k)
            found_seeds.append(seed)
            precisions += str(res.get("precision", "fp32")).split("/")  # "bf16/fp32": changed on resume
            for a in spec.also:
                av, _ = metric_value(res, a)
                if av is not None:
                    also_vals[a].append(av)
        notes = []
        if cell.state != "run":
            ours, diff_text, verdict_text, state = cell.state, "-", "-", cell.state
            notes.append(cell.note)
            mean = sd = diff = None
        elif not values:
            ours, diff_text, verdict_text, state = "-", "-", "-", "missing"
            mean = sd = diff = None
        else:
            mean, sd = _mean_sd(values)
            ours = _ours_text(values, keys, nominal, digits)
            state = "done"
            if pub is not None:
                diff = mean - pub
                diff_text = f"{diff:+.{digits}f}"
                verdict_text = verdict(spec, mean, sd, pub)
            else:
                diff, diff_text, verdict_text = None, "-", "-"
        if cell.state == "run":
            if found_seeds and set(found_seeds) != set(runs.shared):  # else the notes below name them all
                notes.append("seeds " + ", ".join(map(str, found_seeds)))
            by_folder: dict[Path, list[int]] = {}
            for seed, where in sorted(runs.shared.items()):
                by_folder.setdefault(Path(where).parent, []).append(seed)
            for folder, there in by_folder.items():
                many = len(there) > 1
                whose = (f"recorded in {folder}" if folder.parent.name == spec.name
                         else f"{folder.parent.name}'s run{'s' if many else ''} (the same configuration)")
                notes.append(f"seed{'s' if many else ''} {', '.join(map(str, there))}: {whose}")
            for seed, text in sorted(runs.running.items()):
                notes.append(f"seed {seed}: {text}")
            for seed, text in sorted(runs.interrupted.items()):
                notes.append(f"seed {seed}: {text}")
            for seed, text in sorted(runs.foreign.items()):
                notes.append(f"seed {seed}: another configuration ({text})")
            want = seeds if seeds is not None else spec.seeds
            if len(values) < want:
                notes.append(f"{'fill' if not values else 'more seeds'}: "
                             + reproduce_command(spec, budget, cell.row, want, records if values else None))
        also_text = []
        for a in spec.also:
            also_text.append(_ours_text(also_vals[a], set(), "", _digits(a)).split(" (n=")[0] if also_vals[a] else "-")
        md_rows.append([label, cell.column.label, ours, *also_text, pub_text, diff_text, verdict_text, budget,
                        "/".join(sorted(set(precisions))) or "-", "; ".join(notes)])
        csv_rows.append([spec.name, cell.row.key, cell.row.label, cell.column.label,
                         "ours" if cell.row.ours else "paper", "/".join(sorted(keys)) or nominal, mean, sd,
                         len(values), " ".join(map(str, found_seeds)),
                         *[(_mean_sd(also_vals[a])[0] if also_vals[a] else None) for a in spec.also], pub, diff,
                         verdict_text if verdict_text != "-" else "", budget, "/".join(sorted(set(precisions))),
                         state, "; ".join(notes)])
    return header, md_rows, [csv_header, *csv_rows]


def table_markdown(spec: Spec, budget: str, root: Path, table_cells: list[Cell], seeds: int | None = None,
                   command: str | None = None, shared: Sequence[Path] | None = None,
                   records: str | None = None) -> str:
    """The table as Markdown, with its title, source, metric, verdict rule and the command that remakes it."""
    from ..report.tables import to_markdown

    header, rows, _ = build_table(spec, budget, root, table_cells, seeds, shared, records)
    header = [header[0], header[1], f"ours: {spec.label_of(spec.metric)}", *header[3:]]
    lines = [f"### {spec.title} (`{spec.name}`, budget `{budget}`)", "",
             f"Published: {spec.source}. Ours: mean ± sd (n seeds) of `{spec.label_of(spec.metric)}`"
             + (f" ({spec.unit})" if spec.unit else "") + (", higher is better" if spec.higher_is_better
                                                          else ", lower is better")
             + f". Verdict: {verdict_rule(spec)}.", ""]
    if command:
        lines += [f"Remake: `{command}`", ""]
    lines.append(to_markdown(header, rows))
    return "\n".join(lines) + "\n"


def write_tables(spec: Spec, budget: str, root: Path, table_cells: list[Cell], out: Path,
                 seeds: int | None = None, command: str | None = None, shared: Sequence[Path] | None = None,
                 records: str | None = None) -> list[Path]:
    """``table.md``, ``table.csv`` and ``table.tex`` in ``out`` (written atomically)."""
    from ..report.tables import to_csv, to_latex
    from ..utils import atomic_write_text

    header, rows, csv_rows = build_table(spec, budget, root, table_cells, seeds, shared, records)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "table.md", out / "table.csv", out / "table.tex"]
    atomic_write_text(paths[0], table_markdown(spec, budget, root, table_cells, seeds, command, shared, records))
    atomic_write_text(paths[1], to_csv(csv_rows[0], csv_rows[1:]))
    first_ours = next((i for i, c in enumerate(table_cells) if c.row.ours), None)
    atomic_write_text(paths[2], to_latex(header, rows, f"{spec.title} ({spec.name}, budget {budget})", first_ours))
    return paths


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
    """How many times the estimate's time this run has taken so far: the wall time metrics.jsonl
    records at its last evaluation point before the end (``wall_s``: this run's training, summed over
    its resumes) over the estimate's share for those arrivals; None before an evaluation point past
    5% of the stream. ``est`` is calibrated to this machine by a step timed now (``costs.calibrate``);
    the pace carries the rest: the load the run has met, and its own mix of work (before that
    calibration, 2.5 for Dynamic-OCM at `paper` on a 2-core AMD EPYC, bf16, was mostly machine speed)."""
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
    last = done[-1]
    made = share(last["arrival"]) if share is not None else last["arrival"] / arrivals
    model = (est.total_s - est.phases["final_evaluation"]) * min(1.0, made)
    return float(last["wall_s"]) / model if model > 0 and last["wall_s"] > 0 else None


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
            done = _arrival(run_dir)
            where = f"arrival {done}, " if done is not None else ""
            state = f"{where}running (pid {pid})" if pid is not None else f"{where}interrupted: resumes"
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
                    hours_text += (f" by the model; at this run's pace so far ({pace:.1f}x the model's), "
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
        return 0
    if dry_run:
        print(dry_run_text(spec, budget, root, table_cells, n_seeds, jobs, data_root, shared))
        return 0
    runnable = [c for c in table_cells if c.state == "run"]
    plan = _seed_specs(spec, budget, runnable, n_seeds)
    elsewhere = _shared_runs(root, runnable, shared)
    running = [rs for _, _, rs in plan if writer_pid(root / rs.name) is not None]
    for rs in running:
        print(f"reproduce: {rs.name} is being written by another process ({_progress(root / rs.name)}"
              f"pid {writer_pid(root / rs.name)}): left to it", flush=True)
    for cell, seed, rs in plan:
        if (cell.key, seed) in elsewhere:
            print(f"reproduce: {rs.name} is the finished run {elsewhere[cell.key, seed]} (the same "
                  "configuration): read, not run again", flush=True)
    specs = [rs for cell, seed, rs in plan if rs not in running and (cell.key, seed) not in elsewhere]
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
           "reproduce", "record_runs", "list_text", "dry_run_text"]
