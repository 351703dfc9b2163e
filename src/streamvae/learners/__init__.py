"""Learners: one file per method, each with an ``observe(x)`` holding its whole algorithm."""
from __future__ import annotations

from .base import Learner
from .finetune import Finetune
from .iid import IID
from .reservoir import Reservoir

LEARNERS: dict[str, type[Learner]] = {
    "finetune": Finetune,
    "reservoir": Reservoir,
    "iid": IID,
}

__all__ = ["LEARNERS", "Learner"]
