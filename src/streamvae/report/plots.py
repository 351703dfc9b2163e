"""Figures of runs, drawn from their files (metrics.jsonl, events.jsonl): one function per figure.

Every function takes loaded :class:`~streamvae.report.runs.Run` objects and returns a matplotlib
``Figure`` (no pyplot, no global state), or ``None`` when the runs hold nothing to draw. Task
boundaries, which only the evaluator knows, are dashed vertical lines.

    fig = plot_metric_over_stream(load_runs(["runs/a", "runs/b"]), "ll")
    fig.savefig("ll.png", dpi=110)
"""
from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..evaluation.continual import forgetting_per_task, ll_key, results_matrix
from .runs import Run, SeedGroup, memory_sizes, seed_groups

# what each metric is called on an axis, and whether higher is better
METRICS = {
    "ll": ("log-likelihood ll_iw{k} (nats, higher is better)", True),
    "ll_mixture": ("mixture log-likelihood ll_iw{k}_mixture (nats)", True),
    "recon_sse": ("reconstruction error recon_sse (per image, lower is better)", False),
    "probe_linear": ("linear-probe accuracy on encoder means", True),
    "probe_knn": ("kNN accuracy on encoder means", True),
}


def _label(metric: str) -> str:
    return METRICS.get(metric, (metric, True))[0].replace("{k}", "<k>")


def higher_is_better(metric: str) -> bool:
    return METRICS.get(metric, (metric, True))[1]


def _value(row: dict, metric: str):
    if metric in ("ll", "ll_mixture"):
        key = ll_key(row, metric[2:])
        return row.get(key) if key else None
    return row.get(metric)


def _images(run: Run, arrivals) -> np.ndarray:
    return np.asarray(arrivals, dtype=float) * run.batch_size


def _task_boundaries(ax, run: Run) -> None:
    """Dashed vertical lines at the task ends (images seen), the stream's end excluded."""
    for end in run.task_ends[:-1]:
        ax.axvline(end * run.batch_size, color="0.6", ls="--", lw=0.8, zorder=0)


def _figure(width: float = 7.0, height: float = 3.6, legend: bool = True) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width + (2.4 if legend else 0), height), layout="constrained")  # + the legend's room
    return fig, fig.add_subplot()


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def plot_metric_over_stream(runs: list[Run], metric: str = "ll", bands: bool = True) -> Figure | None:
    """A metric (over the tasks seen so far) at every evaluation point, one line per run.

    Runs that differ only in seed (``bands``) are one line, the mean over seeds, in a shaded band from
    the lowest to the highest seed's value. The last point of a run is the final evaluation, which may
    use a larger k and the whole test set (``eval.iw_samples`` / ``test_size``) than the curve
    (``curve_iw_samples``): it is drawn as a star.
    """
    if not any(_value(r, metric) is not None for run in runs for r in run.rows):
        return None
    fig, ax = _figure()
    groups = seed_groups(runs) if bands else [SeedGroup(run.label, [run]) for run in runs]
    for group, color in zip(groups, _colors(len(groups))):
        if len(group.runs) > 1:
            _band(ax, group, metric, color)
            continue
        run = group.runs[0]
        pts = [(r["arrival"], _value(r, metric), r.get("final", False)) for r in run.rows
               if _value(r, metric) is not None]
        if not pts:
            continue
        x = _images(run, [p[0] for p in pts])
        y = np.array([p[1] for p in pts], dtype=float)
        ax.plot(x, y, marker="o", ms=3, color=color, label=run.label)
        final = [i for i, p in enumerate(pts) if p[2]]
        if final:
            ax.plot(x[final], y[final], marker="*", ms=11, color=color, ls="none")
        if metric == "ll" and any(_value(r, "ll_mixture") is not None for r in run.rows):
            mix = [(r["arrival"], _value(r, "ll_mixture")) for r in run.rows if _value(r, "ll_mixture") is not None]
            ax.plot(_images(run, [m[0] for m in mix]), [m[1] for m in mix], ls=":", color=color,
                    label=f"{run.label} (mixture)")
    _task_boundaries(ax, runs[0])
    ks = sorted({r["iw_samples"] for run in runs for r in run.rows if r.get("iw_samples")})
    ax.set_ylabel(_label(metric), fontsize=8)
    ax.set_xlabel("images seen (dashed: task boundaries, known to the evaluator only)")
    title = f"{metric} along the stream"
    if metric.startswith("ll") and ks:
        title += f" (k = {', '.join(map(str, ks))}; star: final evaluation)"
    ax.set_title(title, fontsize=9)
    _legend(ax)
    return fig


