"""LIMix's model (Ye & Bors, ICCV 2021): components on a shared trunk, and a Student beside them.

As in OAES's appendix for the likelihood task (Burda et al.'s MLP): a shared first encoder layer and
a shared first decoder layer (200 units each), and per component one more layer each way plus the
heads (the released ``Encoder_*_Shared`` / ``Encoder_*_Specific`` and ``Generator_Shared*`` /
``Generator_Sub*`` split, in MLP form). The Student is one more component on the same trunk, trained
on all components' generations (released ``Student_encoder`` / ``Student_VAE_Generator``).

    mix = LIMixVAE(ModelConfig(), x_dim=784, seed=0)
    mix.add_component()                    # does not freeze anything: the learner picks what trains
    mix.own_parameters(j)                  # component j's layers, the shared trunk excluded
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .mixture import MixtureVAE
from .vae import VAE


class LIMixVAE(MixtureVAE):
    """A :class:`MixtureVAE` plus ``student``, a VAE on the same shared first layers."""

    def __init__(self, cfg: ModelConfig, x_dim: int = 784, seed: int = 0, native: bool = False):
        super().__init__(cfg, x_dim, seed=seed, native=native)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed * 1009 + 999_983)  # its own stream: adding components never changes it
            self.student = VAE(cfg, x_dim, shared=(self.shared["encoder"], self.shared["decoder"]), native=native)

    def add_component(self, freeze_shared: bool = False) -> VAE:
        """Append a fresh component; unlike Dynamic-OCM, nothing is frozen (the learner's optimiser
        holds only the parameters that train)."""
        new = super().add_component(freeze_shared=False)
        for p in self.parameters():
            p.requires_grad_(True)
        return new

    def own_parameters(self, j: int) -> list[nn.Parameter]:
        """Component ``j``'s own parameters (the shared first layers excluded)."""
        shared = {id(p) for p in self.shared.parameters()}
        return [p for p in self.components[j].parameters() if id(p) not in shared]

    def student_parameters(self) -> list[nn.Parameter]:
        shared = {id(p) for p in self.shared.parameters()}
        return [p for p in self.student.parameters() if id(p) not in shared]
