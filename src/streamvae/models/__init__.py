"""Models: the MLP VAE (OCM), the growing mixture of VAEs (Dynamic-OCM), LIMix's mixture with a
student, CN-DPM's experts and DEMC's VAE-GAN."""
from __future__ import annotations

from typing import cast

from ..config import CNDPMModelConfig, ModelConfig, VAEGANConfig
from .cndpm import CNDPMExpert, CNDPMExperts
from .limix import LIMixVAE
from .mixture import MixtureVAE
from .vae import VAE
from .vaegan import VAEGAN

MODELS = {"mlp-vae": VAE, "vaegan": VAEGAN}


def build_model(cfg: ModelConfig | VAEGANConfig | CNDPMModelConfig, x_dim: int, mixture: bool = False,
                seed: int = 0, shape: tuple[int, ...] | None = None, native: bool = False, kind: str | None = None):
    """The model of a learner's ``model_kind`` (``kind``): a single VAE (vae), a one-component
    :class:`MixtureVAE` that may grow (mixture, or ``mixture=True``), LIMix's mixture with a student
    (limix), CN-DPM's dummy and experts (cndpm), DEMC's VAE-GAN (vaegan).

    ``shape`` = (C, H, W) of the stream's images (the VAE-GAN's convolutions need it; without it a
    square shape is guessed from ``x_dim``: 784 -> (1, 28, 28), 3072 -> (3, 32, 32)). ``native``:
    the MLP VAEs (and CN-DPM's experts, when evaluated) use ``streamvae.native`` where it supports the case (the run's ``kernels``).
    """
    if kind == "cndpm":
        return CNDPMExperts(cast(CNDPMModelConfig, cfg), x_dim, seed=seed, native=native)
    if kind == "limix":
        return LIMixVAE(cast(ModelConfig, cfg), x_dim, seed=seed, native=native)
    mixture = mixture or kind == "mixture"
    if cfg.name == "vaegan":
        return VAEGAN(cast(VAEGANConfig, cfg), tuple(shape) if shape is not None else _guess_shape(x_dim))
    cfg = cast(ModelConfig, cfg)  # the MLP VAEs' section (config.validate pairs the name with its dataclass)
    if mixture:
        return MixtureVAE(cfg, x_dim, seed=seed, native=native)
    return MODELS[cfg.name](cfg, x_dim, native=native)


def _guess_shape(x_dim: int) -> tuple[int, int, int]:
    for c in (1, 3):
        side = round((x_dim / c) ** 0.5)
        if c * side * side == x_dim:
            return (c, side, side)
    raise ValueError(f"cannot guess an image shape for {x_dim} pixels; pass shape=(C, H, W)")


__all__ = ["VAE", "MixtureVAE", "LIMixVAE", "CNDPMExpert", "CNDPMExperts", "VAEGAN", "MODELS", "build_model"]
