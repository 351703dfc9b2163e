"""The native library itself: built once and cached, a clean fallback without a compiler, and its
Bernoulli log-likelihood against a float64 reference."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from streamvae import native
from streamvae.config import ModelConfig
from streamvae.models import VAE
from streamvae.native import clib
from ..conftest import needs_native



@needs_native
def test_native_loglik_and_its_gradient_match_bce_in_float64():
    g = torch.Generator().manual_seed(3)
    logits = 20 * torch.randn(500, 784, generator=g)
    bias = torch.randn(784, generator=g)
    x = torch.bernoulli(torch.full((50, 784), 0.3), generator=g)
    grad = logits.clone()
    out = clib.bernoulli_loglik(native.library(), grad, x, bias=bias, grad=grad)
    l64 = logits.double() + bias.double()
    x64 = x.double().repeat(10, 1)
    want = -F.binary_cross_entropy_with_logits(l64, x64, reduction="none").sum(-1)
    assert torch.allclose(out.double(), want, rtol=1e-5, atol=1e-2)
    assert torch.allclose(grad.double(), x64 - torch.sigmoid(l64), atol=1e-6)


def test_no_compiler_falls_back_with_one_warning(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing to find
    monkeypatch.setattr(clib, "_state", {"lib": None, "tried": False, "error": None})
    with pytest.warns(RuntimeWarning, match="native library unavailable"):
        assert native.library() is None
    assert native.library() is None  # no second warning, no second attempt
    assert native.status(False).startswith("torch (no C compiler")
    vae = VAE(ModelConfig(), native=True)  # asks for the native path: the reference runs instead
    x = torch.bernoulli(torch.rand(8, 784))
    assert not native.supports(vae, x, vae.encode(x))
    assert torch.isfinite(vae.elbo(x, 2, torch.Generator().manual_seed(0))).all()


def test_compiled_library_is_cached_by_source_and_flags(monkeypatch, tmp_path):
    if clib._compiler() is None:
        pytest.skip("no C compiler")
    monkeypatch.setenv("STREAMVAE_CACHE", str(tmp_path))
    path = clib._build(clib._compiler())
    assert path.exists() and path.parent == tmp_path / "native"
    mtime = path.stat().st_mtime_ns
    assert clib._build(clib._compiler()) == path and path.stat().st_mtime_ns == mtime
    assert not [p for p in path.parent.iterdir() if p.suffix == ".so" and p != path]  # no temp files left
