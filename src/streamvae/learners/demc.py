"""DEMC: Dynamic Expansionable Memory Cluster (Ye & Bors, AAAI 2024; DEMC spec sections 2-3).

A single VAE-GAN (encoder E, generator/decoder G, WGAN critic D) trained from a temporary memory
M^t and a growing set of memory clusters M^d. Per arrival (``DEMC.observe``):
  1. the batch x_t enters M^t;
  2. when M^t holds more than ``temp_capacity`` images, the novelty check runs: x_t's latent
     descriptor (mean of the encoder means and standard deviations; BatchNorm on the batch's own
     statistics as released, or on running statistics) is compared with every cluster's by the
     mean-per-dimension KL (or, ``novelty_statistic=recon``, x_t's mean reconstruction error over
     each cluster's), aggregated over clusters (max: released, min: paper); or, model-free
     (``novelty_statistic=mmd``), x_t against M^t as it was before x_t (a random
     ``novelty_mmd_reference`` of it) by a pixel-space MMD^2, as a z-score against its permutation
     null (``mmd_permutation_z``). With no cluster
     yet, or when the test fires (absolute, released: novelty > ``novelty_threshold``; relative:
     a robust z-score of log novelty against the recent checks exceeds ``novelty_z``), a new
     cluster is made of the ``cluster_size`` M^t images of lowest reconstruction error (one
     stochastic latent draw), M^t is emptied, and training is skipped at this arrival (released
     ``continue``). Every check is a line of events.jsonl (novelty, z, expanded, clusters);
  3. otherwise ``updates_per_arrival`` updates (``VAEGANLearner.train_on`` in vaegan_training.py)
     on augmented batches of 64 drawn uniformly from M^t and all clusters; each update
     (``VAEGANLearner.update``) is
       step 1: critic on L_d = D(G(z)) - D(x) + 10 GP (RMSProp), then G and E together on
               L_g = -D(G(z)) + L_vae (RMSProp), z ~ U(-1, 1) (or N(0, I));
       step 2: E alone on L_inf = L_vae (Adam), G and D frozen;
     with L_vae = ||x - G(mu + sigma eps)||^2 (summed over pixels) + 0.1 KL;
  4. M^t is cut back to ``temp_capacity`` at random (or by reservoir sampling).

Defaults reproduce the released behaviour where it changes what is learned: batch-statistics
descriptors, the height-axis gradient penalty (``gp_legacy``), RMSProp starting at 1. Plain bugs
are fixed: eval-mode BatchNorm for selection scores and evaluation, step 2 after step 1
(``step_order=simultaneous`` restores the single snapshot), the first batch stored once
(``duplicate_first_batch``). docs/demc.md lists every option and its measured effect.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import MemoryConfig, check_choice, check_nonnegative, check_positive
from ..errors import ConfigError
from ..memory import CLUSTER_SELECTIONS, TEMPORARY_MEMORIES, ClusterMemory, Memory
from .novelty import NOVELTY_STATISTICS, RelativeNoveltyTest
from .vaegan_training import VAEGANLearner


@dataclass(frozen=True)
class DEMCMemoryConfig(MemoryConfig):
    temp_capacity: int = 1000  # images kept in the temporary memory after training (1064 while training)
    temp_policy: str = "truncate"  # truncate (released: append, then keep a random capacity) | reservoir
    duplicate_first_batch: bool = False  # released quirk: the first batch enters the temporary memory twice
    cluster_size: int = 64  # images per memory cluster
    cluster_select: str = "low-error"  # temporary images forming a cluster: low-error (released) | high-error | random
    novelty_test: str = "absolute"  # absolute (released: novelty > lambda) | relative (robust z-score, any scale)
    novelty_threshold: float = 5.0  # absolute test's lambda: expand when the novelty exceeds it (nats: KL per dim)
    novelty_window: int = 50  # relative test: checks (since the last expansion) whose median and MAD are the reference
    novelty_warmup: int = 10  # relative test: checks needed after an expansion before it can fire
    novelty_z: float = 4.0  # relative test: expand when (log novelty - median) / (1.4826 MAD) exceeds it
    novelty_min_mad: float = 0.05  # relative test: floor on the MAD of log novelty (log units; a flat history)
    novelty_agg: str = "max"  # over clusters: max (released: far from at least one) | min (paper: far from all)
    novelty_kl: str = "one-sided"  # one-sided KL(cluster || batch) (released "JS") | symmetric (mean of both KLs)
    refresh_stats: bool = False  # re-encode every cluster's images at each novelty check (released: never)
    novelty_bn: str = "batch"  # BatchNorm for descriptors: batch (released: the batch's own stats) | eval (running)
    cluster_descriptor: str = "cluster"  # descriptor from: cluster (released: its own images) | random | temporary-memory
    novelty_statistic: str = "kl"  # kl (released: latent KL) | recon (batch / cluster recon error) | mmd (pixels vs M^t)
    novelty_mmd_reference: int = 1000  # mmd: M^t images (at random, the batch excluded) the batch is compared with
    novelty_mmd_permutations: int = 100  # mmd: relabellings that give the statistic's null mean and spread
    max_clusters: int = 0  # 0 = unbounded (released); else no expansion once this many clusters exist

    def validate(self) -> None:
        check_positive("memory.temp_capacity", self.temp_capacity)
        check_positive("memory.cluster_size", self.cluster_size)
        check_nonnegative("memory.novelty_threshold", self.novelty_threshold)
        check_nonnegative("memory.max_clusters", self.max_clusters)
        check_positive("memory.novelty_window", self.novelty_window)
        check_positive("memory.novelty_warmup", self.novelty_warmup)
        check_nonnegative("memory.novelty_z", self.novelty_z)
        check_positive("memory.novelty_min_mad", self.novelty_min_mad)
        check_choice("memory.novelty_test", self.novelty_test, ("absolute", "relative"))
        check_choice("memory.cluster_descriptor", self.cluster_descriptor, ("cluster", "random", "temporary-memory"))
        check_choice("memory.temp_policy", self.temp_policy, tuple(TEMPORARY_MEMORIES))
        check_choice("memory.cluster_select", self.cluster_select, tuple(CLUSTER_SELECTIONS))
        check_choice("memory.novelty_agg", self.novelty_agg, ("max", "min"))
        check_choice("memory.novelty_kl", self.novelty_kl, ("one-sided", "symmetric"))
        check_choice("memory.novelty_bn", self.novelty_bn, ("batch", "eval"))
        check_choice("memory.novelty_statistic", self.novelty_statistic, tuple(NOVELTY_STATISTICS))
        check_positive("memory.novelty_mmd_reference", self.novelty_mmd_reference)
        if self.novelty_mmd_permutations < 2:
            raise ConfigError(f"memory.novelty_mmd_permutations must be at least 2, got {self.novelty_mmd_permutations}")
        if self.novelty_statistic == "mmd" and self.novelty_test != "absolute":
            raise ConfigError("memory.novelty_statistic=mmd is already a z-score against its permutation null: "
                              "use memory.novelty_test=absolute with memory.novelty_threshold (e.g. 8)")
        if self.cluster_size > self.temp_capacity:
            raise ConfigError("memory.cluster_size must not exceed memory.temp_capacity (clusters come from it)")
        if self.novelty_warmup > self.novelty_window:
            raise ConfigError("memory.novelty_warmup must not exceed memory.novelty_window")
        if self.refresh_stats and self.novelty_statistic != "kl":
            raise ConfigError("memory.refresh_stats re-encodes the clusters' latent descriptors: it needs "
                              "memory.novelty_statistic=kl")
        if self.refresh_stats and self.cluster_descriptor != "cluster":
            raise ConfigError("memory.refresh_stats re-encodes each cluster's own images: it needs "
                              "memory.cluster_descriptor=cluster")


class DEMC(VAEGANLearner):
    """DEMC (Ye & Bors, AAAI 2024): temporary memory + expanding memory clusters, a VAE-GAN."""

    memory_class = DEMCMemoryConfig
    paper_name = "DEMC"
    state_attributes = ("log", "relative")
    state_aliases = {"temp": "temporary", "clusters": "cluster_images"}  # checkpoints before the rename

    def __init__(self, cfg, model, generator):
        super().__init__(cfg, model, generator)
        m = cfg.memory
        self.temp = TEMPORARY_MEMORIES[m.temp_policy](m.temp_capacity, model.x_dim, device=self.device)
        self.clusters = ClusterMemory(m.cluster_size, model.x_dim, m.novelty_kl, m.novelty_agg, m.max_clusters,
                                      device=self.device)
        self.selection = CLUSTER_SELECTIONS[m.cluster_select]()
        self.novelty = NOVELTY_STATISTICS[m.novelty_statistic]()
        # the relative test's history is kept whichever test decides, so every check logs its z-score
        self.relative = RelativeNoveltyTest(m.novelty_window, m.novelty_warmup, m.novelty_z, m.novelty_min_mad)
        self.log: list[dict] = []  # one entry per novelty check (written to events.jsonl)

    def observe(self, x: torch.Tensor) -> dict[str, float]:
        # 1. the temporary memory takes the batch (released quirk, off by default: the first one twice)
        self.temp.add(x)
        if self.arrivals == 1 and self.cfg.memory.duplicate_first_batch:
            self.temp.add(x)
        # 2. novelty check, only when the temporary memory overflows: a new cluster, or not
        expanded = self.novelty_check(x) if self.temp.over_capacity() and not self.clusters.full() else False
        logs: dict[str, float] = {}
        # 3. train on M^t and every cluster (skipped at an expansion, as released)
        if not expanded:
            logs = self.train_on(torch.cat([self.temp.data, self.clusters.data]))
        # 4. cut the temporary memory back to its capacity
        self.temp.shrink(self.generator)
        return {**logs, "temp": len(self.temp), "clusters": self.clusters.num_clusters}

    def novelty_check(self, x: torch.Tensor) -> bool:
        """Step 2: is the batch ``x`` novel? With no cluster yet it always is. A new cluster is made
        when it is; the check is a line of events.jsonl. Returns whether a cluster was made."""
        m = self.cfg.memory
        first = not self.clusters.num_clusters
        d = torch.zeros(0, device=x.device) if first else self.novelty.distance(self, x)  # (K,) or (1,)
        novelty = self.clusters.aggregate(d)  # inf with no cluster yet: the first one is always made
        # None while the relative test warms up; mmd is a z-score of its own (absolute test only)
        z = self.relative.score(novelty) if len(d) and self.novelty.relative else None
        if first:
            expanded = True
        elif m.novelty_test == "relative":
            expanded = self.relative.fires(z)
        else:
            expanded = novelty > m.novelty_threshold
        event = {"arrival": self.arrivals, "novelty": novelty if len(d) else None,
                 "novelty_min": float(d.min()) if len(d) else None,
                 "novelty_max": float(d.max()) if len(d) else None, "z": z, "expanded": expanded}
        if expanded:
            self.make_cluster()
            self.relative.reset()  # one cluster more: a new statistic, a new reference
        elif self.novelty.relative:
            self.relative.push(novelty)
        self.log.append({**event, "clusters": self.clusters.num_clusters})
        return expanded

    def make_cluster(self) -> None:
        """A new cluster from M^t (by reconstruction error, as selected), then M^t is emptied."""
        data = self.temp.data
        errors = self.model.recon_error(data, self.generator)  # (N,): one stochastic latent draw each
        m = self.cfg.memory
        idx = self.selection.select(errors, m.cluster_size, self.generator)
        if m.cluster_descriptor == "cluster":  # released: the cluster's own (by default lowest-error) images
            described = data[idx]
        elif m.cluster_descriptor == "random":  # as many random M^t images: like the incoming batch's
            described = data[torch.randperm(len(data), generator=self.generator, device=data.device)[: m.cluster_size]]
        else:  # temporary-memory: all of M^t
            described = data
        mu, sigma = self.latent_stats(described)
        self.clusters.add(data[idx], mu, sigma)
        self.temp.clear()

    def latent_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder means and std devs of a batch or cluster, ``(B, Z)`` each, for the descriptors:
        eval-mode BatchNorm, or (``novelty_bn=batch``, released) the batch's own statistics."""
        return self.model.latent_stats(x, batch_statistics=self.cfg.memory.novelty_bn == "batch")

    # -- what the loop and the evaluator ask ---------------------------------------------------
    def memories(self) -> dict[str, Memory]:
        return {"temporary": self.temp, "cluster_images": self.clusters}

    def structure(self) -> dict[str, int]:
        return {"clusters": self.clusters.num_clusters}
