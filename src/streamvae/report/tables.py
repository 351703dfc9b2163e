"""Tables of runs, read from run directories: final results, configuration, and OCM Table 1's shape.

A table is ``(header, rows)`` with rows of plain values; ``to_markdown`` / ``to_html`` / ``to_csv``
render it. ``compare_tables`` adds the published numbers (evaluation spec section 5) for the stream
of the runs, in their own rows marked as published.

    header, rows = final_table(load_runs(["runs/a", "runs/b"]))
    print(to_markdown(header, rows))
"""
from __future__ import annotations

import csv
import html
import io
import math
import re
import statistics
from pathlib import Path
from typing import TypeGuard

from ..evaluation.continual import forgetting, ll_key, results_matrix
from .runs import NonFinite, Run, SeedGroup, memory_sizes, seed_groups

Table = tuple[list[str], list[list]]

# ---------------------------------------------------------------------------------------------
# published numbers (evaluation spec section 5): ll_iw1000 in nats, memory, components

STREAMS = {  # datasets of the stream -> (key, title)
    ("mnist",): ("split_mnist", "Split MNIST"),
    ("fashion",): ("split_fashion", "Split Fashion-MNIST"),
    ("mnist", "fashion"): ("mnist_fashion", "MNIST then Fashion-MNIST"),
    ("mnist", "fashion", "omniglot"): ("cross_domain", "MNIST, Fashion-MNIST, OMNIGLOT"),
}

_T1 = "OCM (ECCV 2022) Table 1"
_T3 = "OCM (ECCV 2022) Table 3"
PUBLISHED: dict[str, tuple[str, list[tuple[str, float, str, str]]]] = {
    # stream -> (source, [(method, ll_iw1000, memory, components)]); "-" where the paper gives none
    "split_mnist": (_T1, [
        ("VAE-ELBO-Random", -150.79, "3.0K", "1"), ("LIMix", -146.23, "2.0K", "30"),
        ("CN-DPM", -120.71, "2.0K", "30"), ("VAE-ELBO-OCM", -132.07, "1.6K", "1"),
        ("VAE-IWVAE50-OCM", -127.11, "1.6K", "1"), ("Dynamic-ELBO-OCM", -115.89, "1.1K", "5")]),
    "split_fashion": (_T1, [
        ("VAE-ELBO-Random", -280.54, "3.0K", "1"), ("LIMix", -262.52, "2.0K", "30"),
        ("CN-DPM", -257.56, "2.0K", "30"), ("VAE-ELBO-OCM", -250.74, "1.6K", "1"),
        ("VAE-IWVAE50-OCM", -247.90, "1.6K", "1"), ("Dynamic-ELBO-OCM", -237.69, "1.3K", "10")]),
    "mnist_fashion": (_T1, [
        ("VAE-ELBO-Random", -247.46, "3.0K", "1"), ("LIMix", -238.63, "2.0K", "30"),
        ("CN-DPM", -236.79, "2.0K", "30"), ("VAE-ELBO-OCM", -215.62, "2.0K", "1"),
        ("VAE-IWVAE50-OCM", -224.34, "2.0K", "1"), ("Dynamic-ELBO-OCM", -187.49, "1.4K", "10")]),
    "cross_domain": (_T3, [
        ("VAE-ELBO-Random", -239.71, "-", "1"), ("LIMix", -226.63, "-", "-"), ("CN-DPM", -218.15, "-", "-"),
        ("VAE-ELBO-OCM", -201.31, "-", "1"), ("VAE-IWVAE50-OCM", -204.35, "-", "1"),
        ("Dynamic-ELBO-OCM", -177.29, "-", "11")]),
}


def stream_of(run: Run) -> tuple[str | None, str]:
    """``(key, title)`` of the run's stream, from ``datasets``; key None for a stream without published rows."""
    d = run.datasets
    if d in STREAMS:
        return STREAMS[d]
    return None, " then ".join(d) or "unknown stream"


def method_name(run: Run) -> str:
    """The method's name in its paper, as the run recorded it (results.json ``method``, declared on the
    learner class); the learner's name for a run still going, or one written before the field
    (``python -m streamvae.migrate RUN_DIR`` adds it)."""
    return str(run.final.get("method") or run.learner)


# ---------------------------------------------------------------------------------------------
# formatting


