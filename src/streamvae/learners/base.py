"""What every learner shares: the Adam optimiser, its seeded generator, one training pass, state.

A learner sees only images: ``observe(x)`` with ``x: (B, D)`` in [0, 1], returning a dict of floats
for the progress bar and the logs. The method itself lives in ``observe`` of its own file.
"""
from __future__ import annotations

import abc
import math

import torch

from ..config import RunConfig
from ..data.streams import binarize
from ..errors import TrainingError


class Learner(abc.ABC):
    needs_dataset = False  # True only for the offline iid bound, which reads the whole training set
    uses_mixture = False  # True: the loop builds a (growable) MixtureVAE instead of a single VAE

    def __init__(self, cfg: RunConfig, model: torch.nn.Module, generator: torch.Generator):
        self.cfg = cfg
        self.model = model
        self.generator = generator  # every random draw of the learner comes from here
        self.arrivals = 0
        self.steps = 0
        self.optimizer = self.make_optimizer(model.parameters())

    def make_optimizer(self, params) -> torch.optim.Optimizer:
        c = self.cfg.learner
        # fused: one kernel for all parameters (same update rule; about 0.3 ms instead of 0.85 ms a step)
        return torch.optim.Adam(params, lr=c.lr, betas=(c.beta1, c.beta2), fused=True)

    # -- the one mechanism every learner uses ---------------------------------------------------
    def train_pass(self, data: torch.Tensor, model: torch.nn.Module | None = None) -> float:
        """One shuffled pass over ``data`` (B, D) in minibatches; remainder dropped (as released).

        Binarises afresh on every pass (dynamic binarisation) when the stream binarises.
        Returns the mean loss (negative bound, nats per image) over the pass.
        """
        model = model or self.model
        c = self.cfg.learner
        x = binarize(data, self.generator) if self.cfg.stream.binarize else data
        x = x[torch.randperm(len(x), generator=self.generator)]
        losses = []
        n_full = len(x) // c.minibatch
        for i in range(n_full):
            xb = x[i * c.minibatch:(i + 1) * c.minibatch]
            loss = -model.objective(xb, c.objective, c.elbo_samples, self.generator).mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.steps += 1
            losses.append(loss.detach())
        if not losses:
            return float("nan")
        mean = float(torch.stack(losses).mean())
        if not math.isfinite(mean):
            raise TrainingError(f"non-finite loss ({mean}) at arrival {self.arrivals}, step {self.steps}; "
                                f"try a lower learner.lr (now {c.lr})")
        return mean

    # -- what the loop and the evaluator ask ---------------------------------------------------
    @abc.abstractmethod
    def observe(self, x: torch.Tensor) -> dict[str, float]:
        """Learn from one arrival ``x: (B, D)`` (images only); return floats for the logs."""

    def memory_sizes(self) -> dict[str, int]:
        return {}

    def memory_images(self) -> dict[str, torch.Tensor]:
        """What each memory holds, ``{name: (N, D) in [0, 1]}`` (for ``memory.png``); none by default."""
        return {}

    def components(self) -> list[torch.nn.Module]:
        """Models the evaluator scores (a single VAE here; mixtures return every component)."""
        return [self.model]

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "arrivals": self.arrivals, "steps": self.steps,
                "extra": self.extra_state()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.arrivals, self.steps = state["arrivals"], state["steps"]
        self.load_extra_state(state["extra"])

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass
