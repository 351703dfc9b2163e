"""VAE-GAN baselines for DEMC: the same networks, updates and budget, with simpler memories.

* ``reservoir-vaegan``: after each arrival ``updates_per_arrival`` updates on augmented batches
  drawn from (reservoir memory + incoming batch); then the batch is offered to the reservoir
  (Vitter's Algorithm R, ``memory.capacity`` images), so every image seen so far is kept with
  p = capacity / n_seen. Set ``memory.capacity`` to DEMC's final memory size for a fair comparison.
* ``finetune-vaegan``: the same updates on the incoming batch only (no memory: the lower bound).

The update itself (critic, generator + encoder, encoder alone) is DEMC's: ``learners/vaegan_training.py``.
"""
from __future__ import annotations

import torch

from ..memory import Memory, ReservoirMemory
from .reservoir import ReservoirMemoryConfig
from .vaegan_training import VAEGANLearner


class ReservoirVAEGAN(VAEGANLearner):
    """DEMC's baseline: the VAE-GAN update on a reservoir memory."""

    memory_class = ReservoirMemoryConfig

    def __init__(self, cfg, model, generator):
        super().__init__(cfg, model, generator)
        self.memory = ReservoirMemory(cfg.memory.capacity, model.x_dim, device=self.device)

    def observe(self, x: torch.Tensor) -> dict[str, float]:
        logs = self.train_on(torch.cat([self.memory.data, x]))  # (|M| + B, D)
        self.memory.add(x, self.generator)
        return {**logs, "memory": len(self.memory)}

    def memories(self) -> dict[str, Memory]:
        return {"memory": self.memory}


class FinetuneVAEGAN(VAEGANLearner):
    """DEMC's lower bound: the VAE-GAN update on the incoming batch only."""

    def observe(self, x: torch.Tensor) -> dict[str, float]:
        return self.train_on(x)  # the 64 incoming images only, nothing kept afterwards
