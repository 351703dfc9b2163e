"""DEMC as released (issue 11): the released behaviour is the default; Generator32's per-channel
BatchNorm; RMSProp's squared-gradient average starting at 1 (TF1), through checkpoints too."""
from __future__ import annotations

import io

import pytest
import torch

from streamvae.config import VAEGANConfig
from streamvae.errors import ConfigError
from streamvae.learners import LEARNERS
from streamvae.learners.demc import DEMCMemoryConfig
from streamvae.learners.vaegan_training import VAEGANTrainingConfig, start_square_avg_at_one
from streamvae.models import build_model
from streamvae.models.vaegan import VAEGAN, Generator32
from streamvae.registry import load_config

from ..conftest import REPO

CONFIGS = ["split_fashion/demc", "split_fashion/demc-min", "split_mnist/demc", "split_svhn/demc",
           "split_cifar10/demc"]


def test_the_released_behaviour_is_the_default():
    m, c = DEMCMemoryConfig(), VAEGANTrainingConfig()
    assert m.novelty_bn == "batch" and m.novelty_test == "absolute" and m.cluster_descriptor == "cluster"
    assert m.novelty_agg == "max" and m.novelty_kl == "one-sided" and m.cluster_select == "low-error"
    assert c.gp_legacy is True and c.rmsprop_init == "one"


@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_demc_configs_keep_the_released_settings_at_the_paper_budget(name):
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    assert cfg.memory.novelty_bn == "batch" and cfg.memory.novelty_test == "absolute"
    assert cfg.learner.gp_legacy is True and cfg.learner.rmsprop_init == "one"
    released = {"split_fashion/demc": 5.0, "split_fashion/demc-min": 5.0, "split_mnist/demc": 28.0,
                "split_svhn/demc": 25.0, "split_cifar10/demc": 1.2}
    assert cfg.memory.novelty_threshold == released[name]


def test_the_hour_budget_pairs_demc_with_the_reservoir_vaegan_at_half_width():
    for name in ("demc", "reservoir-vaegan"):
        cfg = load_config(REPO / f"configs/split_fashion/{name}.yaml", ["budget=hour"])
        assert cfg.model.width == 0.5 and cfg.learner.updates_per_arrival == 20
        assert cfg.stream.samples_per_class == 0 and cfg.stream.max_batches == 0  # the full stream
        assert cfg.learner.gp_legacy is True and cfg.learner.rmsprop_init == "one"


@pytest.mark.parametrize("budget", ["fast", "hour"])
def test_cpu_budgets_use_the_relative_test_on_running_statistics(budget):
    m = load_config(REPO / "configs/split_fashion/demc.yaml", [f"budget={budget}"]).memory
    assert (m.novelty_test, m.novelty_bn, m.cluster_descriptor) == ("relative", "eval", "cluster")


def test_invalid_choices_and_combinations_are_refused():
    with pytest.raises(ConfigError, match="novelty_test"):
        DEMCMemoryConfig(novelty_test="zscore").validate()
    with pytest.raises(ConfigError, match="cluster_descriptor=cluster"):
        DEMCMemoryConfig(refresh_stats=True, cluster_descriptor="random").validate()
    with pytest.raises(ConfigError, match="novelty_warmup"):
        DEMCMemoryConfig(novelty_warmup=60, novelty_window=50).validate()
    with pytest.raises(ConfigError, match="rmsprop_init"):
        VAEGANTrainingConfig(rmsprop_init="two").validate()


def test_generator32_normalises_its_first_layer_per_channel():
    torch.manual_seed(0)
    gen = Generator32(3, 200, 0.125)  # 32 channels at width 1/8
    first_bn = next(m for m in gen.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    assert isinstance(first_bn, torch.nn.BatchNorm2d) and first_bn.num_features == 32  # not 32 * 8 * 8
    model = VAEGAN(VAEGANConfig(latent=200, width=0.125), (3, 32, 32))
    h = model.generator.body[:3](torch.rand(16, 200))  # Linear, Unflatten, BN: (16, 32, 8, 8)
    assert h.shape == (16, 32, 8, 8)
    per_channel = h.transpose(0, 1).reshape(32, -1)
    assert torch.allclose(per_channel.mean(1), torch.zeros(32), atol=1e-5)  # batch statistics per channel
    assert torch.allclose(per_channel.var(1, unbiased=False), torch.ones(32), atol=1e-3)


def test_rmsprop_starting_at_one_takes_tf1_sized_first_steps():
    lr, alpha = 1e-2, 0.9
    g = torch.tensor([1e-3, 0.1, 1.0, 10.0])
    p = torch.nn.Parameter(torch.zeros(4))
    opt = torch.optim.RMSprop([p], lr=lr, alpha=alpha, eps=1e-10)
    start_square_avg_at_one(opt)
    assert torch.equal(opt.state[p]["square_avg"], torch.ones(4))
    p.grad = g.clone()
    opt.step()
    expected = -lr * g / torch.sqrt(alpha + (1 - alpha) * g ** 2)
    assert torch.allclose(p.detach(), expected, rtol=1e-5)
    q = torch.nn.Parameter(torch.zeros(4))  # PyTorch's start (zero): about lr / sqrt(1 - alpha) whatever g
    zero = torch.optim.RMSprop([q], lr=lr, alpha=alpha, eps=1e-10)
    q.grad = g.clone()
    zero.step()
    assert torch.allclose(q.detach(), -lr * torch.sign(g) / (1 - alpha) ** 0.5, rtol=1e-4)


def learner(*overrides):
    cfg = load_config(REPO / "configs/split_fashion/demc.yaml", ["budget=smoke", "progress=False", *overrides])
    torch.manual_seed(0)
    model = build_model(cfg.model, 784, shape=(1, 28, 28))
    return LEARNERS[cfg.learner.name](cfg, model, torch.Generator().manual_seed(1))


def test_the_learner_starts_both_rmsprop_optimisers_at_one_and_a_checkpoint_keeps_the_state():
    one, zero = learner(), learner("learner.rmsprop_init=zero")
    for opt in (one.critic_optimizer, one.optimizer):
        assert all(torch.equal(opt.state[p]["square_avg"], torch.ones_like(p)) for p in opt.param_groups[0]["params"])
    assert not zero.critic_optimizer.state and not zero.optimizer.state  # PyTorch's lazy zeros
    x = torch.rand(64, 784)
    one.update(x)
    buf = io.BytesIO()  # through bytes, as a checkpoint (load_state_dict would share the tensors)
    torch.save(one.state_dict(), buf)
    buf.seek(0)
    fresh = learner()
    fresh.load_state_dict(torch.load(buf, weights_only=False))
    for a, b in zip(one.optimizer.param_groups[0]["params"], fresh.optimizer.param_groups[0]["params"]):
        assert torch.equal(one.optimizer.state[a]["square_avg"], fresh.optimizer.state[b]["square_avg"])
    sq = one.critic_optimizer.state[one.critic_params[0]]["square_avg"]
    assert sq.min() >= 0.9 - 1e-6  # alpha * 1 + (1 - alpha) g^2 after one step
    assert one.update(x) == fresh.update(x)
