"""Per-pixel likelihoods p(x|z) returned by decoders: ``log_prob(x)`` is summed over pixels.

Shapes: decoder output ``(..., D)``; ``log_prob(x)`` broadcasts ``x: (B, D)`` against it and returns
``(...)`` (for example ``(k, B)`` when the decoder ran on ``k`` latent samples per image).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class BernoulliImage:
    """Independent Bernoulli pixels parameterised by logits (Burda et al., OCM)."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits.float()  # bf16 training (autocast) computes the logits in bf16; the sums are fp32

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = x.expand_as(self.logits)
        # x l - softplus(l) = -BCE-with-logits (computed stably for any l), valid for grey values too;
        # the one Bernoulli log-likelihood on the torch side (streamvae.native has the C one)
        return -F.binary_cross_entropy_with_logits(self.logits, x, reduction="none").sum(-1)

    @property
    def mean(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.bernoulli(self.mean, generator=generator)


class GaussianImage:
    """Independent Gaussian pixels with mean ``sigmoid(output)`` and a fixed std."""

    def __init__(self, output: torch.Tensor, std: float):
        self.loc = torch.sigmoid(output.float())  # fp32 whatever the products ran in
        self.std = std

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        d = (x - self.loc) / self.std
        return (-0.5 * d * d - math.log(self.std) - 0.5 * math.log(2 * math.pi)).sum(-1)

    @property
    def mean(self) -> torch.Tensor:
        return self.loc

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        eps = torch.randn(self.loc.shape, generator=generator, device=self.loc.device)
        return self.loc + self.std * eps
