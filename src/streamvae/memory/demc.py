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

Memories never call the model: encoder statistics and errors are computed by the learner, and the
novelty statistics and tests that decide on expansion are the learner's (``learners/novelty.py``).

    temp = TemporaryMemory(1000, 784); temp.add(x)           # x: (B, D)
    clusters = ClusterMemory(64, 784, novelty_kl="one-sided", novelty_agg="max")
    idx = CLUSTER_SELECTIONS["low-error"]().select(errors, 64, g)   # errors: (N,) from the learner
    clusters.add(temp.data[idx], mu[idx], sigma[idx])         # mu, sigma: (N, Z) encoder statistics
    value = clusters.aggregate(clusters.distances(mu_batch, sigma_batch))   # inf with no cluster yet
"""
from __future__ import annotations

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

    def state_dict(self) -> dict:
        return {"images": self.images.clone(), "means": self.means.clone(), "stds": self.stds.clone()}

    def load_state_dict(self, state: dict) -> None:
        device = self.images.device  # a checkpoint is read onto the CPU: back to where the memory lives
        self.images = state["images"].to(device, copy=True)
        self.means, self.stds = state["means"].to(device, copy=True), state["stds"].to(device, copy=True)


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
