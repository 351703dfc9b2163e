"""DEMC's memories (Ye & Bors, AAAI 2024; DEMC spec section 2): a temporary memory and memory clusters.

* ``TemporaryMemory`` (M^t) takes every incoming batch; after training, when it holds more than
  ``capacity`` images, it is shuffled and cut back to ``capacity`` (released: recency-biased, each
  image survives a step with p = 1000/1064). ``ReservoirTemporaryMemory`` keeps a true reservoir
  sample instead (the paper's wording). Both are emptied when a cluster is created.
* ``ClusterMemory`` (M^d) holds clusters of ``cluster_size`` images, each with a diagonal Gaussian
  descriptor in latent space (mean of the encoder means, mean of the encoder standard deviations),
  fixed at creation unless the learner refreshes it. Novelty of a batch = mean over latent
  dimensions of KL(cluster || batch) (or the symmetric KL), aggregated over clusters by max
  (released) or min (paper's intent). Which images form a cluster is a selection rule on per-image
  reconstruction errors.
* ``mmd_permutation_z``: a model-free novelty statistic (``novelty_statistic=mmd``): the Gaussian-
  kernel MMD^2 between the incoming batch and images of M^t, as a z-score against its permutation
  null. It needs no trained encoder, so it reads the same at any budget.
* ``RelativeNoveltyTest``: an alternative to the released absolute threshold that works whatever
  the scale of the statistic (budget, BatchNorm mode): a robust z-score of log(novelty) against the
  median and MAD of the last ``window`` checks since the last expansion, firing above ``z_threshold``
  once ``warmup`` checks are in.

Memories never call the model: encoder statistics and errors are computed by the learner.

    temp = TemporaryMemory(1000, 784); temp.add(x)           # x: (B, D)
    clusters = ClusterMemory(64, 784, novelty_kl="one-sided", novelty_agg="max")
    idx = CLUSTER_SELECTIONS["low-error"]().select(errors, 64, g)   # errors: (N,) from the learner
    clusters.add(temp.data[idx], mu[idx], sigma[idx])         # mu, sigma: (N, Z) encoder statistics
    novel, value = clusters.is_novel(mu_batch, sigma_batch, threshold=5.0)
    test = RelativeNoveltyTest(window=50, warmup=10, z_threshold=4.0); z = test.score(value)
"""
from __future__ import annotations

import math

import torch

from .reservoir import reservoir_index
from .store import ImageStore


class TemporaryMemory(ImageStore):
    """M^t: append every batch; ``shrink`` cuts back to ``capacity`` at random (released rule)."""

    capacity: int  # images kept after ``shrink``
    n_seen: int  # images added since the last ``clear`` (the reservoir variant's counter)
    n_kept: int  # images stored at the last ``shrink`` / ``clear``; later rows are new

    def __init__(self, capacity: int, dim: int, device: torch.device | str | None = None):
        super().__init__(capacity, dim, device)
        self.n_seen = 0
        self.n_kept = 0

    def add(self, x: torch.Tensor) -> None:
        self.append(x)

    def over_capacity(self) -> bool:
        return len(self) > self.capacity

    def shrink(self, generator: torch.Generator | None = None) -> None:
        """Keep a uniformly random ``capacity`` of the stored images (old and new alike)."""
        self.n_seen += len(self) - self.n_kept
        if len(self) > self.capacity:
            keep = torch.randperm(len(self), generator=generator, device=self._data.device)[: self.capacity]
            self._data = self._data[keep]
        self.n_kept = len(self)

    def clear(self) -> None:
        super().clear()
        self.n_seen = self.n_kept = 0

    def state_dict(self) -> dict:
        return {**super().state_dict(), "n_seen": self.n_seen, "n_kept": self.n_kept}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.n_seen, self.n_kept = int(state["n_seen"]), int(state["n_kept"])


