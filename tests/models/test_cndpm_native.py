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
