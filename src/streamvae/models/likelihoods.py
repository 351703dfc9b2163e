"""Per-pixel likelihoods p(x|z) returned by decoders: ``log_prob(x)`` is summed over pixels.

Shapes: decoder output ``(..., D)``; ``log_prob(x)`` broadcasts ``x: (B, D)`` against it and returns
``(...)`` (for example ``(k, B)`` when the decoder ran on ``k`` latent samples per image).
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F


_HEAD_BLOCK = 512  # logit rows per thread processed at once by bernoulli_head (stays in the L2 cache)
_LOG2 = math.log(2.0)


def _block_rows() -> int:
    return _HEAD_BLOCK * max(1, torch.get_num_threads())


@lru_cache(maxsize=None)
def _product_group(d: int) -> int:
    """Largest divisor of ``d`` that is at most 120 (0 when that is too small to pay off).

    A product of at most 120 factors in [1, 2) (or in [1/2, 1)) stays a normal fp32 number.
    """
    g = max(i for i in range(1, min(d, 120) + 1) if d % i == 0)
    return g if g >= 8 else 0


def _sum_log(f: torch.Tensor, g: int) -> torch.Tensor:
    """``f.log().sum(-1)`` for ``f: (n, D)`` with factors in [1/2, 1) or in [1, 2): the logs of products
    of ``g`` factors (one log per ``g`` elements)."""
    n, d = f.shape
    if g == 0:
        return f.log_().sum(-1)
    return f.view(n, d // g, g).prod(-1).log_().sum(-1)


def head_scratch(rows: int, d: int, **opts) -> torch.Tensor:
    """A scratch buffer for ``_head_nograd`` over ``rows`` rows of ``d`` logits."""
    return torch.empty(min(rows, _block_rows()), d, **opts)


def _head_nograd(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, scratch: torch.Tensor | None = None,
                 out: torch.Tensor | None = None) -> torch.Tensor:
    """``sum_d log(2 cosh(l_d / 2))``, ``l = h w^T + b``, block by block, without autograd: ``(R,)``.

    log(2 cosh(l/2)) = |l|/2 - log sigmoid(|l|): one sigmoid per logit, then the logs of products.
    ``b=None`` means ``h`` ends with a column of ones and ``w`` with the bias column. ``scratch``
    (from ``head_scratch``: its rows set the block size) and ``out`` may be passed to reuse memory.
    """
    r, d = h.shape[0], w.shape[0]
    g = _product_group(d)
    out = torch.empty(r, dtype=h.dtype, device=h.device) if out is None else out
    if scratch is None:
        scratch = head_scratch(r, d, dtype=h.dtype, device=h.device)
    blk = scratch.shape[0]
    wt = w.t()
    for i in range(0, r, blk):
        n = min(blk, r - i)
        if b is None:
            a = torch.mm(h[i:i + n], wt, out=scratch[:n])
        else:
            a = torch.addmm(b, h[i:i + n], wt, out=scratch[:n])
        a.abs_()  # |l|
        half_abs = a.sum(-1).mul_(0.5)
        torch.sub(half_abs, _sum_log(a.sigmoid_(), g), out=out[i:i + n])
    return out


class _BernoulliHead(torch.autograd.Function):
    """``sum_d log(2 cosh(l_d / 2))`` for ``l = h w^T + b`` with ``h: (R, H)``: ``(R,)``.

    Forward keeps ``T = tanh(l / 2)`` (the gradient with respect to ``l`` is ``T / 2``), so backward
    needs no elementwise pass over the ``R x D`` logits: the per-row gradient scales the narrow side.
    log(2 cosh(m)) = |m| + log 2 - log(1 + |tanh m|), m = l / 2. The bias rides in the matmul as an
    extra column of ones (no separate pass writing it into the ``R x D`` output).
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (r, k), d = h.shape, w.shape[0]
        g = _product_group(d)
        h1 = torch.empty(r, k + 1, dtype=h.dtype, device=h.device)  # [h, 1]
        h1[:, :k] = h
        h1[:, k] = 1.0
        w1 = torch.cat([w, b.unsqueeze(1)], 1).mul_(0.5).t()  # (k + 1, D): [w, b]^T / 2
        t = torch.empty(r, d, dtype=h.dtype, device=h.device)  # tanh(l / 2), saved for backward
        out = torch.empty(r, dtype=h.dtype, device=h.device)
        buf = head_scratch(r, d, dtype=h.dtype, device=h.device)
        blk = buf.shape[0]
        for i in range(0, r, blk):
            n = min(blk, r - i)
            m = torch.mm(h1[i:i + n], w1, out=t[i:i + n])  # l / 2
            a = torch.abs(m, out=buf[:n])
            abs_sum = a.sum(-1)
            torch.abs(m.tanh_(), out=a).add_(1.0)  # 1 + |tanh(l / 2)|, in [1, 2)
            torch.sub(abs_sum.add_(d * _LOG2), _sum_log(a, g), out=out[i:i + n])
        ctx.save_for_backward(h1, w, t)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        h1, w, t = ctx.saved_tensors
        k = w.shape[1]
        g2 = (grad * 0.5).unsqueeze(-1)  # d out / d l = tanh(l / 2) / 2, scaled per row
        gh = gw = gb = None
        if ctx.needs_input_grad[0]:
            gh = torch.mm(t, w).mul_(g2)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            gwb = torch.mm((h1 * g2).t(), t)  # (k + 1, D): [grad w, grad b]^T in one product
            gw, gb = gwb[:k].t(), gwb[k]
        return gh, gw, gb


