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

from ..memory import ReservoirMemory
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
        self.arrivals += 1
        return {**logs, "memory": len(self.memory)}

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


class FinetuneVAEGAN(VAEGANLearner):
    """DEMC's lower bound: the VAE-GAN update on the incoming batch only."""

    def observe(self, x: torch.Tensor) -> dict[str, float]:
        logs = self.train_on(x)  # the 64 incoming images only, nothing kept afterwards
        self.arrivals += 1
        return logs

    def min_steps_per_arrival(self) -> int:
        # train_on skips a partial minibatch: the incoming batch alone must fill one
        return self.cfg.learner.updates_per_arrival if self.cfg.stream.batch_size >= self.cfg.learner.minibatch else 0
