"""The metrics of an evaluation row, declared once: name, how it is computed, whether it is a headline.

An evaluation point (``points.evaluate_point``) runs every metric whose ``when`` holds, in this
order, and merges what each returns into the row (``metrics.jsonl``, ``results.json``). Headline
numbers are what the progress line and ``streamvae run``'s table print. A new metric is a function
``compute(point) -> dict`` in its own file and one line here.

    METRICS["probe"].when(cfg.eval, final=True)      # eval.probe
    headline(row)                                     # [("ll_iw1000", -250.7), ("recon_sse", 25.1)]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..config import EvalConfig
from .continual import ll_key
from .evaluator import evaluate, evaluate_generation
from .fid import feature_classifier
from .probe import probe_metrics, probe_training_set


@dataclass(frozen=True)
class Metric:
    compute: Callable  # (Point) -> dict of row keys (``per_task`` entries are merged)
    when: Callable[[EvalConfig, bool], bool]  # (eval config, final point?) -> computed here?
    headline: tuple[str, ...] = ()  # row keys printed as headline numbers ("ll": the row's ll_iw{k})


def likelihood(point) -> dict:
    """``ll_iw{k}`` (a mixture: selected and mixture) and ``recon_sse``, per task and over the tasks seen;
    with ``eval.elbo_mixture_samples``, CN-DPM's own estimator ``elbo{n}_mixture`` too."""
    return evaluate(point.components, point.test, point.num_tasks, point.tasks_seen, point.k,
                    point.generator(0), point.cfg.eval.chunk_rows, point.between_chunks, point.weights,
                    point.cfg.eval.elbo_mixture_samples)


def probes(point) -> dict:
    """Linear and kNN probes on encoder means (labels reach the probe only)."""
    e = point.cfg.eval
    test = point.test_set(e.probe_test_size) if e.probe_test_size else point.test
    train = probe_training_set(point.stream, e.probe_train_size, e.binarize_seed + 1)
    return probe_metrics(point.components, train, test, point.num_tasks, point.tasks_seen, e.probe_knn,
                         point.generator(1_000_000), seed=point.cfg.seed, features=e.probe_features)


def generation(point) -> dict:
    """FID / IS of samples and reconstructions with the dataset's feature classifier (and Inception)."""
    cfg = point.cfg
    classifier, info = feature_classifier(cfg.stream.datasets, point.stream.data_root, cfg.eval)
    return evaluate_generation(point.components, point.test_set(0), point.tasks_seen, cfg.eval,
                               point.stream.shape, classifier, info, point.generator(2_000_000))


METRICS: dict[str, Metric] = {
    "likelihood": Metric(likelihood, lambda e, final: True, headline=("ll", "recon_sse")),
    "probe": Metric(probes, lambda e, final: e.probe),
    "generation": Metric(generation, lambda e, final: e.fid and (final or e.fid_curve)),
}


def headline(row: dict) -> list[tuple[str, float]]:
    """The row's headline numbers, ``[(key, value)]`` (the likelihood key is the row's ``ll_iw{k}``)."""
    out = []
    for metric in METRICS.values():
        for name in metric.headline:
            key = ll_key(row) if name == "ll" else name
            if key is not None and isinstance(row.get(key), float):
                out.append((key, row[key]))
    return out
