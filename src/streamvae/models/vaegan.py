"""DEMC's VAE-GAN (Ye & Bors, AAAI 2024; DEMC spec sections 3-4): encoder E, generator G, critic D.

The generator is also the VAE decoder. Two image sizes, picked from the stream's image shape:

* ``(C, 28, 28)``, latent 100 (MNIST, Fashion): E = conv4x4/2 64 -> conv4x4/2 128 BN -> FC 1024 BN
  -> FC 64 BN -> (mu, softplus sigma); G (InfoGAN) = FC 1024 BN -> FC 7*7*128 BN -> deconv 64 BN
  -> deconv C, sigmoid; D = conv 64 -> conv 128 BN -> FC 1024 BN -> FC 1 (raw score).
* ``(C, 32, 32)``, latent 200 (SVHN, CIFAR-10): E = conv3x3/2 64, 128, 256, 512 (BN) -> FC 1024 ->
  heads; G = FC 8*8*256, BN per channel -> deconv/2, deconv/1, deconv/2, deconv/1 (256 channels, BN)
  -> deconv C, sigmoid; D = conv3x3/2 64, 128, 256, 512 (BN) -> FC 1024 -> FC 1.

lReLU slope 0.2; BatchNorm (momentum 0.1 = TF decay 0.9, eps 1e-5) with the normal train/eval
behaviour: ``sample``, ``reconstruct`` and statistics taken by a learner run in eval mode.
``model.width`` scales every hidden width (1.0 = the released networks; smaller for CPU budgets).
Weights start from N(0, ``model.init_std``) as in the DCGAN ``ops.py`` (biases 0). The 32x32
networks keep their convolution weights channels_last (same values, faster kernels on CPU).

    model = VAEGAN(VAEGANConfig(latent=100), shape=(1, 28, 28))
    q = model.encode(x)                          # Normal, loc/scale (B, 100); x: (B, 784) in [0, 1]
    loss = model.vae_loss(x, kl_weight=0.1)      # (B,): summed squared error + 0.1 KL
    gp = gradient_penalty(model.critic, x, model.decode(z), g)   # WGAN-GP term (scalar)
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal

from ..config import VAEGANConfig
from ..errors import ConfigError

_CHUNK = 256  # images per forward pass in sample / reconstruct (bounds memory for 32x32 at width 1)


def _w(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2)


def _running_stats(m: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """A BatchNorm's (running_mean, running_var); the modules here are all built tracking them."""
    assert m.running_mean is not None and m.running_var is not None
    return m.running_mean, m.running_var


class _Encoder(nn.Module):
    """An encoder's ``body`` (convolutions to features), then the mean and softplus std heads."""

    body: nn.Module
    to_mu: nn.Linear
    to_sigma: nn.Linear

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.to_mu(h), F.softplus(self.to_sigma(h))


# -- 28x28 (MNIST, Fashion) ----------------------------------------------------------------------


class Encoder28(_Encoder):
    def __init__(self, c: int, latent: int, width: float):
        super().__init__()
        c1, c2, f1, f2 = _w(64, width), _w(128, width), _w(1024, width), _w(64, width)
        self.body = nn.Sequential(
            nn.Conv2d(c, c1, 4, 2, 1), _lrelu(),                            # (B, c1, 14, 14)
            nn.Conv2d(c1, c2, 4, 2, 1), nn.BatchNorm2d(c2), _lrelu(),       # (B, c2, 7, 7)
            nn.Flatten(),
            nn.Linear(c2 * 7 * 7, f1), nn.BatchNorm1d(f1), _lrelu(),
            nn.Linear(f1, f2), nn.BatchNorm1d(f2), _lrelu())
        self.to_mu = nn.Linear(f2, latent)
        self.to_sigma = nn.Linear(f2, latent)


class Generator28(nn.Module):
    def __init__(self, c: int, latent: int, width: float):
        super().__init__()
        f1, c2, c1 = _w(1024, width), _w(128, width), _w(64, width)
        self.body = nn.Sequential(
            nn.Linear(latent, f1), nn.BatchNorm1d(f1), nn.ReLU(),
            nn.Linear(f1, c2 * 7 * 7), nn.BatchNorm1d(c2 * 7 * 7), nn.ReLU(),
            nn.Unflatten(1, (c2, 7, 7)),
            nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.BatchNorm2d(c1), nn.ReLU(),   # (B, c1, 14, 14)
            nn.ConvTranspose2d(c1, c, 4, 2, 1), nn.Sigmoid())                      # (B, C, 28, 28)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)


