"""streamvae: task-free continual learning of generative models (OCM, Dynamic-OCM, DEMC).

    from streamvae import load_config, run
    results = run(load_config("configs/split_fashion/reservoir.yaml", ["budget=smoke"]), "runs/x")

A learner of your own: subclass ``Learner`` (or ``VAELearner``), decorate it with
``@register_learner("name")`` and pass its file to ``streamvae run ... --plugin FILE`` (README).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
    from .config import LearnerConfig, MemoryConfig, RunConfig
    from .learners import Learner, VAEGANLearner, VAEGANTrainingConfig, VAELearner, VAETrainingConfig
    from .loop import run
    from .registry import load_config, register_learner

# the public names, imported on first use (PEP 562): ``import streamvae.cli`` stays light, so the command
# line handles a Ctrl-C while torch loads (one line, status 130) instead of printing a traceback
_LAZY = {"RunConfig": "config", "LearnerConfig": "config", "MemoryConfig": "config", "Learner": "learners",
         "VAELearner": "learners", "VAETrainingConfig": "learners", "VAEGANLearner": "learners",
         "VAEGANTrainingConfig": "learners", "run": "loop", "load_config": "registry", "register_learner": "registry"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'streamvae' has no attribute {name!r}")

__all__ = ["RunConfig", "LearnerConfig", "MemoryConfig", "Learner", "VAELearner", "VAETrainingConfig",
           "VAEGANLearner", "VAEGANTrainingConfig", "load_config", "register_learner", "run", "__version__"]
