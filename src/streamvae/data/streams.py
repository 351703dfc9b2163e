"""Task-free streams: a sequence of batches of images, with labels and task ids for the evaluator only.

Orders (evaluation spec section 2):
  * ``class-order``: training images sorted by class 0..9, original order inside a class (OCM code);
  * ``pairs``: five two-class tasks (0,1), (2,3), ..., original order inside a task (DEMC code),
    optionally shuffled inside each task;
  * several datasets are concatenated in the order given (MNIST then Fashion, ...).
The remainder smaller than the batch size is dropped. The loop hands only ``batch.x`` to a learner.

    stream = Stream(cfg.stream, data_root=None, seed=0)
    for t in range(len(stream)): batch = stream.batch(t)   # Batch(x (B, D) in [0, 1], y, task)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..config import EvalConfig, StreamConfig, check_choice
from ..errors import ConfigError
from .datasets import DATASETS, load_dataset


@dataclass(frozen=True)
class Batch:
    x: torch.Tensor  # (B, D) float32 in [0, 1]: the only thing a learner sees
    y: torch.Tensor  # (B,) class labels: evaluation only
    task: torch.Tensor  # (B,) task ids: evaluation only
    arrival: int  # position in the stream (0-based)


@dataclass(frozen=True)
class TestSet:
    x: torch.Tensor  # (N, D) float32; binarised once with a fixed seed when the stream binarises
    y: torch.Tensor  # (N,)
    task: torch.Tensor  # (N,)


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bernoulli binarisation on pixel intensity (dynamic when called afresh each pass): pixel i is 1
    with probability x_i, drawn as ``u_i < x_i`` with ``u ~ U[0, 1)`` from ``generator``.

    The same distribution as ``torch.bernoulli(x)``, several times faster on the CPU (BENCHMARKS.md,
    session 7: torch's Bernoulli kernel cost 17-35 ns a pixel); training passes binarise every image
    of the memory on every pass, so it was about a sixth of a 1-sample step. The draws differ from
    ``torch.bernoulli``'s. The evaluation's fixed test-set binarisation (``binarize_fixed``) keeps
    ``torch.bernoulli``, so test sets stay identical across versions.
    """
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return torch.lt(u, x, out=u)  # 0./1. written over u: no bool tensor and no conversion pass (8x cheaper)