def _band(ax, group: SeedGroup, metric: str, color) -> None:
    """Mean over the group's seeds at each evaluation point, shaded from min to max; final point a star."""
    by_arrival: dict[int, list[float]] = {}
    final: set[int] = set()
    for run in group.runs:
        for r in run.rows:
            v = _value(r, metric)
            if v is not None:
                by_arrival.setdefault(r["arrival"], []).append(float(v))
                if r.get("final"):
                    final.add(r["arrival"])
    arrivals = sorted(by_arrival)
    x = _images(group.runs[0], arrivals)
    values = [np.asarray(by_arrival[a]) for a in arrivals]
    mean = np.array([v.mean() for v in values])
    ax.fill_between(x, [v.min() for v in values], [v.max() for v in values], color=color, alpha=0.2, lw=0)
    ax.plot(x, mean, marker="o", ms=3, color=color,
            label=f"{group.label}: mean of {len(group.runs)} seeds (band: min-max)")
    stars = [i for i, a in enumerate(arrivals) if a in final]
    if stars:
        ax.plot(x[stars], mean[stars], marker="*", ms=11, color=color, ls="none")
    if metric == "ll":
        mix: dict[int, list[float]] = {}
        for run in group.runs:
            for r in run.rows:
                if _value(r, "ll_mixture") is not None:
                    mix.setdefault(r["arrival"], []).append(float(_value(r, "ll_mixture")))
        if mix:
            a = sorted(mix)
            ax.plot(_images(group.runs[0], a), [np.mean(mix[i]) for i in a], ls=":", color=color,
                    label=f"{group.label} (mixture, mean)")


def plot_per_task_over_stream(run: Run, metric: str = "ll") -> Figure | None:
    """Each task's value along the stream (the rows of R), from the point the task is seen."""
    m = results_matrix(run.rows, metric, seen_only=True)
    if m.size == 0 or np.isnan(m).all():
        return None
    fig, ax = _figure()
    x = _images(run, [r["arrival"] for r in run.rows])
    for j, (name, color) in enumerate(zip(run.task_names, _colors(m.shape[1]))):
        ax.plot(x, m[:, j], marker="o", ms=3, color=color, label=name)
    _task_boundaries(ax, run)
    ax.set_xlabel("images seen")
    ax.set_ylabel(_label(metric), fontsize=8)
    ax.set_title(f"{run.label}: {metric} per task along the stream", fontsize=9)
    _legend(ax)
    return fig


def plot_results_matrix(run: Run, metric: str = "ll") -> Figure | None:
    """Heat map of ``R[point, task]``: rows are evaluation points, columns tasks; blank = not yet seen."""
    m = results_matrix(run.rows, metric, seen_only=True)
    if m.size == 0 or np.isnan(m).all():
        return None
    fig, ax = _figure(2.0 + 1.1 * m.shape[1], 1.4 + 0.42 * m.shape[0], legend=False)
    cmap = "viridis" if higher_is_better(metric) else "viridis_r"
    im = ax.imshow(np.ma.masked_invalid(m), aspect="auto", cmap=cmap)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_xticks(range(m.shape[1]), run.task_names, rotation=30, ha="right", fontsize=7)
    ax.set_yticks(range(m.shape[0]), [f"{r['arrival']}{' (final)' if r.get('final') else ''}"
                                      for r in run.rows], fontsize=7)
    ax.set_ylabel("evaluation point (arrival)")
    digits = 3 if metric.startswith("probe") else 1
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if not np.isnan(m[i, j]):
                bright = np.mean(im.cmap(im.norm(m[i, j]))[:3]) > 0.5  # dark text on bright cells
                ax.text(j, i, f"{m[i, j]:.{digits}f}", ha="center", va="center", fontsize=7,
                        color="k" if bright else "w")
    ax.set_title(f"{run.label}: R[point, task] of {metric}", fontsize=9)
    return fig