class Critic28(nn.Module):
    def __init__(self, c: int, width: float):
        super().__init__()
        c1, c2, f1 = _w(64, width), _w(128, width), _w(1024, width)
        self.body = nn.Sequential(
            nn.Conv2d(c, c1, 4, 2, 1), _lrelu(),
            nn.Conv2d(c1, c2, 4, 2, 1), nn.BatchNorm2d(c2), _lrelu(),
            nn.Flatten(),
            nn.Linear(c2 * 7 * 7, f1), nn.BatchNorm1d(f1), _lrelu(),
            nn.Linear(f1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(-1)


# -- 32x32 (SVHN, CIFAR-10) ----------------------------------------------------------------------


def _down32(c: int, width: float) -> tuple[nn.Sequential, int]:
    """conv3x3/2 to 64, 128, 256, 512 channels, each with BN and lReLU: (B, C, 32, 32) -> (B, c4, 2, 2)."""
    layers: list[nn.Module] = []
    prev = c
    for n in (64, 128, 256, 512):
        layers += [nn.Conv2d(prev, _w(n, width), 3, 2, 1), nn.BatchNorm2d(_w(n, width)), _lrelu()]
        prev = _w(n, width)
    return nn.Sequential(*layers, nn.Flatten()), prev * 2 * 2


class Encoder32(_Encoder):
    def __init__(self, c: int, latent: int, width: float):
        super().__init__()
        down, n_flat = _down32(c, width)
        f1 = _w(1024, width)
        self.body = nn.Sequential(down, nn.Linear(n_flat, f1), _lrelu())
        self.to_mu = nn.Linear(f1, latent)
        self.to_sigma = nn.Linear(f1, latent)


class Generator32(nn.Module):
    def __init__(self, c: int, latent: int, width: float):
        super().__init__()
        ch = _w(256, width)

        def up(stride: int) -> list[nn.Module]:  # 3x3 deconvolution, stride 2 doubles H and W
            return [nn.ConvTranspose2d(ch, ch, 3, stride, 1, output_padding=stride - 1), nn.BatchNorm2d(ch), nn.ReLU()]

        self.body = nn.Sequential(
            nn.Linear(latent, ch * 8 * 8), nn.Unflatten(1, (ch, 8, 8)),
            nn.BatchNorm2d(ch), nn.ReLU(),                                   # per channel, as released
            *up(2), *up(1), *up(2), *up(1),                                  # (B, ch, 32, 32)
            nn.ConvTranspose2d(ch, c, 3, 1, 1), nn.Sigmoid())                # (B, C, 32, 32)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)


class Critic32(nn.Module):
    def __init__(self, c: int, width: float):
        super().__init__()
        down, n_flat = _down32(c, width)
        f1 = _w(1024, width)
        self.body = nn.Sequential(down, nn.Linear(n_flat, f1), _lrelu(), nn.Linear(f1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(-1)


_ARCHS = {28: (Encoder28, Generator28, Critic28), 32: (Encoder32, Generator32, Critic32)}


# -- the model -------------------------------------------------------------------------------------


@contextlib.contextmanager
def eval_mode(*modules: nn.Module):
    """Run with BatchNorm on its running statistics, then restore each module's previous mode."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)


@contextlib.contextmanager
def frozen_bn_statistics(module: nn.Module):
    """BatchNorm keeps normalising with batch statistics but stops updating its running statistics."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in bns:
            m.track_running_stats = True


@contextlib.contextmanager
def recorded_bn_update(module: nn.Module):
    """A train-mode pass whose BatchNorm running-statistics update is recorded, to be repeated later.

    Yields a list that, on exit, holds per BatchNorm (mean before, var before, mean after, var after).
    The pass updates private copies of the running statistics (copied back on exit), so its autograd
    graph, which saves them, stays valid when later passes update the live ones in place.
    """
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    live = [_running_stats(m) for m in bns]
    record: list[tuple[torch.Tensor, ...]] = []
    for m, (mean, var) in zip(bns, live):
        m.running_mean, m.running_var = mean.clone(), var.clone()
    try:
        yield record
    finally:
        with torch.no_grad():
            for m, (mean, var) in zip(bns, live):
                new_mean, new_var = _running_stats(m)
                record.append((mean.clone(), var.clone(), new_mean, new_var))
                mean.copy_(new_mean)
                var.copy_(new_var)
                m.running_mean, m.running_var = mean, var


@torch.no_grad()
def repeat_bn_update(module: nn.Module, record: list) -> None:
    """Apply once more, to the current running statistics, the update ``recorded_bn_update`` recorded.

    A train-mode pass moves each running statistic r to (1 - m) r + m s (s: the batch's statistic).
    With r0 before and r1 = (1 - m) r0 + m s after, this sets r <- (1 - m) r + (r1 - (1 - m) r0): what
    a second pass of the same batch through the same (unchanged) module would do, without running it
    (``VAEGANLearner.update`` reuses G(z) of step 1a in step 1b this way). Call it after the backward
    passes that need graphs holding the live statistics (an in-place update would invalidate them).
    """
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m, (mean0, var0, mean1, var1) in zip(bns, record, strict=True):
        if m.momentum is None:
            raise ValueError("repeat_bn_update needs BatchNorm with a fixed momentum")
        keep = 1.0 - m.momentum
        running_mean, running_var = _running_stats(m)
        running_mean.mul_(keep).add_(mean1 - keep * mean0)
        running_var.mul_(keep).add_(var1 - keep * var0)
        assert m.num_batches_tracked is not None  # tracked, as the running statistics are
        m.num_batches_tracked.add_(1)


class VAEGAN(nn.Module):
    """Encoder + generator/decoder + WGAN critic on flattened images ``x: (B, C*H*W)`` in [0, 1]."""

    has_likelihood = False  # capability: no log_weights / elbo; scored by reconstruction and FID/IS

    def __init__(self, cfg: VAEGANConfig, shape: tuple[int, ...] = (1, 28, 28)):
        super().__init__()
        c, h, w = shape
        if h != w or h not in _ARCHS:
            raise ConfigError(f"model.name=vaegan supports 28x28 and 32x32 images, got {h}x{w}")
        self.cfg = cfg
        self.shape = (c, h, w)
        self.x_dim = c * h * w
        self.latent = cfg.latent
        enc, gen, crit = _ARCHS[h]
        self.encoder = enc(c, cfg.latent, cfg.width)
        self.generator = gen(c, cfg.latent, cfg.width)
        self.critic_net = crit(c, cfg.width)
        if cfg.init_std > 0:
            self._init(cfg.init_std)
        if h == 32:  # 3x3 convolutions on 64-512 channels: channels_last (NHWC) is 1.2-1.5x faster on CPU
            # (benchmarks/bench_vaegan.py; at 28x28 it is not). type: ignore: torch's stubs of Module.to
            # lack the memory_format keyword that Module.to documents and accepts at runtime
            self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def _init(self, std: float) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # ops.conv2d: truncated normal
                assert m.bias is not None  # every layer of these networks has a bias
                nn.init.trunc_normal_(m.weight, 0.0, std, -2 * std, 2 * std)
                nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.ConvTranspose2d, nn.Linear)):  # ops.deconv2d / ops.linear: normal
                assert m.bias is not None
                nn.init.normal_(m.weight, 0.0, std)
                nn.init.zeros_(m.bias)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` -> ``(B, C, H, W)`` (images pass through unchanged)."""
        return x if x.dim() == 4 else x.reshape((-1,) + self.shape)

    # -- the three networks --------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> Normal:
        """q(z|x) with loc = mu and scale = softplus(.) as released: ``(B, Z)``."""
        mu, sigma = self.encoder(self.images(x))
        return Normal(mu, sigma, validate_args=False)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """G(z): images in [0, 1], flattened ``(B, D)``."""
        return self.generator(z).flatten(1)

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        """D(x): raw (linear) critic score per image, ``(B,)`` (fp32, also under bf16 autocast)."""
        return self.critic_net(self.images(x)).float()

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z for generation: U(-1, 1)^Z (released) or N(0, I) (``model.generation_prior``): ``(n, Z)``."""
        device = next(self.parameters()).device
        if self.cfg.generation_prior == "normal":
            return torch.randn((n, self.latent), generator=generator, device=device)
        return torch.rand((n, self.latent), generator=generator, device=device) * 2 - 1

    # -- per-sample losses ---------------------------------------------------------------------
    def vae_loss(self, x: torch.Tensor, kl_weight: float = 0.1,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """L_vae per image (DEMC spec 3.1): ||x - G(mu + sigma eps)||^2 summed over pixels
        + kl_weight * 1/2 sum_j (mu^2 + sigma^2 - log(sigma^2 + 1e-8) - 1): ``(B,)``."""
        q = self.encode(x)
        mu, sigma = q.loc.float(), q.scale.float()  # fp32 under bf16 autocast (no-ops in fp32)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device)
        x_hat = self.decode(mu + sigma * eps)
        sse = (x_hat.float() - x.flatten(1)).pow(2).sum(-1)  # per-image sums in fp32
        var = sigma.pow(2)
        kl = 0.5 * (mu.pow(2) + var - torch.log(var + 1e-8) - 1).sum(-1)
        return sse + kl_weight * kl

    @torch.no_grad()
    def recon_error(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """SSE of a reconstruction with one stochastic latent draw (DEMC's selection score): ``(B,)``."""
        out = []
        with eval_mode(self):
            for i in range(0, len(x), _CHUNK):
                xb = x[i:i + _CHUNK]
                q = self.encode(xb)
                z = q.loc + q.scale * torch.randn(q.loc.shape, generator=generator, device=q.loc.device)
                out.append((self.decode(z) - xb.flatten(1)).pow(2).sum(-1))
        return torch.cat(out)

    # -- what the evaluator and the grids use (eval-mode BatchNorm) -----------------------------
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """G(z) for ``n`` draws from the generation prior: ``(n, D)``."""
        z = self.prior_sample(n, generator)
        with eval_mode(self):
            return torch.cat([self.decode(z[i:i + _CHUNK]) for i in range(0, n, _CHUNK)])

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """G(mu(x)), the decoder at the encoder mean: ``(B, D)``."""
        with eval_mode(self):
            return torch.cat([self.decode(self.encode(x[i:i + _CHUNK]).loc) for i in range(0, len(x), _CHUNK)])

    @torch.no_grad()
    def latent_stats(self, x: torch.Tensor, batch_statistics: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder means and standard deviations: two ``(B, Z)`` tensors.

        Eval-mode BatchNorm (running statistics) by default; ``batch_statistics`` normalises with
        the statistics of ``x`` itself, as one batch (the released code), leaving the running
        statistics untouched.
        """
        if batch_statistics:
            mode = self.encoder.training
            self.encoder.train()
            with frozen_bn_statistics(self.encoder):
                q = self.encode(x)
            self.encoder.train(mode)
            return q.loc, q.scale
        with eval_mode(self):
            qs = [self.encode(x[i:i + _CHUNK]) for i in range(0, len(x), _CHUNK)]
        return torch.cat([q.loc for q in qs]), torch.cat([q.scale for q in qs])


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None,
                     shape: tuple[int, int, int] | None = None, legacy: bool = False) -> torch.Tensor:
    """WGAN-GP term mean((||dD/dx_hat|| - 1)^2) at x_hat = eps x + (1 - eps) G(z) (scalar, differentiable).

    Standard: one eps ~ U(0, 1) per image and the norm over all pixels of each image.
    ``legacy`` (released code): one eps for the whole batch and the norm over the image-height axis
    only, so every (image, channel, column) contributes its own (norm - 1)^2 term.
    ``real``, ``fake``: ``(B, D)``; ``shape`` = (C, H, W) is needed for ``legacy``.
    """
    n = real.shape[0]
    eps = torch.rand((1, 1) if legacy else (n, 1), generator=generator, dtype=real.dtype, device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)  # (B, D)
    # the critic may run in bf16 (autocast); the score sum, the gradient (x_hat's dtype) and the norm are fp32
    (grad,) = torch.autograd.grad(critic(x_hat).float().sum(), x_hat, create_graph=True)
    if legacy:
        if shape is None:
            raise ValueError("gradient_penalty(legacy=True) needs the image shape (C, H, W)")
        norm = grad.reshape((n,) + tuple(shape)).pow(2).sum(2).add(1e-12).sqrt()  # (B, C, W): over height only
    else:
        norm = grad.pow(2).sum(1).add(1e-12).sqrt()  # (B,)
    return (norm - 1).pow(2).mean()
