"""streamvae: task-free continual learning of generative models (OCM, Dynamic-OCM, DEMC).

Where to start (the README's "Python" section has a runnable example):

    import streamvae
    cfg = streamvae.load_config("split_fashion/ocm", budget="smoke")   # a shipped config by name (+ overrides)
    result = streamvae.run(cfg, "runs/x")      # train and evaluate: result.results, result.learner
    r = streamvae.open_run("runs/x")           # a run directory: config, metrics, events, model
    r.sample(16); r.score(r.test_images(100))  # generate; importance-weighted log-likelihood per image
    s = streamvae.stream("split_fashion")      # batches for a training loop of your own

``streamvae list`` (command line) names the learners, shipped configs and budgets. A learner of your
own: subclass ``Learner`` (or ``VAELearner``), decorate it with ``@register_learner("name")`` and pass
its file to ``streamvae run ... --plugin FILE`` (README, "Your own learner").
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
    from .api import OpenRun, RunResult, load_config, open_run, run, stream
    from .config import LearnerConfig, MemoryConfig, RunConfig
    from .learners import Learner, VAEGANLearner, VAEGANTrainingConfig, VAELearner, VAETrainingConfig
    from .registry import register_learner

# the public names, imported on first use (PEP 562): ``import streamvae.cli`` stays light, so the command
# line handles a Ctrl-C while torch loads (one line, status 130) instead of printing a traceback
_LAZY = {"RunConfig": "config", "LearnerConfig": "config", "MemoryConfig": "config", "Learner": "learners",
         "VAELearner": "learners", "VAETrainingConfig": "learners", "VAEGANLearner": "learners",
         "VAEGANTrainingConfig": "learners", "run": "api", "load_config": "api", "open_run": "api",
         "stream": "api", "RunResult": "api", "OpenRun": "api", "register_learner": "registry"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'streamvae' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = ["load_config", "run", "open_run", "stream", "RunResult", "OpenRun", "RunConfig", "LearnerConfig",
           "MemoryConfig", "Learner", "VAELearner", "VAETrainingConfig", "VAEGANLearner", "VAEGANTrainingConfig",
           "register_learner", "__version__"]
