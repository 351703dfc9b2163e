"""A finished (or running) run directory, read from its files only: never a live model.

    run = load_run("runs/fast/split_fashion-reservoir")
    run.rows          # metrics.jsonl, one dict per evaluation point
    run.final         # results.json, or the last row while the run is still going
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..config import flatten
from ..errors import StreamVAEError


class ReportError(StreamVAEError):
    """A folder that is not a run directory, or an unreadable run file."""


# rows written before memory sizes were nested under "memory_sizes" named them at the top level
_LEGACY_MEMORY_KEYS = ("stm", "ltm", "temporary", "cluster_images")


def memory_sizes(row: dict) -> dict[str, int]:
    """``{memory name: stored images}`` of an evaluation row (``row["memory_sizes"]``; the total is
    ``row["memory"]``). Rows of older runs had the sizes at the top level; they are read too."""
    if isinstance(row.get("memory_sizes"), dict):
        return dict(row["memory_sizes"])
    legacy = {k: row[k] for k in _LEGACY_MEMORY_KEYS if isinstance(row.get(k), int)}
    if not legacy and isinstance(row.get("memory"), int):
        legacy = {"memory": row["memory"]}
    return legacy

GRIDS = ("samples.png", "reconstructions.png", "memory.png")  # written by the loop


@dataclass
class Run:
    path: Path
    config: dict  # config.yaml (resolved: budget applied)
    results: dict | None  # results.json; None while the run is still going
    rows: list[dict]  # metrics.jsonl
    events: list[dict] = field(default_factory=list)  # events.jsonl (selection events of memory learners)
    label: str = ""  # unique display name among the runs of one report

    @property
    def finished(self) -> bool:
        return self.results is not None

    @property
    def final(self) -> dict:
        """The final row (results.json), or the latest evaluation row of a run still going."""
        if self.results is not None:
            return self.results
        return self.rows[-1] if self.rows else {}

    @property
    def name(self) -> str:
        return (self.results or {}).get("name") or self.config.get("name") or self.path.name

    @property
    def learner(self) -> str:
        return (self.results or {}).get("learner") or self.config.get("learner", {}).get("name", "?")

    @property
    def budget(self) -> str:
        """The recorded budget, with the fields that differ from that budget's settings (provenance.budget_label)."""
        from ..provenance import budget_label

        return budget_label(self.config, (self.results or {}).get("budget") or self.config.get("budget", "?"))

    @property
    def seed(self):
        return (self.results or {}).get("seed", self.config.get("seed"))

    @property
    def datasets(self) -> tuple[str, ...]:
        d = (self.results or {}).get("datasets") or self.config.get("stream", {}).get("datasets") or ()
        return tuple(d)

    @property
    def batch_size(self) -> int:
        return int(self.config.get("stream", {}).get("batch_size", 64))

    @property
    def task_ends(self) -> list[int]:
        """Arrival counts at which tasks end (the evaluator's knowledge; the last one ends the stream)."""
        return list(self.rows[-1].get("task_ends", [])) if self.rows else []

    @property
    def arrivals_total(self) -> int | None:
        if self.results is not None:
            return self.results.get("arrivals")
        ends = self.task_ends
        return ends[-1] if ends else None

    @property
    def task_names(self) -> list[str]:
        names = (self.results or {}).get("task_names")
        if names:
            return list(names)
        n = max((len(v) for r in self.rows for v in r.get("per_task", {}).values()), default=0)
        return [f"task {j}" for j in range(n)]

    def memory_keys(self) -> list[str]:
        """The memories named in the rows' ``memory_sizes`` (``memory``, ``stm``, ``ltm``, ...), in first-seen order."""
        keys: list[str] = []
        for r in self.rows:
            for k in memory_sizes(r):
                if k not in keys:
                    keys.append(k)
        return keys

    def running(self) -> bool:
        """True while a streamvae process holds the run directory's lock (reads the lock only)."""
        import fcntl
        import os

        lock = self.path / ".lock"
        if not lock.exists():
            return False
        fd = os.open(lock, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        except OSError:
            return True
        finally:
            os.close(fd)

    def status(self) -> str:
        if self.finished:
            return "finished"
        last = self.rows[-1]["arrival"] if self.rows else 0
        where = f"last evaluation at arrival {last} of {self.arrivals_total or '?'}"
        if self.running():
            return f"in progress ({where})"
        return f"interrupted ({where}; continue with streamvae run --resume {self.path})"

    @property
    def rescored(self) -> dict | None:
        """``eval.json`` (written by ``streamvae eval``, e.g. with more importance samples), if any."""
        path = self.path / "eval.json"
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, OSError) as e:
            raise ReportError(f"{path} is not valid JSON: {e}") from None

    def grids(self) -> list[Path]:
        """PNG files of the run directory: the loop's grids first, then any other (per-component grids...)."""
        known = [self.path / g for g in GRIDS if (self.path / g).exists()]
        others = sorted(p for p in self.path.glob("*.png") if p.name not in GRIDS)
        return known + others


def _jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as e:
        raise ReportError(f"{path} is not valid JSON lines: {e}") from None