def fmt(v, digits: int = 2) -> str:
    """A cell: ``-`` for None (and a NaN computed here: no value), numbers to ``digits`` decimals; a NaN or
    infinity read from a run's files (never a valid result) is flagged ``NaN (!)`` / ``inf (!)``."""
    if isinstance(v, NonFinite):  # read from a run file: flagged, never shown as a result
        return f"{'NaN' if math.isnan(v) else float(v)} (!)"
    if v is None or (isinstance(v, float) and math.isnan(v)):  # computed: nothing to show (no earlier point...)
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def memory_text(final: dict) -> str:
    """``"624 (stm 512 + ltm 112)"`` for OCM, ``"3000"`` for a reservoir, ``"-"`` without memory."""
    sizes = memory_sizes(final)
    if "memory" not in final and not sizes:
        return "-"
    total = final.get("memory", sum(sizes.values()))
    parts = [f"{k} {v}" for k, v in sizes.items() if k != "memory"]
    return f"{total}" + (f" ({' + '.join(parts)})" if len(parts) > 1 else "")


def generation_text(final: dict) -> str:
    """FID / IS values of the row (``fid_classifier_gen 41.2; is_classifier_gen 3.1``), ``-`` without any."""
    parts = [f"{k} {v:.2f}" for k, v in final.items()
             if k.startswith(("fid_", "is_")) and isinstance(v, float) and not k.endswith("_test_acc")]
    return "; ".join(parts) or "-"


def _ll(final: dict, variant: str = "") -> tuple[float | None, str | None]:
    key = ll_key(final, variant)
    return (final.get(key), key) if key else (None, None)


def _ll_text(final: dict, variant: str = "") -> str:
    value, key = _ll(final, variant)
    if value is None:
        return "-"
    return fmt(value) + ("" if key and key.startswith("ll_iw1000") else f" ({key})")


# ---------------------------------------------------------------------------------------------
# tables


def final_table(runs: list[Run]) -> Table:
    """One row per run: the final metrics, forgetting, memory, components and wall time."""
    extra = registered_headlines()  # a metric added to the registry with a headline gets its own column
    header = ["run", "learner", "budget", "status", "log-likelihood (nats)", "mixture ll", "recon_sse",
              "probe linear", "probe kNN", "forgetting ll", "forgetting recon_sse", "forgetting probe",
              "generation", "memory", "components", "wall (s)", *extra]
    rows = []
    for run in runs:
        f = run.final
        ll_forget = forgetting(results_matrix(run.rows, "ll", seen_only=True))
        sse_forget = forgetting(results_matrix(run.rows, "recon_sse", seen_only=True), higher_is_better=False)
        probe_forget = forgetting(results_matrix(run.rows, "probe_linear", seen_only=True))
        wall = f.get("train_wall_s", f.get("wall_s"))
        status = "finished" if run.finished else run.status().split(" (")[0]
        rows.append([run.label, run.learner, run.budget, status,
                     _ll_text(f), _ll_text(f, "_mixture") if f.get("components", 1) > 1 else "-",
                     fmt(f.get("recon_sse")), fmt(f.get("probe_linear"), 3), fmt(f.get("probe_knn"), 3),
                     fmt(ll_forget), fmt(sse_forget), fmt(probe_forget, 3), generation_text(f), memory_text(f),
                     fmt(f.get("components")) + (f", {f['clusters']} clusters" if "clusters" in f else ""),
                     fmt(None if wall is None else float(wall), 0), *(fmt(f.get(k)) for k in extra)])
        e = run.rescored
        if e is not None:  # streamvae eval re-scored a checkpoint: its own row, labelled with what it scored
            what = f"arrival {e.get('arrival')}" + (" (unfinished)" if e.get("unfinished") else "")
            rows.append([f"{run.label} (streamvae eval, {what})", run.learner, run.budget, "re-scored",
                         _ll_text(e), _ll_text(e, "_mixture") if e.get("components", 1) > 1 else "-",
                         fmt(e.get("recon_sse")), fmt(e.get("probe_linear"), 3), fmt(e.get("probe_knn"), 3),
                         "-", "-", "-", generation_text(e), memory_text(e), fmt(e.get("components")), "-",
                         *(fmt(e.get(k)) for k in extra)])
    return header, rows


# the headline numbers the tables above already show in their own columns
_SHOWN = ("ll", "recon_sse", "probe_linear", "probe_knn")


