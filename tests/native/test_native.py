"""The native path against the reference (``models/vae.py``): the same draws from the same seed,
the same values and gradients up to fp32 rounding, and ``supports`` only where it computes them."""
from __future__ import annotations

import pytest
import torch

from streamvae import native
from streamvae.config import ModelConfig
from streamvae.models import VAE
from streamvae.models.mixture import MixtureVAE
from streamvae.native import decoder
from ..conftest import needs_native



def _terms(vae: VAE, x: torch.Tensor, k: int, seed: int, on_native: bool):
    """log_weights with and without autograd, the parameter gradients and the generator's final state."""
    vae.native = on_native
    g = torch.Generator().manual_seed(seed)
    lw = vae.log_weights(x, k, g)
    vae.zero_grad()
    (lw.mean(0) * torch.linspace(0.5, 1.5, x.shape[0])).sum().backward()
    grads = [p.grad.clone() for p in vae.parameters()]
    with torch.no_grad():
        nograd = vae.log_weights(x, 300, g)  # several blocks of decoder rows on the native path
    return lw.detach(), nograd, grads, g.get_state()


@needs_native
@pytest.mark.parametrize("acts", [("tanh", "relu"), ("relu", "tanh")])
def test_native_and_reference_agree_for_the_same_seed(acts):
    torch.manual_seed(0)
    vae = VAE(ModelConfig(decoder_activations=acts))
    with torch.no_grad():  # large logits too, so that both branches of the softplus are exercised
        vae.to_x.weight.mul_(8)
    x = torch.bernoulli(torch.rand(24, 784))
    x[:4] = torch.rand(4, 784)  # grey values are valid Bernoulli "targets" too
    assert native.supports(vae, x, vae.encode(x))
    lw_n, ng_n, g_n, state_n = _terms(vae, x, 37, 1, on_native=True)
    lw_t, ng_t, g_t, state_t = _terms(vae, x, 37, 1, on_native=False)
    assert torch.equal(state_n, state_t)  # the generator advanced identically: the same draws
    assert torch.allclose(lw_n, lw_t, rtol=1e-5, atol=2e-3)
    assert torch.allclose(ng_n, ng_t, rtol=1e-5, atol=2e-3)
    for a, b in zip(g_n, g_t):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))


@needs_native
def test_iwae_objective_and_partial_gradients_agree():
    """The IWAE bound (the weights' softmax reaches the backward pass) and a frozen encoder."""
    torch.manual_seed(1)
    vae = VAE(ModelConfig())
    x = torch.bernoulli(torch.rand(16, 784))
    for p in [*vae.encoder.parameters(), *vae.to_mu.parameters(), *vae.to_log_std.parameters()]:
        p.requires_grad_(False)
    out = {}
    for flag in (True, False):
        vae.native = flag
        vae.zero_grad()
        val = vae.objective(x, "iwae", 10, torch.Generator().manual_seed(2))
        val.sum().backward()
        out[flag] = (val.detach(), [p.grad.clone() for p in vae.parameters() if p.requires_grad])
    assert torch.allclose(out[True][0], out[False][0], rtol=1e-5, atol=2e-3)
    for a, b in zip(out[True][1], out[False][1]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))


@needs_native
def test_blocked_evaluation_does_not_depend_on_the_block_size(monkeypatch):
    torch.manual_seed(0)
    vae = VAE(ModelConfig(), native=True)
    x = torch.bernoulli(torch.rand(40, 784))
    with torch.no_grad():
        whole = vae.log_weights(x, 50, torch.Generator().manual_seed(1))
        monkeypatch.setattr(decoder, "_BLOCK_ROWS", 7)  # 7 rows per thread: many uneven blocks
        blocked = vae.log_weights(x, 50, torch.Generator().manual_seed(1))
    assert torch.allclose(whole, blocked, rtol=1e-6, atol=1e-4)


def test_supports_only_the_cases_it_computes(monkeypatch):
    monkeypatch.setattr(native, "library", lambda: object())  # as if it were built: the other conditions decide
    x = torch.bernoulli(torch.rand(6, 784))

    def ok(vae, x=x):
        return native.supports(vae, x, vae.encode(x))

    assert ok(VAE(ModelConfig()))
    assert not ok(VAE(ModelConfig(decoder_activations=("softplus", "elu"))))  # no C code for these
    assert not ok(VAE(ModelConfig(likelihood="gaussian")))
    assert not ok(VAE(ModelConfig()).double(), x.double())
    assert not ok(VAE(ModelConfig()), x.clone().requires_grad_())

    class OwnDecode(VAE):
        def decode(self, z):
            return super().decode(z)

    assert not ok(OwnDecode(ModelConfig()))


def test_reference_path_never_touches_the_library(monkeypatch):
    def refuse():
        raise AssertionError("the reference path called the native library")

    monkeypatch.setattr(native, "library", refuse)
    vae = VAE(ModelConfig())  # native=False: the reference
    x = torch.bernoulli(torch.rand(8, 784))
    assert torch.isfinite(vae.elbo(x, 3, torch.Generator().manual_seed(0))).all()
    with torch.no_grad():
        assert vae.log_weights(x, 20).shape == (20, 8)


@needs_native
def test_mixture_components_inherit_the_path_and_frozen_parts_get_no_gradient():
    mix = MixtureVAE(ModelConfig(), seed=0, native=True)
    x = torch.bernoulli(torch.rand(16, 784))
    (-mix.newest.elbo(x, 3, torch.Generator().manual_seed(0)).mean()).backward()
    assert mix.shared["decoder"][0].weight.grad is not None  # shared layers train before an expansion
    mix.zero_grad(set_to_none=True)
    mix.add_component()
    assert [c.native for c in mix.components] == [True, True]
    old, new = mix.components[0], mix.newest
    (-new.elbo(x, 3, torch.Generator().manual_seed(0)).mean()).backward()
    assert all(p.grad is None for p in old.parameters())  # frozen component and frozen shared layers
    assert all(p.grad is not None for n, p in new.named_parameters() if p.requires_grad)
    assert new.decoder[1][0].weight.grad is not None and new.to_x.bias.grad is not None
    mix.native = False
    assert [c.native for c in mix.components] == [False, False]


def test_reparameterize_node_has_the_autograd_gradients():
    g = torch.Generator().manual_seed(0)
    loc = torch.randn(5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    scale = (torch.rand(5, 3, dtype=torch.float64, generator=g) + 0.5).requires_grad_()
    eps = torch.randn(4, 5, 3, dtype=torch.float64, generator=g)
    assert torch.autograd.gradcheck(lambda a, b: decoder._Reparameterize.apply(a, b, eps), (loc, scale))
    z, half = decoder._Reparameterize.apply(loc, scale, eps)
    assert torch.allclose(z, loc + scale * eps)
    assert torch.allclose(half, 0.5 * (eps ** 2 - z ** 2).sum(-1))
