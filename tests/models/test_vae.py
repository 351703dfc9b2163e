"""The MLP VAE and the importance-weighted bound: shapes, bound ordering, and a closed-form check."""
from __future__ import annotations

import math

import torch

from streamvae.config import ModelConfig
from streamvae.evaluation import elbo_per_image, iw_log_likelihood
from streamvae.models import VAE


def test_shapes_and_distributions():
    vae = VAE(ModelConfig())
    x = torch.bernoulli(torch.rand(8, 784))
    q = vae.encode(x)
    assert isinstance(q, torch.distributions.Normal) and q.loc.shape == (8, 50)
    assert vae.decode(q.loc).log_prob(x).shape == (8,)
    assert vae.log_weights(x, 7).shape == (7, 8)
    assert vae.elbo(x, 3).shape == (8,) and vae.iwae(x, 3).shape == (8,)
    assert vae.sample(5).shape == (5, 784) and vae.reconstruct(x).shape == (8, 784)
    assert [m.out_features for m in vae.modules() if isinstance(m, torch.nn.Linear)] == [200, 200, 50, 50, 200, 200, 784]


def test_log_weights_are_the_textbook_terms():
    """log w = log p(x|z) + log N(z; 0, I) - log q(z|x), recomputed with torch.distributions."""
    torch.manual_seed(0)
    vae = VAE(ModelConfig())
    x = torch.bernoulli(torch.rand(4, 784))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    lw = vae.log_weights(x, 3, g1)
    q = vae.encode(x)
    z = q.loc + q.scale * torch.randn((3, 4, 50), generator=g2)
    px = torch.distributions.Bernoulli(logits=vae.to_x(vae.decoder(z))).log_prob(x).sum(-1)
    pz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    assert torch.allclose(lw, px + pz - q.log_prob(z).sum(-1), atol=1e-3)


def test_iw_bound_is_at_least_the_elbo_and_grows_with_k():
    torch.manual_seed(0)
    vae = VAE(ModelConfig())
    x = torch.bernoulli(torch.rand(64, 784))
    g = torch.Generator().manual_seed(1)
    elbo = elbo_per_image(vae, x, samples=1, generator=g).mean()
    iw50 = iw_log_likelihood(vae, x, 50, g).mean()
    iw1000 = iw_log_likelihood(vae, x, 1000, g, chunk_rows=4096).mean()  # also exercises chunking over k
    assert iw50 > elbo and iw1000 > iw50


class LinearGaussian(VAE):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, s^2 I): log p(x) = log N(x; b, W W^T + s^2 I) in closed form.

    The encoder is a deliberately imperfect Gaussian (the exact posterior mean, a wider std), so the
    importance-weighted bound has real work to do.
    """

    def __init__(self, d=6, z=2, s=0.5):
        super().__init__(ModelConfig(latent=z), x_dim=d)
        g = torch.Generator().manual_seed(3)
        self.W = torch.randn(d, z, generator=g)
        self.b = torch.randn(d, generator=g)
        self.s = s
        prec = torch.eye(z) + self.W.T @ self.W / s**2
        self.post_cov = torch.linalg.inv(prec)

    def encode(self, x):
        mean = (x - self.b) @ self.W @ self.post_cov.T / self.s**2
        std = 1.6 * torch.sqrt(torch.diagonal(self.post_cov)).expand_as(mean)
        return torch.distributions.Normal(mean, std)

    def decode(self, z):
        loc, s = z @ self.W.T + self.b, self.s

        class _Lik:
            def log_prob(self, x):
                return torch.distributions.Normal(loc, s).log_prob(x).sum(-1)
        return _Lik()

    def true_log_px(self, x):
        cov = self.W @ self.W.T + self.s**2 * torch.eye(len(self.b))
        return torch.distributions.MultivariateNormal(self.b, cov).log_prob(x)


def test_iw_estimate_matches_closed_form_likelihood():
    model = LinearGaussian()
    g = torch.Generator().manual_seed(0)
    x = model.b + torch.randn(200, 6, generator=g) @ torch.diag(torch.full((6,), 1.2))
    truth = model.true_log_px(x)
    est = iw_log_likelihood(model, x, k=1000, generator=g, chunk_rows=3000)
    elbo = elbo_per_image(model, x, samples=1, generator=g)
    gap_elbo = (truth - elbo).mean()
    gap_iw = (truth - est).mean()
    se = (truth - est).std() / len(x) ** 0.5  # Monte-Carlo standard error of gap_iw
    assert gap_elbo > 0.05  # the imperfect encoder makes the ELBO visibly loose
    # k = 1000 closes (almost) all of it, and does not overshoot beyond Monte-Carlo noise (the bound
    # holds in expectation: E log mean w <= log p(x))
    assert -3 * se <= gap_iw < 0.05 * gap_elbo + 1e-3
    assert (est.float() - truth).abs().max() < 0.2  # per image: Monte-Carlo noise only
    assert math.isfinite(float(est.mean()))


def test_one_activation_table():
    """models.nets.ACTIVATIONS builds every layer; the config accepts exactly its names."""
    from streamvae import config
    from streamvae.models.nets import ACTIVATIONS

    assert tuple(ACTIVATIONS) == tuple(config.ACTIVATIONS)
