"""CN-DPM's experts (Lee et al., ICLR 2020; released ``components/vae.py: MlpSharingVae``).

Expert 1 is a small MLP VAE: encoder 784 -> 64 -> 64 (ReLU) -> mu, log-variance (z = 16); decoder
16 -> 64 -> 64 (ReLU) -> 784 Bernoulli logits. Expert k > 1 adds a narrow encoder column (16 units
per layer, ``ext``) whose layer inputs are concatenated with the **detached** features of every
earlier expert at the same depth (progressive-net style), and has its own full decoder. So an
expert's encoder runs the whole chain of its precursors (without gradient into them) and its own
column. Expert 0 is the dummy: a randomly initialised, frozen first-expert network.

    mix = CNDPMExperts(CNDPMModelConfig(), x_dim=784, seed=0)
    e = mix.add_expert()                   # expert 1; e.encode(x) is a Normal (B, 16)
    outs = mix.encode_all(x)               # [(mu, logvar)] of every real expert, one pass of the chain
    nll = -e.elbo(x, samples=1)            # released loss: BCE of one z draw + analytic KL, (B,)

With ``native=True`` (the run's ``kernels``) the evaluation's ``log_weights`` (no autograd) goes
through ``streamvae.native``, the MLP VAE's fused decoder + Bernoulli pass: the same terms for the
same draws, differing by fp32 rounding only. Training keeps the torch path.
"""
from __future__ import annotations

import math
from types import SimpleNamespace
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal

from .. import native
from ..config import CNDPMModelConfig
from ..native import decoder as native_decoder
from .likelihoods import BernoulliImage


class CNDPMExpert(nn.Module):
    """One expert: its own encoder column (wide if it is the first, ``ext`` wide after) and decoder.

    ``precursors`` are the earlier real experts (held in a plain list: not submodules, so their
    parameters are neither saved with nor optimised by this expert)."""

    has_likelihood = True  # the evaluator scores ll_iw{k} through encode / log_weights

    def __init__(self, cfg: CNDPMModelConfig, x_dim: int, precursors: list["CNDPMExpert"],
                 native: bool = False):
        super().__init__()
        self.cfg, self.x_dim, self.native = cfg, x_dim, native
        self.precursors = list(precursors)
        width = cfg.hidden if not precursors else cfg.ext  # this expert's own column
        cat = cfg.hidden + len(precursors) * cfg.ext  # features at each depth, earlier experts' included
        self.enc1 = nn.Linear(x_dim, width)
        self.enc2 = nn.Linear(cat, width)
        self.to_mu = nn.Linear(cat, cfg.latent)
        self.to_logvar = nn.Linear(cat, cfg.latent)
        self.dec = nn.Sequential(nn.Linear(cfg.latent, cfg.hidden), nn.ReLU(),
                                 nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(),
                                 nn.Linear(cfg.hidden, x_dim))

    # -- the encoder chain -----------------------------------------------------------------------
    def column(self, x: torch.Tensor, f1: torch.Tensor | None, f2: torch.Tensor | None):
        """This expert's column on ``x`` given the earlier experts' detached features ``f1, f2``
        (None for the first expert): ``(mu, logvar, h1_cat, h2_cat)``."""
        h1 = F.relu(self.enc1(x))
        h1 = h1 if f1 is None else torch.cat([f1, h1], 1)
        h2 = F.relu(self.enc2(h1))
        h2 = h2 if f2 is None else torch.cat([f2, h2], 1)
        logvar = self.to_logvar(h2)
        if self.cfg.logvar_limit:  # an overflow guard (model.logvar_limit): the released code has none
            logvar = logvar.clamp(-self.cfg.logvar_limit, self.cfg.logvar_limit)
        return self.to_mu(h2), logvar, h1, h2

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Detached features of the precursors at both depths (what this expert's column takes)."""
        f1 = f2 = None
        for p in self.precursors:
            _, _, h1, h2 = p.column(x, f1, f2)
            f1, f2 = h1.detach(), h2.detach()
        return f1, f2

    def encode(self, x: torch.Tensor, feats: tuple | None = None) -> Normal:
        """q(z|x) with std exp(logvar / 2) (released), ``(B, Z)``; ``feats`` = precomputed ``features(x)``."""
        f1, f2 = self.features(x) if feats is None else feats
        mu, logvar, _, _ = self.column(x, f1, f2)
        return Normal(mu, torch.exp(0.5 * logvar), validate_args=False)

    def decode(self, z: torch.Tensor) -> BernoulliImage:
        return BernoulliImage(self.dec(z))

    # -- per-sample quantities -------------------------------------------------------------------
    def nll(self, x: torch.Tensor, q: Normal, samples: int = 1,
            generator: torch.Generator | None = None) -> torch.Tensor:
        """Released loss: Bernoulli NLL averaged over ``samples`` z draws + analytic KL, ``(B,)``."""
        eps = torch.randn((samples,) + q.loc.shape, generator=generator, device=q.loc.device)
        recon = -self.decode(q.loc + q.scale * eps).log_prob(x).mean(0)
        kl = 0.5 * (q.loc.pow(2) + q.scale.pow(2) - 2 * q.scale.log() - 1).sum(-1)
        return recon + kl

    def elbo(self, x: torch.Tensor, samples: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """The released ELBO (analytic KL): ``(B,)``; CN-DPM's evaluation uses 16 samples."""
        return -self.nll(x, self.encode(x), samples, generator)

    def log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None,
                    q: Normal | None = None) -> torch.Tensor:
        """``log p(x|z) + log p(z) - log q(z|x)``, z ~ q: ``(k, B)`` (the IW bound's terms)."""
        q = self.encode(x) if q is None else q
        eps = torch.randn((k,) + q.loc.shape, generator=generator, device=q.loc.device)
        if self._native_eval(x, q):  # the same terms through the fused C pass (evaluation only)
            view = SimpleNamespace(decoder=[self.dec[0:2], self.dec[2:4]], to_x=self.dec[4])
            return native_decoder.log_weights_nograd(native.library(), view, x, eps, q.loc, q.scale,
                                                     ("relu", "relu"))
        z = q.loc + q.scale * eps
        prior = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)
        return self.decode(z).log_prob(x) + prior - q.log_prob(z).sum(-1)

    def _native_eval(self, x: torch.Tensor, q: Normal) -> bool:
        """Whether ``log_weights`` may use the native pass: asked for, no autograd, fp32 CPU tensors."""
        out = cast(nn.Linear, self.dec[4])
        return self.native and not torch.is_grad_enabled() and native.tensors_supported(out.weight, x, q)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn((n, self.cfg.latent), generator=generator, device=self.enc1.weight.device)
        return self.decode(z).mean

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x).loc).mean


