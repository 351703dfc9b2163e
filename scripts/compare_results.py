"""Compare two sets of run directories file by file: results.json (and metrics.jsonl, train.jsonl,
events.jsonl) must be equal except wall-time fields and keys declared as added.

    python scripts/compare_results.py runs/before runs/after [--added method]

Every sub-folder of BEFORE with a results.json is compared with the same name under AFTER. Floats
are compared exactly (bitwise: equal JSON text of the number). Exit 1 on any difference.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# fields that measure time, not what was computed
WALL = {"wall_s", "train_wall_s", "wall_by_phase_s", "wall_threads"}


def strip(obj, added: set[str]):
    """``obj`` without wall-time fields (and ``added`` keys at the top level of a dict)."""
    if isinstance(obj, dict):
        return {k: strip(v, set()) for k, v in obj.items() if k not in WALL and k not in added}
    if isinstance(obj, list):
        return [strip(v, set()) for v in obj]
    return obj


def differences(a, b, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}.{k}: only in {'before' if k in a else 'after'}" for k in sorted(set(a) ^ set(b))]
        for k in a.keys() & b.keys():
            out += differences(a[k], b[k], f"{where}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if json.dumps(a) == json.dumps(b) else [f"{where}: {a!r} != {b!r}"]


def read(path: Path):
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return json.loads(path.read_text())


def compare_run(before: Path, after: Path, added: set[str]) -> list[str]:
    out = []
    for name in ("results.json", "metrics.jsonl", "train.jsonl", "events.jsonl"):
        a, b = before / name, after / name
        if not a.exists() and not b.exists():
            continue
        if not (a.exists() and b.exists()):
            out.append(f"{name}: missing in {'after' if a.exists() else 'before'}")
            continue
        keys = added if name == "results.json" else set()
        ra, rb = read(a), read(b)
        if name == "results.json":
            missing = [k for k in keys if k not in rb]
            out += [f"results.json.{k}: declared added but absent after" for k in missing]
        out += [f"{name}{d}" for d in differences(strip(ra, set()), strip(rb, keys) if keys else strip(rb, set()))]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--added", action="append", default=[], help="a results.json key that only AFTER has")
    args = p.parse_args(argv)
    bad = 0
    runs = sorted(d for d in Path(args.before).iterdir() if (d / "results.json").exists())
    for run in runs:
        diffs = compare_run(run, Path(args.after) / run.name, set(args.added))
        print(f"{run.name}: {'identical' if not diffs else f'{len(diffs)} differences'}")
        for d in diffs[:20]:
            print(f"    {d}")
        bad += bool(diffs)
    print(f"{len(runs) - bad}/{len(runs)} runs identical (wall-time fields aside; added: {', '.join(args.added) or 'none'})")
    return 1 if bad or not runs else 0


if __name__ == "__main__":
    sys.exit(main())
