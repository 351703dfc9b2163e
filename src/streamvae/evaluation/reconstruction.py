"""Reconstruction error: per-image sum of squared errors (pixels in [0, 1]) and per-pixel MSE.

The reconstruction is the decoder mean at the encoder mean; the target is the image fed to the
encoder (for Bernoulli models, the test image binarised once with the fixed seed).
"""
from __future__ import annotations

import torch


@torch.no_grad()
def recon_sse(model, x: torch.Tensor, batch: int = 2000) -> torch.Tensor:
    """Per-image sum of squared errors, ``x: (N, D)`` -> ``(N,)``."""
    out = []
    for i in range(0, x.shape[0], batch):
        xb = x[i:i + batch]
        out.append(((model.reconstruct(xb) - xb) ** 2).sum(-1).double())
    return torch.cat(out)
