"""A finished (or running) run directory, read from its files only: never a live model.

Every file of a run directory is treated as hostile (run directories are copied from colleagues and
from papers' supplementary material): only regular files directly inside the directory are read
(never a link out of it, a FIFO or a device), each up to a size limit, and each is checked against
the schema the report relies on as it is read. A file that fails is one :class:`ReportError` line
naming the file and the field; nothing in a run directory is ever imported or executed.

    run = load_run("runs/fast/split_fashion-reservoir")
    run.rows          # metrics.jsonl, one dict per evaluation point
    run.final         # results.json, or the last row while the run is still going
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..config import flatten
from ..errors import StreamVAEError


class ReportError(StreamVAEError):
    """A folder that is not a run directory, or an unreadable run file."""


MAX_TEXT_BYTES = 256 << 20  # a run's JSON / JSON-lines file larger than this is refused
MAX_CONFIG_BYTES = 1 << 20  # config.yaml
MAX_PNG_BYTES = 64 << 20  # a PNG grid
MAX_PNG_PIXELS = 50_000_000  # pixels of a PNG grid (a 40000x40000 decompression bomb is refused unread)
MAX_INT = 10**15  # integers beyond this in a run file are refused (a 400-digit "number" is damage, not data)


def read_file(path: Path, limit: int) -> bytes:
    """The bytes of a run file: a regular file inside the run directory, never through a link."""
    from ..utils import read_regular

    try:
        return read_regular(path, limit, follow_symlinks=False)
    except ValueError as e:
        raise ReportError(f"{path} {e}; a report reads only regular files inside the run directory") from None
    except OSError as e:
        raise ReportError(f"{path}: cannot read it ({e.strerror or e})") from None


def _text(path: Path, limit: int = MAX_TEXT_BYTES) -> str:
    try:
        return read_file(path, limit).decode("utf-8")
    except UnicodeDecodeError as e:
        raise ReportError(f"{path} is not UTF-8 text (byte {e.start}); the file is damaged") from None


def _json_value(text: str, path: Path, where: str = "") -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:  # also an integer of more than 4300 digits
        raise ReportError(f"{path}{where} is not valid JSON ({getattr(e, 'msg', None) or str(e)[:80]})") from None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class NonFinite(float):
    """A NaN or infinity read from a run file (JSON's ``NaN`` / ``Infinity``): a float to compute with,
    flagged ``(!)`` wherever a table shows it."""


def _flag(value: object) -> object:
    return NonFinite(value) if isinstance(value, float) and not math.isfinite(value) else value


def _number(value: object, path: Path, field: str, integer: bool = False) -> None:
    """A number the report computes with (NaN and infinity pass: the tables flag them), or None."""
    if value is None:
        return
    ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_INT
    if not integer:
        ok = ok or isinstance(value, float)
    if not ok:
        kind = "an integer" if integer else "a number"
        raise ReportError(f"{path}: {field} must be {kind}, got {_short(value)}")


def _strings(value: object, path: Path, field: str) -> None:
    if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise ReportError(f"{path}: {field} must be a list of strings, got {_short(value)}")


# fields of results.json, eval.json and metrics.jsonl rows that the tables and figures compute with
_NUMBER_FIELDS = re.compile(r"ll_iw\d+\w*|recon_sse|probe_linear|probe_knn|train_wall_s|wall_s")
_INT_FIELDS = ("arrival", "arrivals", "seed", "steps", "memory", "components", "clusters", "iw_samples",
               "test_size", "tasks_seen", "images_seen")
_STR_FIELDS = ("name", "learner", "budget", "order", "kernels", "device", "precision")


def check_row(row: object, path: Path, where: str = "", arrival: bool = False) -> dict:
    """A results.json / eval.json object or a metrics.jsonl row, checked field by field."""
    if not isinstance(row, dict):
        raise ReportError(f"{path}{where} is a JSON {type(row).__name__}, not an object")
    p = Path(f"{path}{where}")
    if arrival and "arrival" not in row:
        raise ReportError(f"{p}: the row has no arrival")
    for k, v in row.items():
        if k in _INT_FIELDS:
            _number(v, p, k, integer=True)
            if k == "arrival" and (v is None or v < 0):
                raise ReportError(f"{p}: arrival must be an integer >= 0, got {_short(v)}")
        elif _NUMBER_FIELDS.fullmatch(k) or k.startswith(("fid_", "is_")) and not isinstance(v, (str, dict)):
            _number(v, p, k)
        elif k in _STR_FIELDS and not isinstance(v, str):
            raise ReportError(f"{p}: {k} must be a string, got {_short(v)}")
    _strings(row.get("datasets"), p, "datasets")
    _strings(row.get("task_names"), p, "task_names")
    if "task_ends" in row:
        ends = row["task_ends"]
        if not isinstance(ends, list):
            raise ReportError(f"{p}: task_ends must be a list of integers, got {_short(ends)}")
        for e in ends:
            _number(e, p, "task_ends", integer=True)
    for key in ("per_task", "memory_sizes", "wall_by_phase_s"):
        table = row.get(key)
        if table is None:
            continue
        if not isinstance(table, dict):
            raise ReportError(f"{p}: {key} must be a mapping, got {_short(table)}")
        for name, values in table.items():
            if key == "per_task":
                if not isinstance(values, list):
                    raise ReportError(f"{p}: per_task.{name} must be a list of numbers, got {_short(values)}")
                for v in values:
                    _number(v, p, f"per_task.{name}")
            else:
                _number(values, p, f"{key}.{name}", integer=key == "memory_sizes")
    for k, v in row.items():  # NaN / infinity: flagged in the tables
        row[k] = _flag(v)
    for values in (row.get("per_task") or {}).values():
        values[:] = [_flag(v) for v in values]
    return row


_EVENT_NUMBERS = ("ltm", "stm", "K", "R", "R_last", "novelty", "z", "event", "max_score")


def check_event(event: object, path: Path, where: str) -> dict:
    """An events.jsonl row: an object whose plotted fields are numbers, with an arrival when it has any."""
    if not isinstance(event, dict):
        raise ReportError(f"{path}{where} is a JSON {type(event).__name__}, not an object")
    p = Path(f"{path}{where}")
    for k in _EVENT_NUMBERS:
        if k in event:
            _number(event[k], p, k)
    if "arrival" in event or any(k in event for k in _EVENT_NUMBERS):
        _number(event.get("arrival"), p, "arrival", integer=True)
        if event.get("arrival") is None or event["arrival"] < 0:
            raise ReportError(f"{p}: arrival must be an integer >= 0, got {_short(event.get('arrival'))}")
    return event


def check_config(config: object, path: Path) -> dict:
    """config.yaml as the report reads it: a mapping of sections with the fields it shows typed."""
    if not isinstance(config, dict):
        raise ReportError(f"{path}: expected a mapping of config sections, got a {type(config).__name__}")
    for key in ("name", "budget"):
        if key in config and not isinstance(config[key], str):
            raise ReportError(f"{path}: {key} must be a string, got {_short(config[key])}")
    _number(config.get("seed"), path, "seed", integer=True)
    for section in ("stream", "model", "memory", "learner", "eval"):
        if section in config and not isinstance(config[section], dict):
            raise ReportError(f"{path}: {section} must be a mapping of fields, got {_short(config[section])}")
    stream, learner, memory = (config.get(k) or {} for k in ("stream", "learner", "memory"))
    _strings(stream.get("datasets"), path, "stream.datasets")
    _number(stream.get("batch_size"), path, "stream.batch_size", integer=True)
    if stream.get("batch_size") is not None and stream["batch_size"] <= 0:
        raise ReportError(f"{path}: stream.batch_size must be positive, got {stream['batch_size']}")
    if "name" in learner and not isinstance(learner["name"], str):
        raise ReportError(f"{path}: learner.name must be a string, got {_short(learner['name'])}")
    for key in ("elbo_samples", "expansion_threshold"):
        _number(learner.get(key), path, f"learner.{key}")
    for key in ("novelty_threshold", "novelty_z"):
        _number(memory.get(key), path, f"memory.{key}")
    return config


def load_png(path: Path):
    """A PNG grid of the run as an array ``(H, W)`` or ``(H, W, 3)``: a regular file that decodes as a
    PNG of at most :data:`MAX_PNG_PIXELS` pixels (what does not decode is never embedded)."""
    import io

    import numpy as np
    from PIL import Image

    data = read_file(path, MAX_PNG_BYTES)
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
            w, h = im.size
            if w * h > MAX_PNG_PIXELS:
                raise ReportError(f"{path} is a {w}x{h} image, more than the {MAX_PNG_PIXELS:,} pixels a report "
                                  "draws (a decompression bomb?)")
            return np.asarray(im.convert("L") if im.mode in ("L", "1", "I", "F") else im.convert("RGB"))
    except ReportError:
        raise
    except Exception as e:  # noqa: BLE001 (Pillow raises many kinds for a damaged file)
        raise ReportError(f"{path} is not a readable PNG ({type(e).__name__}: {str(e)[:80]})") from None


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
    config_text: str = ""  # config.yaml as read (shown in the report)

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
        """True while a streamvae process holds the run directory's lock (reads the lock only; a
        ``.lock`` that is not a regular file is refused, never opened in a way that could block)."""
        import fcntl
        import os
        import stat

        lock = self.path / ".lock"
        if not os.path.lexists(lock):
            return False
        try:
            fd = os.open(lock, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError as e:
            raise ReportError(f"{lock} cannot be opened as a lock file ({e.strerror or e}); remove it") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ReportError(f"{lock} is not a regular file (a FIFO or device?); remove it")
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
        if not path.exists() and not path.is_symlink():
            return None
        return check_row(_json_value(_text(path), path), path)

    def grids(self) -> list[Path]:
        """PNG files of the run directory: the loop's grids first, then any other (per-component grids...)."""
        known = [self.path / g for g in GRIDS if (self.path / g).exists()]
        others = sorted(p for p in self.path.glob("*.png") if p.name not in GRIDS)
        return known + others


