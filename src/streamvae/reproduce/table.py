"""The table of a spec at one budget: ours (mean ± sd over seeds), published, difference, verdict;
as markdown, csv and LaTeX."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .cell import Cell, metric_value, read_cell, reproduce_command, shared_roots
from .spec import Spec

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
