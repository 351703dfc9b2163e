"""Table specs: the YAML files shipped in ``reproduce/specs/``, read and checked into :class:`Spec`."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

SPECS = Path(__file__).with_name("specs")
# top-level config fields that say how a run was executed, not what it computes (a cell is the rest)
ENVIRONMENT = ("threads", "progress", "tensorboard", "kernels", "device", "precision", "checkpoint_every",
               "out_dir")

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_TOP = {"name": str, "title": str, "source": str, "metric": str, "also": list, "higher_is_better": bool,
        "unit": str, "seeds": int, "budget": str, "verdict": dict, "environment": dict, "columns": list,
        "rows": list}
_REQUIRED = ("name", "title", "source", "metric", "columns", "rows")
_COLUMN = {"key": str, "label": str, "overrides": list}
_ROW = {"key": str, "label": str, "learner": str, "config": str, "overrides": list, "published": dict,
        "ours": bool}


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
