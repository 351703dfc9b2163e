"""The fast VAE-GAN update (issue 10) computes what the frozen reference update computes.

The reference is ``reference_update`` of ``benchmarks/bench_vaegan.py`` (the update before issue 10:
fp32, G(z) run twice). From identical weights, optimiser states and random draws, the learner's update
must give the same parameters, BatchNorm statistics, optimiser states and losses within fp32 rounding;
under ``precision: bf16`` it must stay close and keep every parameter and optimiser state in fp32.
"""
from __future__ import annotations

import copy
import importlib.util

import pytest
import torch

from streamvae import precision
from streamvae.learners import LEARNERS
from streamvae.models import build_model
from streamvae.models.vaegan import recorded_bn_update, repeat_bn_update
from streamvae.registry import load_config

from ..conftest import REPO

CONFIGS = {28: REPO / "configs/split_fashion/demc.yaml", 32: REPO / "configs/split_svhn/demc.yaml"}
SHAPES = {28: (1, 28, 28), 32: (3, 32, 32)}


def reference_update():
    spec = importlib.util.spec_from_file_location("bench_vaegan", REPO / "benchmarks/bench_vaegan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference_update


def twin_learners(size: int, *overrides: str, nchw: bool = True):
    """Two learners with the same weights, fresh optimisers (RMSProp state at 1) and generator state;
    the second on the memory format of the reference (NCHW), the first too unless ``nchw`` is False
    (then on the model's own: channels_last at 32x32)."""
    cfg = load_config(CONFIGS[size], ["budget=smoke", "progress=False", "model.width=0.0625",
                                      "model.latent=8", *overrides])
    torch.manual_seed(0)
    model = build_model(cfg.model, 0, shape=SHAPES[size])
    cls = LEARNERS[cfg.learner.name]
    ref_model = copy.deepcopy(model).to(memory_format=torch.contiguous_format)  # the reference: NCHW
    if nchw:
        model = model.to(memory_format=torch.contiguous_format)
    return (cls(cfg, model, torch.Generator().manual_seed(1)), cls(cfg, ref_model, torch.Generator().manual_seed(1)))


def batches(size: int, n: int = 3, b: int = 16) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    d = SHAPES[size][0] * size * size
    return [torch.rand(b, d, generator=g) for _ in range(n)]


def assert_same_state(a, b, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=rtol, atol=atol, msg=lambda m: f"{k}: {m}")
    for name, opt in a.optimizers().items():
        oa, ob = opt.state_dict()["state"], b.optimizers()[name].state_dict()["state"]
        assert oa.keys() == ob.keys()
        for i in oa:
            for k in oa[i]:
                torch.testing.assert_close(oa[i][k], ob[i][k], rtol=rtol, atol=atol,
                                           msg=lambda m: f"{name} state {i}.{k}: {m}")
    assert torch.equal(a.generator.get_state(), b.generator.get_state())  # the same draws, in the same order


@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize("legacy", [True, False])
def test_update_equals_the_reference_in_fp32(size, legacy):
    new, ref = twin_learners(size, f"learner.gp_legacy={legacy}")
    update_ref = reference_update()
    for x in batches(size):
        logs_new, logs_ref = new.update(x.clone()), update_ref(ref, x.clone())
        assert logs_new.keys() == logs_ref.keys()
        for k in logs_new:
            assert logs_new[k] == pytest.approx(logs_ref[k], rel=1e-5, abs=1e-6), k
    assert new.steps == ref.steps == 3
    assert_same_state(new, ref)


def test_channels_last_32x32_model_updates_like_nchw():
    """The 32x32 networks run channels_last: the same update up to the convolutions' fp32 rounding.
    Without step 2: Adam's first steps move each weight by about lr whatever the gradient's size, so
    the encoder's convolution biases (zero gradient before BatchNorm, but for rounding) would move
    by +-lr on the rounding's sign; RMSProp steps stay proportional to the gradient."""
    new, ref = twin_learners(32, "learner.inference_step=false", nchw=False)
    conv = new.model.encoder.body[0][0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    update_ref = reference_update()
    start = {k: v.float().clone() for k, v in ref.model.state_dict().items()}
    for x in batches(32):
        logs_new, logs_ref = new.update(x.clone()), update_ref(ref, x.clone())
        for k in logs_new:
            assert logs_new[k] == pytest.approx(logs_ref[k], rel=1e-4, abs=1e-5), k
    # the moves of each tensor agree within 5% (norm-wise): BatchNorm's backward cancels, so small
    # gradient entries carry relative rounding differences of ~1%
    for k, v in new.model.state_dict().items():
        moved_new, moved_ref = v.float() - start[k], ref.model.state_dict()[k].float() - start[k]
        assert float((moved_new - moved_ref).norm()) <= 0.05 * float(moved_ref.norm()) + 1e-8, k
    for name, opt in new.optimizers().items():
        other = ref.optimizers()[name].state_dict()["state"]
        for i, state in opt.state_dict()["state"].items():
            for k, v in state.items():
                assert float((v - other[i][k]).norm()) <= 1e-2 * float(other[i][k].norm()) + 1e-7, (name, i, k)


@pytest.mark.parametrize("overrides", [["learner.step_order=simultaneous"], ["learner.inference_step=false"]])
def test_other_step_orders_equal_the_reference(overrides):
    new, ref = twin_learners(28, *overrides)
    update_ref = reference_update()
    for x in batches(28, n=2):
        new.update(x.clone())
        update_ref(ref, x.clone())
    assert_same_state(new, ref)


def test_a_resumed_learner_continues_like_an_uninterrupted_one():
    a, b = twin_learners(28)
    xs = batches(28, n=3)
    a.update(xs[0])
    b.load_state_dict(copy.deepcopy(a.state_dict()))  # a checkpoint after one update
    for x in xs[1:]:
        a.update(x.clone())
        b.update(x.clone())
    assert_same_state(a, b, rtol=0, atol=0)


def test_repeating_a_recorded_batchnorm_update_equals_a_second_pass():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.BatchNorm1d(7), torch.nn.Linear(7, 3),
                              torch.nn.BatchNorm1d(3))
    twin = copy.deepcopy(net)
    z, other = torch.randn(9, 5), torch.randn(9, 5)
    with recorded_bn_update(net) as record:
        out = net(z)
    net(other)
    out.sum().backward()  # the recorded pass's graph is still valid after the live statistics moved
    repeat_bn_update(net, record)
    twin(z), twin(other), twin(z)
    for (k, v), w in zip(net.state_dict().items(), twin.state_dict().values()):
        torch.testing.assert_close(v, w, rtol=1e-6, atol=1e-7, msg=lambda m: f"{k}: {m}")


@pytest.mark.skipif(not precision.bf16_native(torch.device("cpu")), reason="no native bf16 on this CPU")
@pytest.mark.parametrize("size", [28, 32])
def test_bf16_update_stays_close_and_keeps_fp32_master_state(size):
    fast, ref = twin_learners(size)
    fast.precision = "bf16"
    start = {k: v.clone() for k, v in ref.model.state_dict().items()}
    update_ref = reference_update()
    for x in batches(size, n=2):
        logs_fast, logs_ref = fast.update(x.clone()), update_ref(ref, x.clone())
        for k in logs_fast:
            assert logs_fast[k] == pytest.approx(logs_ref[k], rel=0.05, abs=0.05), k
    for p in fast.model.parameters():
        assert p.dtype == torch.float32 and (p.grad is None or p.grad.dtype == torch.float32)
    for opt in fast.optimizers().values():
        for state in opt.state.values():
            assert all(v.dtype == torch.float32 for v in state.values() if torch.is_floating_point(v))
    # the parameter moves agree in direction (RMSProp and Adam steps from bf16 gradients)
    sf, sr = fast.model.state_dict(), ref.model.state_dict()
    moved_fast = torch.cat([(sf[k] - start[k]).flatten() for k in start if sf[k].is_floating_point()])
    moved_ref = torch.cat([(sr[k] - start[k]).flatten() for k in start if sr[k].is_floating_point()])
    assert torch.nn.functional.cosine_similarity(moved_fast, moved_ref, dim=0) > 0.9
    assert torch.isfinite(moved_fast).all()
