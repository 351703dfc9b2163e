"""streamvae: task-free continual learning of generative models (OCM, Dynamic-OCM, DEMC).

    from streamvae import load_config, run
    results = run(load_config("configs/split_fashion/reservoir.yaml", ["budget=smoke"]), "runs/x")
"""
from __future__ import annotations

from .config import RunConfig, load_config
from .loop import run

__all__ = ["RunConfig", "load_config", "run"]
