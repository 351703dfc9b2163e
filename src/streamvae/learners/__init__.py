"""Learners: one file per method, each with an ``observe(x)`` holding its whole algorithm."""
from __future__ import annotations

from .base import Learner
from .demc import DEMC
from .finetune import Finetune
from .iid import IID
from .ocm import OCM, DynamicOCM
from .reservoir import Reservoir
from .reservoir_vaegan import FinetuneVAEGAN, ReservoirVAEGAN

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

__all__ = ["LEARNERS", "Learner"]
