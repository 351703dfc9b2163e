"""The Burda et al. MLP VAE used by OCM (784-200-200-50, Bernoulli pixels, N(0, I) prior).

OCM spec section 3.1: encoder Dense(784->200, tanh) -> Dense(200->200, tanh) -> mu, log sigma;
q(z|x) = N(mu, sigma + 1e-6); decoder Dense(50->200, tanh) -> Dense(200->200, ReLU) -> 784 logits.
The first encoder and first decoder layers can be passed in, so that the components of a mixture
share them (Dynamic-OCM).

    vae = VAE(ModelConfig())
    lw = vae.log_weights(x, k=1000)         # (k, B)
    loss = -vae.elbo(x, samples=50).mean()   # elbo: (B,)
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Normal

from ..config import ModelConfig
from .. import kernels
from .fused import activation_kinds, decoder_loglik
from .likelihoods import BernoulliImage, GaussianImage, _head_nograd, bernoulli_loglik, head_scratch

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "softplus": nn.Softplus, "elu": nn.ELU}
_BLOCK_ROWS = 1024  # decoder rows per thread and block in log_weights without autograd (stay in L2)


def _block_rows() -> int:
    return _BLOCK_ROWS * max(1, torch.get_num_threads())


def mlp_layer(n_in: int, n_out: int, activation: str) -> nn.Sequential:
    if activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(_ACTIVATIONS)}")
    return nn.Sequential(nn.Linear(n_in, n_out), _ACTIVATIONS[activation]())


def init_linear_(module: nn.Module, scheme: str) -> None:
    """Initialise every ``nn.Linear`` inside ``module``: ``glorot`` is the released TF1 ``Dense``
    default (Glorot-uniform weights, bound sqrt(6 / (fan_in + fan_out)), zero biases); ``torch``
    keeps PyTorch's ``nn.Linear`` default (Kaiming-uniform, bounds 1.1-2.2x smaller here)."""
    if scheme == "torch":
        return
    if scheme != "glorot":
        raise ValueError(f"unknown model.init {scheme!r}; valid: glorot, torch")
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def first_layers(cfg: ModelConfig, x_dim: int) -> tuple[nn.Module, nn.Module]:
    """The first encoder and first decoder layer (shared between mixture components)."""
    enc = mlp_layer(x_dim, cfg.encoder_hidden[0], cfg.encoder_activations[0])
    dec = mlp_layer(cfg.latent, cfg.decoder_hidden[0], cfg.decoder_activations[0])
    init_linear_(enc, cfg.init)
    init_linear_(dec, cfg.init)
    return enc, dec


def _activation_(t: torch.Tensor, act: nn.Module) -> torch.Tensor:
    """``act(t)``, in place where the activation allows it."""
    if isinstance(act, nn.Tanh):
        return t.tanh_()
    if isinstance(act, nn.ReLU):
        return t.relu_()
    return t.copy_(act(t))


class _Reparameterize(torch.autograd.Function):
    """``z = loc + scale * eps`` and ``(sum eps^2 - sum z^2) / 2`` (log p(z) - log q(z|x) without the
    log sigma term), with the backward written out: ``dz = g_z - g_half z``, ``d loc = sum dz``,
    ``d scale = sum dz eps`` over the sample dimensions."""

    @staticmethod
    def forward(ctx, loc, scale, eps):  # type: ignore[override]
        z = torch.addcmul(loc, scale, eps)
        sq = eps * eps
        half = sq.sub_(z * z).sum(-1).mul_(0.5)
        ctx.save_for_backward(eps, z)
        ctx.shapes = (loc.shape, scale.shape)
        return z, half

    @staticmethod
    def backward(ctx, g_z, g_half):  # type: ignore[override]
        eps, z = ctx.saved_tensors
        if g_half is None:
            dz = g_z
        elif g_z is None:
            dz = z * g_half.unsqueeze(-1).neg()
        else:
            dz = torch.addcmul(g_z, g_half.unsqueeze(-1), z, value=-1.0)
        g_loc = dz.sum_to_size(ctx.shapes[0]) if ctx.needs_input_grad[0] else None
        g_scale = (dz * eps).sum_to_size(ctx.shapes[1]) if ctx.needs_input_grad[1] else None
        return g_loc, g_scale, None


