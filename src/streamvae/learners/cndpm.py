"""CN-DPM: Continual Neural Dirichlet Process Mixture (Lee et al., ICLR 2020), generative setting.

Released ``configs/mnist_gen-cndpm.yaml`` + ``ndpm/ndpm.py`` (docs/peers.md maps every value). Per
arrival (``observe``), with ``x`` binarised afresh (the released loader's Bernoulli draw):
  1. wake: the negative ELBO (one z draw, analytic KL) of every image under the dummy (expert 0, a
     frozen random VAE) and every expert, plus the negative log prior count (dummy: ``-log_alpha``,
     fixed; expert k: ``-log N_k``). An image whose best (lowest) score is the dummy's goes to the
     short-term memory (STM). The experts train on the others, each image weighted by its
     responsibilities (exp of minus the scores over the real experts, normalised as released); an expert takes an Adam
     step (gradient values clipped) only if its usage (summed responsibilities, every image of the
     batch counted, as released) exceeds ``update_min_usage``; every N_k grows by its usage;
  2. sleep, when the STM holds ``stm_capacity`` images: a new expert is created with count
     1 + |STM| (released: a new expert's log count starts at 0), trained alone on the STM for
     ``sleep_steps`` Adam steps (minibatches drawn with replacement, L2 term ``weight_decay``,
     gradient values clipped); its learning rate is then multiplied by ``post_sleep_lr_factor``
     (released MultiStepLR: 0.003, which nearly freezes it in later wakes); the STM is emptied.

The sleep is one tight loop over the STM held as one tensor: the earlier experts' features of the
STM (fixed during a sleep) are computed once, so a step runs only the new expert's column and decoder.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from ..config import LearnerConfig, MemoryConfig, check_nonnegative, check_positive, check_unit_interval
from ..data.streams import binarize
from ..errors import ConfigError, TrainingError
from ..memory import Memory, ShortTermMemory
from ..models.cndpm import CNDPMExpert, CNDPMExperts
from .base import Learner


@dataclass(frozen=True)
class CNDPMMemoryConfig(MemoryConfig):
    stm_capacity: int = 1000  # a sleep runs once the STM holds this many images (released stm_capacity)

    def validate(self) -> None:
        check_positive("memory.stm_capacity", self.stm_capacity)


@dataclass(frozen=True)
class CNDPMConfig(LearnerConfig):
    log_alpha: float = 410.0  # the dummy's log prior count (released log_alpha; fixed)
    lr: float = 3e-4  # Adam learning rate of a new expert (released optimizer_g.lr)
    beta1: float = 0.9  # Adam beta1 (released: torch default)
    beta2: float = 0.999  # Adam beta2 (released: torch default)
    clip_value: float = 0.5  # gradient values clipped to [-c, c] in wake and sleep (released clip_grad)
    weight_decay: float = 1e-5  # sleep only: this times the sum of squared parameters is added to each image's loss
    sleep_steps: int = 12000  # Adam steps of a new expert on the STM (released sleep_step_g)
    sleep_batch: int = 50  # STM images per sleep step, drawn with replacement (released sleep_batch_size)
    post_sleep_lr_factor: float = 0.003  # the expert's lr after its sleep (released MultiStepLR gamma; 1 = keep lr)
    update_min_usage: float = 0.1  # wake: an expert steps only if its summed responsibility exceeds this
    new_expert_count: float = 1.0  # count a new expert starts from before |STM| is added (released: log count 0)
    elbo_samples: int = 1  # z draws per image in wake and sleep losses (released z_samples)
    max_experts: int = 0  # 0 = unbounded (released); else no sleep once this many experts exist (STM keeps the newest)

    def validate(self) -> None:
        if not math.isfinite(self.log_alpha):
            raise ConfigError(f"learner.log_alpha must be a finite number, got {self.log_alpha}")
        for key in ("lr", "clip_value", "sleep_steps", "sleep_batch", "post_sleep_lr_factor", "elbo_samples",
                    "new_expert_count"):
            check_positive(f"learner.{key}", getattr(self, key))
        for key in ("weight_decay", "update_min_usage", "max_experts"):
            check_nonnegative(f"learner.{key}", getattr(self, key))
        for key in ("beta1", "beta2"):
            check_unit_interval(f"learner.{key}", getattr(self, key))


class CNDPM(Learner):
    """CN-DPM (Lee et al., ICLR 2020): a dummy, an STM, and experts born in sleeps."""

    config_class = CNDPMConfig
    memory_class = CNDPMMemoryConfig
    model_kind = "cndpm"
    paper_name = "CN-DPM"
    state_attributes = ("log_counts", "log", "sleep_seconds", "sleep_steps_done")  # saved with the checkpoint besides the memories
    model: CNDPMExperts

    def __init__(self, cfg, model, generator):
        super().__init__(cfg, model, generator)
        if cfg.memory.stm_capacity < cfg.learner.sleep_batch:
            raise ConfigError(f"memory.stm_capacity={cfg.memory.stm_capacity} is smaller than learner.sleep_batch="
                              f"{cfg.learner.sleep_batch}; a sleep draws its minibatches from the STM: raise the "
                              "capacity or lower the sleep batch")
        self.stm = ShortTermMemory(cfg.memory.stm_capacity, model.x_dim, device=self.device)
        self.log_counts = torch.tensor([cfg.learner.log_alpha], dtype=torch.float64, device=self.device)
        self.opts: list[torch.optim.Optimizer] = []  # one Adam per expert (released: each expert's own)
        self.sleep_seconds = 0.0  # wall time inside sleeps
        self.sleep_steps_done = 0
        self.log: list[dict] = []  # one entry per sleep (events.jsonl)

    def observe(self, x: torch.Tensor) -> dict[str, float]:
        c = self.cfg.learner
        t0 = time.perf_counter()
        xb = binarize(x, self.generator) if self.cfg.stream.binarize else x
        # 1. wake: scores under the dummy and every expert, [B, 1 + K]
        nll = self.model.nll_all(xb, c.elbo_samples, self.generator)
        nl_joint = nll - self.log_counts.float().unsqueeze(0)
        to_stm = nl_joint.argmin(1) == 0
        self.stm.add(xb[to_stm])  # the binarised draw, as released
        logs = {"to_stm": float(to_stm.float().mean()), "stm": len(self.stm), "experts": len(self.model)}
        if len(self.model):
            with torch.no_grad():  # released: exp(-(score - best score)) in fp32, the dummy's zeroed, then
                # normalised (+1e-7): an image that prefers the dummy by more than ~100 nats underflows to
                # all-zero responsibilities and adds no usage
                nj = nl_joint.detach()
                resp = torch.exp(-nj + nj.min(1, keepdim=True).values)[:, 1:]
                resp = resp / (resp.sum(1, keepdim=True) + 1e-7)
            loss = ((nll[:, 1:] * (~to_stm).float().unsqueeze(1)) * resp).sum()
            usage = resp.sum(0)  # every image counts, the STM-bound ones too (released)
            for opt in self.opts:
                opt.zero_grad(set_to_none=True)
            loss.backward()
            for k, e in enumerate(self.model.real()):
                if usage[k] > c.update_min_usage:
                    torch.nn.utils.clip_grad_value_(e.parameters(), c.clip_value)
                    self.opts[k].step()
                    self.steps += 1
            self.log_counts[1:] = torch.logaddexp(self.log_counts[1:], usage.double().log())
            logs["loss"] = float(loss.detach()) / len(x)
        self.train_seconds += time.perf_counter() - t0
        # 2. sleep (or, with max_experts reached, keep only the newest stm_capacity images)
        if len(self.stm) >= self.cfg.memory.stm_capacity:
            if not c.max_experts or len(self.model) < c.max_experts:
                self.log.append(self.sleep())
            else:
                newest = self.stm.data[-self.cfg.memory.stm_capacity:]
                self.stm.clear()
                self.stm.add(newest)
            logs.update({"stm": len(self.stm), "experts": len(self.model)})
        return logs

    def sleep(self) -> dict:
        """A new expert trained alone on the STM; returns the event (written to events.jsonl)."""
        c = self.cfg.learner
        t0 = time.perf_counter()
        stm = self.stm.data  # (N, D), one tensor
        n = len(stm)
        expert = self.model.add_expert()
        self.opts.append(self.make_optimizer(expert))
        opt = self.opts[-1]
        self.log_counts = torch.cat([self.log_counts, self.log_counts.new_tensor([math.log(c.new_expert_count + n)])])
        with torch.no_grad():
            f1, f2 = expert.features(stm)  # the earlier experts do not change during a sleep
        params = list(expert.parameters())
        first = last = float("nan")
        for step in range(c.sleep_steps):
            idx = torch.randint(n, (c.sleep_batch,), generator=self.generator, device=stm.device)
            xb = stm.index_select(0, idx)
            q = expert.encode(xb, (None if f1 is None else f1.index_select(0, idx),
                                   None if f2 is None else f2.index_select(0, idx)))
            loss = expert.nll(xb, q, c.elbo_samples, self.generator).mean()
            if c.weight_decay:
                loss = loss + c.weight_decay * sum(p.pow(2).sum() for p in params)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_value_(params, c.clip_value)
            opt.step()
            if step == 0:
                first = float(loss.detach())
        last = float(loss.detach())
        if not math.isfinite(last):
            raise TrainingError(f"non-finite sleep loss ({last}) for expert {len(self.model)} at arrival "
                                f"{self.arrivals}; try a lower learner.lr (now {c.lr})")
        for group in opt.param_groups:
            group["lr"] = c.lr * c.post_sleep_lr_factor
        self.steps += c.sleep_steps
        self.sleep_steps_done += c.sleep_steps
        seconds = time.perf_counter() - t0
        self.sleep_seconds += seconds
        self.train_seconds += seconds
        self.stm.clear()
        return {"arrival": self.arrivals, "expanded": True, "K": len(self.model), "stm": n,
                "count": float(self.log_counts[-1].exp()), "sleep_loss_first": first, "sleep_loss_last": last,
                "sleep_s": round(seconds, 3), "s_per_1000_steps": round(1000 * seconds / c.sleep_steps, 4)}

    def make_optimizer(self, expert: CNDPMExpert) -> torch.optim.Optimizer:
        c = self.cfg.learner  # fused: one kernel for all parameters (same update rule)
        return torch.optim.Adam(expert.parameters(), lr=c.lr, betas=(c.beta1, c.beta2), fused=True)

    # -- what the loop and the evaluator ask ---------------------------------------------------
    def components(self) -> list[torch.nn.Module]:
        experts: list[CNDPMExpert] = self.model.real()
        return list(experts) if experts else [self.model.dummy]  # before the first sleep: the dummy

    def mixture_weights(self) -> torch.Tensor | None:
        return self.log_counts[1:].exp() if len(self.model) > 1 else None  # the prior counts N_k

    def structure(self) -> dict[str, int]:
        return {"experts": len(self.model)}

    def memories(self) -> dict[str, Memory]:
        return {"stm": self.stm}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {f"expert{k + 1}": o for k, o in enumerate(self.opts)}

    def planned_steps(self, arrivals: int) -> int | None:
        c, b = self.cfg.learner, self.cfg.stream.batch_size
        return (arrivals * b // self.cfg.memory.stm_capacity) * c.sleep_steps  # if every image went to the STM

    def extra_state(self) -> dict:
        return {**super().extra_state(), "n_experts": len(self.model)}  # the structure, read before the weights

    def load_state_dict(self, state: dict) -> None:
        while len(self.model) < state["extra"]["n_experts"]:  # the structure first, then the weights
            e = self.model.add_expert()
            self.opts.append(self.make_optimizer(e))
        super().load_state_dict(state)
