"""The Burda et al. MLP VAE used by OCM (784-200-200-50, Bernoulli pixels, N(0, I) prior).

OCM spec section 3.1: encoder Dense(784->200, tanh) -> Dense(200->200, tanh) -> mu, log sigma;
q(z|x) = N(mu, sigma + 1e-6); decoder Dense(50->200, tanh) -> Dense(200->200, ReLU) -> 784 logits.
The first encoder and first decoder layers can be passed in, so that the components of a mixture
share them (Dynamic-OCM). This file is the reference: every bound is ``log_weights``, and
``log_weights`` is the textbook ``log p(x|z) + log p(z) - log q(z|x)``. With ``native=True`` the
same terms for the same draws go through ``streamvae.native`` where it supports the case.

    vae = VAE(ModelConfig(), native=True)
    lw = vae.log_weights(x, k=1000)         # (k, B)
    loss = -vae.elbo(x, samples=50).mean()   # elbo: (B,)
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Normal

from .. import native
from ..native import decoder_kinds
from ..config import ModelConfig
from .likelihoods import BernoulliImage, GaussianImage
from .nets import first_layers, init_linear_, mlp_layer

class VAE(nn.Module):
    """MLP VAE on flattened images ``x: (B, D)`` with pixels in [0, 1].

    ``native``: compute ``log_weights`` with ``streamvae.native`` where it supports the case (same
    draws, same terms, fp32 rounding apart); a setting, not a parameter (not in the state dict).
    """

    has_likelihood = True  # capability: log_weights / elbo exist (the evaluator scores ll_iw{k})

    def __init__(self, cfg: ModelConfig, x_dim: int = 784,
                 shared: tuple[nn.Module, nn.Module] | None = None, native: bool = False):
        super().__init__()
        self.cfg = cfg
        self.x_dim = x_dim
        self.native = native
        enc_first, dec_first = shared if shared is not None else first_layers(cfg, x_dim)
        enc = [enc_first]
        for i in range(1, len(cfg.encoder_hidden)):
            enc.append(mlp_layer(cfg.encoder_hidden[i - 1], cfg.encoder_hidden[i], cfg.encoder_activations[i]))
        self.encoder = nn.Sequential(*enc)
        self.to_mu = nn.Linear(cfg.encoder_hidden[-1], cfg.latent)
        self.to_log_std = nn.Linear(cfg.encoder_hidden[-1], cfg.latent)
        dec = [dec_first]
        for i in range(1, len(cfg.decoder_hidden)):
            dec.append(mlp_layer(cfg.decoder_hidden[i - 1], cfg.decoder_hidden[i], cfg.decoder_activations[i]))
        self.decoder = nn.Sequential(*dec)
        self.to_x = nn.Linear(cfg.decoder_hidden[-1], x_dim)
        # the layers made here (the first ones may be shared and are initialised by first_layers)
        for m in [*list(self.encoder)[1:], self.to_mu, self.to_log_std, *list(self.decoder)[1:], self.to_x]:
            init_linear_(m, cfg.init)
        # what the native fast path is told about this decoder: its activation names, or None where it has
        # no code for it (a Gaussian likelihood, softplus / elu, or a subclass with a decode of its own)
        reference = type(self).decode is VAE.decode
        self.native_decoder = decoder_kinds(cfg.decoder_activations, cfg.likelihood) if reference else None

    # -- the two halves ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> Normal:
        """q(z|x) as a diagonal Normal with loc/scale ``(B, Z)``."""
        h = self.encoder(x)  # under bf16 autocast the products run in bf16; q(z|x) is always fp32
        std = torch.exp(self.to_log_std(h).float()) + self.cfg.min_std
        return Normal(self.to_mu(h).float(), std, validate_args=False)

    def decode(self, z: torch.Tensor) -> BernoulliImage | GaussianImage:
        """p(x|z) for ``z: (..., Z)``; its ``log_prob(x)`` is ``(...)``."""
        out = self.to_x(self.decoder(z))
        if self.cfg.likelihood == "gaussian":
            return GaussianImage(out, self.cfg.gaussian_std)
        return BernoulliImage(out)

    # -- per-sample quantities -----------------------------------------------------------------
    def log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None,
                    q: Normal | None = None) -> torch.Tensor:
        """Importance log-weights ``log p(x|z) + log p(z) - log q(z|x)``, z ~ q(z|x): shape ``(k, B)``.

        ``q`` may be passed when the encoder already ran on ``x`` (chunked evaluation over k). The
        noise is drawn here, in one ``torch.randn`` call, whichever path computes the terms.
        """
        q = self.encode(x) if q is None else q
        eps = torch.randn((k,) + q.loc.shape, generator=generator, dtype=q.loc.dtype, device=q.loc.device)
        if self.native and native.supports(self, x, q):
            return native.log_weights(self, x, eps, q)  # the same terms, fused (streamvae.native)
        z = q.loc + q.scale * eps  # (k, B, Z)
        prior = Normal(torch.zeros_like(q.loc), torch.ones_like(q.loc), validate_args=False)
        return self.decode(z).log_prob(x) + prior.log_prob(z).sum(-1) - q.log_prob(z).sum(-1)

    def elbo(self, x: torch.Tensor, samples: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """Monte-Carlo ELBO (mean over ``samples`` draws, sampled KL): ``(B,)``."""
        return self.log_weights(x, samples, generator).mean(0)

    def iwae(self, x: torch.Tensor, samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Importance-weighted bound with ``samples`` draws: ``(B,)``."""
        lw = self.log_weights(x, samples, generator)
        return torch.logsumexp(lw, 0) - math.log(samples)

    def objective(self, x: torch.Tensor, kind: str, samples: int,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-sample training bound (higher is better): ``elbo`` or ``iwae``: ``(B,)``."""
        if kind == "iwae":
            return self.iwae(x, samples, generator)
        return self.elbo(x, samples, generator)

    # -- generation ----------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoder means of ``n`` draws from the N(0, I) prior: ``(n, D)``."""
        z = torch.randn((n, self.cfg.latent), generator=generator, device=self.to_x.weight.device)
        return self.decode(z).mean

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder mean at the encoder mean: ``(B, D)``."""
        return self.decode(self.encode(x).loc).mean