class VAE(nn.Module):
    """MLP VAE on flattened images ``x: (B, D)`` with pixels in [0, 1]."""

    def __init__(self, cfg: ModelConfig, x_dim: int = 784,
                 shared: tuple[nn.Module, nn.Module] | None = None):
        super().__init__()
        self.cfg = cfg
        self.x_dim = x_dim
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
        for m in [*self.encoder[1:], self.to_mu, self.to_log_std, *self.decoder[1:], self.to_x]:
            init_linear_(m, cfg.init)

    # -- the two halves ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> Normal:
        """q(z|x) as a diagonal Normal with loc/scale ``(B, Z)``."""
        h = self.encoder(x)
        std = torch.exp(self.to_log_std(h)) + self.cfg.min_std
        return Normal(self.to_mu(h), std, validate_args=False)

    def decode(self, z: torch.Tensor) -> BernoulliImage | GaussianImage:
        """p(x|z) for ``z: (..., Z)``; its ``log_prob(x)`` is ``(...)``."""
        out = self.to_x(self.decoder(z))
        if self.cfg.likelihood == "gaussian":
            return GaussianImage(out, self.cfg.gaussian_std)
        return BernoulliImage(out)

    # -- per-sample quantities -----------------------------------------------------------------
    def log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None,
                    q: Normal | None = None) -> torch.Tensor:
        """Importance log-weights ``log p(x|z) + log p(z) - log q(z|x)``, z ~ q: shape ``(k, B)``.

        ``q`` may be passed when the encoder already ran on ``x`` (chunked evaluation over k).
        ``eps`` is always drawn here, in one call. Without autograd the decoder runs on blocks of
        about ``_block_rows()`` rows (k x images) so that its activations stay in cache; the draws
        and the result (up to fp32 rounding) do not depend on the blocking.
        """
        q = self.encode(x) if q is None else q
        eps = kernels.randn((k,) + q.loc.shape, generator=generator, device=x.device, dtype=x.dtype)
        # log p(z) - log q(z|x) with z = mu + sigma * eps: the 2 pi terms cancel, and
        # log q(z|x) = sum(-eps^2 / 2 - log sigma) - const needs no division by sigma
        log_sigma = torch.log(q.scale).sum(-1)  # (B,)
        b = q.loc.shape[0] if q.loc.dim() > 1 else 1
        if not torch.is_grad_enabled() and x.dim() == 2 and eps.dim() == 3 and self._plain_bernoulli():
            return self._log_weights_nograd(x, eps, q.loc, q.scale, log_sigma)
        if torch.is_grad_enabled() or k * b <= 2 * _block_rows():
            return self._log_weights(x, eps, q.loc, q.scale, log_sigma)
        out = torch.empty(eps.shape[:-1], dtype=eps.dtype, device=eps.device)
        step = max(1, _block_rows() // b)
        for j in range(0, k, step):
            out[j:j + step] = self._log_weights(x, eps[j:j + step], q.loc, q.scale, log_sigma)
        return out

    def _log_weights(self, x, eps, loc, scale, log_sigma):
        if torch.is_grad_enabled() and (loc.requires_grad or scale.requires_grad):
            z, half = _Reparameterize.apply(loc, scale, eps)  # one autograd node instead of eight
        else:
            z = torch.addcmul(loc, scale, eps)  # (kk, B, Z)
            half = (eps * eps - z * z).sum(-1).mul_(0.5)
        return self._log_px(z, x) + (half + log_sigma)

    def _plain_bernoulli(self) -> bool:
        """Bernoulli pixels, ``decode`` not overridden and a decoder of (Linear, activation) pairs."""
        return (self.cfg.likelihood != "gaussian" and type(self).decode is VAE.decode
                and all(isinstance(m, nn.Sequential) and len(m) == 2 and isinstance(m[0], nn.Linear)
                        for m in self.decoder))

    def _log_weights_nograd(self, x, eps, loc, scale, log_sigma):
        """``_log_weights`` without autograd, Bernoulli pixels: blocks of about ``_block_rows()``
        decoder rows, every intermediate in buffers allocated once per call (fresh pages cost more
        than the arithmetic on them). Same terms, same draws. With the native kernels the output
        layer is one matmul and one kernel pass (bias, x . l, softplus); on the torch path the last
        hidden layer is written next to a column of ones so that the bias rides in the matmul."""
        k, b, zd = eps.shape
        kk = max(1, min(k, _block_rows() // b))
        rows = kk * b
        w, bias = self.to_x.weight, self.to_x.bias
        hd = w.shape[1]
        lib = kernels.native() if x.dtype == torch.float32 and x.device.type == "cpu" else None
        opts = {"dtype": eps.dtype, "device": eps.device}
        zbuf, sq = torch.empty(kk, b, zd, **opts), torch.empty(kk, b, zd, **opts)
        hbufs = [torch.empty(rows, m[0].out_features, **opts) for m in self.decoder]
        out = torch.empty(k, b, **opts)
        if lib is not None:
            xs = x.contiguous()
            logits = torch.empty(rows, w.shape[0], **opts)
        else:  # sum_d (x_d - 1/2) l_d = h . u + v, then bernoulli_head
            xc = x - 0.5
            u = xc @ w  # (B, H)
            const = (xc @ bias).add_(log_sigma)  # (B,)
            w1 = torch.cat([w, bias.unsqueeze(1)], 1)  # (D, H + 1): [W, b]
            h1 = torch.empty(rows, hd + 1, **opts)  # [last hidden layer, 1]
            h1[:, hd] = 1.0
            hbufs[-1] = h1[:, :hd]
            prod = torch.empty(rows, hd, **opts)
            head_out = torch.empty(rows, **opts)
            scratch = head_scratch(rows, w.shape[0], **opts)
        for j in range(0, k, kk):
            m = min(kk, k - j)
            r = m * b
            e = eps[j:j + m]
            z = torch.addcmul(loc, scale, e, out=zbuf[:m])
            # log p(z) - log q(z|x) = (sum eps^2 - sum z^2) / 2 + sum log sigma
            lpq = torch.mul(e, e, out=sq[:m]).sum(-1)
            lpq.sub_(torch.mul(z, z, out=sq[:m]).sum(-1)).mul_(0.5)
            h = z.view(r, zd)
            for layer, buf in zip(self.decoder, hbufs):
                h = _activation_(torch.addmm(layer[0].bias, h, layer[0].weight.t(), out=buf[:r]), layer[1])
            if lib is not None:
                lx = kernels.bernoulli_loglik(lib, torch.mm(h, w.t(), out=logits[:r]), xs, bias=bias)
                torch.add(lx.view(m, b), lpq, out=out[j:j + m]).add_(log_sigma)
            else:
                lx = torch.mul(h.view(m, b, hd), u, out=prod[:r].view(m, b, hd)).sum(-1)
                head = _head_nograd(h1[:r], w1, None, scratch, head_out[:r]).view(m, b)
                torch.add(lx, lpq, out=out[j:j + m]).add_(const).sub_(head)
        return out

    def _log_px(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``self.decode(z).log_prob(x)``; for Bernoulli pixels the last layer is fused with it.

        sum_d x_d l_d - softplus(l_d) = h . (W^T (x - 1/2)) + (x - 1/2) . b - sum_d log(2 cosh(l_d / 2))
        with l = W h + b (see ``bernoulli_head``).
        """
        if self.cfg.likelihood == "gaussian" or type(self).decode is not VAE.decode:
            return self.decode(z).log_prob(x)
        kinds = activation_kinds(self.decoder)
        if (kinds and torch.is_grad_enabled() and x.dim() == 2 and z.dim() >= 2 and z.shape[-2] == x.shape[0]
                and z.dtype == x.dtype == torch.float32 and z.device.type == "cpu" and not x.requires_grad):
            lib = kernels.native()
            if lib is not None:
                return decoder_loglik(lib, self.decoder, self.to_x, z, x, kinds)
        return bernoulli_loglik(self.decoder(z), self.to_x.weight, self.to_x.bias, x)

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
        z = torch.randn((n, self.cfg.latent), generator=generator)
        return self.decode(z).mean

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder mean at the encoder mean: ``(B, D)``."""
        return self.decode(self.encode(x).loc).mean
