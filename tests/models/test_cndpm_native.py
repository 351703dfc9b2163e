"""CN-DPM's experts on the native evaluation path: the same IW bound as the torch reference for the
same draws (fp32 rounding apart), and the native pass is never taken where autograd is on."""
from __future__ import annotations

import torch

from streamvae.config import CNDPMModelConfig
from streamvae.models.bounds import iw_log_likelihood
from streamvae.models.cndpm import CNDPMExperts

from ..conftest import needs_native


def _experts(native: bool, n: int = 3) -> CNDPMExperts:
    torch.manual_seed(0)
    mix = CNDPMExperts(CNDPMModelConfig(), 784, seed=3, native=native)
    mix.grow_to(n)
    return mix


@needs_native
def test_native_iw_bound_equals_the_torch_reference_for_every_expert_of_the_chain():
    ref, fast = _experts(False), _experts(True)
    fast.load_state_dict(ref.state_dict())
    x = (torch.rand(24, 784, generator=torch.Generator().manual_seed(5)) > 0.6).float()
    for e_ref, e_fast in zip(ref.real(), fast.real()):
        a = iw_log_likelihood(e_ref, x, 300, torch.Generator().manual_seed(9), chunk_rows=2048)
        b = iw_log_likelihood(e_fast, x, 300, torch.Generator().manual_seed(9), chunk_rows=2048)
        assert torch.allclose(a, b, rtol=0, atol=2e-3), (a - b).abs().max()
        assert not torch.equal(a, iw_log_likelihood(e_ref, x, 300, torch.Generator().manual_seed(10)))


@needs_native
def test_training_keeps_the_torch_path_with_its_gradients():
    mix = _experts(True, 2)
    e = mix.real()[-1]
    x = (torch.rand(8, 784) > 0.5).float()
    lw = e.log_weights(x, 4, torch.Generator().manual_seed(0))  # autograd on: the reference path
    lw.sum().backward()
    assert e.dec[4].weight.grad is not None and e.enc1.weight.grad is not None
    assert mix.real()[0].enc1.weight.grad is None  # precursors' features are detached


def test_the_logvar_limit_is_inert_below_it_and_keeps_an_overgrown_chain_finite():
    from dataclasses import replace

    x = (torch.rand(16, 784, generator=torch.Generator().manual_seed(2)) > 0.6).float()
    free = CNDPMExperts(replace(CNDPMModelConfig(), logvar_limit=0.0), 784, seed=1)
    guarded = CNDPMExperts(CNDPMModelConfig(), 784, seed=1)
    free.grow_to(3)
    guarded.grow_to(3)
    guarded.load_state_dict(free.state_dict())
    with torch.no_grad():
        for a, b in zip(free.encode_all(x), guarded.encode_all(x)):  # healthy experts: bitwise the same
            assert torch.equal(a.loc, b.loc) and torch.equal(a.scale, b.scale)
        for mix in (free, guarded):  # precursors whose features grew large (as at expert 38, released protocol)
            for e in mix.real()[:2]:
                e.enc1.weight.mul_(3000.0)
        last_free, last_guarded = free.encode_all(x)[-1], guarded.encode_all(x)[-1]
    assert (2 * last_free.scale.log()).abs().max() > 80  # log sigma^2 beyond the limit without it
    assert (2 * last_guarded.scale.log()).abs().max() <= 80 + 1e-4
    lw = guarded.real()[-1].log_weights(x, 8, torch.Generator().manual_seed(0))
    assert torch.isfinite(lw).all()
