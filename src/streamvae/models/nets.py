"""The MLP building blocks of the VAEs: the activation table, (Linear, activation) layers, the
released initialisation, and the first encoder/decoder layers that mixture components share.

``ACTIVATIONS`` is the one table from activation names (``model.*_activations``) to modules; the
VAE tells ``streamvae.native`` the names of the decoder it built (``VAE.native_decoder``).

    layer = mlp_layer(784, 200, "tanh")      # nn.Sequential(nn.Linear(784, 200), nn.Tanh())
    init_linear_(layer, "glorot")
"""
from __future__ import annotations

from torch import nn

from ..config import ModelConfig

# the activations of config's model.*_activations (streamvae.native maps these names to its C code)
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "softplus": nn.Softplus, "elu": nn.ELU}


def mlp_layer(n_in: int, n_out: int, activation: str) -> nn.Sequential:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
    return nn.Sequential(nn.Linear(n_in, n_out), ACTIVATIONS[activation]())


def init_linear_(module: nn.Module, scheme: str) -> None:
    """Initialise every ``nn.Linear`` inside ``module``: ``glorot`` is the released TF1 ``Dense``
    default (Glorot-uniform weights, bound sqrt(6 / (fan_in + fan_out)), zero biases); ``torch``
    keeps PyTorch's ``nn.Linear`` default (Kaiming-uniform, bounds 1.1-2.2x smaller here)."""
    if scheme == "torch":
        return
    if scheme != "glorot":
        raise ValueError(f"unknown model.init {scheme!r}; valid: glorot, torch")
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def first_layers(cfg: ModelConfig, x_dim: int) -> tuple[nn.Module, nn.Module]:
    """The first encoder and first decoder layer (shared between mixture components)."""
    enc = mlp_layer(x_dim, cfg.encoder_hidden[0], cfg.encoder_activations[0])
    dec = mlp_layer(cfg.latent, cfg.decoder_hidden[0], cfg.decoder_activations[0])
    init_linear_(enc, cfg.init)
    init_linear_(dec, cfg.init)
    return enc, dec
