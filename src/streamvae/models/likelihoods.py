"""Per-pixel likelihoods p(x|z) returned by decoders: ``log_prob(x)`` is summed over pixels.

Shapes: decoder output ``(..., D)``; ``log_prob(x)`` broadcasts ``x: (B, D)`` against it and returns
``(...)`` (for example ``(k, B)`` when the decoder ran on ``k`` latent samples per image).
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F


@lru_cache(maxsize=None)
def _product_group(d: int) -> int:
    """Largest divisor of ``d`` that is at most 120 (0 when that is too small to pay off).

    A product of at most 120 factors in [1/2, 1) stays a normal fp32 number (>= 2^-120).
    """
    g = max(i for i in range(1, min(d, 120) + 1) if d % i == 0)
    return g if g >= 8 else 0


class _SoftplusSum(torch.autograd.Function):
    """``softplus(l).sum(-1)``, computed with one transcendental per element instead of two.

    softplus(l) = relu(l) - log sigmoid(|l|), and the log of a sum is taken on products of groups of
    ``g`` factors (each factor in [1/2, 1)): sum relu(l) = (sum l + sum |l|) / 2. The gradient is
    sigmoid(l), recomputed in backward from the saved logits.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(logits)
        d = logits.shape[-1]
        g = _product_group(d)
        if g == 0:
            return F.softplus(logits).sum(-1)
        a = logits.abs()
        relu_sum = (logits.sum(-1) + a.sum(-1)).mul_(0.5)
        a.sigmoid_()
        log_sig = a.reshape(a.shape[:-1] + (d // g, g)).prod(-1).log_().sum(-1)
        return relu_sum.sub_(log_sig)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (logits,) = ctx.saved_tensors
        return torch.sigmoid(logits).mul_(grad.unsqueeze(-1))


def softplus_sum(logits: torch.Tensor) -> torch.Tensor:
    """``F.softplus(logits).sum(-1)`` (same value up to fp32 rounding, about 3x less elementwise work)."""
    return _SoftplusSum.apply(logits)


class BernoulliImage:
    """Independent Bernoulli pixels parameterised by logits (Burda et al., OCM)."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        # -BCE summed over pixels is sum(x*l) - sum(softplus(l)), valid for grey values too
        return (self.logits * x).sum(-1) - softplus_sum(self.logits)

    @property
    def mean(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.bernoulli(self.mean, generator=generator)


class GaussianImage:
    """Independent Gaussian pixels with mean ``sigmoid(output)`` and a fixed std."""

    def __init__(self, output: torch.Tensor, std: float):
        self.loc = torch.sigmoid(output)
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