def load_run(path: str | Path) -> Run:
    """Read a run directory (config.yaml, metrics.jsonl, results.json, events.jsonl)."""
    path = Path(path)
    if not path.is_dir():
        raise ReportError(f"{path} is not a directory")
    rows = _jsonl(path / "metrics.jsonl")
    results = None
    if (path / "results.json").exists():
        try:
            results = json.loads((path / "results.json").read_text())
        except json.JSONDecodeError as e:
            raise ReportError(f"{path / 'results.json'} is not valid JSON: {e}") from None
    if not rows and results is None:
        raise ReportError(f"{path} holds neither metrics.jsonl rows nor results.json: is it a streamvae run directory?")
    config: dict = {}  # config.yaml
    if (path / "config.yaml").exists():
        config = yaml.safe_load((path / "config.yaml").read_text()) or {}
    return Run(path=path, config=config, results=results, rows=rows, events=_jsonl(path / "events.jsonl"))


def is_run_dir(path: Path) -> bool:
    return (path / "results.json").is_file() or (path / "metrics.jsonl").is_file()


def _natural(path: Path) -> list:
    """Sort key: ``seed=2`` before ``seed=10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def find_run_dirs(paths) -> list[Path]:
    """Run directories named by ``paths``: a run directory itself, or every run directory under a
    folder (a sweep directory, searched recursively; hidden folders such as ``.submitit`` skipped).
    A folder holding none is kept as it is, so that loading it says what is wrong."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir() or is_run_dir(p):
            out.append(p)
            continue
        found = sorted({f.parent for pattern in ("results.json", "metrics.jsonl") for f in p.rglob(pattern)
                        if not any(part.startswith(".") for part in f.relative_to(p).parts)}, key=_natural)
        out += found or [p]
    return list(dict.fromkeys(out))


def load_runs(paths) -> list[Run]:
    """Load several runs (a sweep directory stands for every run under it) and give each a unique
    label: its name, plus as much of its path as tells runs of the same name apart."""
    runs = [load_run(p) for p in find_run_dirs(paths)]
    for r in runs:
        r.label = r.name
        same = [o for o in runs if o.name == r.name]
        if len(same) > 1:
            for depth in range(1, len(r.path.parts) + 1):
                tails = ["/".join(o.path.parts[-depth:]) for o in same]
                if tails.count("/".join(r.path.parts[-depth:])) == 1 or depth == len(r.path.parts):
                    break
            r.label = f"{r.name} ({'/'.join(r.path.parts[-depth:])})"
    labels = [r.label for r in runs]
    for i, r in enumerate(runs):
        if labels.count(r.label) > 1:
            r.label = f"{r.label} #{i + 1}"
    return runs


# fields of config.yaml that say how a run was executed, not what it is: runs that differ only in
# these (and the seed) are repetitions of one configuration
EXECUTION_FIELDS = ("seed", "threads", "progress", "tensorboard", "out_dir", "device")


def configuration(run: Run) -> dict:
    """The run's resolved config, flattened to dotted keys, without the seed and execution fields.

    It is read against today's schema of the run's learner, so runs written by older versions group
    with new ones: a field the learner does not have is dropped (older config.yaml files listed every
    learner's fields), and a field added since is filled with its default (a new field's default
    keeps the behaviour the older run had). A learner this process cannot load is taken as written.
    """
    from ..registry import default_config  # noqa: PLC0415 (the registry imports every learner)

    if not run.config:  # no config.yaml: a configuration of its own
        return {"run directory": str(run.path)}
    flat = flatten(run.config)
    defaults = default_config(str(flat.get("learner.name", "")))
    if defaults is not None:
        flat = {k: flat.get(k, v) for k, v in defaults.items()}
    return {k: v for k, v in flat.items() if k not in EXECUTION_FIELDS}


@dataclass
class SeedGroup:
    """Runs that differ only in seed (and in how they were executed): one configuration."""

    label: str
    runs: list[Run]

    @property
    def seeds(self) -> list:
        return [r.seed for r in self.runs]


def seed_groups(runs: list[Run]) -> list[SeedGroup]:
    """Group runs by configuration, in first-seen order. A group of one run keeps the run's label;
    a larger one is named after its runs' name plus the settings that tell it apart from the other
    groups of that name (``split_fashion-reservoir (learner.lr=0.0003)``)."""
    keyed: dict[str, list[Run]] = {}
    for run in runs:
        keyed.setdefault(json.dumps(configuration(run), sort_keys=True, default=str), []).append(run)
    groups = [SeedGroup("", members) for members in keyed.values()]
    for g in groups:
        if len(g.runs) == 1:
            g.label = g.runs[0].label
            continue
        name = g.runs[0].name
        mine = configuration(g.runs[0])
        others = [configuration(o.runs[0]) for o in groups if o is not g and o.runs[0].name == name]
        diff = sorted({k for o in others for k in set(o) | set(mine) if o.get(k) != mine.get(k)})
        shown = ", ".join(f"{k}={mine.get(k, '-')}" for k in diff[:3]) + (", ..." if len(diff) > 3 else "")
        g.label = f"{name} ({shown})" if shown else name
    return groups
