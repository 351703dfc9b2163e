"""Models: the MLP VAE (OCM) and the growing mixture of VAEs (Dynamic-OCM)."""
from __future__ import annotations

from ..config import ModelConfig
from .mixture import MixtureVAE
from .vae import VAE

MODELS = {"mlp-vae": VAE}


def build_model(cfg: ModelConfig, x_dim: int, mixture: bool = False, seed: int = 0):
    """A single VAE, or a one-component :class:`MixtureVAE` for learners that may grow it."""
    if mixture:
        return MixtureVAE(cfg, x_dim, seed=seed)
    return MODELS[cfg.name](cfg, x_dim)


__all__ = ["VAE", "MixtureVAE", "MODELS", "build_model"]