class ReservoirTemporaryMemory(TemporaryMemory):
    """M^t as a true reservoir (Vitter's Algorithm R) over the images added since the last ``clear``.

    At ``shrink`` the images added since the previous one are offered one at a time: each is kept
    with p = capacity / n_seen (always, while fewer than ``capacity`` are stored), in a random slot.
    """

    def shrink(self, generator: torch.Generator | None = None) -> None:
        buf = torch.zeros(self.capacity, self.dim, device=self._data.device)
        buf[: self.n_kept] = self._data[: self.n_kept]
        for row in self._data[self.n_kept:]:
            slot = reservoir_index(self.n_seen, self.capacity, generator)
            self.n_seen += 1
            if slot is not None:
                buf[slot] = row
        self._data = buf[: min(self.n_seen, self.capacity)]
        self.n_kept = len(self)


TEMPORARY_MEMORIES = {"truncate": TemporaryMemory, "reservoir": ReservoirTemporaryMemory}


# -- novelty -------------------------------------------------------------------------------------


def kl_diag_gaussians(m_a: torch.Tensor, s_a: torch.Tensor, m_b: torch.Tensor, s_b: torch.Tensor) -> torch.Tensor:
    """KL(N(m_a, s_a^2) || N(m_b, s_b^2)) per dimension (broadcasting; s are standard deviations)."""
    return torch.log(s_b / s_a) + (s_a.pow(2) + (m_a - m_b).pow(2)) / (2 * s_b.pow(2)) - 0.5


def novelty_distances(means: torch.Tensor, stds: torch.Tensor, m_new: torch.Tensor, s_new: torch.Tensor,
                      kl: str = "one-sided") -> torch.Tensor:
    """Distance of a batch descriptor ``(Z,)`` to each cluster descriptor ``(K, Z)``: ``(K,)``.

    ``one-sided`` (released, called "JS" there): mean over dims of KL(cluster || batch);
    ``symmetric``: mean over dims of 1/2 [KL(cluster || batch) + KL(batch || cluster)].
    """
    means, stds = means.double(), stds.double()
    m_new, s_new = m_new.double()[None], s_new.double()[None]  # (1, Z)
    d = kl_diag_gaussians(means, stds, m_new, s_new)  # (K, Z)
    if kl == "symmetric":
        d = 0.5 * (d + kl_diag_gaussians(m_new, s_new, means, stds))
    elif kl != "one-sided":
        raise ValueError(f"unknown novelty_kl {kl!r}; valid: one-sided, symmetric")
    return d.mean(-1)


def mmd_permutation_z(x: torch.Tensor, reference: torch.Tensor, permutations: int,
                      generator: torch.Generator | None = None) -> float:
    """How far the batch ``x: (n, D)`` is from ``reference: (m, D)`` in distribution, as a z-score.

    The statistic is the biased (V-statistic) MMD^2 with a Gaussian kernel
    ``k(a, b) = exp(-|a - b|^2 / (2 h^2))``, ``h`` the median pairwise distance of the pooled images
    (the median heuristic, per call): ``a^T K a`` with ``a = (1/n, ..., -1/m, ...)``. The same
    quantity is computed for ``permutations`` random relabellings of the pooled images (which batch
    each image belongs to); the result is ``(MMD^2 - mean) / std`` over them. Under "same
    distribution" it is about 0 (with a heavy right tail: values of 5-9 occur in a few hundred
    checks); a batch of unseen classes scores tens. Scale-free: no threshold depends on the data's
    range, the kernel width or the model.
    """
    if len(x) < 2 or len(reference) < 2:
        raise ValueError(f"need at least 2 images on each side, got {len(x)} and {len(reference)}")
    if permutations < 2:
        raise ValueError(f"need at least 2 permutations, got {permutations}")
    # fp32 kernel and products, the final sums in fp64: z agrees with an all-fp64 computation to about
    # 1e-3 and is 3.5x faster (64 + 1000 images: about 50 ms on one thread)
    pooled = torch.cat([x, reference]).float()
    n, total = len(x), len(pooled)
    sq = pooled.pow(2).sum(1)
    dist2 = (sq[:, None] + sq[None, :] - 2 * pooled @ pooled.T).clamp_min(0)
    rows, cols = torch.triu_indices(total, total, 1, device=pooled.device)
    h2 = float(dist2[rows, cols].median())  # the lower median of the pairwise squared distances
    kernel = torch.exp(-dist2 / (2 * max(h2, 1e-12)))
    a = torch.full((total,), -1.0 / (total - n), device=pooled.device)
    a[:n] = 1.0 / n
    shuffles = torch.rand(permutations, total, generator=generator, device=pooled.device).argsort(1)
    weights = torch.cat([a[None], a[shuffles]])  # (1 + permutations, total): observed, then permuted
    values = ((weights @ kernel).double() * weights.double()).sum(1)  # a^T K a for each labelling
    null = values[1:]
    return float((values[0] - null.mean()) / null.std().clamp_min(1e-12))


