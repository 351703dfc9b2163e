"""Evaluate a learner's model(s) on a test set, per task and overall: one dict = one JSON line."""
from __future__ import annotations

import torch

from ..data.streams import TestSet
from .likelihood import iw_log_likelihood
from .reconstruction import recon_sse


def per_task_means(values: torch.Tensor, task: torch.Tensor, num_tasks: int) -> list[float | None]:
    out: list[float | None] = []
    for t in range(num_tasks):
        m = task == t
        out.append(float(values[m].mean()) if m.any() else None)
    return out


@torch.no_grad()
def evaluate(model, test: TestSet, num_tasks: int, tasks_seen: int, k: int,
             generator: torch.Generator, chunk_rows: int = 32768) -> dict:
    """``ll_iw{k}`` and ``recon_sse`` per task, over the tasks seen so far, and over all tasks.

    ``ll_iw{k}`` (the headline) averages over every test image of the tasks seen so far, which at
    the end of the stream is the whole test set (the papers' protocol).
    """
    was_training = model.training
    model.eval()
    ll = iw_log_likelihood(model, test.x, k, generator, chunk_rows)
    sse = recon_sse(model, test.x)
    model.train(was_training)
    seen = test.task < tasks_seen
    name = f"ll_iw{k}"
    d = test.x.shape[1]
    return {
        name: float(ll[seen].mean()),
        "recon_sse": float(sse[seen].mean()),
        "recon_mse_pixel": float(sse[seen].mean()) / d,
        f"{name}_all_tasks": float(ll.mean()),
        "recon_sse_all_tasks": float(sse.mean()),
        "per_task": {name: per_task_means(ll, test.task, num_tasks),
                     "recon_sse": per_task_means(sse, test.task, num_tasks)},
    }