def registered_headlines() -> list[str]:
    """Headline names of the metric registry (``evaluation.metrics.METRICS``) that no fixed column shows."""
    from ..evaluation.metrics import METRICS

    return [n for metric in METRICS.values() for n in metric.headline if n not in _SHOWN]


def config_table(run: Run) -> Table:
    """The settings that say what a run was: method, stream, budget, training and evaluation sizes."""
    c = run.config
    s, lr, m, e = (c.get(k, {}) for k in ("stream", "learner", "memory", "eval"))
    items = [
        ("run directory", str(run.path)), ("status", run.status()), ("method", method_name(run)),
        ("learner", run.learner), ("budget", run.budget), ("seed", run.seed),
        ("stream", f"{' then '.join(run.datasets)}, order {s.get('order', '?')}, tasks {s.get('tasks', '?')}, "
                   f"batch {s.get('batch_size', '?')}"),
        ("arrivals", run.arrivals_total), ("epochs per arrival", lr.get("epochs_per_arrival")),
        ("objective", f"{lr.get('objective', '?')}, {lr.get('elbo_samples', '?')} samples, lr {lr.get('lr', '?')}"),
    ]
    if isinstance(m, dict) and m:  # whatever the learner's memory section holds (config.yaml is data)
        items.append(("memory", ", ".join(f"{k.replace('_', ' ')} {fmt(v)}" for k, v in m.items())))
    if "expansion_threshold" in lr:  # a growing mixture (Dynamic-OCM): its expansion test
        items.append(("expansion", f"threshold {lr.get('expansion_threshold')} nats, "
                                   f"max {lr.get('max_components')} components, k {lr.get('expansion_samples')}"))
    items.append(("evaluation", f"final k {e.get('iw_samples')} on {e.get('test_size') or 'all'} test images; "
                                f"curve k {e.get('curve_iw_samples')} on {e.get('curve_test_size') or 'all'}; "
                                f"probe {'on' if e.get('probe') else 'off'} "
                                f"({e.get('probe_train_size')} training images)"))
    return ["setting", "value"], [[k, fmt(v)] for k, v in items]


def headline_metrics(final: dict) -> dict[str, float]:
    """The numbers a results table reports, by name: ``ll_iw{k}`` (and ``_selected`` / ``_mixture`` for
    mixtures), ``recon_sse``, probe accuracies, FID / IS, ``memory`` and each memory's size
    (``memory.stm``...), ``components``, ``clusters`` and ``train_wall_s``."""
    def number(v: object) -> TypeGuard[float]:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    out: dict[str, float] = {}
    for k, v in final.items():
        if re.fullmatch(r"ll_iw\d+(_selected|_mixture)?", k) and number(v):
            out[k] = float(v)
    for k in ("recon_sse", "probe_linear", "probe_knn"):
        if number(final.get(k)):
            out[k] = float(final[k])
    for k, v in final.items():
        if re.fullmatch(r"(fid|is)_(classifier|inception)_(gen|recon)", k) and number(v):
            out[k] = float(v)
    for k in registered_headlines():
        if number(final.get(k)):
            out[k] = float(final[k])
    if number(final.get("memory")):
        out["memory"] = float(final["memory"])
    sizes = memory_sizes(final)
    if len(sizes) > 1 or (sizes and "memory" not in sizes):
        out.update({f"memory.{k}": float(v) for k, v in sizes.items()})
    for k in ("components", "clusters"):
        if number(final.get(k)):
            out[k] = float(final[k])
    wall = final.get("train_wall_s", final.get("wall_s"))
    if number(wall):
        out["train_wall_s"] = float(wall)
    return out