def plot_memory_over_stream(runs: list[Run]) -> Figure | None:
    """Stored images of each memory along the stream (rows of metrics.jsonl; LTM also at every event)."""
    if not any(run.memory_keys() for run in runs):
        return None
    fig, ax = _figure()
    styles = ["-", "--", ":", "-."]
    for run, color in zip(runs, _colors(len(runs))):
        keys = run.memory_keys()
        for key, ls in zip(keys, styles * 3):
            pts = [(r["arrival"], memory_sizes(r)[key]) for r in run.rows if key in memory_sizes(r)]
            ax.plot(_images(run, [p[0] for p in pts]), [p[1] for p in pts], marker="o", ms=3, ls=ls,
                    color=color, label=f"{run.label}: {key}")
        ev = [e for e in run.events if "ltm" in e and "arrival" in e]
        if ev:
            ax.step(_images(run, [e["arrival"] for e in ev]), [e["ltm"] for e in ev], where="post", lw=0.8,
                    color=color, alpha=0.5, label=f"{run.label}: ltm at each selection event")
    _task_boundaries(ax, runs[0])
    ax.set_xlabel("images seen")
    ax.set_ylabel("stored images")
    ax.set_title("memory sizes along the stream", fontsize=9)
    _legend(ax)
    return fig


def plot_components_over_stream(runs: list[Run]) -> Figure | None:
    """Number of mixture components along the stream; expansions (from events.jsonl) marked with a triangle."""
    if not any(r.get("components", 1) > 1 or "clusters" in r for run in runs for r in run.rows) and \
            not any(e.get("K", 1) > 1 for run in runs for e in run.events):
        return None
    fig, ax = _figure()
    for run, color in zip(runs, _colors(len(runs))):
        ev = [e for e in run.events if "K" in e and "arrival" in e]
        if ev:
            x = _images(run, [0] + [e["arrival"] for e in ev])
            ax.step(x, [1] + [e["K"] for e in ev], where="post", color=color, label=run.label)
            grown = [e for e in ev if e.get("expanded")]
            ax.plot(_images(run, [e["arrival"] for e in grown]), [e["K"] for e in grown], "^", color=color, ms=6)
        else:
            pts = [(r["arrival"], r.get("components", 1)) for r in run.rows]
            ax.plot(_images(run, [p[0] for p in pts]), [p[1] for p in pts], marker="o", color=color, label=run.label)
        clusters = [(r["arrival"], r["clusters"]) for r in run.rows if "clusters" in r]  # DEMC's memory clusters
        if clusters:
            ax.plot(_images(run, [c[0] for c in clusters]), [c[1] for c in clusters], marker="s", ls="--",
                    color=color, label=f"{run.label}: memory clusters")
    _task_boundaries(ax, runs[0])
    ax.set_xlabel("images seen")
    ax.set_ylabel("components / clusters")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("mixture components along the stream (triangles: expansions)", fontsize=9)
    _legend(ax)
    return fig


def plot_expansion_statistic(run: Run) -> Figure | None:
    """Dynamic-OCM's statistic R (mean IW bound on the memories) at each test; expansions marked."""
    ev = [e for e in run.events if e.get("R") is not None]
    if not ev:
        return None
    fig, ax = _figure()
    x = _images(run, [e["arrival"] for e in ev])
    ax.plot(x, [e["R"] for e in ev], marker=".", label="R")
    last = [(xi, e["R_last"]) for xi, e in zip(x, ev) if e.get("R_last") is not None]
    if last:
        ax.plot([p[0] for p in last], [p[1] for p in last], ls=":", color="0.4", label="R_last")
    grown = [(xi, e["R"]) for xi, e in zip(x, ev) if e.get("expanded")]
    if grown:
        ax.plot([g[0] for g in grown], [g[1] for g in grown], "^", color="C3", ms=7, label="expansion")
    _task_boundaries(ax, run)
    ax.set_xlabel("images seen")
    ax.set_ylabel("R (nats)")
    threshold = run.config.get("learner", {}).get("expansion_threshold")
    ax.set_title(f"{run.label}: expansion statistic (threshold |R - R_last| > {threshold})", fontsize=9)
    _legend(ax)
    return fig


# what a DEMC run's logged novelty measures (``memory.novelty_statistic``)
_NOVELTY_UNITS = {"kl": "novelty (KL per latent dim)", "recon": "novelty (batch recon error / cluster's)",
                  "mmd": "novelty (pixel MMD², z vs permutations)"}