def bernoulli_loglik(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``sum_d x_d l_d - softplus(l_d)`` with logits ``l = h w^T + b``, ``h: (..., B, H)``, ``x: (B, D)``.

    Returns ``(..., B)``: the Bernoulli log-likelihood of every decoder row. Without autograd, for fp32
    CPU tensors, the native kernel (``streamvae.kernels``) does it in one pass over the logits; with
    autograd (or without the kernels) the torch path runs: ``h . (w^T (x - 1/2)) + (x - 1/2) . b -
    bernoulli_head(h, w, b)``. (Training on the kernels goes through ``models.fused``, which takes
    the whole decoder.) Both equal ``-F.binary_cross_entropy_with_logits(l, x).sum(-1)`` up to fp32
    rounding.
    """
    from .. import kernels
    lib = None
    if (not torch.is_grad_enabled() and x.dim() == 2 and h.dim() >= 2 and h.shape[-2] == x.shape[0]
            and h.dtype == x.dtype == torch.float32 and h.device.type == "cpu"):
        lib = kernels.native()
    if lib is not None:
        logits = torch.mm(h.reshape(-1, h.shape[-1]), w.t())
        return kernels.bernoulli_loglik(lib, logits, x.contiguous(), bias=b).reshape(h.shape[:-1])
    xc = x - 0.5
    return (h * (xc @ w)).sum(-1) + xc @ b - bernoulli_head(h, w, b)


def bernoulli_head(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``sum_d [softplus(l_d) - l_d / 2] = sum_d log(2 cosh(l_d / 2))`` with ``l = h w^T + b``.

    ``h: (..., H)`` -> ``(...)``. The Bernoulli log-likelihood of the logits ``l`` is then
    ``sum_d (x_d - 1/2) l_d - bernoulli_head(h, w, b)``, and the first sum is ``h . (w^T (x - 1/2))
    + (x - 1/2) . b``: the ``(rows x D)`` logits are touched by one matmul and a few in-cache passes.
    Same value as ``(F.softplus(l) - l / 2).sum(-1)`` up to fp32 rounding.
    """
    lead = h.shape[:-1]
    h2 = h.reshape(-1, h.shape[-1])
    if torch.is_grad_enabled() and (h.requires_grad or w.requires_grad or b.requires_grad):
        out = _BernoulliHead.apply(h2, w, b)
    else:
        out = _head_nograd(h2, w, b)
    return out.reshape(lead)


class BernoulliImage:
    """Independent Bernoulli pixels parameterised by logits (Burda et al., OCM)."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = x.expand_as(self.logits)
        # -BCE is x*l - softplus(l): one fused kernel, valid for grey values too
        return -F.binary_cross_entropy_with_logits(self.logits, x, reduction="none").sum(-1)

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
