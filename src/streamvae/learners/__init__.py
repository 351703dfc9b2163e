"""Learners: one file per method, each with an ``observe(x)`` holding its whole algorithm and the
dataclasses of its config sections. Built-ins are listed here; out-of-tree learners register with
``streamvae.register_learner`` (see ``streamvae.registry``)."""
from __future__ import annotations

from .base import Learner
from .demc import DEMC
from .finetune import Finetune
from .iid import IID
from .ocm import OCM, DynamicOCM
from .reservoir import Reservoir
from .reservoir_vaegan import FinetuneVAEGAN, ReservoirVAEGAN
from .vae_training import VAELearner, VAETrainingConfig
from .vaegan_training import VAEGANLearner, VAEGANTrainingConfig

LEARNERS: dict[str, type[Learner]] = {
    "finetune": Finetune,
    "reservoir": Reservoir,
    "iid": IID,
    "ocm": OCM,
    "dynamic-ocm": DynamicOCM,
    "demc": DEMC,
    "reservoir-vaegan": ReservoirVAEGAN,
    "finetune-vaegan": FinetuneVAEGAN,
}

__all__ = ["LEARNERS", "Learner", "VAELearner", "VAETrainingConfig", "VAEGANLearner", "VAEGANTrainingConfig"]
