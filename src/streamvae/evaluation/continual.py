"""The continual-learning view of a run (evaluation spec section 3): the results matrix and forgetting.

Pure numpy functions over the rows of a run's ``metrics.jsonl`` (one row per evaluation point):

    rows = read_jsonl("runs/x/metrics.jsonl")
    R = results_matrix(rows, "ll_iw100", seen_only=True)   # (points, tasks), NaN where missing or unseen
    forgetting(R)                                           # nats lost, averaged over tasks
    forgetting(results_matrix(rows, "recon_sse", seen_only=True), higher_is_better=False)

Intermediate points may use a different ``k`` (``eval.curve_iw_samples``) than the final one
(``eval.iw_samples``); :func:`results_matrix` accepts a list of metric names, or the shorthand
``"ll"``, to read each row's own likelihood key.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np


def ll_key(row: dict, variant: str = "") -> str | None:
    """The name of the row's likelihood metric, e.g. ``ll_iw1000`` (``variant``: "", "_selected", "_mixture")."""
    k = row.get("iw_samples")
    if k is not None and f"ll_iw{k}{variant}" in row:
        return f"ll_iw{k}{variant}"
    pattern = re.compile(rf"ll_iw\d+{re.escape(variant)}")
    return next((name for name in row if pattern.fullmatch(name)), None)  # e.g. eval.json rows


def results_matrix(rows: Sequence[dict], metric: str, seen_only: bool = False) -> np.ndarray:
    """``R[point, task]``: the per-task value of ``metric`` at every evaluation point.

    Args:
        rows: metrics.jsonl rows in stream order; each holds ``per_task: {metric: [value or None]}``.
        metric: a key of ``per_task`` (``"recon_sse"``, ``"ll_iw100"``, ``"probe_linear"``, ...);
            ``"ll"`` / ``"ll_mixture"`` pick each row's own ``ll_iw{k}`` / ``ll_iw{k}_mixture``, so a
            run whose final point uses a larger k than its curve still gives one matrix.
        seen_only: NaN for tasks the stream had not reached at that point (task >= ``tasks_seen``).

    Returns:
        ``(points, tasks)`` float array, NaN where the row lacks the metric or the value is null.
    """
    n_tasks = max((len(v) for r in rows for v in r.get("per_task", {}).values()), default=0)
    out = np.full((len(rows), n_tasks), np.nan)
    for i, r in enumerate(rows):
        name = metric
        if metric in ("ll", "ll_mixture"):  # ll is the selected component's value for mixtures
            name = ll_key(r, metric[2:]) or ""
        values = r.get("per_task", {}).get(name)
        if values is None:
            continue
        for j, v in enumerate(values):
            if v is not None:
                out[i, j] = float(v)
        if seen_only and "tasks_seen" in r:
            out[i, int(r["tasks_seen"]):] = np.nan
    return out


def forgetting_per_task(matrix: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """Forgetting of each task, ``(tasks,)``; NaN where it is undefined.

    Definition (positive = forgotten, in the metric's own unit), for task j with final value
    ``R[-1, j]`` and earlier values ``R[:-1, j]`` (NaN entries, e.g. points before the task was
    seen when the matrix is built with ``seen_only=True``, are ignored):

      * higher is better (likelihood, accuracy): ``max(R[:-1, j]) - R[-1, j]``;
      * lower is better (``recon_sse``):           ``R[-1, j] - min(R[:-1, j])``.

    It is NaN when the task has no earlier non-NaN value (typically the last task, first seen at
    the final point) or no final value. It can be negative (backward transfer).
    """
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2:
        raise ValueError(f"expected a (points, tasks) matrix, got shape {m.shape}")
    out = np.full(m.shape[1], np.nan)
    if m.shape[0] < 2:
        return out
    final, earlier = m[-1], m[:-1]
    for j in range(m.shape[1]):
        prev = earlier[:, j][~np.isnan(earlier[:, j])]
        if prev.size == 0 or np.isnan(final[j]):
            continue
        out[j] = prev.max() - final[j] if higher_is_better else final[j] - prev.min()
    return out


def forgetting(matrix: np.ndarray, higher_is_better: bool = True) -> float:
    """Average forgetting: the mean of :func:`forgetting_per_task` over the tasks where it is defined.

    That is, over the tasks that had at least one evaluation point before the final one after being
    seen (build the matrix with ``seen_only=True`` so that points before a task arrived do not count
    as "earlier values"). NaN when no task qualifies (e.g. a single evaluation point).
    """
    per_task = forgetting_per_task(matrix, higher_is_better)
    valid = per_task[~np.isnan(per_task)]
    return float(valid.mean()) if valid.size else float("nan")


def final_average(matrix: np.ndarray) -> float:
    """Mean over tasks of the final row (tasks without a final value are skipped).

    This is an average of per-task means; the row's overall metric averages over test images
    instead, and the two agree when every task has the same number of test images.
    """
    last = np.asarray(matrix, dtype=float)[-1]
    valid = last[~np.isnan(last)]
    return float(valid.mean()) if valid.size else float("nan")


def average_over_seen(matrix: np.ndarray) -> np.ndarray:
    """The curve along the stream: at each point, the mean over the tasks with a value, ``(points,)``."""
    m = np.asarray(matrix, dtype=float)
    counts = (~np.isnan(m)).sum(1)
    sums = np.nansum(m, 1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


__all__ = ["results_matrix", "forgetting", "forgetting_per_task", "final_average", "average_over_seen", "ll_key"]