def plot_novelty_over_stream(runs: list[Run], window: int = 2) -> Figure | None:
    """DEMC's novelty checks (events.jsonl): the statistic (log scale) with the absolute threshold,
    and its robust z-score with the relative threshold; expansions marked, task boundaries dashed.
    The legend gives each run's detected switches and false alarms (a switch counts when the check
    at the boundary batch or one of the ``window`` checks after it expands:
    :func:`streamvae.evaluation.novelty.novelty_detection`)."""
    from ..evaluation.novelty import novelty_detection

    with_checks = [run for run in runs if any(e.get("novelty") is not None for e in run.events)]
    if not with_checks:
        return None
    with_z = any(e.get("z") is not None for run in with_checks for e in run.events)
    fig = Figure(figsize=(8.0, 6.0 if with_z else 3.6), layout="constrained")
    if with_z:
        ax_v, ax_z = fig.subplots(2, 1, sharex=True)
    else:  # no relative z-scores (the mmd statistic is a z-score itself): one panel
        ax_v = fig.subplots(1, 1)
        ax_z = ax_v
    for run, color in zip(with_checks, _colors(len(with_checks))):
        ev = [e for e in run.events if e.get("novelty") is not None]
        memory = run.config.get("memory", {})
        label = run.label
        if run.task_ends:
            score = novelty_detection(run.events, run.task_ends, window)
            label += f" ({memory.get('novelty_test', 'absolute')}: {score['detected']}/{score['switches']} " \
                     f"switches, {score['false_alarms']} false alarms)"
        x = _images(run, [e["arrival"] for e in ev])
        ax_v.plot(x, [e["novelty"] for e in ev], ".", ms=3, color=color, label=label)
        zs = [(xi, e["z"]) for xi, e in zip(x, ev) if e.get("z") is not None]
        ax_z.plot([p[0] for p in zs], [p[1] for p in zs], ".", ms=3, color=color)
        grown = [(xi, e) for xi, e in zip(x, ev) if e.get("expanded")]
        ax_v.plot([g[0] for g in grown], [g[1]["novelty"] for g in grown], "^", ms=7, color=color)
        ax_z.plot([g[0] for g in grown if g[1].get("z") is not None],
                  [g[1]["z"] for g in grown if g[1].get("z") is not None], "^", ms=7, color=color)
        if memory.get("novelty_test", "absolute") == "absolute" and "novelty_threshold" in memory:
            ax_v.axhline(memory["novelty_threshold"], color=color, lw=0.8, ls=":")  # the threshold in use only
        elif "novelty_z" in memory and with_z:
            ax_z.axhline(memory["novelty_z"], color=color, lw=0.8, ls=":")
    statistics = {run.config.get("memory", {}).get("novelty_statistic", "kl") for run in with_checks}
    if "mmd" in statistics:  # a z-score: about 0 (and negative) inside a task, tens at a switch
        ax_v.set_yscale("symlog", linthresh=1.0)
    else:
        ax_v.set_yscale("log")
    for ax in dict.fromkeys((ax_v, ax_z)):
        _task_boundaries(ax, with_checks[0])
    if with_z:
        ax_z.set_ylabel("robust z of log novelty", fontsize=8)
    ax_v.set_ylabel(" | ".join(_NOVELTY_UNITS[s] for s in sorted(statistics)), fontsize=8)
    ax_z.set_xlabel("images seen (dashed: task boundaries; dotted: thresholds; triangles: expansions)")
    ax_v.set_title("novelty checks along the stream", fontsize=9)
    fig.legend(*ax_v.get_legend_handles_labels(), loc="outside upper center", fontsize=7)
    return fig