def mean_std(values) -> tuple[float | None, float | None, int]:
    """``(mean, sample standard deviation (n - 1), n)`` of the finite values; std None below two values."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return None, None, 0
    return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else None), len(v)


def fmt_mean_std(mean, std, n, digits: int = 2) -> str:
    """``"-243.12 ± 1.03 (n=3)"``; ``"-243.12 (n=1)"``; ``"-"`` without values."""
    if not n or mean is None:
        return "-"
    spread = f" ± {std:.{digits}f}" if std is not None and n > 1 else ""
    return f"{mean:.{digits}f}{spread} (n={n})"


def _group_ll_text(group: SeedGroup, variant: str = "") -> str:
    """The group's likelihood: as one run's (``-242.1 (ll_iw20)``) or ``-242.1 ± 0.4 (n=3, ll_iw20)``."""
    found = [_ll(r.final, variant) for r in group.runs]
    values = [v for v, _ in found if v is not None]
    keys = [k for _, k in found if k]
    if not values:
        return "-"
    if len(group.runs) == 1:
        return _ll_text(group.runs[0].final, variant)
    mean, std, n = mean_std(values)
    key = max(set(keys), key=keys.count)
    note = "" if all(k.startswith("ll_iw1000") for k in keys) else ", " + "/".join(sorted(set(keys)))
    spread = f" ± {std:.2f}" if std is not None else ""
    return f"{mean:.2f}{spread} (n={n}{note})" if key else "-"


def _group_count_text(group: SeedGroup, text, key: str) -> str:
    """Memory or components of a group: the common text when every run agrees, else mean ± std (n)."""
    texts = [text(r.final) for r in group.runs]
    if len(set(texts)) == 1:
        return texts[0]
    return fmt_mean_std(*mean_std(r.final.get(key) for r in group.runs), digits=1)


def _group_wall(group: SeedGroup) -> str:
    walls = [r.final.get("train_wall_s", r.final.get("wall_s")) for r in group.runs]
    if len(group.runs) == 1:
        return fmt(None if walls[0] is None else float(walls[0]), 0)
    return fmt_mean_std(*mean_std(walls), digits=0)


def _by_stream(runs: list[Run]) -> dict:
    groups: dict = {}
    for run in runs:
        key, title = stream_of(run)
        groups.setdefault(key if key else title, (title, []))[1].append(run)
    return groups


def compare_tables(runs: list[Run]) -> list[tuple[str, Table]]:
    """OCM Table 1's shape, one table per stream: our configurations, then the published rows for that stream.

    Runs that differ only in seed are one row: mean ± sample standard deviation (n seeds); a single
    run shows its own numbers. Our log-likelihood is ``ll_iw{k}`` with the run's final k; the cell
    says when k is not 1000. For mixtures ``selected`` is the paper's protocol and ``mixture`` the
    uniform mixture likelihood.
    """
    header = ["method", "source", "budget", "ll_iw1000 (selected)", "ll_iw1000 (mixture)", "memory",
              "components", "wall (s)"]
    out = []
    for key, (title, members) in _by_stream(runs).items():
        rows = []
        for group in seed_groups(members):
            lead = group.runs[0]
            running = sum(not r.finished for r in group.runs)
            status = "" if not running else (" (in progress)" if len(group.runs) == 1
                                             else f" ({running} of {len(group.runs)} in progress)")
            mixture = any(r.final.get("components", 1) > 1 for r in group.runs)
            rows.append([method_name(lead), f"ours: {group.label}" + status, lead.budget, _group_ll_text(group),
                         _group_ll_text(group, "_mixture") if mixture else "-",
                         _group_count_text(group, memory_text, "memory"),
                         _group_count_text(group, lambda f: fmt(f.get("components")), "components"),
                         _group_wall(group)])
        if key in PUBLISHED:
            source, published = PUBLISHED[key]
            for method, ll, mem, comps in published:
                rows.append([method, f"published ({source})", "paper", f"{ll:.2f}", "-", mem, comps, "-"])
        else:
            rows.append(["-", "published: none for this stream", "-", "-", "-", "-", "-", "-"])
        out.append((title, (header, rows)))
    return out


def compare_csv_rows(runs: list[Run]) -> Table:
    """The comparison as machine-readable rows: one per configuration (its runs differ only in seed),
    each number the mean over seeds with its sample standard deviation beside it; published rows after."""
    header = ["stream", "method", "source", "configuration", "run_dirs", "budget", "seeds", "n", "ll_key",
              "ll_selected", "ll_selected_std", "ll_mixture", "ll_mixture_std", "memory", "memory_std", "stm",
              "ltm", "components", "components_std", "train_wall_s", "train_wall_s_std"]
    rows = []
    for key, (title, members) in _by_stream(runs).items():
        for group in seed_groups(members):
            finals = [r.final for r in group.runs]
            found = [_ll(f) for f in finals]
            keys = [k for _, k in found if k]
            mixture = [_ll(f, "_mixture")[0] if f.get("components", 1) > 1 else None for f in finals]
            ll, ll_std, n = mean_std(v for v, _ in found)
            mix, mix_std, _ = mean_std(mixture)
            mem, mem_std, _ = mean_std(f.get("memory") for f in finals)
            comps, comps_std, _ = mean_std(f.get("components") for f in finals)
            wall, wall_std, _ = mean_std(f.get("train_wall_s", f.get("wall_s")) for f in finals)
            stm = mean_std(memory_sizes(f).get("stm") for f in finals)[0]
            ltm = mean_std(memory_sizes(f).get("ltm") for f in finals)[0]
            source = "ours" if all(r.finished for r in group.runs) else "ours (in progress)"
            rows.append([title, method_name(group.runs[0]), source, group.label,
                         ";".join(str(r.path) for r in group.runs), group.runs[0].budget,
                         ";".join(str(s) for s in group.seeds), n, "/".join(sorted(set(keys))) or None,
                         ll, ll_std, mix, mix_std, mem, mem_std, stm, ltm, comps, comps_std, wall, wall_std])
        if key in PUBLISHED:
            source, published = PUBLISHED[key]
            for method, pub_ll, pub_mem, pub_comps in published:
                rows.append([title, method, f"published ({source})", method, "", "paper", "", "", "ll_iw1000", pub_ll,
                             "", "", "", _count(pub_mem), "", "", "", _count(pub_comps), "", "", ""])
    return header, rows


def _count(text: str) -> int | str:
    """``"3.0K"`` -> 3000, ``"10"`` -> 10, ``"-"`` -> ``""`` (for the CSV)."""
    if text in ("", "-"):
        return ""
    return int(round(float(text[:-1]) * 1000)) if text.endswith("K") else int(text)


# ---------------------------------------------------------------------------------------------
# rendering


def split_columns(header: list[str], rows: list[list], max_columns: int, keep: int = 1) -> list[Table]:
    """A table too wide for a page as several: the first ``keep`` columns (the run) repeated in each part,
    the others in order, at most ``max_columns`` columns per part. A narrow table is returned as it is."""
    if len(header) <= max_columns or max_columns <= keep:
        return [(header, rows)]
    per = max_columns - keep
    parts = []
    for start in range(keep, len(header), per):
        cols = list(range(keep)) + list(range(start, min(start + per, len(header))))
        parts.append(([header[c] for c in cols], [[r[c] for c in cols] for r in rows]))
    return parts


def to_markdown(header: list[str], rows: list[list]) -> str:
    """A Markdown table; cells are HTML-escaped and kept on one line (run names come from files)."""
    def cell(v) -> str:
        return html.escape(" ".join(fmt(v).split()), quote=False).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def to_html(header: list[str], rows: list[list], published_marker: str = "published") -> str:
    """An HTML table; rows whose cells mention ``published_marker`` get the class ``published``."""
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead>",
           "<tbody>"]
    for r in rows:
        cls = ' class="published"' if any(str(v).startswith(published_marker) for v in r) else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in r) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def to_csv(header: list[str], rows: list[list], path: str | Path | None = None) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    for r in rows:
        writer.writerow(["" if v is None else v for v in r])
    text = buf.getvalue()
    if path is not None:
        Path(path).write_text(text)
    return text


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    return out.replace("±", r"$\pm$")


def to_latex(header: list[str], rows: list[list], title: str | None = None, rule_before: int | None = None) -> str:
    """A booktabs ``tabular`` (``\\toprule`` / ``\\midrule`` / ``\\bottomrule``); ``rule_before``: the index
    of a row that gets a ``\\midrule`` above it (our rows | published rows). Needs ``\\usepackage{booktabs}``."""
    lines = [f"% {title}"] if title else []
    lines += [r"\begin{tabular}{" + "l" * len(header) + "}", r"\toprule",
              " & ".join(latex_escape(h) for h in header) + r" \\", r"\midrule"]
    for i, r in enumerate(rows):
        if rule_before is not None and i == rule_before and i > 0:
            lines.append(r"\midrule")
        lines.append(" & ".join(latex_escape(fmt(v)) for v in r) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def compare_latex(runs: list[Run]) -> str:
    """:func:`compare_tables` as LaTeX: one booktabs tabular per stream, a rule above the published rows."""
    parts = []
    for title, (header, rows) in compare_tables(runs):
        first_published = next((i for i, r in enumerate(rows) if str(r[1]).startswith("published")), None)
        parts.append(to_latex(header, rows, title, first_published))
    return "\n".join(parts)
