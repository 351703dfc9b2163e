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
        def memories(self): return {"memory": self.memory}   # declared once: sizes, images, checkpoints

The framework owns the bookkeeping: the loop counts arrivals, and the memories' sizes, images and
checkpoint state follow from ``memories()``; a learner's own state besides its memories is named in
``state_attributes`` (saved with the checkpoint, restored on resume).

What a VAE learner adds (Adam, one training pass) is in ``vae_training.py``; the VAE-GAN update
shared by DEMC and its baselines is in ``vaegan_training.py``.
"""
from __future__ import annotations

import abc
from typing import ClassVar

import torch

from .. import precision
from ..config import LearnerConfig, MemoryConfig, RunConfig
from ..memory import Memory


class Learner(abc.ABC):
    config_class: ClassVar[type] = LearnerConfig  # the dataclass of the `learner:` section
    memory_class: ClassVar[type] = MemoryConfig  # the dataclass of the `memory:` section (empty: none)
    model_kind: ClassVar[str] = "vae"  # vae (one VAE) | mixture (a growable MixtureVAE) | vaegan
    needs_dataset: ClassVar[bool] = False  # True: the loop passes dataset= (every training image; the iid bound)
    paper_name: ClassVar[str] = ""  # the method's name in its paper (results.json "method"; empty: learner.name)
    # the learner's own state besides its memories (counters, logs, tests with a state_dict), saved in
    # checkpoints; an attribute missing from an older checkpoint keeps its fresh value
    state_attributes: ClassVar[tuple[str, ...]] = ()
    state_aliases: ClassVar[dict[str, str]] = {}  # checkpoint names of older versions -> today's (memories, attributes)
    log: list[dict] | None = None  # one entry per event (selection, novelty check) -> events.jsonl; None: no events

    def __init__(self, cfg: RunConfig, model: torch.nn.Module, generator: torch.Generator):
        self.cfg = cfg
        self.model = model
        self.generator = generator  # every random draw of the learner comes from here
        self.device = generator.device  # the run's device: the model, memories and draws live here
        self.devices = [[0, self.device.type]]  # [first arrival, device type] of each stretch of the run
        self.arrivals = 0  # batches observed, the one being observed included (the loop counts them)
        self.steps = 0  # optimiser steps (updates) taken
        # of the training step, resolved once for this device (bf16 without native bf16: fp32, one warning)
        self.precision = precision.resolve(cfg.precision, self.device)
        # [first arrival, precision] of each stretch: a run resumed where its precision has no native
        # support (bf16 carried to a CPU without bf16 instructions) goes on in fp32, and results.json says so
        self.precisions = [[0, self.precision]]
        self.train_seconds = 0.0  # wall time inside optimiser updates (train_pass / train_on); the loop's time profile

    def autocast(self):
        """The context every training step runs in (``precision.autocast``: bf16 matmuls or nothing)."""
        return precision.autocast(self.precision, self.device)

    @abc.abstractmethod
    def observe(self, x: torch.Tensor) -> dict[str, float]:
        """Learn from one arrival ``x: (B, D)`` (images only); return floats for the logs."""

    def arrive(self, x: torch.Tensor) -> dict[str, float]:
        """One arrival: counted here (``arrivals``), then learnt from by ``observe`` (what the loop calls)."""
        self.arrivals += 1
        return self.observe(x)

    def memories(self) -> dict[str, Memory]:
        """Every memory of the learner, by name: sizes (``memory_sizes`` in every evaluation row),
        images (``memory.png``) and checkpoint state all follow from it. None by default."""
        return {}

    @classmethod
    def method_name(cls, cfg: RunConfig) -> str:
        """The method's name in its paper for a run of ``cfg`` (results.json ``method``; the report's)."""
        return cls.paper_name or cfg.learner.name

    # -- what the loop and the evaluator ask ---------------------------------------------------
    def memory_sizes(self) -> dict[str, int]:
        """Images held by each memory, ``{name: count}``."""
        return {name: len(m) for name, m in self.memories().items()}

    def memory_images(self) -> dict[str, torch.Tensor]:
        """What each memory holds, ``{name: (N, D) in [0, 1]}``."""
        return {name: m.data for name, m in self.memories().items()}

    def structure(self) -> dict[str, int]:
        """Counts other than memory sizes that every evaluation row records (DEMC: ``clusters``)."""
        return {}

    def components(self) -> list[torch.nn.Module]:
        """Models the evaluator scores (a single model here; mixtures return every component)."""
        return [self.model]

    def mixture_weights(self) -> torch.Tensor | None:
        """Weights of ``components()`` in the evaluator's mixture reading (``None``: uniform 1/K)."""
        return None

    # -- planning: the start banner's steps and the no-step check --------------------------------
    def steps_on(self, images: int) -> int | None:
        """Optimiser steps one arrival takes when it trains on ``images`` images (``None``: unknown)."""
        return None

    def memory_at(self, t: int) -> int:
        """About how many images the learner trains on besides the batch after ``t`` arrivals: by
        default its memories take every image until they hold ``memory.images_held()``."""
        held = self.cfg.memory.images_held()
        return 0 if held is None else min(t * self.cfg.stream.batch_size, held)

    def planned_steps(self, arrivals: int) -> int | None:
        """About how many optimiser steps (updates) a run of ``arrivals`` takes (``None``: unknown);
        the start banner turns it into an estimated duration."""
        b = self.cfg.stream.batch_size
        steps = [self.steps_on(b + self.memory_at(t)) for t in range(arrivals)]
        return None if None in steps else sum(s for s in steps if s is not None)

    def min_steps_per_arrival(self) -> int | None:
        """0 when no arrival can take a step (even full memories and a batch never fill a minibatch),
        else ``None``; the loop refuses a run whose learner would never take a step."""
        held = self.cfg.memory.images_held()
        if held is None:
            return None
        return 0 if self.steps_on(self.cfg.stream.batch_size + held) == 0 else None

    # -- checkpoints ---------------------------------------------------------------------------
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimiser of the learner, by name (saved and restored with the checkpoint)."""
        return {}

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "generator": self.generator.get_state(),
                "device": self.device.type, "devices": self.devices,
                "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
                "arrivals": self.arrivals, "steps": self.steps, "precision": self.precision,
                "precisions": self.precisions,
                "extra": self.extra_state()}

    def load_state_dict(self, state: dict) -> None:
        """Restore a checkpoint (tensors may come from the CPU: they are copied to where the learner lives).

        A run resumed on another device type continues from there: CPU and CUDA generators keep states
        of different kinds, so the generator is then seeded afresh from (seed, arrival) and the switch
        is recorded in ``devices``; on the same device type the draws continue exactly. ``precision:
        auto`` keeps the precision the run started with (another machine may decide otherwise) where the
        device has it natively, else fp32; each change is recorded in ``precisions``.
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
        # checkpoints without the history ran in one precision: the one they saved
        history = [list(p) for p in state.get("precisions", [[0, state.get("precision", self.precision)]])]
        if self.cfg.precision == "auto" and history[0][1] in ("fp32", "bf16"):
            # the precision the run started with, wherever this device has it natively (else fp32)
            self.precision = precision.resolve(history[0][1], self.device)
        if history[-1][1] != self.precision:
            history.append([self.arrivals, self.precision])
        self.precisions = history
        self.load_extra_state(state["extra"])

    def extra_state(self) -> dict:
        """The memories' states and the ``state_attributes``: tensors, numbers and strings only."""
        out = {name: m.state_dict() for name, m in self.memories().items()}
        for name in self.state_attributes:
            value = getattr(self, name)
            out[name] = value.state_dict() if hasattr(value, "state_dict") else value
        return out

    def load_extra_state(self, state: dict) -> None:
        state = {self.state_aliases.get(k, k): v for k, v in state.items()}
        for name, m in self.memories().items():
            m.load_state_dict(state[name])
        for name in self.state_attributes:
            if name not in state:  # an older checkpoint without it: the fresh value stays
                continue
            current, saved = getattr(self, name), state[name]
            if hasattr(current, "load_state_dict"):
                current.load_state_dict(saved)
            elif isinstance(saved, torch.Tensor):  # checkpoints are read onto the CPU
                setattr(self, name, saved.to(self.device))
            else:
                setattr(self, name, list(saved) if isinstance(saved, list) else saved)
