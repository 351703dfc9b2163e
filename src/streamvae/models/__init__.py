"""Models: the MLP VAE (OCM) and, later, mixtures and VAE-GANs."""
from __future__ import annotations

from ..config import ModelConfig
from .vae import VAE

MODELS = {"mlp-vae": VAE}


def build_model(cfg: ModelConfig, x_dim: int) -> VAE:
    return MODELS[cfg.name](cfg, x_dim)


__all__ = ["VAE", "MODELS", "build_model"]
