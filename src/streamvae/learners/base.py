"""The one base class of every learner, and the little it holds: config, model, generator, counters.

A learner sees only images: ``observe(x)`` with ``x: (B, D)`` in [0, 1], returning a dict of floats
for the progress bar and the logs. The method itself lives in ``observe`` of its own file, next to
the dataclasses of its config sections:

    @register_learner("mine")                   # out of tree: streamvae run ... --plugin mine.py
    class Mine(VAELearner):
        config_class = MyConfig                  # the `learner:` section (a LearnerConfig subclass)
        memory_class = MemoryConfig              # the `memory:` section (empty: no memory)
        model_kind = "vae"                       # vae | mixture | vaegan: what the loop builds
        def observe(self, x): ...

What a VAE learner adds (Adam, one training pass) is in ``vae_training.py``; the VAE-GAN update
shared by DEMC and its baselines is in ``vaegan_training.py``.
"""
from __future__ import annotations

import abc
from typing import ClassVar

import torch

from .. import precision
from ..config import LearnerConfig, MemoryConfig, RunConfig


class Learner(abc.ABC):
    config_class: ClassVar[type] = LearnerConfig  # the dataclass of the `learner:` section
    memory_class: ClassVar[type] = MemoryConfig  # the dataclass of the `memory:` section (empty: none)
    model_kind: ClassVar[str] = "vae"  # vae (one VAE) | mixture (a growable MixtureVAE) | vaegan
    needs_dataset: ClassVar[bool] = False  # True: the loop passes dataset= (every training image; the iid bound)

    def __init__(self, cfg: RunConfig, model: torch.nn.Module, generator: torch.Generator):
        self.cfg = cfg
        self.model = model
        self.generator = generator  # every random draw of the learner comes from here
        self.device = generator.device  # the run's device: the model, memories and draws live here
        self.devices = [[0, self.device.type]]  # [first arrival, device type] of each stretch of the run
        self.arrivals = 0  # batches observed
        self.steps = 0  # optimiser steps (updates) taken
        self.precision = "fp32"  # of the training step, as resolved for this device (set by the loop)
        self.train_seconds = 0.0  # wall time inside optimiser updates (train_pass / train_on); the loop's time profile

    def autocast(self):
        """The context every training step runs in (``precision.autocast``: bf16 matmuls or nothing)."""
        return precision.autocast(self.precision, self.device)

    @abc.abstractmethod
    def observe(self, x: torch.Tensor) -> dict[str, float]:
        """Learn from one arrival ``x: (B, D)`` (images only); return floats for the logs."""

    # -- what the loop and the evaluator ask ---------------------------------------------------
    def memory_sizes(self) -> dict[str, int]:
        """Images held by each memory, ``{name: count}`` (nested under ``memory_sizes`` in every row)."""
        return {}

    def memory_images(self) -> dict[str, torch.Tensor]:
        """What each memory holds, ``{name: (N, D) in [0, 1]}`` (for ``memory.png``); none by default."""
        return {}

    def structure(self) -> dict[str, int]:
        """Counts other than memory sizes that every evaluation row records (DEMC: ``clusters``)."""
        return {}

    def components(self) -> list[torch.nn.Module]:
        """Models the evaluator scores (a single model here; mixtures return every component)."""
        return [self.model]

    def mixture_weights(self) -> torch.Tensor | None:
        """Weights of ``components()`` in the evaluator's mixture reading (``None``: uniform 1/K)."""
        return None

    def min_steps_per_arrival(self) -> int | None:
        """Optimiser steps one arrival is sure to take with these settings (``None``: unknown).
        The loop refuses a run whose learner would never take a step."""
        return None

    def planned_steps(self, arrivals: int) -> int | None:
        """About how many optimiser steps (updates) a run of ``arrivals`` takes (``None``: unknown);
        the start banner turns it into an estimated duration."""
        return None

    # -- checkpoints ---------------------------------------------------------------------------
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimiser of the learner, by name (saved and restored with the checkpoint)."""
        return {}

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "generator": self.generator.get_state(),
                "device": self.device.type, "devices": self.devices,
                "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
                "arrivals": self.arrivals, "steps": self.steps, "extra": self.extra_state()}

    def load_state_dict(self, state: dict) -> None:
        """Restore a checkpoint (tensors may come from the CPU: they are copied to where the learner lives).

        A run resumed on another device type continues from there: CPU and CUDA generators keep states
        of different kinds, so the generator is then seeded afresh from (seed, arrival) and the switch
        is recorded in ``devices``; on the same device type the draws continue exactly.
        """
        self.model.load_state_dict(state["model"])
        saved = state.get("device", "cpu")  # checkpoints without the key were written on the CPU
        if saved == self.device.type:
            self.generator.set_state(state["generator"])
        else:
            # (the loop's evaluation generators use offsets below 3_000_000 of the same base)
            self.generator.manual_seed(self.cfg.seed * 1_000_003 + int(state["arrivals"]) + 3_000_017)
        for k, o in self.optimizers().items():
            o.load_state_dict(state["optimizers"][k])
        self.arrivals, self.steps = state["arrivals"], state["steps"]
        self.devices = [list(d) for d in state.get("devices", [[0, saved]])]
        if self.devices[-1][1] != self.device.type:
            self.devices.append([self.arrivals, self.device.type])
        self.load_extra_state(state["extra"])

    def extra_state(self) -> dict:
        """The learner's own state (memories, counters, logs): tensors, numbers and strings only."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass
