"""OCM's two memories and its kernel selection rule (Ye & Bors, ECCV 2022; OCM spec section 2).

* ``ShortTermMemory`` takes every incoming batch; when it holds more than ``capacity`` images a
  selection event runs (the learner's decision) and it is emptied.
* ``LongTermMemory`` receives images at selection events; additions stop once it holds ``capacity``
  (checked once per event, as released); it never evicts; a Dynamic-OCM expansion wipes it.
* The selection rule scores every STM sample by its mean kernel similarity to the whole LTM, on
  features the learner computes (encoder means): one ``(N_stm, N_ltm)`` kernel matrix per event.

Memories never call the model.

    scores = similarity_scores(f_stm, f_ltm, sigma=10.0, kernel="laplacian-l2")   # (N_stm,)
    idx = SimilarSelection(max_per_event=14).select(scores, threshold=0.35)        # STM rows to move
"""
from __future__ import annotations

import math

import torch

from .store import ImageStore


class ShortTermMemory(ImageStore):
    """Takes every incoming batch; ``full()`` once it holds more than ``capacity`` (512: fires at 576)."""

    def add(self, x: torch.Tensor) -> None:
        self.append(x)

    def full(self) -> bool:
        return len(self) > self.capacity


class LongTermMemory(ImageStore):
    """Grows by selection only; additions are skipped once it holds ``capacity``; never evicts."""

    def add(self, x: torch.Tensor) -> int:
        """Append ``x`` unless the memory is at capacity; returns the number added."""
        if len(self) >= self.capacity:
            return 0
        self.append(x)
        return len(x)


# -- the selection rule ----------------------------------------------------------------------------


def kernel_matrix(a: torch.Tensor, b: torch.Tensor, sigma: float, kernel: str = "laplacian-l2") -> torch.Tensor:
    """Kernel values ``(N_a, N_b)`` between feature rows.

    ``laplacian-l2`` (released code): exp(-||a - b||_2 / (sqrt(2) sigma));
    ``squared-exp`` (the paper): exp(-||a - b||^2 / (2 sigma^2)).
    """
    d2 = torch.cdist(a.double(), b.double()).pow(2)  # (N_a, N_b), float64 so tiny distances stay exact
    if kernel == "laplacian-l2":
        return torch.exp(-d2.clamp_min(0).sqrt() / (math.sqrt(2) * sigma))
    if kernel == "squared-exp":
        return torch.exp(-d2 / (2 * sigma * sigma))
    raise ValueError(f"unknown kernel {kernel!r}; valid: laplacian-l2, squared-exp")


def similarity_scores(f_stm: torch.Tensor, f_ltm: torch.Tensor, sigma: float,
                      kernel: str = "laplacian-l2") -> torch.Tensor:
    """R^S of every STM sample: its mean kernel similarity to the whole LTM, ``(N_stm,)``."""
    if len(f_ltm) == 0:
        return torch.zeros(len(f_stm), dtype=torch.float64, device=f_stm.device)
    return kernel_matrix(f_stm, f_ltm, sigma, kernel).mean(1)


class SimilarSelection:
    """Released rule: STM samples in descending score while score > threshold, at most ``max_per_event``."""

    def __init__(self, max_per_event: int):
        self.max_per_event = max_per_event

    def select(self, scores: torch.Tensor, threshold: float) -> torch.Tensor:
        order = torch.argsort(scores, descending=True, stable=True)
        order = order[scores[order] > threshold]
        return order[: self.max_per_event]


class DiverseSelection:
    """The abstract's "diverse" reading: ascending score while score < threshold, at most ``max_per_event``."""

    def __init__(self, max_per_event: int):
        self.max_per_event = max_per_event

    def select(self, scores: torch.Tensor, threshold: float) -> torch.Tensor:
        order = torch.argsort(scores, stable=True)
        order = order[scores[order] < threshold]
        return order[: self.max_per_event]


SELECTIONS = {"similar": SimilarSelection, "diverse": DiverseSelection}
