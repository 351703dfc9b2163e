"""The offline upper bound: the same gradient steps as ``reservoir``, on the shuffled training set.

At each arrival it takes exactly as many Adam steps as the reservoir learner would (``epochs`` passes
over memory + batch, memory = min(images seen, capacity)), but its minibatches come from epochs over
the *whole* training set of the stream, reshuffled every epoch: the i.i.d. setting, no forgetting.
"""
from __future__ import annotations

import torch

from .reservoir import ReservoirMemoryConfig
from .vae_training import VAELearner


class IID(VAELearner):
    """The offline i.i.d. upper bound: the reservoir's gradient steps on the shuffled training set."""

    memory_class = ReservoirMemoryConfig  # memory.capacity: the reservoir whose steps it matches
    needs_dataset = True
    paper_name = "Offline i.i.d. (upper bound)"
    state_attributes = ("n_seen", "order", "cursor")

    def __init__(self, cfg, model, generator, dataset: torch.Tensor):
        super().__init__(cfg, model, generator)
        self.dataset = dataset  # (N, D) in [0, 1]: every image of the stream, available from the start
        self.n_seen = 0
        self.order = torch.randperm(len(dataset), generator=generator, device=self.device)
        self.cursor = 0

    def next_indices(self, n: int) -> torch.Tensor:
        """The next ``n`` indices of a sweep over the shuffled training set (reshuffled when used up)."""
        out = []
        while n > 0:
            if self.cursor == len(self.order):
                self.order, self.cursor = torch.randperm(len(self.dataset), generator=self.generator,
                                                         device=self.device), 0
            take = self.order[self.cursor:self.cursor + n]
            self.cursor += len(take)
            n -= len(take)
            out.append(take)
        return torch.cat(out)

    def observe(self, x: torch.Tensor) -> dict[str, float]:
        c = self.cfg.learner
        memory = min(self.n_seen, self.cfg.memory.capacity)
        steps = c.epochs_per_arrival * ((memory + len(x)) // c.minibatch)  # the reservoir learner's steps
        loss = self.train_pass(self.dataset[self.next_indices(steps * c.minibatch)]) if steps else float("nan")
        self.n_seen += len(x)
        return {"loss": loss}
