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
from pathlib import Path

from ..evaluation.continual import forgetting, ll_key, results_matrix
from .runs import Run, memory_sizes

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
    """The paper's name for the run's method (OCM Table 1 naming where it has one)."""
    learner = run.learner
    lc = run.config.get("learner", {})
    samples = lc.get("elbo_samples", 50)
    iwae = lc.get("objective", "elbo") == "iwae"
    if learner == "reservoir":
        return "VAE-ELBO-Random"
    if learner == "ocm":
        return f"VAE-IWVAE{samples}-OCM" if iwae else "VAE-ELBO-OCM"
    if learner == "dynamic-ocm":
        return f"Dynamic-IWVAE{samples}-OCM" if iwae else "Dynamic-ELBO-OCM"
    return {"finetune": "Fine-tuning (lower bound)", "iid": "Offline i.i.d. (upper bound)",
            "demc": "DEMC"}.get(learner, learner)


# ---------------------------------------------------------------------------------------------
# formatting


def fmt(v, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
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
    return f"{value:.2f}" + ("" if key and key.startswith("ll_iw1000") else f" ({key})")


# ---------------------------------------------------------------------------------------------
# tables


def final_table(runs: list[Run]) -> Table:
    """One row per run: the final metrics, forgetting, memory, components and wall time."""
    header = ["run", "learner", "budget", "status", "log-likelihood (nats)", "mixture ll", "recon_sse",
              "probe linear", "probe kNN", "forgetting ll", "forgetting recon_sse", "forgetting probe",
              "generation", "memory", "components", "wall (s)"]
    rows = []
    for run in runs:
        f = run.final
        ll_forget = forgetting(results_matrix(run.rows, "ll", seen_only=True))
        sse_forget = forgetting(results_matrix(run.rows, "recon_sse", seen_only=True), higher_is_better=False)
        probe_forget = forgetting(results_matrix(run.rows, "probe_linear", seen_only=True))
        wall = f.get("train_wall_s", f.get("wall_s"))
        rows.append([run.label, run.learner, run.budget, "finished" if run.finished else "in progress",
                     _ll_text(f), _ll_text(f, "_mixture") if f.get("components", 1) > 1 else "-",
                     fmt(f.get("recon_sse")), fmt(f.get("probe_linear"), 3), fmt(f.get("probe_knn"), 3),
                     fmt(ll_forget), fmt(sse_forget), fmt(probe_forget, 3), generation_text(f), memory_text(f),
                     fmt(f.get("components")) + (f", {f['clusters']} clusters" if "clusters" in f else ""),
                     fmt(None if wall is None else float(wall), 0)])
    return header, rows


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
    if run.learner == "reservoir":
        items.append(("memory", f"reservoir, capacity {m.get('capacity')}"))
    elif run.learner in ("ocm", "dynamic-ocm"):
        items.append(("memory", f"STM {m.get('stm_capacity')}, LTM cap {m.get('ltm_capacity')}, "
                                f"kernel {m.get('kernel')}, select {m.get('select')}"))
    if run.learner == "dynamic-ocm":
        items.append(("expansion", f"threshold {lr.get('expansion_threshold')} nats, "
                                   f"max {lr.get('max_components')} components, k {lr.get('expansion_samples')}"))
    items.append(("evaluation", f"final k {e.get('iw_samples')} on {e.get('test_size') or 'all'} test images; "
                                f"curve k {e.get('curve_iw_samples')} on {e.get('curve_test_size') or 'all'}; "
                                f"probe {'on' if e.get('probe') else 'off'} "
                                f"({e.get('probe_train_size')} training images)"))
    return ["setting", "value"], [[k, fmt(v)] for k, v in items]


def compare_tables(runs: list[Run]) -> list[tuple[str, Table]]:
    """OCM Table 1's shape, one table per stream: our runs, then the published rows for that stream.

    Our log-likelihood is ``ll_iw{k}`` with the run's final k; the column says when k is not 1000.
    For mixtures ``selected`` is the paper's protocol and ``mixture`` the uniform mixture likelihood.
    """
    header = ["method", "source", "budget", "ll_iw1000 (selected)", "ll_iw1000 (mixture)", "memory",
              "components", "wall (s)"]
    groups: dict[str | None, tuple[str, list[Run]]] = {}
    for run in runs:
        key, title = stream_of(run)
        groups.setdefault(key if key else title, (title, []))[1].append(run)
    out = []
    for key, (title, members) in groups.items():
        rows = []
        for run in members:
            f = run.final
            wall = f.get("train_wall_s", f.get("wall_s"))
            rows.append([method_name(run), f"ours: {run.label}" + ("" if run.finished else " (in progress)"),
                         run.budget, _ll_text(f), _ll_text(f, "_mixture") if f.get("components", 1) > 1 else "-",
                         memory_text(f), fmt(f.get("components")), fmt(None if wall is None else float(wall), 0)])
        if key in PUBLISHED:
            source, published = PUBLISHED[key]
            for method, ll, mem, comps in published:
                rows.append([method, f"published ({source})", "paper", f"{ll:.2f}", "-", mem, comps, "-"])
        else:
            rows.append(["-", "published: none for this stream", "-", "-", "-", "-", "-", "-"])
        out.append((title, (header, rows)))
    return out


def compare_csv_rows(runs: list[Run]) -> Table:
    """The comparison as machine-readable rows (raw numbers, the metric names spelled out)."""
    header = ["stream", "method", "source", "run_dir", "budget", "seed", "ll_key", "ll_selected", "ll_mixture",
              "memory", "stm", "ltm", "components", "train_wall_s"]
    rows = []
    groups = {}
    for run in runs:
        groups.setdefault(stream_of(run), []).append(run)
    for (key, title), members in groups.items():
        for run in members:
            f = run.final
            value, name = _ll(f)
            mixture = _ll(f, "_mixture")[0] if f.get("components", 1) > 1 else None
            rows.append([title, method_name(run), "ours" if run.finished else "ours (in progress)", str(run.path),
                         run.budget, run.seed, name, value, mixture, f.get("memory"), memory_sizes(f).get("stm"),
                         memory_sizes(f).get("ltm"),
                         f.get("components"), f.get("train_wall_s", f.get("wall_s"))])
        if key in PUBLISHED:
            source, published = PUBLISHED[key]
            for method, ll, mem, comps in published:
                rows.append([title, method, f"published ({source})", "", "paper", "", "ll_iw1000", ll, "",
                             _count(mem), "", "", _count(comps), ""])
    return header, rows


def _count(text: str) -> int | str:
    """``"3.0K"`` -> 3000, ``"10"`` -> 10, ``"-"`` -> ``""`` (for the CSV)."""
    if text in ("", "-"):
        return ""
    return int(round(float(text[:-1]) * 1000)) if text.endswith("K") else int(text)


# ---------------------------------------------------------------------------------------------
# rendering


def to_markdown(header: list[str], rows: list[list]) -> str:
    def cell(v) -> str:
        return fmt(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
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
