"""Per-image bounds on log p(x) of a VAE, shared by training-time statistics and the evaluator.

The importance-weighted bound ``ll_iw{k}`` (Burda et al. 2016; evaluation spec section 3):

    log p(x) ~ logmeanexp_{i=1..k} [log p(x|z_i) + log p(z_i) - log q(z_i|x)],  z_i ~ q(z|x)

in nats per image, summed over pixels, chunked over images and over k so that at most
``chunk_rows`` decoder rows (k x images) exist at once: memory stays bounded for any k. Dynamic-OCM's
expansion statistic and the evaluator both use it.

    ll = iw_log_likelihood(vae, x_test, k=1000, generator=g)   # (N,)
"""
from __future__ import annotations

import math
from typing import Callable

import torch


@torch.no_grad()
def iw_log_likelihood(model, x: torch.Tensor, k: int = 1000, generator: torch.Generator | None = None,
                      chunk_rows: int = 32768, between_chunks: Callable[[], object] | None = None) -> torch.Tensor:
    """Per-image k-sample importance-weighted bound, ``x: (N, D)`` -> ``(N,)``.

    ``between_chunks``: called before every chunk of images (the run's thread follower, say); it
    must not draw from ``generator``.
    """
    n = x.shape[0]
    k_chunk = min(k, chunk_rows)
    images_per_chunk = max(1, chunk_rows // k_chunk)
    out = torch.empty(n, dtype=torch.float64, device=x.device)
    for i in range(0, n, images_per_chunk):
        if between_chunks is not None:
            between_chunks()
        xb = x[i:i + images_per_chunk]
        q = model.encode(xb)  # encoder once per image, reused for every chunk of k
        acc = None
        for j in range(0, k, k_chunk):
            lw = model.log_weights(xb, min(k_chunk, k - j), generator, q=q)  # (kk, b)
            m = torch.logsumexp(lw.double(), 0)
            acc = m if acc is None else torch.logaddexp(acc, m)
        assert acc is not None  # k >= 1: at least one chunk
        out[i:i + xb.shape[0]] = acc - math.log(k)
    return out


@torch.no_grad()
def elbo_per_image(model, x: torch.Tensor, samples: int = 1, generator: torch.Generator | None = None,
                   batch: int = 1000) -> torch.Tensor:
    """Monte-Carlo ELBO per image, ``(N,)`` (for comparison with the IW bound)."""
    return torch.cat([model.elbo(x[i:i + batch], samples, generator).double()
                      for i in range(0, x.shape[0], batch)])
