"""MixtureVAE: Dynamic-OCM's growing mixture of VAEs (OCM spec section 4.1).

Every component is a :class:`VAE` whose first encoder layer and first decoder layer are shared by
all components. Component 1 trains everything; ``add_component()`` freezes the shared layers and
every earlier component, so that only the newest component's own layers train from then on.

    mix = MixtureVAE(ModelConfig(), x_dim=784, seed=0)
    new = mix.add_component()          # returns the new VAE; older parameters get requires_grad=False
    feats = mix.features(x)            # (B, Z * K): encoder means of every component
"""
from __future__ import annotations

from typing import cast

import torch
from torch import nn

from ..config import ModelConfig
from .vae import VAE, first_layers


class MixtureVAE(nn.Module):
    """``native``: every component's ``VAE.native`` (new components too); setting it sets them all."""

    def __init__(self, cfg: ModelConfig, x_dim: int = 784, seed: int = 0, native: bool = False):
        super().__init__()
        self.cfg = cfg
        self.x_dim = x_dim
        self.seed = seed  # new components are initialised from (seed, index): resumable and reproducible
        enc_first, dec_first = first_layers(cfg, x_dim)
        self.shared = nn.ModuleDict({"encoder": enc_first, "decoder": dec_first})
        self.components = nn.ModuleList([VAE(cfg, x_dim, shared=(enc_first, dec_first), native=native)])
        self.native = native

    @property
    def native(self) -> bool:
        return self._native

    @native.setter
    def native(self, flag: bool) -> None:
        self._native = flag
        for c in self._vaes():
            c.native = flag

    def __len__(self) -> int:
        return len(self.components)

    def _vaes(self) -> list[VAE]:
        """The components, as the VAEs they are (``components`` is an ``nn.ModuleList`` of VAEs)."""
        return [cast(VAE, c) for c in self.components]

    @property
    def newest(self) -> VAE:
        return cast(VAE, self.components[-1])

    def add_component(self, freeze_shared: bool = True) -> VAE:
        """Freeze all components (and, as released, the shared layers), then append a fresh one."""
        for p in self.parameters():
            p.requires_grad_(False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 1009 + len(self.components))
            new = VAE(self.cfg, self.x_dim, shared=(self.shared["encoder"], self.shared["decoder"]),
                      native=self.native)
        # initialised on the CPU (same numbers), then moved to the device of the shared first layer's weight
        new.to(next(self.shared["encoder"].parameters()).device)
        # the shared layers are the same module objects inside the new component: set them explicitly
        for p in self.shared.parameters():
            p.requires_grad_(not freeze_shared)
        self.components.append(new)
        return new

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def frozen_components(self) -> list[int]:
        return [i for i, c in enumerate(self.components)
                if not any(p.requires_grad for n, p in c.named_parameters() if not n.startswith(("encoder.0", "decoder.0")))]

    @staticmethod
    def components_in(state: dict) -> int:
        """How many components a mixture's ``state_dict`` holds (what ``grow_to`` rebuilds before loading it)."""
        return 1 + max((int(k.split(".")[1]) for k in state if k.startswith("components.")), default=0)

    def grow_to(self, n: int, freeze_shared: bool = True) -> None:
        """Rebuild the structure of a checkpoint with ``n`` components (before ``load_state_dict``)."""
        while len(self.components) < n:
            self.add_component(freeze_shared)

    @torch.no_grad()
    def assign(self, x: torch.Tensor, samples: int = 10, generator: torch.Generator | None = None) -> torch.Tensor:
        """Which component explains each image best (highest ``samples``-sample ELBO): ``(B,)`` indices."""
        if len(self.components) == 1:
            return torch.zeros(len(x), dtype=torch.long, device=x.device)
        return torch.stack([c.elbo(x, samples, generator) for c in self._vaes()]).argmax(0)

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder means concatenated over components: ``(B, Z * K)`` (OCM's selection features)."""
        return torch.cat([c.encode(x).loc for c in self._vaes()], dim=1)
