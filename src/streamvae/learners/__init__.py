"""Learners: one file per method, each with an ``observe(x)`` holding its whole algorithm and the
dataclasses of its config sections. Built-ins are listed here; out-of-tree learners register with
``streamvae.register_learner`` (see ``streamvae.registry``)."""
from __future__ import annotations

from .base import Learner
from .cndpm import CNDPM
from .demc import DEMC
from .finetune import Finetune
from .iid import IID
from .limix import LIMix
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
    "cndpm": CNDPM,
    "limix": LIMix,
}

__all__ = ["LEARNERS", "Learner", "VAELearner", "VAETrainingConfig", "VAEGANLearner", "VAEGANTrainingConfig"]
