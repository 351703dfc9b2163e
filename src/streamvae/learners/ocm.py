"""OCM and Dynamic-OCM: Online Cooperative Memorization (Ye & Bors, ECCV 2022; OCM spec sections 2-4).

Per arrival (``observe``):
  1. the batch enters the short-term memory (STM); an empty long-term memory (LTM) takes it too;
  2. ``epochs_per_arrival`` passes over bin(STM) + bin(LTM) train the newest component
     (``elbo`` or ``iwae`` objective with ``elbo_samples`` draws; Adam lr 1e-4, beta1 0.5);
  3. when the STM holds more than ``stm_capacity`` images, a selection event runs:
     a. features = encoder means of freshly binarised images, concatenated over components;
        every STM sample is scored by its mean kernel similarity to the whole LTM;
     b. Dynamic-OCM only: R = mean over STM + LTM (grey images) of the mean over components of the
        k-sample IW bound; if |R - R_last| > lambda2 and K < K_max, a component is added, the shared
        layers and older components are frozen, the LTM is wiped and the optimiser covers only the
        newest component; R_last is updated every test (or only on expansion, an option);
     c. up to ``max_per_event`` STM samples move to the LTM (released rule: highest scores above
        lambda1, which is 1.0 at the first event and 0.35 after), unless the LTM is at its cap;
     d. the STM is emptied.

``ocm`` is the single VAE (the mixture never grows); ``dynamic-ocm`` grows it: step b is
``DynamicOCM.expansion_test``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import MemoryConfig, check_choice, check_nonnegative, check_positive
from ..data.streams import binarize
from ..memory import SELECTIONS, LongTermMemory, Memory, ShortTermMemory, similarity_scores
from ..models.bounds import iw_log_likelihood
from ..models.mixture import MixtureVAE
from .vae_training import VAELearner, VAETrainingConfig


@dataclass(frozen=True)
class OCMMemoryConfig(MemoryConfig):
    stm_capacity: int = 512  # a selection event runs when the STM holds more than this
    ltm_capacity: int = 2560  # additions to the LTM stop at this size; nothing is ever evicted
    kernel: str = "laplacian-l2"  # laplacian-l2 (released: exp(-|d|/(sqrt2 sigma))) | squared-exp (paper)
    sigma: float = 10.0  # kernel width
    lambda1_first: float = 1.0  # selection threshold at the first event
    lambda1: float = 0.35  # selection threshold afterwards
    max_per_event: int = 14  # at most this many STM samples move to the LTM per event
    select: str = "similar"  # similar (released: highest scores above lambda1) | diverse (lowest, below)

    def validate(self) -> None:
        for key in ("stm_capacity", "ltm_capacity", "sigma", "max_per_event"):
            check_positive(f"memory.{key}", getattr(self, key))
        check_choice("memory.kernel", self.kernel, ("laplacian-l2", "squared-exp"))
        check_choice("memory.select", self.select, ("similar", "diverse"))


@dataclass(frozen=True)
class DynamicOCMConfig(VAETrainingConfig):
    expansion_threshold: float = 10.0  # lambda2, nats: expand when |R - R_last| exceeds it
    max_components: int = 10  # K_max
    expansion_samples: int = 1000  # k of the importance-weighted bound used for R
    expansion_every: int = 1  # test for expansion every N selection events (cross-domain: 31)
    r_last_update: str = "every-event"  # every-event (released) | on-expansion (supplement)
    expansion_warmup: int = 0  # arrivals before an expansion may fire (0: released; R is still tracked)
    freeze_shared: bool = True  # on expansion freeze the shared first layers (released) | keep training them
    expansion_rebaseline: bool = False  # after an expansion the next test only records R (released: it may fire again at once, on the wiped memory)
    expansion_direction: str = "both"  # both (released: |R - R_last| > lambda2) | drop (only R_last - R > lambda2: a fall, not learning progress)

    def validate(self) -> None:
        super().validate()
        check_nonnegative("learner.expansion_threshold", self.expansion_threshold)
        for key in ("max_components", "expansion_samples", "expansion_every"):
            check_positive(f"learner.{key}", getattr(self, key))
        check_nonnegative("learner.expansion_warmup", self.expansion_warmup)
        check_choice("learner.r_last_update", self.r_last_update, ("every-event", "on-expansion"))
        check_choice("learner.expansion_direction", self.expansion_direction, ("both", "drop"))


class OCM(VAELearner):
    """OCM (Ye & Bors, ECCV 2022): short- and long-term memory, kernel selection, one VAE."""

    config_class = VAETrainingConfig
    memory_class = OCMMemoryConfig
    model_kind = "mixture"  # one component that never grows (DynamicOCM below grows it)
    ltm_share = 1  # the share of a full LTM held on average (planned steps): Dynamic-OCM's wipes leave a third
    model: MixtureVAE  # what the loop builds for model_kind mixture
    paper_name = "VAE-{bound}-OCM"
    state_attributes = ("events", "events_since_test", "r_last", "log")

    def __init__(self, cfg, model, generator):
        super().__init__(cfg, model, generator)
        m = cfg.memory
        self.stm = ShortTermMemory(m.stm_capacity, model.x_dim, device=self.device)
        self.ltm = LongTermMemory(m.ltm_capacity, model.x_dim, device=self.device)
        self.rule = SELECTIONS[m.select](m.max_per_event)
        self.events = 0  # selection events so far
        self.events_since_test = 0  # for the cross-domain schedule (test every ``expansion_every`` events)
        self.r_last: float | None = None
        self.log: list[dict] = []  # one entry per selection event (sizes, R, expansions)

    def observe(self, x: torch.Tensor) -> dict[str, float]:
        c, m = self.cfg.learner, self.cfg.memory
        # 1. memories take the batch
        self.stm.add(x)
        if len(self.ltm) == 0:
            self.ltm.add(x)
        # 2. train the newest component on STM + LTM
        data = torch.cat([self.stm.data, self.ltm.data])
        losses = [self.train_pass(data, self.model.newest) for _ in range(c.epochs_per_arrival)]
        logs = {"loss": sum(losses) / len(losses), "stm": len(self.stm), "ltm": len(self.ltm), "K": len(self.model)}
        # 3. selection event
        if self.stm.full():
            event = {"arrival": self.arrivals, "event": self.events}
            threshold = m.lambda1_first if self.events == 0 else m.lambda1
            # a. scores from features of freshly binarised images
            f_stm = self.model.features(self._bin(self.stm.data))
            f_ltm = self.model.features(self._bin(self.ltm.data))
            scores = similarity_scores(f_stm, f_ltm, m.sigma, m.kernel)
            chosen = self.rule.select(scores, threshold)
            # b. expansion test (Dynamic-OCM; OCM's mixture never grows)
            self.expansion_test(event)
            # c. move the chosen STM samples to the LTM, d. flush the STM
            event["moved"] = self.ltm.add(self.stm.data[chosen])
            event.update({"ltm": len(self.ltm), "K": len(self.model), "max_score": float(scores.max())})
            self.stm.clear()
            self.events += 1
            self.log.append(event)
            logs.update({"ltm": len(self.ltm), "K": len(self.model)})
        return logs

    def expansion_test(self, event: dict) -> None:
        """Step b of a selection event: OCM has none (one VAE); ``DynamicOCM`` grows the mixture here."""

    def _bin(self, x: torch.Tensor) -> torch.Tensor:
        return binarize(x, self.generator) if self.cfg.stream.binarize else x

    @torch.no_grad()
    def memory_bound(self, x: torch.Tensor) -> float:
        """R: mean over images (grey, as released) of the mean over components of the k-sample bound."""
        k = self.cfg.learner.expansion_samples
        per_component = [iw_log_likelihood(comp, x, k, self.generator, self.cfg.eval.chunk_rows)
                         for comp in self.model.components]
        return float(torch.stack(per_component).mean())

    # -- what the loop and the evaluator ask ---------------------------------------------------
    def memories(self) -> dict[str, Memory]:
        return {"stm": self.stm, "ltm": self.ltm}

    def memory_at(self, t: int) -> int:
        # STM + LTM: the STM fills up to its capacity between events; the LTM grows by max_per_event
        # per event (Split Fashion: 1,506-1,570 after 104 events); Dynamic-OCM wipes it at every
        # expansion, which leaves about a third of that on average (RESULTS.md's fast and paper runs)
        m, b = self.cfg.memory, self.cfg.stream.batch_size
        events = (t * b) // (m.stm_capacity + b)
        ltm = min(b + events * m.max_per_event, m.ltm_capacity)
        return min(t * b, m.stm_capacity) // 2 + ltm // self.ltm_share

    def min_steps_per_arrival(self) -> int | None:
        # STM + LTM can never fill a minibatch: no step, ever (else unknown: the first arrivals may take none).
        # Before a pass the STM holds at most stm_capacity + one batch (an event empties it once it holds
        # more); the LTM the first batch, or up to ltm_capacity - 1 plus one event's additions
        c, m = self.cfg, self.cfg.memory
        b = c.stream.batch_size
        most = m.stm_capacity + b + max(b, m.ltm_capacity - 1 + m.max_per_event)
        return 0 if most < c.learner.minibatch else None

    def components(self) -> list[torch.nn.Module]:
        return list(self.model.components)

    def load_state_dict(self, state: dict) -> None:
        # rebuild the structure first (components, frozen set, optimiser over the newest component)
        self.model.grow_to(MixtureVAE.components_in(state["model"]),
                           freeze_shared=getattr(self.cfg.learner, "freeze_shared", True))
        if len(self.model) > 1:
            self.optimizer = self.make_optimizer(self.model.trainable_parameters())
        super().load_state_dict(state)


class DynamicOCM(OCM):
    """Dynamic-OCM (Ye & Bors, ECCV 2022): OCM with a mixture of VAEs that grows when R shifts."""

    config_class = DynamicOCMConfig
    paper_name = "Dynamic-{bound}-OCM"
    ltm_share = 3

    def expansion_test(self, event: dict) -> None:
        """Step b: every ``expansion_every`` events, R of STM + LTM against R_last; a shift above lambda2
        adds a component (older ones and, as released, the shared layers freeze), a fresh optimiser
        over it, and wipes the LTM. ``event`` (the events.jsonl entry) gets R, R_last and the decision."""
        c = self.cfg.learner
        self.events_since_test += 1
        if self.events_since_test < c.expansion_every:
            return
        self.events_since_test = 0
        r = self.memory_bound(torch.cat([self.stm.data, self.ltm.data]))
        # released: a shift either way; "drop": only a fall of the memory's likelihood (new
        # data), not the rise that learning progress (or a fresh component's training) makes
        shift = (None if self.r_last is None else
                 abs(r - self.r_last) if c.expansion_direction == "both" else self.r_last - r)
        last_test = next((e for e in reversed(self.log) if "R" in e), None)
        rebaseline = c.expansion_rebaseline and last_test is not None and last_test["expanded"]
        if rebaseline:
            shift = None  # the first test after an expansion: a new baseline, no decision
        expand = (shift is not None and shift > c.expansion_threshold
                  and len(self.model) < c.max_components and self.arrivals >= c.expansion_warmup)
        event.update({"R": r, "R_last": self.r_last, "expanded": expand})
        if expand:
            # freezes older components (and, as released, the shared first layers)
            self.model.add_component(freeze_shared=c.freeze_shared)
            self.optimizer = self.make_optimizer(self.model.trainable_parameters())
            self.ltm.clear()
        if self.r_last is None or expand or rebaseline or c.r_last_update == "every-event":
            self.r_last = r