def read_results(path: str | Path) -> dict | None:
    """A run's ``results.json``, checked (None when it does not exist); what the sweep summary reads.

    Raises:
        ReportError: one line naming the file and the field that is not what a run writes.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return None
    return check_row(_json_value(_text(path), path), path)


def _jsonl(path: Path, check) -> list[dict]:
    if not path.exists() and not path.is_symlink():
        return []
    rows = []
    for i, line in enumerate(_text(path).splitlines(), 1):
        if line.strip():
            rows.append(check(_json_value(line, path, f": line {i}"), path, f": line {i}"))
    return rows


def load_run(path: str | Path) -> Run:
    """Read a run directory (config.yaml, metrics.jsonl, results.json, events.jsonl), each file checked.

    Raises:
        ReportError: one line naming the file (and line and field) that is not what a run writes.
    """
    path = Path(path)
    if not path.is_dir():
        raise ReportError(f"{path} is not a directory")
    rows = _jsonl(path / "metrics.jsonl", lambda r, p, w: check_row(r, p, w, arrival=True))
    results = read_results(path / "results.json")
    if not rows and results is None:
        raise ReportError(f"{path} holds neither metrics.jsonl rows nor results.json: is it a streamvae run directory?")
    config: dict = {}  # config.yaml
    text = ""
    config_path = path / "config.yaml"
    if config_path.exists() or config_path.is_symlink():
        text = _text(config_path, MAX_CONFIG_BYTES)
        try:
            config = check_config(yaml.safe_load(text) or {}, config_path)
        except (yaml.YAMLError, RecursionError, ValueError) as e:
            first = (str(e).splitlines() or [type(e).__name__])[0]
            raise ReportError(f"{config_path} is not valid YAML ({first})") from None
    return Run(path=path, config=config, results=results, rows=rows, events=_jsonl(path / "events.jsonl", check_event),
               config_text=text)


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
    """The run's resolved config (``config.yaml``), flattened to dotted keys, without the seed and
    execution fields. Read as written: a run of an older version that lacks fields added since
    groups with today's runs once ``python -m streamvae.migrate RUN_DIR`` has filled in their defaults."""
    if not run.config:  # no config.yaml: a configuration of its own
        return {"run directory": str(run.path)}
    return {k: v for k, v in flatten(run.config).items() if k not in EXECUTION_FIELDS}


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