def binarize_fixed(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The evaluation's once-only binarisation (test set, probe images): ``torch.bernoulli``, as every
    earlier version drew it, so that results of different versions are scored on the same pixels."""
    return torch.bernoulli(x, generator=generator)


def _task_ids(labels: np.ndarray, dataset_index: int, how: str, n_tasks_before: int) -> np.ndarray:
    if how == "dataset":
        return np.full(len(labels), dataset_index, dtype=np.int64)
    return n_tasks_before + labels.astype(np.int64) // 2  # pairs: (0,1) -> 0, (2,3) -> 1, ...


def _order(labels: np.ndarray, cfg: StreamConfig, rng: np.random.Generator) -> np.ndarray:
    """Indices of one dataset's training images in stream order."""
    if cfg.order == "class-order":
        return np.argsort(labels, kind="stable")
    if cfg.order == "pairs":
        parts = []
        for task in np.unique(labels // 2):
            idx = np.flatnonzero(labels // 2 == task)  # original order inside the task
            if cfg.shuffle_within_task:
                idx = rng.permutation(idx)
            parts.append(idx)
        return np.concatenate(parts)
    raise ConfigError(f"stream.order={cfg.order!r} is unknown; choose class-order or pairs")


def check_datasets(cfg: StreamConfig) -> None:
    """Every name of ``stream.datasets`` is a dataset this package reads (a ConfigError naming the valid ones)."""
    for name in cfg.datasets:
        check_choice("stream.datasets", name, tuple(DATASETS))


class Stream:
    """A task-free stream over one or more datasets (all images of one flattened size)."""

    def __init__(self, cfg: StreamConfig, data_root: str | None = None, seed: int = 0):
        check_datasets(cfg)  # before anything is read
        self.cfg = cfg
        self.data_root = data_root
        self.seed = seed
        rng = np.random.default_rng(seed)
        xs, ys, ts, names = [], [], [], []
        n_tasks = 0
        shape: tuple[int, ...] | None = None  # the first dataset's image shape
        for d, name in enumerate(cfg.datasets):
            images, labels = load_dataset(name, "train", data_root=data_root)
            shape = self._check_shape(name, images, shape)
            keep = np.arange(len(labels))
            if cfg.samples_per_class > 0:
                keep = np.concatenate([np.flatnonzero(labels == c)[: cfg.samples_per_class]
                                       for c in np.unique(labels)])
                keep.sort()
            order = keep[_order(labels[keep], cfg, rng)]
            lab = labels[order].astype(np.int64)
            xs.append((name, order))
            ys.append(lab)
            task = _task_ids(lab, d, cfg.tasks, n_tasks)
            ts.append(task)
            names += self._task_names(name, d, lab, task)
            n_tasks = int(task.max()) + 1
        self._parts = xs
        self.labels = np.concatenate(ys)
        self.tasks = np.concatenate(ts)
        self.task_names = names
        self.num_tasks = n_tasks
        assert shape is not None  # stream.datasets is never empty (StreamConfig.validate)
        self.shape: tuple[int, ...] = shape
        self.x_dim = int(np.prod(self.shape))
        n_batches = len(self.labels) // cfg.batch_size
        if cfg.max_batches > 0:
            n_batches = min(n_batches, cfg.max_batches)
        self.num_batches = n_batches
        self._images = self._gather()

    def _check_shape(self, name: str, images: np.ndarray, shape: tuple[int, ...] | None) -> tuple[int, ...]:
        """The image shape of the datasets so far (``shape``; ``None`` before the first), checked against ``images``."""
        if shape is None:
            return tuple(images.shape[1:])
        if tuple(images.shape[1:]) != shape:
            raise ConfigError(f"stream.datasets: {name} images are {images.shape[1:]}, "
                              f"but earlier datasets are {shape}; concatenated datasets must match")
        return shape

    def _task_names(self, name: str, d: int, labels: np.ndarray, task: np.ndarray) -> list[str]:
        if self.cfg.tasks == "dataset":
            return [name]
        return [f"{name}:{'+'.join(str(c) for c in np.unique(labels[task == t]))}" for t in np.unique(task)]

    def _gather(self) -> torch.Tensor:
        """All training images in stream order as one uint8 tensor ``(N, D)`` (flattened)."""
        chunks = []
        for name, order in self._parts:
            images, _ = load_dataset(name, "train", data_root=self.data_root)
            chunks.append(torch.from_numpy(np.array(images[order])).reshape(len(order), -1))
        return torch.cat(chunks)

    def __len__(self) -> int:
        return self.num_batches

    def batch(self, t: int) -> Batch:
        if not 0 <= t < self.num_batches:
            raise IndexError(f"arrival {t} outside the stream (0..{self.num_batches - 1})")
        s = slice(t * self.cfg.batch_size, (t + 1) * self.cfg.batch_size)
        return Batch(x=self._images[s].float() / 255.0, y=torch.from_numpy(self.labels[s]),
                     task=torch.from_numpy(self.tasks[s]), arrival=t)

    def __iter__(self):
        return (self.batch(t) for t in range(self.num_batches))

    def training_images(self, indices: np.ndarray | None = None) -> torch.Tensor:
        """Every image the stream will deliver, ``(N, D)`` in [0, 1] (for the offline ``iid`` bound).

        ``indices`` (stream positions < N) picks a subset without converting the rest (the probe's set).
        """
        n = self.num_batches * self.cfg.batch_size
        if indices is not None:
            return self._images[:n][torch.as_tensor(indices, dtype=torch.long)].float() / 255.0
        return self._images[:n].float() / 255.0

    def task_ends(self) -> list[int]:
        """Arrival counts (1-based) at which a task ends: known to the evaluator, never to a learner."""
        n = self.num_batches * self.cfg.batch_size
        first_task = self.tasks[:n:self.cfg.batch_size]  # task of each batch's first image
        ends = [t for t in range(1, len(first_task)) if first_task[t] != first_task[t - 1]]
        return ends + [self.num_batches]

    def test_set(self, eval_cfg: EvalConfig, size: int = 0) -> TestSet:
        """The test images of every dataset in the stream (a seeded subset when ``size > 0``).

        Binarised once with ``eval.binarize_seed`` when the stream binarises.
        """
        xs, ys, ts = [], [], []
        n_tasks = 0
        for d, name in enumerate(self.cfg.datasets):
            images, labels = load_dataset(name, "test", data_root=self.data_root)
            xs.append(torch.from_numpy(np.array(images)).reshape(len(labels), -1))
            ys.append(labels.astype(np.int64))
            task = _task_ids(labels, d, self.cfg.tasks, n_tasks)
            ts.append(task)
            n_tasks = int(task.max()) + 1
        x = torch.cat(xs).float() / 255.0
        y, task = np.concatenate(ys), np.concatenate(ts)
        if self.cfg.binarize:  # the whole test set, once, so every subset sees the same pixels
            g = torch.Generator().manual_seed(eval_cfg.binarize_seed)
            x = binarize_fixed(x, g)
        if size and size < len(y):
            idx = np.sort(np.random.default_rng(eval_cfg.binarize_seed).permutation(len(y))[:size])
            x, y, task = x[idx], y[idx], task[idx]
        return TestSet(x=x, y=torch.from_numpy(y), task=torch.from_numpy(task))