def plot_grid(run: Run, png, title: str) -> Figure:
    """A run's image grid (samples.png, reconstructions.png, memory.png) at a readable size, titled.

    The pixels are the run's own (nearest-neighbour, no smoothing), shown at least about 2.5x their
    size for grids of 28x28 images, at most 11 inches wide and 14 high (at 100 dpi).
    """
    import textwrap

    from .runs import load_png

    pixels = load_png(png)  # a regular PNG file inside the run directory, of a bounded size, or ReportError
    h, w = pixels.shape[:2]
    width = float(np.clip(w * 2.5 / 100, 6.0, 11.0))  # inches at 100 dpi
    height = width * h / w
    if height > 14.0:  # a tall grid (many components or memories): limit the height instead
        width, height = width * 14.0 / height, 14.0
    lines = textwrap.wrap(f"{run.label}: {title}", width=int(width * 12))
    fig = Figure(figsize=(max(width, 6.0), height + 0.25 + 0.2 * len(lines)), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title("\n".join(lines), fontsize=10)
    return fig


def _legend(ax) -> None:
    """The legend right of the axes, so it never hides a curve."""
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _grouped_bars(ax, runs: list[Run], values: list[np.ndarray], names: list[str], digits: int = 2) -> None:
    """One group of bars per task, one bar per run, each bar labelled with its value; a task without
    any value is labelled n/a. The legend gives each run's mean over the tasks that have a value."""
    n = len(runs)
    width = 0.8 / max(n, 1)
    for i, (run, v, color) in enumerate(zip(runs, values, _colors(n))):
        x = np.arange(len(v)) + (i - (n - 1) / 2) * width
        ok = ~np.isnan(v)
        label = f"{run.label}: {legend_value(v, digits)}"
        bars = ax.bar(x[ok], v[ok], width, color=color, label=label)
        ax.bar_label(bars, fmt=f"%.{digits}f", fontsize=6, padding=1, rotation=90 if n > 2 else 0)
    empty = np.all(np.isnan(np.vstack(values)), axis=0)
    labels = [f"{name}\n(n/a)" if e else name for name, e in zip(names, empty)]
    ax.set_xticks(range(len(names)), labels, rotation=20, ha="right", fontsize=7)
    ax.axhline(0, color="k", lw=0.6)
    _legend(ax)


def _digits(metric: str) -> int:
    return 3 if metric.startswith("probe") else 2


def legend_value(values: np.ndarray, digits: int = 2) -> str:
    """``"-245.31 (mean of 5 tasks)"``, ``"-245.31 (1 task)"``; ``"n/a"`` without any value."""
    ok = np.asarray(values, dtype=float)
    ok = ok[~np.isnan(ok)]
    if ok.size == 0:
        return "n/a"
    if ok.size == 1:
        return f"{ok[0]:.{digits}f} (1 task)"
    return f"{ok.mean():.{digits}f} (mean of {ok.size} tasks)"


def plot_final_per_task(runs: list[Run], metric: str = "ll") -> Figure | None:
    """Final value per task, one bar per run."""
    mats = [results_matrix(run.rows, metric) for run in runs]
    if not any(m.size and not np.isnan(m[-1]).all() for m in mats):
        return None
    finals = [m[-1] if m.size else np.array([]) for m in mats]
    names = max((run.task_names for run in runs), key=len)
    n_tasks = max(len(f) for f in finals)
    finals = [np.pad(f, (0, n_tasks - len(f)), constant_values=np.nan) for f in finals]
    fig, ax = _figure()
    _grouped_bars(ax, runs, finals, names[:n_tasks], _digits(metric))
    ax.set_ylabel(_label(metric), fontsize=8)
    ax.set_title(f"final {metric} per task", fontsize=9)
    return fig


def plot_forgetting_per_task(runs: list[Run], metric: str = "ll") -> Figure | None:
    """Forgetting per task (best earlier value minus final; for lower-is-better metrics final minus best).

    See :func:`streamvae.evaluation.continual.forgetting_per_task`; n/a where a task has no earlier
    point (the last task). For ``ll`` the final point's k may exceed the curve's: a larger k raises the
    bound, so forgetting in nats is then underestimated.
    """
    higher = higher_is_better(metric)
    per = [forgetting_per_task(results_matrix(run.rows, metric, seen_only=True), higher) for run in runs]
    if not any(p.size and not np.isnan(p).all() for p in per):
        return None
    names = max((run.task_names for run in runs), key=len)
    n_tasks = max(len(p) for p in per)
    per = [np.pad(p, (0, n_tasks - len(p)), constant_values=np.nan) for p in per]
    fig, ax = _figure()
    _grouped_bars(ax, runs, per, names[:n_tasks], _digits(metric))
    ax.set_ylabel(f"forgetting of {metric} (positive = forgotten)", fontsize=8)
    rule = "best earlier - final" if higher else "final - best earlier"
    ax.set_title(f"forgetting per task: {metric}, {rule}", fontsize=9)
    return fig
