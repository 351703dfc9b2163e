"""streamvae: task-free continual learning of generative models (OCM, Dynamic-OCM, DEMC).

    from streamvae import load_config, run
    results = run(load_config("configs/split_fashion/reservoir.yaml", ["budget=smoke"]), "runs/x")

A learner of your own: subclass ``Learner`` (or ``VAELearner``), decorate it with
``@register_learner("name")`` and pass its file to ``streamvae run ... --plugin FILE`` (README).
"""
from __future__ import annotations

from .config import LearnerConfig, MemoryConfig, RunConfig
from .learners import Learner, VAEGANLearner, VAEGANTrainingConfig, VAELearner, VAETrainingConfig
from .loop import run
from .registry import load_config, register_learner

from ._version import __version__

__all__ = ["RunConfig", "LearnerConfig", "MemoryConfig", "Learner", "VAELearner", "VAETrainingConfig",
           "VAEGANLearner", "VAEGANTrainingConfig", "load_config", "register_learner", "run", "__version__"]
