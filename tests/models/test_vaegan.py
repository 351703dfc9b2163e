"""DEMC's VAE-GAN and its updates: shapes (28x28 and 32x32), the gradient penalty, step 2, augmentation."""
from __future__ import annotations

import pytest
import torch

from streamvae.config import VAEGANConfig
from streamvae.registry import load_config
from streamvae.data.augment import augment
from streamvae.learners import LEARNERS
from streamvae.models import build_model
from streamvae.models.vaegan import VAEGAN, gradient_penalty

from ..conftest import REPO

DEMC = REPO / "configs/split_fashion/demc.yaml"


def small(shape, latent):
    torch.manual_seed(0)
    return VAEGAN(VAEGANConfig(latent=latent, width=0.125), shape)


@pytest.mark.parametrize("shape, latent", [((1, 28, 28), 100), ((3, 32, 32), 200)])
def test_networks_have_the_spec_shapes(shape, latent):
    model = small(shape, latent)
    d = shape[0] * shape[1] * shape[2]
    x = torch.rand(5, d)
    q = model.encode(x)
    assert q.loc.shape == (5, latent) and (q.scale > 0).all()
    assert model.decode(q.loc).shape == (5, d) and model.critic(x).shape == (5,)
    loss = model.vae_loss(x, 0.1, torch.Generator().manual_seed(0))
    assert loss.shape == (5,) and (loss > 0).all()
    s = model.sample(7, torch.Generator().manual_seed(0))
    assert s.shape == (7, d) and 0 <= s.min() and s.max() <= 1
    z = model.prior_sample(1000, torch.Generator().manual_seed(0))
    assert -1 <= z.min() < -0.99 and 0.99 < z.max() <= 1  # released prior U(-1, 1)
    assert model.reconstruct(x).shape == (5, d) and model.training  # eval mode inside, restored after


def test_build_model_takes_the_shape_from_the_stream_and_rejects_others():
    cfg = VAEGANConfig(latent=8, width=0.125)
    assert build_model(cfg, 3072, shape=(3, 32, 32)).shape == (3, 32, 32)
    assert build_model(cfg, 784).shape == (1, 28, 28)  # guessed from the size
    with pytest.raises(Exception, match="28x28 and 32x32"):
        build_model(cfg, 64, shape=(1, 8, 8))


def test_eval_mode_statistics_do_not_depend_on_the_batch():
    model = small((1, 28, 28), 16)
    x = torch.rand(10, 784)
    mu_all, _ = model.latent_stats(x)
    mu_one, _ = model.latent_stats(x[:3])
    assert torch.allclose(mu_all[:3], mu_one, atol=1e-6)


def test_gradient_penalty_of_a_linear_critic():
    """D(x) = w . x has input gradient w for every image: the standard penalty is (||w|| - 1)^2;
    the released one takes a norm over the height only, per (image, channel, column)."""
    shape = (2, 3, 4)
    w = torch.randn(24, generator=torch.Generator().manual_seed(0))

    def critic(x):
        return x @ w

    real, fake = torch.rand(6, 24), torch.rand(6, 24)
    gp = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(1))
    assert float(gp) == pytest.approx(float((w.norm() - 1) ** 2), rel=1e-5)
    legacy = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(1), shape=shape, legacy=True)
    column_norms = w.reshape(shape).pow(2).sum(1).sqrt()  # (C, W): over the height axis
    assert float(legacy) == pytest.approx(float((column_norms - 1).pow(2).mean()), rel=1e-5)


def test_gradient_penalty_is_zero_for_a_unit_norm_critic_and_differentiable():
    lin = torch.nn.Linear(24, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.ones(1, 24) / 24 ** 0.5)
    gp = gradient_penalty(lambda x: lin(x).squeeze(-1), torch.rand(4, 24), torch.rand(4, 24))
    assert gp.item() == pytest.approx(0.0, abs=1e-8)
    with torch.no_grad():
        lin.weight.mul_(2.0)
    gp = gradient_penalty(lambda x: lin(x).squeeze(-1), torch.rand(4, 24), torch.rand(4, 24))
    gp.backward()
    assert gp.item() == pytest.approx(1.0, rel=1e-5) and lin.weight.grad.abs().sum() > 0


