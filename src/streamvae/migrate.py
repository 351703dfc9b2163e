"""Bring run directories written by older versions up to today's files, once, so reports read files only.

* ``config.yaml``: read against today's schema of the run's learner: fields it has gained since are
  added with their defaults (a new field's default keeps the behaviour the older run had), fields it
  does not have (older versions listed every learner's) are dropped; a resume treats neither as a change;
* ``results.json``: the method's paper name (``method``, declared on the learner class).

Nothing else changes; a run directory already up to date is left as it is, and every write is atomic.

    python -m streamvae.migrate runs/old-run [more run directories or sweep folders]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from . import config as C
from .errors import StreamVAEError
from .registry import default_config, get_learner, load_plugin, load_resolved
from .utils import atomic_write_text, write_json


def _unflatten(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        node = out
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def migrated_config(raw: dict) -> dict | None:
    """A config.yaml's contents in today's schema of its learner (``None``: a learner unknown here)."""
    name = str((raw.get("learner") or {}).get("name", ""))
    for plugin in raw.get("plugins") or []:  # the user's own config.yaml names them (as --resume does)
        load_plugin(str(plugin))
    defaults = default_config(name)
    if defaults is None:
        return None
    flat = C.flatten(raw)
    return _unflatten({k: flat.get(k, v) for k, v in defaults.items()})


def migrate_run_dir(run_dir: str | Path) -> list[str]:
    """Update one run directory in place; returns what was changed (empty: nothing to do)."""
    run_dir = Path(run_dir)
    done = []
    raw = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    name = str((raw.get("learner") or {}).get("name", ""))
    today = migrated_config(raw)
    if today is None:
        raise StreamVAEError(f"{run_dir}: learner {name!r} is unknown here (a plugin that cannot be imported?)")
    if C.flatten(today) != C.flatten(raw):
        atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(today, sort_keys=False))
        done.append("config.yaml: in today's schema of its learner")
    results_path = run_dir / "results.json"
    if results_path.exists():
        results = json.loads(results_path.read_text())
        if "method" not in results:
            cfg = load_resolved(run_dir / "config.yaml")
            at = list(results).index("learner") + 1 if "learner" in results else 0
            items = list(results.items())
            items.insert(at, ("method", get_learner(name).method_name(cfg)))
            write_json(results_path, dict(items))
            done.append("results.json: method added")
    return done


def main(argv: list[str] | None = None) -> int:
    from .report.runs import find_run_dirs

    status = 0
    for run_dir in find_run_dirs(argv if argv is not None else sys.argv[1:]):
        try:
            changes = migrate_run_dir(run_dir)
        except (StreamVAEError, OSError, yaml.YAMLError) as e:
            print(f"error: {run_dir}: {e}", file=sys.stderr)
            status = 2
            continue
        print(f"{run_dir}: {'; '.join(changes) if changes else 'up to date'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
