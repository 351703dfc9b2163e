"""Fine-tuning: trains on the incoming batch only (the lower bound: no memory at all)."""
from __future__ import annotations

import torch

from .vae_training import VAELearner


class Finetune(VAELearner):
    """Fine-tuning: the incoming batch only, no memory (the lower bound)."""

    paper_name = "Fine-tuning (lower bound)"

    def observe(self, x: torch.Tensor) -> dict[str, float]:
        # epochs_per_arrival passes over the 64 incoming images, nothing kept afterwards
        losses = [self.train_pass(x) for _ in range(self.cfg.learner.epochs_per_arrival)]
        return {"loss": sum(losses) / len(losses)}