class CNDPMExperts(nn.Module):
    """The dummy (expert 0, frozen) and the growing list of real experts."""

    def __init__(self, cfg: CNDPMModelConfig, x_dim: int = 784, seed: int = 0, native: bool = False):
        super().__init__()
        self.cfg, self.x_dim, self.seed, self.native = cfg, x_dim, seed, native
        self.dummy = CNDPMExpert(cfg, x_dim, [], native=native)
        self.dummy.requires_grad_(False)
        self.experts = nn.ModuleList()

    def __len__(self) -> int:
        return len(self.experts)

    def real(self) -> list[CNDPMExpert]:
        return [cast(CNDPMExpert, e) for e in self.experts]

    def add_expert(self) -> CNDPMExpert:
        """A new expert whose column reads every earlier expert's features; seeded by (seed, index)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 1009 + len(self.experts) + 1)
            new = CNDPMExpert(self.cfg, self.x_dim, self.real(), native=self.native)
        new.to(self.dummy.enc1.weight.device)
        self.experts.append(new)
        return new

    def grow_to(self, n: int) -> None:
        """Rebuild the structure of a checkpoint with ``n`` real experts (before ``load_state_dict``)."""
        while len(self.experts) < n:
            self.add_expert()

    def encode_all(self, x: torch.Tensor) -> list[Normal]:
        """q(z|x) of every real expert in one pass of the chain (features detached between experts)."""
        out, f1, f2 = [], None, None
        for e in self.real():
            mu, logvar, h1, h2 = e.column(x, f1, f2)
            out.append(Normal(mu, torch.exp(0.5 * logvar), validate_args=False))
            f1, f2 = h1.detach(), h2.detach()
        return out

    def nll_all(self, x: torch.Tensor, samples: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-sample NLL under the dummy and every real expert: ``(B, 1 + K)`` (released ``collect_nll``)."""
        cols = [self.dummy.nll(x, self.dummy.encode(x), samples, generator)]
        cols += [e.nll(x, q, samples, generator) for e, q in zip(self.real(), self.encode_all(x))]
        return torch.stack(cols, 1)

    @torch.no_grad()
    def assign(self, x: torch.Tensor, samples: int = 10, generator: torch.Generator | None = None) -> torch.Tensor:
        """Which real expert explains each image best (highest ELBO): ``(B,)`` (for reconstruction grids)."""
        return self.nll_all(x, samples, generator)[:, 1:].argmin(1)
