"""The native kernels against the torch path: same values and gradients for the same draws, a
correct fallback without a compiler, and Philox normals that are normal and reproducible."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from streamvae import kernels
from streamvae.config import ModelConfig
from streamvae.models import VAE
from streamvae.models.mixture import MixtureVAE

needs_native = pytest.mark.skipif(kernels.native() is None, reason="no C compiler: torch path only")


@pytest.fixture
def torch_path():
    kernels.set_enabled(False)
    yield
    kernels.set_enabled(None)


def _terms(vae, x, k, seed, native: bool):
    """log_weights with autograd and without, and the parameter gradients, for fixed draws."""
    kernels.set_enabled(native)
    try:
        q = vae.encode(x)
        eps = torch.randn((k,) + q.loc.shape, generator=torch.Generator().manual_seed(seed))
        log_sigma = torch.log(q.scale).sum(-1)
        lw = vae._log_weights(x, eps, q.loc, q.scale, log_sigma)
        vae.zero_grad()
        (lw.mean(0) * torch.linspace(0.5, 1.5, x.shape[0])).sum().backward()
        grads = [p.grad.clone() for p in vae.parameters()]
        with torch.no_grad():
            q = vae.encode(x)
            nograd = vae._log_weights_nograd(x, eps, q.loc, q.scale, torch.log(q.scale).sum(-1))
        return lw.detach(), nograd, grads
    finally:
        kernels.set_enabled(None)


@needs_native
@pytest.mark.parametrize("acts", [("tanh", "relu"), ("relu", "tanh"), ("softplus", "elu")])
def test_native_and_torch_paths_agree_for_the_same_draws(acts):
    torch.manual_seed(0)
    vae = VAE(ModelConfig(decoder_activations=acts))
    with torch.no_grad():  # large logits too, so that both branches of the softplus are exercised
        vae.to_x.weight.mul_(8)
    x = torch.bernoulli(torch.rand(24, 784))
    x[:4] = torch.rand(4, 784)  # grey values are valid Bernoulli "targets" too
    lw_n, ng_n, g_n = _terms(vae, x, 37, 1, native=True)
    lw_t, ng_t, g_t = _terms(vae, x, 37, 1, native=False)
    assert torch.allclose(lw_n, lw_t, rtol=1e-5, atol=2e-3)
    assert torch.allclose(ng_n, lw_t, rtol=1e-5, atol=2e-3)
    assert torch.allclose(ng_t, lw_t, rtol=1e-5, atol=2e-3)
    for a, b in zip(g_n, g_t):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))


@needs_native
def test_native_loglik_matches_bce_in_float64():
    g = torch.Generator().manual_seed(3)
    logits = 20 * torch.randn(500, 784, generator=g)
    bias = torch.randn(784, generator=g)
    x = torch.bernoulli(torch.full((50, 784), 0.3), generator=g)
    lib = kernels.native()
    grad = logits.clone()
    out = kernels.bernoulli_loglik(lib, grad, x, bias=bias, grad=grad)
    l64 = logits.double() + bias.double()
    x64 = x.double().repeat(10, 1)
    want = -F.binary_cross_entropy_with_logits(l64, x64, reduction="none").sum(-1)
    assert torch.allclose(out.double(), want, rtol=1e-5, atol=1e-2)
    assert torch.allclose(grad.double(), x64 - torch.sigmoid(l64), atol=1e-6)


@needs_native
def test_mixture_frozen_parts_get_no_gradient_and_trainable_ones_do():
    mix = MixtureVAE(ModelConfig(), seed=0)
    x = torch.bernoulli(torch.rand(16, 784))
    (-mix.newest.elbo(x, 3, torch.Generator().manual_seed(0)).mean()).backward()
    assert mix.shared["decoder"][0].weight.grad is not None  # shared layers train before an expansion
    mix.zero_grad(set_to_none=True)
    mix.add_component()
    old, new = mix.components[0], mix.newest
    (-new.elbo(x, 3, torch.Generator().manual_seed(0)).mean()).backward()
    assert all(p.grad is None for p in old.parameters())  # frozen component and frozen shared layers
    assert all(p.grad is not None for n, p in new.named_parameters() if p.requires_grad)
    assert new.decoder[1][0].weight.grad is not None and new.to_x.bias.grad is not None


@needs_native
def test_philox_normals_are_standard_normal_reproducible_and_thread_independent():
    z = kernels.randn((200_003,), torch.Generator().manual_seed(0))
    assert abs(float(z.mean())) < 5 / np.sqrt(len(z))
    assert abs(float(z.std()) - 1) < 0.01
    assert stats.kstest(z.double().numpy(), "norm").pvalue > 1e-3
    # pairs from one counter are independent: no correlation between neighbours
    assert abs(float(np.corrcoef(z[:-1].numpy(), z[1:].numpy())[0, 1])) < 0.01
    a = kernels.randn((3, 1001), torch.Generator().manual_seed(5))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        b = kernels.randn((3, 1001), torch.Generator().manual_seed(5))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(a, b) and a.shape == (3, 1001)
    c = kernels.randn((3, 1001), torch.Generator().manual_seed(6))
    assert not torch.equal(a, c)
    # a prefix of a longer draw is not reused for the next call: the generator advanced
    g = torch.Generator().manual_seed(7)
    assert not torch.equal(kernels.randn((64,), g), kernels.randn((64,), g))


def test_torch_path_when_disabled(torch_path):
    assert kernels.native() is None
    assert "torch" in kernels.status()
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(kernels.randn((5, 3), g1), torch.randn((5, 3), generator=g2))


def test_no_compiler_falls_back_with_one_warning(monkeypatch, tmp_path):
    monkeypatch.delenv("STREAMVAE_KERNELS", raising=False)
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing to find
    monkeypatch.setattr(kernels, "_state", {"lib": None, "tried": False, "enabled": None, "error": None})
    with pytest.warns(RuntimeWarning, match="native kernels unavailable"):
        assert kernels.native() is None
    assert kernels.native() is None  # no second warning, no second attempt
    vae = VAE(ModelConfig())
    x = torch.bernoulli(torch.rand(8, 784))
    assert torch.isfinite(vae.elbo(x, 2, torch.Generator().manual_seed(0))).all()


def test_compiled_library_is_cached_by_source_and_flags(monkeypatch, tmp_path):
    if kernels._compiler() is None:
        pytest.skip("no C compiler")
    monkeypatch.setenv("STREAMVAE_CACHE", str(tmp_path))
    path = kernels._build(kernels._compiler())
    assert path.exists() and path.parent == tmp_path / "kernels"
    mtime = path.stat().st_mtime_ns
    assert kernels._build(kernels._compiler()) == path and path.stat().st_mtime_ns == mtime
    assert not [p for p in path.parent.iterdir() if p.suffix == ".so" and p != path]  # no temp files left