def make_learner(*overrides):
    cfg = load_config(DEMC, ["budget=smoke", "progress=False", *overrides])
    torch.manual_seed(0)
    model = build_model(cfg.model, 784, shape=(1, 28, 28))
    return LEARNERS[cfg.learner.name](cfg, model, torch.Generator().manual_seed(1))


def snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items() if "num_batches_tracked" not in k}


def changed(before, module):
    return {k for k, v in snapshot(module).items() if not torch.equal(v, before[k])}


def test_step_2_changes_only_encoder_parameters():
    learner = make_learner()
    x = torch.rand(64, 784)
    before = snapshot(learner.model)
    learner.inference_step(x)
    diff = changed(before, learner.model)
    encoder_params = {f"encoder.{n}" for n, _ in learner.model.encoder.named_parameters()}
    assert diff and diff <= {k for k in before if k.startswith("encoder.")}
    assert encoder_params <= diff  # every encoder weight moved (Adam moves even tiny gradients)
    # the generator's running statistics are untouched too (it is frozen); the encoder's BN ran in train mode
    assert not any(k.startswith(("generator.", "critic_net.")) for k in diff)


def test_step_1_updates_the_critic_then_generator_and_encoder_but_not_each_other():
    learner = make_learner()
    x, z = torch.rand(64, 784), learner.model.prior_sample(64, learner.generator)
    before = snapshot(learner.model)
    learner.critic_step(x, z)
    assert {k.split(".")[0] for k in changed(before, learner.model) if "running" not in k} == {"critic_net"}
    before = snapshot(learner.model)
    learner.generator_step(x, z)
    params = {k for k in changed(before, learner.model) if "running" not in k}
    assert {k.split(".")[0] for k in params} == {"encoder", "generator"}


def test_simultaneous_mode_gives_the_encoder_two_updates_from_one_snapshot():
    seq, sim = make_learner(), make_learner("learner.step_order=simultaneous")
    x = torch.rand(64, 784)
    for learner in (seq, sim):
        learner.update(x.clone())
        assert learner.steps == 1
    # same start, same draws until step 2; the encoders end up different (step 2 saw different params)
    assert torch.equal(seq.model.critic_net.body[0].weight, sim.model.critic_net.body[0].weight)
    assert not torch.equal(seq.model.encoder.to_mu.weight, sim.model.encoder.to_mu.weight)


def test_augmentation_is_seeded_bounded_and_the_identity_when_off():
    x = torch.rand(6, 784)
    a = augment(x, (1, 28, 28), torch.Generator().manual_seed(0))
    b = augment(x, (1, 28, 28), torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.allclose(a, x)
    assert 0 <= a.min() and a.max() <= 1
    same = augment(x, (1, 28, 28), torch.Generator().manual_seed(0), rotation=0.0, shift=0.0, hflip=False)
    assert torch.allclose(same, x, atol=1e-5)
    img = torch.zeros(1, 1, 28, 28)
    img[..., :, :5] = 1.0  # a bar on the left; a flip moves it to the right
    flipped = [augment(img.flatten(1), (1, 28, 28), torch.Generator().manual_seed(s), 0.0, 0.0, True)
               .reshape(28, 28) for s in range(8)]
    assert any(f[:, -5:].mean() > 0.99 for f in flipped) and any(f[:, :5].mean() > 0.99 for f in flipped)


def test_batch_statistics_mode_normalises_with_the_batch_and_leaves_running_stats():
    model = small((1, 28, 28), 16)
    x = torch.rand(32, 784)
    before = snapshot(model)
    mu_batch, _ = model.latent_stats(x, batch_statistics=True)
    mu_half, _ = model.latent_stats(x[:16], batch_statistics=True)
    assert not torch.allclose(mu_batch[:16], mu_half, atol=1e-4)  # depends on the rest of the batch
    assert not torch.allclose(mu_batch, model.latent_stats(x)[0], atol=1e-4)  # differs from eval mode
    assert not changed(before, model) and model.training
