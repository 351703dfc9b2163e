"""VAE-ELBO-Random (OCM Table 1): a reservoir memory (Vitter's Algorithm R), trained like OCM.

After each arrival the VAE makes ``epochs_per_arrival`` passes over memory + incoming batch
(shuffled, dynamically binarised, minibatches of 64, remainder dropped); then the batch is offered to
the reservoir one image at a time, so every image seen so far is kept with p = capacity / n_seen.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import MemoryConfig, check_positive
from ..memory import ReservoirMemory
from .vae_training import VAELearner


@dataclass(frozen=True)
class ReservoirMemoryConfig(MemoryConfig):
    capacity: int = 3000  # stored images

    def validate(self) -> None:
        check_positive("memory.capacity", self.capacity)


class Reservoir(VAELearner):
    """VAE-ELBO-Random (OCM Table 1): a reservoir memory, Algorithm R."""

    memory_class = ReservoirMemoryConfig

    def __init__(self, cfg, model, generator):
        super().__init__(cfg, model, generator)
        self.memory = ReservoirMemory(cfg.memory.capacity, model.x_dim, device=self.device)

    def observe(self, x: torch.Tensor) -> dict[str, float]:
        data = torch.cat([self.memory.data, x])  # (|M| + B, D)
        losses = [self.train_pass(data) for _ in range(self.cfg.learner.epochs_per_arrival)]
        self.memory.add(x, self.generator)
        self.arrivals += 1
        return {"loss": sum(losses) / len(losses), "memory": len(self.memory)}

    def memory_at(self, t: int) -> int:
        return min(t * self.cfg.stream.batch_size, self.cfg.memory.capacity)

    def min_steps_per_arrival(self) -> int | None:
        # memory + batch never fill a minibatch: no step, ever (else unknown: the first arrivals may take none)
        c = self.cfg
        return 0 if c.memory.capacity + c.stream.batch_size < c.learner.minibatch else None

    def memory_sizes(self) -> dict[str, int]:
        return {"memory": len(self.memory)}

    def memory_images(self) -> dict[str, torch.Tensor]:
        return {"memory": self.memory.data}

    def extra_state(self) -> dict:
        return {"memory": self.memory.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        self.memory.load_state_dict(state["memory"])