class ClusterMemory:
    """M^d: clusters of ``cluster_size`` images, each with a latent Gaussian descriptor (m_k, s_k)."""

    cluster_size: int  # images per cluster
    images: torch.Tensor  # (K, cluster_size, D)
    means: torch.Tensor  # (K, Z): mean over the cluster of the encoder means
    stds: torch.Tensor  # (K, Z): mean over the cluster of the encoder standard deviations

    def __init__(self, cluster_size: int, dim: int, novelty_kl: str = "one-sided", novelty_agg: str = "max",
                 max_clusters: int = 0, device: torch.device | str | None = None):
        if novelty_agg not in ("max", "min"):
            raise ValueError(f"unknown novelty_agg {novelty_agg!r}; valid: max, min")
        self.cluster_size = cluster_size
        self.novelty_kl = novelty_kl
        self.novelty_agg = novelty_agg
        self.max_clusters = max_clusters  # 0 = unbounded (released)
        self.images = torch.zeros(0, cluster_size, dim, device=device)  # on the data's device
        self.means = torch.zeros(0, 0, device=device)
        self.stds = torch.zeros(0, 0, device=device)

    @property
    def num_clusters(self) -> int:
        return self.images.shape[0]

    def __len__(self) -> int:
        """Stored images (all clusters)."""
        return self.num_clusters * self.cluster_size

    @property
    def data(self) -> torch.Tensor:
        """Every stored image, ``(K * cluster_size, D)``."""
        return self.images.reshape(-1, self.images.shape[-1])

    def full(self) -> bool:
        return self.max_clusters > 0 and self.num_clusters >= self.max_clusters

    def add(self, images: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> int:
        """New cluster from ``images: (cluster_size, D)``; its descriptor is the mean of the encoder
        statistics ``mu, sigma: (N, Z)`` (released: those of the cluster's own images, N = cluster_size;
        the learner may pass those of other images, see ``memory.cluster_descriptor``).

        Returns the new cluster count.
        """
        if images.shape[0] != self.cluster_size:
            raise ValueError(f"a cluster holds {self.cluster_size} images, got {images.shape[0]}")
        if self.num_clusters == 0:
            self.images = images[None].clone()
            self.means, self.stds = mu.mean(0)[None].clone(), sigma.mean(0)[None].clone()
        else:
            self.images = torch.cat([self.images, images[None]])
            self.means = torch.cat([self.means, mu.mean(0)[None]])
            self.stds = torch.cat([self.stds, sigma.mean(0)[None]])
        return self.num_clusters

    def set_descriptors(self, mu: torch.Tensor, sigma: torch.Tensor) -> None:
        """Refresh every descriptor from fresh statistics of ``data``: ``(K * cluster_size, Z)`` each."""
        k = self.num_clusters
        self.means = mu.reshape(k, self.cluster_size, -1).mean(1)
        self.stds = sigma.reshape(k, self.cluster_size, -1).mean(1)

    def distances(self, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Novelty of a batch (per-image statistics ``(B, Z)``) with respect to each cluster: ``(K,)``."""
        return novelty_distances(self.means, self.stds, mu.mean(0), sigma.mean(0), self.novelty_kl)

    def aggregate(self, distances: torch.Tensor) -> float:
        """The novelty over clusters: max (released) or min of ``distances: (K,)``; inf with no cluster."""
        if len(distances) == 0:
            return float("inf")
        return float(distances.max() if self.novelty_agg == "max" else distances.min())

    def is_novel(self, mu: torch.Tensor, sigma: torch.Tensor, threshold: float) -> tuple[bool, float]:
        """(aggregated distance > threshold, aggregated distance); an empty memory is always novel."""
        value = self.aggregate(self.distances(mu, sigma)) if self.num_clusters else float("inf")
        return value > threshold, value

    def state_dict(self) -> dict:
        return {"images": self.images.clone(), "means": self.means.clone(), "stds": self.stds.clone()}

    def load_state_dict(self, state: dict) -> None:
        device = self.images.device  # a checkpoint is read onto the CPU: back to where the memory lives
        self.images = state["images"].to(device, copy=True)
        self.means, self.stds = state["means"].to(device, copy=True), state["stds"].to(device, copy=True)


def _median(x: torch.Tensor) -> float:
    """The usual median of a 1-d tensor (the mean of the two middle values for an even length)."""
    v, n = x.sort().values, len(x)
    return float(v[n // 2]) if n % 2 else float(v[n // 2 - 1: n // 2 + 1].mean())


class RelativeNoveltyTest:
    """Is a novelty value unusually high for this stream? A robust z-score in log space.

    ``z = (log v - median(H)) / (1.4826 * max(MAD(H), min_mad))`` where H holds the log novelty of
    the last ``window`` checks since the last expansion (after an expansion the statistic is a
    different function: one cluster more, a cleared temporary memory). No decision (``None``)
    until ``warmup`` values are in. Scale-free: the same setting works whether the KL is 1e-4
    (batch-statistics BatchNorm) or 0.1 (running statistics), and slow encoder drift moves the
    median with it.
    """

    _TINY = 1e-30  # numerical floor before the log (a KL of exactly 0 would give -inf)

    def __init__(self, window: int, warmup: int, z_threshold: float, min_mad: float):
        if not 1 <= warmup <= window:
            raise ValueError(f"need 1 <= warmup ({warmup}) <= window ({window})")
        self.window, self.warmup, self.z_threshold, self.min_mad = window, warmup, z_threshold, min_mad
        self.history: list[float] = []  # log novelty of the checks since the last reset, the last `window`

    def score(self, value: float) -> float | None:
        """The robust z-score of ``value`` against the history; ``None`` while warming up."""
        if len(self.history) < self.warmup:
            return None
        h = torch.tensor(self.history, dtype=torch.float64)
        median = _median(h)
        mad = _median((h - median).abs())
        return (math.log(max(value, self._TINY)) - median) / (1.4826 * max(mad, self.min_mad))

    def fires(self, z: float | None) -> bool:
        return z is not None and z > self.z_threshold

    def push(self, value: float) -> None:
        """Add a checked value (one that did not fire) to the history."""
        self.history = (self.history + [math.log(max(value, self._TINY))])[-self.window:]

    def reset(self) -> None:
        self.history = []

    def state_dict(self) -> dict:
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.history = [float(v) for v in state["history"]]


# -- which temporary-memory images form a new cluster ----------------------------------------------


class LowErrorSelection:
    """Released rule: the ``n`` images with the lowest reconstruction error (ascending, stable)."""

    def select(self, errors: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.argsort(errors, stable=True)[:n]


class HighErrorSelection:
    """The ``n`` images with the highest reconstruction error (the "novel samples" reading)."""

    def select(self, errors: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.argsort(errors, descending=True, stable=True)[:n]


class RandomSelection:
    """``n`` images uniformly at random (errors ignored)."""

    def select(self, errors: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randperm(len(errors), generator=generator, device=errors.device)[:n]


CLUSTER_SELECTIONS = {"low-error": LowErrorSelection, "high-error": HighErrorSelection, "random": RandomSelection}
