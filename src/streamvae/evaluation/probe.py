"""Representation probes on frozen encoder means (evaluation spec section 3, "Representation").

Labels are used by the probe only: they never reach a learner. Two probes, both fitted on the
encoder means of labelled training images and scored on those of test images:
  * ``probe_linear``: multinomial logistic regression (scikit-learn, L-BFGS) on standardised features;
  * ``probe_knn``: k-nearest-neighbour vote (Euclidean, on the raw encoder means: standardising would
    blow up the near-constant means of inactive latent units into noise dimensions).
For a mixture the representation of an image is the encoder mean of its *selected component*, the
one whose ELBO is best for that image (or, with ``choose="concat"``, all components' means side by
side, OCM's selection features).

    z_train = encoder_means(learner.components(), x_train, generator=g)   # (N, Z)
    res = linear_probe_accuracy(z_train, y_train, z_test, y_test, test_tasks=task, num_tasks=5)
    res.accuracy, res.per_task                                            # 0.83, [0.99, 0.91, ...]
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import torch

from ..data.streams import TestSet, binarize_fixed


@dataclass(frozen=True)
class ProbeResult:
    accuracy: float  # fraction of test images classified correctly
    per_task: list[float | None]  # the same over each task's test images (None: no test image); [] if no tasks


@torch.no_grad()
def encoder_means(components, x: torch.Tensor, choose: str = "selected", samples: int = 10,
                  generator: torch.Generator | None = None, batch: int = 2000) -> torch.Tensor:
    """Encoder means of ``x: (N, D)``.

    Args:
        components: one VAE or a list of them (a mixture's components).
        choose: ``selected`` -> ``(N, Z)``, the mean of the component with the best ``samples``-sample
            ELBO for each image (the only one for a single VAE; models without an ELBO: the lowest
            reconstruction error); ``concat`` -> ``(N, Z * K)``.
        generator: draws of the ELBO used for the selection.
    """
    components = list(components) if isinstance(components, (list, tuple)) else [components]
    modes = [c.training for c in components]
    for c in components:
        c.eval()
    try:
        out = []
        for i in range(0, x.shape[0], batch):
            xb = x[i:i + batch]
            means = torch.stack([c.encode(xb).loc for c in components])  # (K, b, Z)
            if choose == "concat":
                out.append(means.permute(1, 0, 2).reshape(xb.shape[0], -1))  # (b, K * Z)
            elif choose == "selected":
                if len(components) == 1:
                    out.append(means[0])
                    continue
                best = torch.stack([_fit(c, xb, samples, generator) for c in components]).argmax(0)  # (b,)
                out.append(means[best, torch.arange(xb.shape[0], device=best.device)])
            else:
                raise ValueError(f"choose={choose!r}: expected 'selected' or 'concat'")
        return torch.cat(out)
    finally:
        for c, mode in zip(components, modes):
            c.train(mode)


def _fit(component, x: torch.Tensor, samples: int, generator: torch.Generator | None) -> torch.Tensor:
    """How well a component explains each image, ``(b,)``: its ELBO, or minus the reconstruction SSE
    for models without one."""
    if component.has_likelihood:
        return component.elbo(x, samples, generator)
    return -((component.reconstruct(x) - x) ** 2).sum(-1)


def _numpy(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def _result(pred: np.ndarray, test_y: np.ndarray, test_tasks, num_tasks: int | None) -> ProbeResult:
    correct = pred == test_y
    per_task: list[float | None] = []
    if test_tasks is not None:
        tasks = _numpy(test_tasks)
        n = num_tasks if num_tasks is not None else int(tasks.max()) + 1
        per_task = [float(correct[tasks == t].mean()) if (tasks == t).any() else None for t in range(n)]
    return ProbeResult(accuracy=float(correct.mean()) if len(correct) else float("nan"), per_task=per_task)


def _single_class(train_y: np.ndarray, n_test: int) -> np.ndarray | None:
    """With one training class there is nothing to fit: every prediction is that class."""
    classes = np.unique(train_y)
    return np.full(n_test, classes[0]) if len(classes) == 1 else None


def linear_probe_accuracy(train_z, train_y, test_z, test_y, test_tasks=None, num_tasks: int | None = None,
                          seed: int = 0, max_iter: int = 1000) -> ProbeResult:
    """Logistic regression on standardised features (mean/std of the training features).

    Args:
        train_z, test_z: ``(N, Z)`` features; train_y, test_y: ``(N,)`` integer labels.
        test_tasks: ``(N_test,)`` task ids for the per-task accuracy (optional).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train_z, train_y, test_z, test_y = map(_numpy, (train_z, train_y, test_z, test_y))
    pred = _single_class(train_y, len(test_y))
    if pred is None:
        scaler = StandardScaler().fit(train_z)
        clf = LogisticRegression(max_iter=max_iter, random_state=seed)
        clf.fit(scaler.transform(train_z), train_y)
        pred = clf.predict(scaler.transform(test_z))
    return _result(pred, test_y, test_tasks, num_tasks)


def knn_accuracy(train_z, train_y, test_z, test_y, test_tasks=None, num_tasks: int | None = None,
                 k: int = 5) -> ProbeResult:
    """k-nearest-neighbour vote (Euclidean distance on the raw features)."""
    from sklearn.neighbors import KNeighborsClassifier

    train_z, train_y, test_z, test_y = map(_numpy, (train_z, train_y, test_z, test_y))
    pred = _single_class(train_y, len(test_y))
    if pred is None:
        clf = KNeighborsClassifier(n_neighbors=min(k, len(train_y)), n_jobs=1).fit(train_z, train_y)
        pred = clf.predict(test_z)
    return _result(pred, test_y, test_tasks, num_tasks)


def probe_classes(labels, tasks) -> np.ndarray:
    """Class ids that stay distinct across datasets: MNIST "0" and Fashion "0" are different classes."""
    labels, tasks = _numpy(labels).astype(np.int64), _numpy(tasks).astype(np.int64)
    return tasks * 1000 + labels  # the same ids for the training and the test images (labels < 1000)




# ---------------------------------------------------------------------------------------------
# the probe at an evaluation point of a run

_TRAIN_SETS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # stream -> {(size, seed): TestSet}


def probe_training_set(stream, size: int, seed: int) -> TestSet:
    """A seeded random subset of ``size`` labelled images that the stream delivers (0 = all of them).

    Binarised once (seeded) when the stream binarises, like the test set. Built once per stream.
    """
    cache = _TRAIN_SETS.setdefault(stream, {})
    if (size, seed) not in cache:
        n = stream.num_batches * stream.cfg.batch_size
        idx = np.arange(n)
        if 0 < size < n:
            idx = np.sort(np.random.default_rng(seed).permutation(n)[:size])
        x = stream.training_images(idx)
        if stream.cfg.binarize:
            x = binarize_fixed(x, torch.Generator().manual_seed(seed))
        cache[(size, seed)] = TestSet(x=x, y=torch.from_numpy(stream.labels[idx]),
                                      task=torch.from_numpy(stream.tasks[idx]))
    return cache[(size, seed)]


def probe_metrics(components, train: TestSet, test: TestSet, num_tasks: int, tasks_seen: int, knn: int = 5,
                  generator: torch.Generator | None = None, seed: int = 0, features: str = "selected") -> dict:
    """``probe_linear`` / ``probe_knn`` accuracies over the tasks seen so far, and per task.

    ``features`` is :func:`encoder_means`' ``choose``: a mixture's images are represented by their
    selected component's mean (``selected``) or by every component's mean side by side (``concat``).

    Both probes are fitted on the training images of the tasks seen so far (classes kept distinct
    across datasets) and scored on the test images of those tasks; later tasks are ``None`` per task.
    At the end of the stream every task is seen: the usual probe over all classes.
    """
    tr = train.task < tasks_seen
    te = test.task < tasks_seen
    device = next(components[0].parameters()).device  # the probe sets live on the CPU with the stream
    z_train = encoder_means(components, train.x[tr.to(train.x.device)].to(device), features, generator=generator)
    z_test = encoder_means(components, test.x[te.to(test.x.device)].to(device), features, generator=generator)
    y_train, y_test = probe_classes(train.y[tr], train.task[tr]), probe_classes(test.y[te], test.task[te])
    lin = linear_probe_accuracy(z_train, y_train, z_test, y_test, test.task[te], num_tasks, seed=seed)
    near = knn_accuracy(z_train, y_train, z_test, y_test, test.task[te], num_tasks, k=knn)
    return {"probe_linear": lin.accuracy, "probe_knn": near.accuracy, "probe_train_size": int(tr.sum()),
            "per_task": {"probe_linear": lin.per_task, "probe_knn": near.per_task}}


__all__ = ["ProbeResult", "encoder_means", "linear_probe_accuracy", "knn_accuracy", "probe_classes",
           "probe_training_set", "probe_metrics"]
