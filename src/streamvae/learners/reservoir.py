"""VAE-ELBO-Random (OCM Table 1): a reservoir memory (Vitter's Algorithm R), trained like OCM.

After each arrival the VAE makes ``epochs_per_arrival`` passes over memory + incoming batch
(shuffled, dynamically binarised, minibatches of 64, remainder dropped); then the batch is offered to
the reservoir one image at a time, so every image seen so far is kept with p = capacity / n_seen.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import MemoryConfig, check_positive
from ..memory import Memory, ReservoirMemory
from .vae_training import VAELearner


@dataclass(frozen=True)
class ReservoirMemoryConfig(MemoryConfig):
    capacity: int = 3000  # stored images

    def validate(self) -> None:
        check_positive("memory.capacity", self.capacity)

    def images_held(self) -> int:
        return self.capacity


class Reservoir(VAELearner):
    """VAE-ELBO-Random (OCM Table 1): a reservoir memory, Algorithm R."""

    memory_class = ReservoirMemoryConfig
    paper_name = "VAE-ELBO-Random"

    def __init__(self, cfg, model, generator):
        super().__init__(cfg, model, generator)
        self.memory = ReservoirMemory(cfg.memory.capacity, model.x_dim, device=self.device)

    def observe(self, x: torch.Tensor) -> dict[str, float]:
        data = torch.cat([self.memory.data, x])  # (|M| + B, D)
        losses = [self.train_pass(data) for _ in range(self.cfg.learner.epochs_per_arrival)]
        self.memory.add(x, self.generator)
        return {"loss": sum(losses) / len(losses), "memory": len(self.memory)}

    def memories(self) -> dict[str, Memory]:
        return {"memory": self.memory}
