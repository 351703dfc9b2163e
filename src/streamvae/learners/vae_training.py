"""What every VAE learner shares: its training hyperparameters, Adam, and one pass over a dataset.

OCM spec section 3.2: after each arrival, ``epochs_per_arrival`` shuffled passes over the training
set (memory + incoming batch), dynamically binarised, minibatches of 64 (remainder dropped, as
released), each an Adam step on the ``elbo_samples``-sample bound.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import cast

import torch

from ..config import LearnerConfig, check_choice, check_nonnegative, check_positive, check_unit_interval
from .. import precision
from ..data.streams import binarize
from ..errors import TrainingError
from ..models.vae import VAE
from .base import Learner


@dataclass(frozen=True)
class VAETrainingConfig(LearnerConfig):
    epochs_per_arrival: int = 100  # passes over (memory + incoming batch) after each arrival
    minibatch: int = 64  # images per Adam step; the remainder of a pass is dropped
    elbo_samples: int = 50  # Monte-Carlo samples of z per image in the training objective
    objective: str = "elbo"  # elbo (mean over samples) | iwae (logmeanexp over samples)
    lr: float = 1e-4  # Adam learning rate
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    bf16_min_rows: int = 256  # precision=bf16 only for steps with at least this many decoder rows (minibatch x elbo_samples); smaller ones are faster in fp32

    def validate(self) -> None:
        check_nonnegative("learner.bf16_min_rows", self.bf16_min_rows)
        for key in ("epochs_per_arrival", "minibatch", "elbo_samples", "lr"):
            check_positive(f"learner.{key}", getattr(self, key))
        check_choice("learner.objective", self.objective, ("elbo", "iwae"))
        for key in ("beta1", "beta2"):
            check_unit_interval(f"learner.{key}", getattr(self, key))


class VAELearner(Learner):
    """A learner that trains a VAE (or the newest mixture component) with Adam."""

    config_class = VAETrainingConfig

    def __init__(self, cfg, model, generator):
        super().__init__(cfg, model, generator)
        self.optimizer = self.make_optimizer(model.parameters())

    def make_optimizer(self, params) -> torch.optim.Optimizer:
        c = self.cfg.learner
        # fused: one kernel for all parameters (same update rule; about 0.3 ms instead of 0.85 ms a step)
        return torch.optim.Adam(params, lr=c.lr, betas=(c.beta1, c.beta2), fused=True)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": self.optimizer}

    def autocast(self):
        """bf16 for steps with at least ``bf16_min_rows`` decoder rows (BENCHMARKS.md: at 64 rows the
        casts cost more than the products save), fp32 otherwise."""
        c = self.cfg.learner
        if self.precision == "bf16" and c.minibatch * c.elbo_samples < c.bf16_min_rows:
            return precision.autocast("fp32", self.device)
        return super().autocast()

    def steps_on(self, images: int) -> int:
        # epochs_per_arrival passes, each over whole minibatches (the remainder is dropped)
        return self.cfg.learner.epochs_per_arrival * (images // self.cfg.learner.minibatch)

    @classmethod
    def method_name(cls, cfg) -> str:
        """``paper_name`` with ``{bound}``: ``ELBO`` or ``IWVAE{elbo_samples}`` (OCM Table 1's naming)."""
        c = cfg.learner
        bound = f"IWVAE{c.elbo_samples}" if c.objective == "iwae" else "ELBO"
        return cls.paper_name.format(bound=bound) if cls.paper_name else cfg.learner.name

    def train_pass(self, data: torch.Tensor, model: VAE | None = None) -> float:
        """One shuffled pass over ``data`` (N, D) in minibatches; remainder dropped (as released).

        Binarises afresh on every pass (dynamic binarisation) when the stream binarises.
        Returns the mean loss (negative bound, nats per image) over the pass.
        """
        t0 = time.perf_counter()
        # model_kind vae: self.model is the VAE; a mixture's learner passes its newest component
        model = cast(VAE, model or self.model)
        c = self.cfg.learner
        x = binarize(data, self.generator) if self.cfg.stream.binarize else data
        x = x.index_select(0, torch.randperm(len(x), generator=self.generator, device=x.device))  # 2.7x faster than x[perm]
        losses = []
        for i in range(len(x) // c.minibatch):
            xb = x[i * c.minibatch:(i + 1) * c.minibatch]
            with self.autocast():  # precision=bf16: the products in bf16, the bound's sums in fp32
                loss = -model.objective(xb, c.objective, c.elbo_samples, self.generator).mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.steps += 1
            losses.append(loss.detach())
        self.train_seconds += time.perf_counter() - t0
        if not losses:
            return float("nan")
        mean = float(torch.stack(losses).mean())
        if not math.isfinite(mean):
            m = self.cfg.model
            tiny_std = getattr(m, "likelihood", "") == "gaussian" and m.gaussian_std < 1e-2  # (x - mean)^2 / 2std^2 overflows
            advice = (f"model.gaussian_std={m.gaussian_std} is too small for the Gaussian likelihood: raise it"
                      if tiny_std else f"try a lower learner.lr (now {c.lr})")
            raise TrainingError(f"non-finite loss ({mean}) at arrival {self.arrivals}, step {self.steps}; {advice}")
        return mean
