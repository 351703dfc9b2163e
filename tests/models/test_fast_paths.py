"""The fused Bernoulli head and the blocked no-grad path give the textbook values and gradients."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from streamvae import kernels
from streamvae.config import ModelConfig
from streamvae.models import VAE
from streamvae.models.likelihoods import bernoulli_head


def test_bernoulli_head_value_and_gradients_match_softplus():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(1100, 20, generator=g, dtype=torch.float64, requires_grad=True)  # 3 blocks
    w = (4 * torch.randn(784, 20, generator=g, dtype=torch.float64)).requires_grad_()  # large logits too
    b = torch.randn(784, generator=g, dtype=torch.float64, requires_grad=True)
    def ref(h, w, b):  # exact softplus (torch's default switches to the identity above 20)
        lg = F.linear(h, w, b)
        return (F.softplus(lg, threshold=500) - lg / 2).sum(-1)

    out = bernoulli_head(h, w, b)
    assert torch.allclose(out, ref(h, w, b), rtol=1e-12, atol=1e-9)
    c = torch.randn(1100, generator=g, dtype=torch.float64)
    got = torch.autograd.grad((out * c).sum(), (h, w, b))
    want = torch.autograd.grad((ref(h, w, b) * c).sum(), (h, w, b))
    for a, e in zip(got, want):
        assert torch.allclose(a, e, rtol=1e-9, atol=1e-9)
    with torch.no_grad():
        assert torch.allclose(bernoulli_head(h, w, b), out, rtol=1e-12, atol=1e-9)


def test_log_weights_same_with_and_without_autograd_and_match_decode():
    torch.manual_seed(0)
    vae = VAE(ModelConfig())
    x = torch.bernoulli(torch.rand(40, 784))
    with torch.no_grad():
        lw_nograd = vae.log_weights(x, 300, torch.Generator().manual_seed(1))  # several blocks
    lw_grad = vae.log_weights(x, 300, torch.Generator().manual_seed(1))
    assert torch.allclose(lw_nograd, lw_grad, rtol=1e-5, atol=1e-3)
    # the same draws, the textbook way
    q = vae.encode(x)
    eps = kernels.randn((300, 40, 50), generator=torch.Generator().manual_seed(1))
    z = q.loc + q.scale * eps
    px = vae.decode(z).log_prob(x)
    ref = px + torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1) - q.log_prob(z).sum(-1)
    assert torch.allclose(lw_grad, ref, rtol=1e-5, atol=1e-3)


def test_reparameterize_node_has_the_autograd_gradients():
    from streamvae.models.vae import _Reparameterize

    g = torch.Generator().manual_seed(0)
    loc = torch.randn(5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    scale = (torch.rand(5, 3, dtype=torch.float64, generator=g) + 0.5).requires_grad_()
    eps = torch.randn(4, 5, 3, dtype=torch.float64, generator=g)
    assert torch.autograd.gradcheck(lambda a, b: _Reparameterize.apply(a, b, eps), (loc, scale))
    z, half = _Reparameterize.apply(loc, scale, eps)
    assert torch.allclose(z, loc + scale * eps)
    assert torch.allclose(half, 0.5 * (eps ** 2 - z ** 2).sum(-1))
