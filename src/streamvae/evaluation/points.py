"""One evaluation point of a run: the metrics of ``metrics.py`` on a test set, plus the run's counts.

The loop calls :func:`evaluate_point` at every point of :func:`eval_points` (task ends, which only
the evaluator knows, or every ``eval.every`` arrivals, and the end of the stream). Evaluation draws
from generators of its own (:func:`eval_generator`), so it never changes what the learner does.

    row = evaluate_point(cfg, learner, stream, test, arrival, final=False)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..config import RunConfig
from ..data.streams import Stream, TestSet
from ..devices import to_device
from .metrics import METRICS


def eval_points(cfg: RunConfig, stream: Stream) -> list[int]:
    """Arrival counts after which the evaluator runs (the last one is the final evaluation)."""
    n = len(stream)
    if cfg.eval.every > 0:
        points = list(range(cfg.eval.every, n, cfg.eval.every))
    else:
        points = [t for t in stream.task_ends() if t < n]
    return sorted(set(points) | {n})


def eval_generator(cfg: RunConfig, device: torch.device, arrival: int) -> torch.Generator:
    # independent of training randomness, so evaluation never changes what the learner does
    return torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + arrival + 17)


@dataclass
class Point:
    """What a metric sees: the run's config, the models, the stream and the test set of this point."""

    cfg: RunConfig
    components: list
    stream: Stream
    test: TestSet  # on the learner's device
    device: torch.device
    arrival: int
    k: int  # importance samples of the likelihood here (eval.iw_samples at the end, curve_iw_samples before)
    tasks_seen: int
    between_chunks: Callable[[], object] | None = None  # the run's thread follower
    weights: torch.Tensor | None = None  # of the components in the mixture reading (None: uniform; CN-DPM: counts)

    @property
    def num_tasks(self) -> int:
        return self.stream.num_tasks

    def generator(self, offset: int) -> torch.Generator:
        """A generator of this point's own (``offset`` keeps the metrics' draws apart)."""
        return eval_generator(self.cfg, self.device, self.arrival + offset)

    def test_set(self, size: int) -> TestSet:
        """Another test set of ``size`` images (0: all) on the learner's device."""
        return to_device(self.stream.test_set(self.cfg.eval, size), self.device)


def evaluate_point(cfg: RunConfig, learner, stream: Stream, test: TestSet, arrival: int, final: bool,
                   between_chunks: Callable[[], object] | None = None) -> dict:
    """One row of ``metrics.jsonl``: every metric that applies here, then the memories and counts."""
    ends = stream.task_ends()
    # tasks completed by this arrival, plus the one in progress (a batch that straddles a boundary
    # does not count its few images of the next task as "seen" until that task's first full batch);
    # at the end of a stream cut short (stream.max_batches) that is the tasks it reached, not all
    tasks_seen = sum(e <= arrival for e in ends) + (arrival not in ends)
    point = Point(cfg, learner.components(), stream, to_device(test, learner.device), learner.device, arrival,
                  cfg.eval.iw_samples if final else cfg.eval.curve_iw_samples, tasks_seen, between_chunks,
                  learner.mixture_weights())
    row: dict[str, Any] = {"arrival": arrival, "images_seen": arrival * cfg.stream.batch_size, "final": final,
                           "iw_samples": point.k, "test_size": int(point.test.x.shape[0]),
                           "tasks_seen": tasks_seen, "task_ends": ends}
    for metric in METRICS.values():
        if metric.when(cfg.eval, final):
            values = metric.compute(point)
            if "per_task" in row and "per_task" in values:
                row["per_task"].update(values.pop("per_task"))
            row.update(values)
    sizes = learner.memory_sizes()  # {memory name: stored images}
    row["memory"] = int(sum(sizes.values()))  # all stored images
    row["memory_sizes"] = {name: int(v) for name, v in sizes.items()}
    row["components"] = len(point.components)
    row.update(learner.structure())  # e.g. DEMC's number of clusters
    row["steps"] = learner.steps
    return row
